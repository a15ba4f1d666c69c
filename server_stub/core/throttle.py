"""Login throttling: password guesses cost the guesser more and more time, never the server.

Failures are counted per key (an account id, known or not, and a source address). The first few
are free; after them every failure locks the key for a time that doubles, up to a ceiling. While a
key is locked, its password attempts are refused at once (``too_many_attempts``, with the time to
wait), without a password check. A success clears the account's count. Memory is bounded: the
least recently failed keys are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int = 0
    locked_until_ms: int = 0
    last_ms: int = 0


class Throttle:
    def __init__(self, *, free: int, base_ms: int, max_ms: int, forget_after_ms: int, capacity: int = 10_000) -> None:
        self.free = free  # failures allowed before the first lock
        self.base_ms = base_ms  # the first lock; each further failure doubles it
        self.max_ms = max_ms
        self.forget_after_ms = forget_after_ms  # a key quiet this long starts from zero again
        self.capacity = capacity
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def wait_ms(self, key: str, now_ms: int) -> int:
        """How long ``key`` must still wait before its next attempt (0: it may try now)."""
        entry = self._keys.get(key)
        if entry is None:
            return 0
        if now_ms - entry.last_ms > self.forget_after_ms:
            del self._keys[key]
            return 0
        return max(0, entry.locked_until_ms - now_ms)

    def failed(self, key: str, now_ms: int) -> None:
        entry = self._keys.pop(key, None)
        if entry is None or now_ms - entry.last_ms > self.forget_after_ms:
            entry = _Failures()
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

    def suspect(self, key: str, now_ms: int) -> bool:
        """Has ``key`` failed recently (locked or not)? Its checks then wait behind everyone else's."""
        entry = self._keys.get(key)
        return entry is not None and now_ms - entry.last_ms <= self.forget_after_ms
