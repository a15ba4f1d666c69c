"""Supervisor actions on agents logged in at another site (docs/multisite.md, "Supervisor actions").

The agent's own site is the only authority on it (it has the agent's socket), so a supervisor's
RequestForceNotReady or RequestForceLogout for an agent of another site is relayed there
(``PeerForce``) and answered to the supervisor when that site answers (``PeerForceAck``), or with
``site_unreachable`` when the link to it is lost or the answer does not come within
``RELAY_TIMEOUT_S``. The relaying site keeps what it relayed; the acting site keeps its answers
by key (relaying site, supervisor, request_id), so a repeat, whether the supervisor retried after a
timeout or a frame came twice, is answered as the first time and applied once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .. import protocol as p
from .io import ConnId

RELAY_TIMEOUT_S = 5.0  # the supervisor view waits 5 s for any answer; ours comes before
ANSWERS_KEPT = 10_000  # answers kept for repeats, oldest dropped first


@dataclass
class Relay:
    conn: ConnId
    msg: p.RequestForceNotReady | p.RequestForceLogout
    site: str
    deadline: float


class RemoteActions:
    def __init__(self) -> None:
        self.pending: dict[str, Relay] = {}  # key -> a relayed request not answered yet
        self._answers: OrderedDict[str, p.PeerForceAck] = OrderedDict()  # key -> our answer (we acted)

    # ------------------------------------------------------------------ the relaying site

    def relayed(self, key: str, conn: ConnId, msg: p.RequestForceNotReady | p.RequestForceLogout, site: str,
                mono: float) -> None:
        self.pending[key] = Relay(conn, msg, site, mono + RELAY_TIMEOUT_S)

    def answered(self, key: str) -> Relay | None:
        return self.pending.pop(key, None)

    def expired(self, mono: float, linked: Callable[[str], bool]) -> Iterator[Relay]:
        """Relays past their deadline, or whose site is no longer linked (each given up once)."""
        for key, relay in list(self.pending.items()):
            if mono >= relay.deadline or not linked(relay.site):
                del self.pending[key]
                yield relay

    # ------------------------------------------------------------------ the agent's site

    def answer(self, key: str) -> p.PeerForceAck | None:
        return self._answers.get(key)

    def remember(self, key: str, answer: p.PeerForceAck) -> None:
        self._answers[key] = answer
        while len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)
