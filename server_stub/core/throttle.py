"""Login throttling: password guesses cost the guesser more and more time, never the server.

Failures are counted per key (an account id, known or not, and a source address). The first few
are free; after them every failure locks the key for a time that doubles, up to a ceiling. While a
key is locked, its password attempts are refused at once (``too_many_attempts``, with the time to
wait), without a password check. A success clears the account's count. Memory is bounded: the
least recently failed keys are forgotten first.

A key many people share (an address: a whole floor behind one NAT) must not be locked outright,
or one infected PC locks out every agent behind it. Such a throttle is given a ration: while the
key is locked, a small token bucket per key (``ration_per_s``, ``ration_burst``) still lets a few
password checks a second through (``admit``), so the right password goes in within seconds while
a guessing flood costs a bounded number of checks. The bucket lives in the key's entry, so memory
stays bounded by ``capacity`` as before. A flood that goes on competes for those few checks, so
the accounts that logged in from the key lately with the right password (``vouch``, for
``trust_ms``) are not rationed there at all: their own account's throttle still holds them, and a
guesser cannot earn that without the password. Those pairs are bounded by ``capacity`` too.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int = 0
    locked_until_ms: int = 0
    last_ms: int = 0
    tokens: float = 0.0  # the checks a locked key may still have (the ration's bucket), as of tokens_ms
    tokens_ms: int = 0


class Throttle:
    def __init__(self, *, free: int, base_ms: int, max_ms: int, forget_after_ms: int, capacity: int = 10_000,
                 ration_per_s: float = 0.0, ration_burst: int = 0, trust_ms: int = 0) -> None:
        self.free = free  # failures allowed before the first lock
        self.base_ms = base_ms  # the first lock; each further failure doubles it
        self.max_ms = max_ms
        self.forget_after_ms = forget_after_ms  # a key quiet this long starts from zero again
        self.capacity = capacity
        self.ration_per_s = ration_per_s  # checks a second a locked key still gets (0: none, locked outright)
        self.ration_burst = ration_burst
        self.trust_ms = trust_ms  # how long an account that logged in from a key skips the key's lock
        self._keys: OrderedDict[str, _Failures] = OrderedDict()
        self._trusted: OrderedDict[tuple[str, str], int] = OrderedDict()  # (key, account) -> its last login

    def wait_ms(self, key: str, now_ms: int) -> int:
        """How long ``key`` must still wait before its next attempt (0: it may try now)."""
        entry = self._keys.get(key)
        if entry is None:
            return 0
        if now_ms - entry.last_ms > self.forget_after_ms:
            del self._keys[key]
            return 0
        return max(0, entry.locked_until_ms - now_ms)

    def admit(self, key: str, now_ms: int, account: str | None = None) -> int:
        """May ``key`` have a password check (for ``account``) now? 0: yes (while it is locked,
        this spends one check of its ration, unless ``key`` vouched for ``account``); otherwise
        how long it must wait, at most until its ration's next check."""
        wait = self.wait_ms(key, now_ms)
        if not wait:
            return 0
        if account is not None:
            since = self._trusted.get((key, account))
            if since is not None and 0 <= now_ms - since <= self.trust_ms:
                return 0
        if self.ration_per_s <= 0:
            return wait
        entry = self._keys[key]
        elapsed_s = max(0, now_ms - entry.tokens_ms) / 1000  # a wall clock stepped back refills nothing
        entry.tokens = min(float(self.ration_burst), entry.tokens + elapsed_s * self.ration_per_s)
        entry.tokens_ms = now_ms
        if entry.tokens >= 1:
            entry.tokens -= 1
            return 0
        return min(wait, max(1, math.ceil((1 - entry.tokens) * 1000 / self.ration_per_s)))

    def failed(self, key: str, now_ms: int) -> None:
        entry = self._keys.pop(key, None)
        if entry is None or now_ms - entry.last_ms > self.forget_after_ms:
            entry = _Failures(tokens=self.ration_burst, tokens_ms=now_ms)
        entry.count += 1
        entry.last_ms = now_ms
        over = entry.count - self.free
        if over > 0:
            entry.locked_until_ms = now_ms + min(self.max_ms, self.base_ms << min(over - 1, 30))
        self._keys[key] = entry  # most recent last
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._keys.pop(key, None)

    def vouch(self, key: str, account: str, now_ms: int) -> None:
        """``account`` logged in from ``key`` with the right password: for ``trust_ms`` it is not
        rationed by ``key``'s lock."""
        if self.trust_ms <= 0:
            return
        self._trusted.pop((key, account), None)
        self._trusted[(key, account)] = now_ms  # most recent last
        while len(self._trusted) > self.capacity:
            self._trusted.popitem(last=False)

    def suspect(self, key: str, now_ms: int) -> bool:
        """Has ``key`` failed recently (locked or not)? Its checks then wait behind everyone else's."""
        entry = self._keys.get(key)
        return entry is not None and now_ms - entry.last_ms <= self.forget_after_ms
