"""One agent pool across sites: every agent's presence wherever it is logged in.

Each site tells the others, for every agent logged in there, its epoch, state, reason, time in
state and whether it can take work (Ready, nothing in hand, no offer pending), with the penalties
of its queues (``p.PeerPresence``): a full snapshot when a peer link comes up, then a delta per
change. This module keeps what the other sites told (``remote``) and numbers what this site tells
(``seq``); the routing engine asks it, through ``best``, whether a better member of a queue waits
at another site. Only the agent's own site offers it anything: the interaction is handed over to
that site (docs/multisite.md), so each site stays the one authority on its agents' availability.

Idempotent by construction: a record replaces the one known for the agent only when it is newer,
by epoch (the agent moved) or, at one site, by ``seq``. A site numbers its changes from its start
time in ms x 1000, so a restarted site's numbers are above those of its previous life (unless it
made more than a thousand changes per millisecond of its whole life).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import protocol as p
from .routing import Remote


@dataclass(eq=False)
class Seen:
    """An agent's presence as another site told it."""

    site: str
    presence: p.AgentPresence
    # False after that site refused a hand-over to the agent (or took one: it is busy now), until
    # a newer record says otherwise.
    usable: bool = True
    version: int = 0  # entries of the routing index carry it; a stale one is skipped

    @property
    def available(self) -> bool:
        return self.presence.logged_in and self.presence.available and self.usable


@dataclass(eq=False)
class Sending:
    """A hand-over in flight: to which site, for whom, and when it was last sent."""

    site: str
    agent_id: str
    epoch: int
    at: float


class AgentPool:
    def __init__(self, site: str, incarnation: str, start_seq: int) -> None:
        self.site = site
        self.incarnation = incarnation
        self.seq = start_seq  # the last number this site gave a presence change
        self.remote: dict[str, Seen] = {}  # agent id -> newest presence from another site
        self.incarnations: dict[str, str] = {}  # site -> the incarnation it last told us of
        self.reserved: dict[str, str] = {}  # agent id -> interaction being handed over to it
        self.sent: dict[str, Sending] = {}  # interaction id -> its hand-over in flight
        self.dirty: set[str] = set()  # local agents whose presence changed since last told
        self.told_epoch: dict[str, int] = {}  # local agent -> the epoch last told (for its logout)
        # queue -> penalty -> heap of (idle since, agent, version) of available remote members, with
        # lazy deletion (as the routing engine's pools): finding the best costs O(log agents).
        self._index: dict[str, dict[int, list[tuple[int, str, int]]]] = {}
        self._versions = itertools.count(1)

    # ------------------------------------------------------------------ what this site tells

    def changed(self, agent_id: str) -> None:
        self.dirty.add(agent_id)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ------------------------------------------------------------------ what the others tell

    def apply(self, msg: p.PeerPresence) -> bool:
        """Take a presence message in; True when it comes from a new life of a site we knew (it
        restarted: what we handed to its previous life and nobody took there is lost with it)."""
        site = msg.server
        before = self.incarnations.get(site)
        restarted = before is not None and before != msg.incarnation and msg.full
        if msg.full or before is None:
            self.incarnations[site] = msg.incarnation
        if msg.full:
            listed = {a.agent_id for a in msg.agents}
            for agent_id, seen in list(self.remote.items()):
                if seen.site == site and agent_id not in listed and (seen.presence.seq < msg.seq or restarted):
                    del self.remote[agent_id]
        for presence in msg.agents:
            self._record(site, presence)
        return restarted

    def _record(self, site: str, presence: p.AgentPresence) -> None:
        known = self.remote.get(presence.agent_id)
        if known is not None:
            if known.site == site and presence.seq <= known.presence.seq and presence.epoch <= known.presence.epoch:
                return  # a repeat, or older than what we know
            if known.site != site and presence.epoch <= known.presence.epoch:
                return  # an older login, at the site the agent left
        seen = self.remote[presence.agent_id] = Seen(site, presence)
        self._file(seen)

    def _file(self, seen: Seen) -> None:
        """(Re-)enter the agent in the routing index (a new version makes older entries stale)."""
        seen.version = next(self._versions)
        if not seen.available:
            return
        entry = (seen.presence.idle_since_ms, seen.presence.agent_id, seen.version)
        for queue, penalty in seen.presence.queues.items():
            heapq.heappush(self._index.setdefault(queue, {}).setdefault(penalty, []), entry)

    def site_lost(self, site: str) -> None:
        """No link to ``site`` any more: its agents' presence is unknown, not still valid."""
        for agent_id in [a for a, seen in self.remote.items() if seen.site == site]:
            del self.remote[agent_id]

    def unusable(self, agent_id: str) -> None:
        seen = self.remote.get(agent_id)
        if seen is not None:
            seen.usable = False
            seen.version = next(self._versions)

    def release(self, agent_id: str, iid: str) -> None:
        """The hand-over of ``iid`` to ``agent_id`` is answered (or over): no longer reserved."""
        if self.reserved.get(agent_id) == iid:
            del self.reserved[agent_id]
            seen = self.remote.get(agent_id)
            if seen is not None:
                self._file(seen)

    # ------------------------------------------------------------------ routing

    def best(self, queue: str, local: tuple[int, int] | None, skip: Callable[[str], bool]) -> Remote | None:
        """The best available member of ``queue`` at another site, if it beats ``local`` (the best
        member here, as (penalty, idle since)): a lower penalty, or the same and idle longer."""
        for penalty in sorted(self._index.get(queue, {})):
            if local is not None and penalty > local[0]:
                return None
            heap = self._index[queue][penalty]
            while heap:
                idle_since, agent_id, version = heap[0]
                seen = self.remote.get(agent_id)
                if (seen is None or seen.version != version or not seen.available or agent_id in self.reserved
                        or skip(agent_id)):
                    heapq.heappop(heap)  # stale; a reservation's end or a newer record files it again
                    continue
                if local is not None and (penalty, idle_since) >= local:
                    return None
                return Remote(seen.site, agent_id, seen.presence.epoch, penalty)
        return None

    def sites(self) -> Iterable[str]:
        return self.incarnations.keys()
