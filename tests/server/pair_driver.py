"""Server cores peer-linked in-process, on one fake clock: the pair of the README (``Pair``) or a
mesh of N sites (``Mesh``), without sockets. Each site dials every other: site X's outbound link
to Y (``PeerSend`` to Y's URL, or to all) arrives at Y as connection ``PEER_CONN + index(X)``;
what Y answers on that connection comes back to X through ``peer_link_message``, as
``server_stub.mesh`` carries it. Frames wait in one FIFO until ``pump``; links can be cut (frames
on them are lost, both cores told) and joined again."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

from server_stub import protocol as p
from server_stub.core import Now, Output, PeerSend, Send, ServerCore
from tests.server.core_driver import PASSWORD, WALL0, CoreDriver, core

PEER_CONN = 900


def url(name: str) -> str:
    return f"ws://{name.lower()}"


@dataclass
class Frame:
    to: str
    kind: str  # "tell" (on the sender's own outbound link) or "answer" (on the receiver's)
    frame: str
    sender: str


@dataclass
class SiteDriver(CoreDriver):
    mesh: Mesh | None = None
    name: str = "A"

    def now(self) -> Now:
        assert self.mesh is not None
        return self.mesh.now()

    def run(self, outputs: list[Output]) -> None:
        assert self.mesh is not None
        rest: list[Output] = []
        for out in outputs:
            if isinstance(out, PeerSend):
                for other in self.mesh.names:
                    if other != self.name and out.to in (None, url(other)):
                        self.mesh.carry(Frame(other, "tell", out.frame, self.name))
            elif isinstance(out, Send) and out.conn in self.mesh.inbound(self.name):
                self.mesh.carry(Frame(self.mesh.inbound(self.name)[out.conn], "answer", out.frame, self.name))
            else:
                rest.append(out)
        super().run(rest)

    def request(self, conn: int, message: dict) -> dict:
        """Send a request, let the peers talk (an accept waits for the others), then its answer."""
        request_id = message.setdefault("request_id", f"r{next(self._ids)}")
        self.run(self.core.received(conn, json.dumps(message), self.now()))
        assert self.mesh is not None
        self.mesh.pump()
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
        return conn, ack["epoch"]

    def carrier(self) -> int:
        conn = self.registered()
        assert self.request(conn, {"type": "RequestSubscribeReporting", "user_id": "carrier1",
                                   "password": PASSWORD})["type"] == "EventAck"
        return conn

    def submit(self, carrier: int, iid: str) -> dict:
        return self.request(carrier, {"type": "RequestSubmitInteraction", "interaction": {
            "interaction_id": iid, "media": "voice", "queue": "sales", "created_ms": WALL0}})

    def invites(self, conn: int) -> list[dict]:
        return [m for m in self.received.get(conn, []) if m["type"] == "EventInvite"]

    def events(self, conn: int, kind: str, iid: str) -> list[dict]:
        return [m for m in self.received.get(conn, []) if m["type"] == "EventInteraction"
                and m["event"] == kind and m["interaction_id"] == iid]


@dataclass
class Mesh:
    names: tuple[str, ...] = ("A", "B", "C")
    mono: float = 1.0
    sites: dict[str, SiteDriver] = field(default_factory=dict)
    wire: deque[Frame] = field(default_factory=deque)
    up: set[tuple[str, str]] = field(default_factory=set)  # (dialer, dialed) outbound links that are up
    lost: list[Frame] = field(default_factory=list)  # frames sent on a cut link
    settings: dict[str, dict[str, object]] = field(default_factory=dict)  # site -> ServerConfig overrides

    def __post_init__(self) -> None:
        for name in self.names:
            others = [url(other) for other in self.names if other != name]
            settings: dict[str, object] = {"peer_ack_timeout_ms": 1_000, "orphan_timeout_ms": 20_000,
                                           **self.settings.get(name, {})}
            driver = SiteDriver(core=core(name=name, peer_url=others[0], more_peers=tuple(others[1:]), **settings),
                                mesh=self, name=name)
            driver.mono = self.mono
            self.sites[name] = driver

    @property
    def a(self) -> SiteDriver:
        return self.sites["A"]

    @property
    def b(self) -> SiteDriver:
        return self.sites["B"]

    @property
    def c(self) -> SiteDriver:
        return self.sites["C"]

    def now(self) -> Now:
        return Now(self.mono, WALL0 + int(self.mono * 1000))

    def conn(self, dialer: str) -> int:
        """The connection id a dialed site gives ``dialer``'s link."""
        return PEER_CONN + self.names.index(dialer)

    def inbound(self, dialed: str) -> dict[int, str]:
        return {self.conn(dialer): dialer for dialer, to in self.up if to == dialed}

    def carry(self, frame: Frame) -> None:
        # A site's tells go on its own outbound link; its answers on the other's.
        link = (frame.sender, frame.to) if frame.kind == "tell" else (frame.to, frame.sender)
        (self.wire if link in self.up else self.lost).append(frame)

    def deliver(self, frame: Frame) -> None:
        site = self.sites[frame.to]
        if frame.kind == "tell":
            site.run(site.core.received(self.conn(frame.sender), frame.frame, self.now()))
        else:
            site.run(site.core.peer_link_message(p.decode_client(frame.frame), self.now(), url(frame.sender)))

    def pump(self, limit: int = 100_000) -> None:
        while self.wire and limit:
            limit -= 1
            self.deliver(self.wire.popleft())

    def link(self, dialer: str, dialed: str) -> None:
        """``dialer``'s outbound link to ``dialed`` comes up (handshake included)."""
        self.up.add((dialer, dialed))
        target = self.sites[dialed]
        target.run(target.core.connected(self.conn(dialer), f"127.0.0.1:{40900 + self.names.index(dialer)}",
                                         self.now()))
        site = self.sites[dialer]
        site.run(site.core.peer_link_up(self.now(), url(dialed)))
        self.pump()

    def link_all(self) -> None:
        for dialer in self.names:
            for dialed in self.names:
                if dialer != dialed:
                    self.link(dialer, dialed)

    def link_both(self) -> None:
        self.link_all()

    def cut(self, *names: str) -> None:
        """Every link of ``names`` (all sites when none) drops: a partition, or those sites died."""
        cut = set(names or self.names)
        for dialer, dialed in sorted(self.up):
            if dialer in cut or dialed in cut:
                self.up.discard((dialer, dialed))
                site, other = self.sites[dialer], self.sites[dialed]
                site.run(site.core.peer_link_down(self.now(), url(dialed)))
                other.run(other.core.disconnected(self.conn(dialer), self.now()))
        self.wire = deque(f for f in self.wire if f.to not in cut and f.sender not in cut)

    def restart(self, name: str) -> SiteDriver:
        """``name`` dies (its links cut) and starts again with fresh memory (a new incarnation)."""
        self.cut(name)
        old = self.sites[name].core
        fresh = ServerCore(old.config, old.directory, self.now(), stream_id=f"{name}-{self.mono}")
        driver = self.sites[name] = SiteDriver(core=fresh, mesh=self, name=name)
        return driver

    def advance(self, seconds: float, step: float = 0.1) -> None:
        end = self.mono + seconds
        while self.mono < end - 1e-9:
            self.mono += step
            for site in self.sites.values():
                site.run(site.core.tick(self.now()))
            self.pump()


def pair() -> Mesh:
    """Sites A and B, each the other's one peer, as the README's pair."""
    return Mesh(names=("A", "B"))
