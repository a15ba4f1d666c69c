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
from dataclasses import dataclass, field

from .. import protocol as p

Refused = frozenset[str]


@dataclass
class _Pending:
    deadline: float
    on_answer: Callable[[Refused], None]
    waiting: set[str]  # the links whose answer is still awaited
    refused: set[str] = field(default_factory=set)


class PeerReplication:
    """The confirmations this server waits for, from every peer linked when it asked (a mesh: all
    reachable peers confirm; the pair: the one peer). Links are keyed by the URL they dial."""

    def __init__(self, server_name: str, ack_timeout_s: float) -> None:
        self.server = server_name
        self.ack_timeout_s = ack_timeout_s
        self.up: set[str] = set()  # our outbound links to peers that are up (and proved the secret)
        self._pending: dict[int, _Pending] = {}
        self._ack_ids = itertools.count(1)

    @property
    def link_up(self) -> bool:
        return bool(self.up)

    def frame(self, records: list[p.PeerInteractionRecord], mono: float,
              on_answer: Callable[[Refused], None]) -> str | None:
        """The frame asking every linked peer to confirm ``records``, or None when no link is up."""
        if not self.up:
            return None
        ack_id = next(self._ack_ids)
        self._pending[ack_id] = _Pending(mono + self.ack_timeout_s, on_answer, set(self.up))
        return p.encode(p.PeerInteractions(server=self.server, records=records, ack_id=ack_id))

    def frame_message(self, make: Callable[[int], p.Message], mono: float,
                      on_answer: Callable[[Refused], None]) -> str | None:
        """As ``frame``, for another message the peers acknowledge with PeerInteractionsAck
        (``make(ack_id)``: a PeerChat)."""
        if not self.up:
            return None
        ack_id = next(self._ack_ids)
        self._pending[ack_id] = _Pending(mono + self.ack_timeout_s, on_answer, set(self.up))
        return p.encode(make(ack_id))

    def answered(self, ack_id: int, refused: Refused, link: str | None = None) -> None:
        """``link``'s answer (None: every awaited answer at once). The request is answered, with
        everything any peer refused, once no answer is awaited any more."""
        pending = self._pending.get(ack_id)
        if pending is None:
            return
        pending.refused |= refused
        if link is None:
            pending.waiting.clear()
        else:
            pending.waiting.discard(link)
        if not pending.waiting:
            del self._pending[ack_id]
            pending.on_answer(frozenset(pending.refused))

    def expire(self, mono: float) -> int:
        """Answer every request past its deadline with what was refused so far; how many there were."""
        late = [ack_id for ack_id, pending in self._pending.items() if pending.deadline <= mono]
        for ack_id in late:
            self.answered(ack_id, frozenset())
        return len(late)

    def link_lost(self, link: str) -> None:
        """That link is gone: nothing more will be refused over it."""
        self.up.discard(link)
        for ack_id in list(self._pending):
            self.answered(ack_id, frozenset(), link)

    def lost(self) -> None:
        """Every link is gone."""
        for link in list(self.up):
            self.link_lost(link)
        for ack_id in list(self._pending):
            self.answered(ack_id, frozenset())
