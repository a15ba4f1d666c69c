"""Center mode of the supervisor view: the whole center from ONE server's reporting stream.

Sans-I/O, over the ``ReportingEngine``. The view subscribes with ``scope: "center"`` to one server
(``via``); that stream carries every site's agents, each event with ``server`` = the agent's site
(docs/protocol.md, "The whole center from one server"). ``CenterFeed`` checks the one stream's
``seq`` and hands each event to the engine's records of the agent's site, so the rows, counts and
failover rules stay the engine's. When the subscription is lost every site's agents show *server
lost* until the next server's snapshot (the client fails over to it) replaces them; a resume at
the same server (same ``stream_id``) replays instead.
"""

from __future__ import annotations

import logging
from typing import Any

from server_stub import protocol as p

from .engine import ReportingEngine, Resubscribe

log = logging.getLogger("desktop.reporting")


class CenterFeed:
    def __init__(self, engine: ReportingEngine) -> None:
        self.engine = engine
        self.via: str | None = None  # the server subscribed to
        self.stream_id: str | None = None
        self.seq = 0
        self.awaiting_snapshot = True
        self.resyncing = False
        self.unknown_sites: set[str] = set()

    def resume_point(self, via: str) -> tuple[str, int] | None:
        if via != self.via or self.stream_id is None or self.awaiting_snapshot:
            return None
        return self.stream_id, self.seq

    def opened(self, via: str, stream_id: str, now_ms: int) -> None:
        """The subscription at ``via`` is acknowledged: a replay follows when it is the same stream."""
        same = via == self.via and stream_id == self.stream_id
        self.via = via
        self.resyncing = False
        self.awaiting_snapshot = not same
        for site in self.engine.servers:
            # Every site's records come through this one stream: the same stream resumes them, another
            # one leaves them "server lost" until its snapshot.
            self.engine.stream_opened(site, self.stream_id if same and self.stream_id else f"{stream_id}@{via}",
                                      now_ms)

    def lost(self, reason: str, now_ms: int) -> None:
        for site in self.engine.servers:
            self.engine.stream_lost(site, f"center stream at {self.via} lost: {reason}", now_ms)

    def message(self, msg: Any, now_ms: int) -> list[Resubscribe]:
        engine = self.engine
        if isinstance(msg, p.EventReportingSnapshot):
            self._snapshot(msg, now_ms)
            return []
        seq = getattr(msg, "seq", None)
        if seq is None or self.awaiting_snapshot or self.resyncing:
            return []
        if seq <= self.seq:
            engine.dropped_repeats += 1
            return []
        if seq > self.seq + 1:
            self.resyncing = True
            return [Resubscribe(self.via or "")]
        self.seq = seq
        site = str(getattr(msg, "server", None) or self.via)
        if site not in engine.servers:
            if site not in self.unknown_sites:
                self.unknown_sites.add(site)
                log.warning("center stream: site %s is not in the sites list; its agents are not shown", site)
            for sv in engine.servers.values():
                sv.seq = seq
            return []
        for name, sv in engine.servers.items():
            sv.seq = seq - 1 if name == site else seq
        return engine.message(site, msg, now_ms)

    def _snapshot(self, msg: p.EventReportingSnapshot, now_ms: int) -> None:
        self.stream_id, self.seq = msg.stream_id, msg.seq
        self.awaiting_snapshot = self.resyncing = False
        stream = self.stream_id
        for site in self.engine.servers:
            agents = [a for a in msg.agents if (a.server or msg.server) == site]
            queues = msg.queues if site == msg.server else []
            self.engine.message(site, p.EventReportingSnapshot(server=site, stream_id=stream, seq=msg.seq,
                                                               agents=agents, queues=queues), now_ms)
