"""The witness before a failover between live servers (docs/failover.md, "Overload").

A desktop whose primary has been silent past the heartbeat timeout asks its standby's server
(``RequestPrimaryCheck``) before it moves its login. That server is the witness: it hears the
primary on the peer link, independently of the desktop.

- Peer link closed, or silent for more than ``FRESH_S`` (a kill -9 or a hung primary: the peer
  link's own heartbeats, every 0.5 s, stopped with it): "not alive" at once, so a real failure is
  failed over as fast as before.
- Not yet told what its peers hold (just started or stalled, a linked peer's full state not read
  yet): the question waits for that state, at most ``ASK_TIMEOUT_S``, instead of being answered
  "no peer holds the login" from an empty table. A site restarted beside a loaded pair used to say
  "not alive" about a live primary it simply had not heard of yet, and moved the desktop to itself.
- Peer heard recently: the witness asks the primary (``PeerWitness``), which answers
  (``PeerWitnessAck``) whether it holds the agent at that epoch and still hears its desktop, and
  sends the desktop a heartbeat at once. No answer within ``ASK_TIMEOUT_S``, or the peer link lost
  meanwhile: "not alive".

Sans-I/O: the server core feeds it the monotonic time and sends what it returns.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .. import protocol as p
from .io import ConnId

# The peer link carries a heartbeat every 0.5 s when idle: silent for 1.5 of its intervals, the
# primary is not answering now. When a desktop finds its primary silent (1.5 s after the last frame
# it heard), a hung primary's peer link has been silent for at least 1 s.
FRESH_S = 0.75
# How long the witness waits for the primary's answer; the desktop bounds its own wait too.
ASK_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Asked:
    """A RequestPrimaryCheck waiting for the primary's answer."""

    conn: ConnId
    request_id: str
    site: str
    deadline: float


@dataclass(frozen=True)
class Parked:
    """A RequestPrimaryCheck that waits for the peers' full state before it is judged."""

    conn: ConnId
    msg: p.RequestPrimaryCheck
    deadline: float


class Witness:
    """The checks this server, as a standby, waits on its peers to answer."""

    def __init__(self) -> None:
        self._asked: dict[int, Asked] = {}
        self._ids = itertools.count(1)
        self._parked: list[Parked] = []

    def park(self, conn: ConnId, msg: p.RequestPrimaryCheck, mono: float) -> None:
        self._parked.append(Parked(conn, msg, mono + ASK_TIMEOUT_S))

    def unpark(self, mono: float, known: bool) -> list[Parked]:
        """The parked checks to judge now: all of them once the peers' state is ``known``, else those
        past their deadline (judged on what is known then)."""
        if not self._parked:
            return []
        if known:
            due, self._parked = self._parked, []
            return due
        due = [c for c in self._parked if c.deadline <= mono]
        if due:
            self._parked = [c for c in self._parked if c.deadline > mono]
        return due

    def ask(self, conn: ConnId, request_id: str, site: str, mono: float) -> int:
        ask_id = next(self._ids)
        self._asked[ask_id] = Asked(conn, request_id, site, mono + ASK_TIMEOUT_S)
        return ask_id

    def answered(self, ask_id: int) -> Asked | None:
        return self._asked.pop(ask_id, None)

    def expired(self, mono: float) -> list[Asked]:
        """The checks past their deadline (answered "not alive" by the caller)."""
        late = [ask_id for ask_id, asked in self._asked.items() if asked.deadline <= mono]
        return [self._asked.pop(ask_id) for ask_id in late]

    def site_lost(self, site: str) -> list[Asked]:
        """The checks waiting on ``site``, whose link is gone: "not alive"."""
        lost = [ask_id for ask_id, asked in self._asked.items() if asked.site == site]
        return [self._asked.pop(ask_id) for ask_id in lost]
