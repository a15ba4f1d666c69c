"""Two server cores peer-linked in-process, on one fake clock: the pair of the README without
sockets. Each site's outbound peer link (``PeerSend``) arrives at the other as connection
``PEER_CONN``; what the other answers on that connection comes back through
``peer_link_message``, as ``server_stub.peer`` carries it. Frames wait in one FIFO until ``pump``;
a link can be cut (frames on it are lost, both cores told) and joined again."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

from server_stub import protocol as p
from server_stub.core import Now, Output, PeerSend, Send
from tests.server.core_driver import PASSWORD, WALL0, CoreDriver, core

PEER_CONN = 900


@dataclass
class SiteDriver(CoreDriver):
    pair: Pair | None = None
    name: str = "A"

    def now(self) -> Now:
        assert self.pair is not None
        return self.pair.now()

    def run(self, outputs: list[Output]) -> None:
        assert self.pair is not None
        rest: list[Output] = []
        for out in outputs:
            if isinstance(out, PeerSend):
                self.pair.carry(self.name, "tell", out.frame)
            elif isinstance(out, Send) and out.conn == PEER_CONN:
                self.pair.carry(self.name, "answer", out.frame)
            else:
                rest.append(out)
        super().run(rest)

    def request(self, conn: int, message: dict) -> dict:
        """Send a request, let the peers talk (an accept waits for the other site), then its answer."""
        request_id = message.setdefault("request_id", f"r{next(self._ids)}")
        self.run(self.core.received(conn, json.dumps(message), self.now()))
        assert self.pair is not None
        self.pair.pump()
        return next(m for m in self.received.get(conn, []) if m.get("request_id") == request_id
                    and m["type"] in ("EventAck", "EventError"))

    # ------------------------------------------------------------------ an agent and a carrier

    def agent(self, agent_id: str, ready: bool = True) -> tuple[int, int]:
        """A desktop logged in here (Ready): (connection, epoch)."""
        conn = self.registered()
        ack = self.request(conn, {"type": "RequestAgentLogin", "agent_id": agent_id, "password": PASSWORD})
        assert ack["type"] == "EventAck", ack
        if ready:
            assert self.request(conn, {"type": "RequestAgentReady", "epoch": ack["epoch"]})["type"] == "EventAck"
        assert self.pair is not None
        self.pair.pump()
        return conn, ack["epoch"]

    def carrier(self) -> int:
        conn = self.registered()
        assert self.request(conn, {"type": "RequestSubscribeReporting", "user_id": "carrier1",
                                   "password": PASSWORD})["type"] == "EventAck"
        return conn

    def submit(self, carrier: int, iid: str) -> dict:
        answer = self.request(carrier, {"type": "RequestSubmitInteraction", "interaction": {
            "interaction_id": iid, "media": "voice", "queue": "sales", "created_ms": WALL0}})
        assert self.pair is not None
        self.pair.pump()
        return answer

    def invites(self, conn: int) -> list[dict]:
        return [m for m in self.received.get(conn, []) if m["type"] == "EventInvite"]

    def events(self, conn: int, kind: str, iid: str) -> list[dict]:
        return [m for m in self.received.get(conn, []) if m["type"] == "EventInteraction"
                and m["event"] == kind and m["interaction_id"] == iid]


@dataclass
class Pair:
    mono: float = 1.0
    sites: dict[str, SiteDriver] = field(default_factory=dict)
    wire: deque[tuple[str, str, str]] = field(default_factory=deque)  # (to site, "tell"/"answer", frame)
    up: dict[str, bool] = field(default_factory=dict)  # a site's outbound link
    lost: list[tuple[str, str, str]] = field(default_factory=list)  # frames sent on a cut link

    def __post_init__(self) -> None:
        for name, other in (("A", "B"), ("B", "A")):
            driver = SiteDriver(core=core(name=name, peer_url=f"ws://{other.lower()}", peer_ack_timeout_ms=1_000,
                                          orphan_timeout_ms=20_000), pair=self, name=name)
            driver.mono = self.mono
            self.sites[name] = driver
            self.up[name] = False

    @property
    def a(self) -> SiteDriver:
        return self.sites["A"]

    @property
    def b(self) -> SiteDriver:
        return self.sites["B"]

    def now(self) -> Now:
        return Now(self.mono, WALL0 + int(self.mono * 1000))

    def other(self, name: str) -> str:
        return "B" if name == "A" else "A"

    def carry(self, sender: str, kind: str, frame: str) -> None:
        # A site's tells go on its own outbound link; its answers on the other's.
        link = sender if kind == "tell" else self.other(sender)
        if not self.up[link]:
            self.lost.append((self.other(sender), kind, frame))
            return
        self.wire.append((self.other(sender), kind, frame))

    def pump(self, limit: int = 10_000) -> None:
        while self.wire and limit:
            limit -= 1
            to, kind, frame = self.wire.popleft()
            site = self.sites[to]
            if kind == "tell":
                site.run(site.core.received(PEER_CONN, frame, self.now()))
            else:
                site.run(site.core.peer_link_message(p.decode_client(frame), self.now()))

    def link(self, dialer: str) -> None:
        """``dialer``'s outbound link comes up (handshake included)."""
        dialed = self.sites[self.other(dialer)]
        self.up[dialer] = True
        dialed.run(dialed.core.connected(PEER_CONN, "127.0.0.1:40900", self.now()))
        site = self.sites[dialer]
        site.run(site.core.peer_link_up(self.now()))
        self.pump()

    def link_both(self) -> None:
        self.link("A")
        self.link("B")

    def cut(self) -> None:
        """Both links drop (a partition, or the other side died)."""
        for name in ("A", "B"):
            if self.up[name]:
                self.up[name] = False
                site, other = self.sites[name], self.sites[self.other(name)]
                site.run(site.core.peer_link_down(self.now()))
                other.run(other.core.disconnected(PEER_CONN, self.now()))
        self.wire.clear()

    def advance(self, seconds: float, step: float = 0.1) -> None:
        end = self.mono + seconds
        while self.mono < end - 1e-9:
            self.mono += step
            for site in self.sites.values():
                site.run(site.core.tick(self.now()))
            self.pump()
