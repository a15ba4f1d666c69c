"""Replication to the peer site: what our agents hold and completed, waiting for its answer.

Accepts and completions are confirmed by the peer before they are answered (the first taker of
an interaction keeps it, and a completion is counted once). An answer that does not come within
``ack_timeout`` is taken as "the peer is down": the server goes ahead, as it does when the link is
already down. Deltas of agent epochs are told without waiting; the full state at every (re)connect
covers what a lost delta missed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from .. import protocol as p

Refused = frozenset[str]


@dataclass
class _Pending:
    deadline: float
    on_answer: Callable[[Refused], None]


class PeerReplication:
    def __init__(self, server_name: str, ack_timeout_s: float) -> None:
        self.server = server_name
        self.ack_timeout_s = ack_timeout_s
        self.link_up = False  # our outbound link to the peer
        self._pending: dict[int, _Pending] = {}
        self._ack_ids = itertools.count(1)

    def frame(self, records: list[p.PeerInteractionRecord], mono: float,
              on_answer: Callable[[Refused], None]) -> str | None:
        """The frame asking the peer to confirm ``records``, or None when the link is down."""
        if not self.link_up:
            return None
        ack_id = next(self._ack_ids)
        self._pending[ack_id] = _Pending(mono + self.ack_timeout_s, on_answer)
        return p.encode(p.PeerInteractions(server=self.server, records=records, ack_id=ack_id))

    def answered(self, ack_id: int, refused: Refused) -> None:
        pending = self._pending.pop(ack_id, None)
        if pending is not None:
            pending.on_answer(refused)

    def expire(self, mono: float) -> int:
        """Answer every request past its deadline with nothing refused; how many there were."""
        late = [ack_id for ack_id, pending in self._pending.items() if pending.deadline <= mono]
        for ack_id in late:
            self.answered(ack_id, frozenset())
        return len(late)

    def lost(self) -> None:
        """The link is gone: nothing more will be refused by the peer."""
        self.link_up = False
        pending, self._pending = self._pending, {}
        for entry in pending.values():
            entry.on_answer(frozenset())
