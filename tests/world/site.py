"""A server process of the world: the real ``ServerCore`` under a simulated transport.

``Site`` does what ``server_stub.server`` does with sockets: it numbers connections, feeds the core
what arrives (with the fake clock), ticks it every 0.1 s and carries out its outputs: frames and
closes on links, password checks (answered after a short delay: right when the password is the
world's), and the peer link. ``PeerDialer`` is ``server_stub.peer.PeerLink``: it dials the other
site, reports up, messages and down to the core, beats when idle and gives up on a peer silent past
the heartbeat timeout (checked after each send, as the real one does), redials with jittered
backoff, and at once on ``PeerRedial``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from server_stub import protocol as p
from server_stub.config import QueueConfig, ServerConfig
from server_stub.core import CheckPassword, Close, Now, PeerClose, PeerRedial, PeerSend, Send, ServerCore
from server_stub.core.io import Output

from .net import BASE_LATENCY, Link, Process

if TYPE_CHECKING:
    from .world import World

SECRET = b"world-secret-0123456789"
PASSWORD = "pw"
TICK = 0.1  # the transport's ticker (server_stub.server.TICK_S)
PASSWORD_DELAY = 0.02  # an scrypt check off the loop
PEER_INTERVAL = 0.5  # the peer link's heartbeat interval and timeout (the server's figures)
PEER_TIMEOUT = 1.5
PEER_OPEN_TIMEOUT = 2.0
PEER_RETRY = (0.1, 0.25, 0.5, 1.0, 2.0)  # server_stub.peer._RETRY
HEARTBEAT = p.encode(p.Heartbeat())


def peer_url(name: str) -> str:
    return f"ws://sim-{name}"


def site_config(name: str, peers: str | tuple[str, ...]) -> ServerConfig:
    """A site of the world: one queue everyone is in; offers time out after 8 s; a customer hangs up
    after waiting 25 s (the carrier may submit to a site whose agents all moved to the other);
    nobody is set Not Ready for letting offers time out (so the agent's state is always the last one
    it asked for); what an agent held at a lost site ends after 20 s unless brought back."""
    queue = QueueConfig(name="q", accept_timeout_ms=8_000, abandon_after_ms=25_000)
    peers = (peers,) if isinstance(peers, str) else peers
    return ServerConfig(name=name, peer_url=peer_url(peers[0]), more_peers=tuple(peer_url(n) for n in peers[1:]),
                        secret=SECRET, max_offer_timeouts=1_000, orphan_timeout_ms=20_000, queues=(queue,))


class Site(Process):
    def __init__(self, world: World, name: str, peers: str | tuple[str, ...]) -> None:
        super().__init__(world.loop)
        self.world = world
        self.name = name
        self.peers = (peers,) if isinstance(peers, str) else peers  # the pair: one; a mesh: every other site
        self.peer = self.peers[0]
        self.config = site_config(name, self.peers)
        self.latency = BASE_LATENCY
        self.incarnation = 0
        self.alive = False
        self.core: ServerCore | None = None
        self.links: dict[int, Link] = {}  # what the transport holds open
        self.conn_links: dict[int, Link] = {}  # every connection of this incarnation
        self.dialers: dict[str, PeerDialer] = {}  # peer name -> our outbound link to it
        self.heard_peer = 0  # the stamp of the newest PeerAgentEpochs this core read (World.stamps)
        self.started_at = 0.0
        self.went_ahead_at = float("-inf")  # when a stall of this incarnation last ended without the peer
        self._conn_ids = 0
        self._seen_seq = 0

    def __repr__(self) -> str:
        state = "frozen" if self.frozen else "up" if self.alive else "down"
        return f"Site({self.name}#{self.incarnation} {state})"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start (or restart) with fresh memory."""
        self.reborn()
        self.frozen = False
        stream_id = f"{self.name}.{self.incarnation}"
        nonces = random.Random(f"{self.name}.{self.incarnation}")  # the peer challenges, replayable
        self.core = ServerCore(self.config, self.world.directory, self.now(), stream_id=stream_id,
                               nonce=lambda: f"{nonces.getrandbits(128):032x}")
        self.links, self.conn_links, self._conn_ids, self._seen_seq = {}, {}, 0, 0
        self.heard_peer, self.started_at = 0, self.loop.now
        self.loop.at(self.loop.now + TICK, self._tick, self.incarnation)
        self.dialers = {peer: PeerDialer(self, peer) for peer in self.peers}
        for dialer in self.dialers.values():
            dialer.dial()

    def kill(self) -> None:
        """SIGKILL: memory lost; every connection resets."""
        links = list(self.links.values())
        dialers = list(self.dialers.values())
        self.die()
        self.core, self.dialers = None, {}
        for link in links:
            link.reset()
        for dialer in dialers:
            if dialer.link is not None:
                dialer.link.reset()
        self.links = {}
        self.world.kills.append(self.loop.now)
        self.world.reports.site_lost(self)

    def now(self) -> Now:
        return Now(self.loop.now, self.loop.wall_ms)

    @property
    def dialer(self) -> PeerDialer | None:
        """The outbound link to the first peer (the pair's one)."""
        return self.dialers.get(self.peer)

    def _tick(self, incarnation: int) -> None:
        if not self.alive or incarnation != self.incarnation:
            return
        self.loop.at(self.loop.now + TICK, self._tick, incarnation)
        if not self.frozen:  # a stopped process does not tick; its first input after a thaw sees the gap
            self.feed(self._core().tick)

    def _core(self) -> ServerCore:
        assert self.core is not None, f"{self} has no core"
        return self.core

    def latency_to(self, link: Link) -> float:
        if link.kind == "peer":
            ends = [end for end in (link.site, link.dialler) if isinstance(end, Site)]
            return max(self.latency, *(end.latency for end in ends), self.world.peer_latency)
        return self.latency

    # ------------------------------------------------------------------ feeding the core

    def feed(self, method: Callable[..., list[Output]], *args: Any) -> None:
        stalled = self._stalled()
        outputs = method(*args, self.now())
        if stalled and not self._stalled() and method.__name__ == "tick":
            self.went_ahead_at = self.loop.now  # the stall ended without hearing the peer
        self._harvest()
        for out in outputs:
            self._execute(out)

    def _stalled(self) -> bool:
        """Is the core holding back after a stall of its process (until it hears its peer)?"""
        return getattr(self.core, "stalled_until", None) is not None

    def _harvest(self) -> None:
        """The reporting events the core published during that input, for the world's checks."""
        stream = self._core().reporting
        if stream.seq == self._seen_seq:
            return
        fresh = []
        for seq, frame in reversed(stream.buffer):
            if seq <= self._seen_seq:
                break
            fresh.append(frame)
        self._seen_seq = stream.seq
        for frame in reversed(fresh):
            self.world.reports.published(self, p.decode_server(frame))

    def _execute(self, out: Output) -> None:
        if isinstance(out, Send):
            link = self.links.get(out.conn)
            if link is None:
                return
            if link.kind == "desk":  # decoded once, here: the world reads the answers the desktops get
                message = p.decode_server(out.frame)
                self.world.server_answered(self, link, message)
                link.deliver(message)
            elif link.kind == "peer":
                self.world.peer_frame(link.deliver, out.frame)
            else:
                link.deliver(out.frame)
        elif isinstance(out, Close):
            link = self.links.pop(out.conn, None)
            if link is not None:
                link.closed_by_site(out.code)
                self.later(2 * link.latency, self._gone, out.conn)  # the close handshake, then the transport's report
        elif isinstance(out, CheckPassword):
            self.later(PASSWORD_DELAY, self._password_checked, out.conn, out.check, out.password == PASSWORD)
        elif isinstance(out, PeerSend):
            for peer, dialer in self.dialers.items():
                if out.to in (None, peer_url(peer)):
                    dialer.send(out.frame)
        elif isinstance(out, PeerRedial):
            for dialer in self.dialers.values():
                self.soon(dialer.redial)
        elif isinstance(out, PeerClose):
            for peer, dialer in self.dialers.items():
                if out.to in (None, peer_url(peer)):
                    self.soon(dialer.refuse)
        # Rehash (a stronger password hash to store): this world keeps no directory file.

    def _password_checked(self, conn_id: int, check: int, ok: bool) -> None:
        self.feed(self._core().password_checked, conn_id, check, ok)

    def _gone(self, conn_id: int) -> None:
        self.feed(self._core().disconnected, conn_id)

    # ------------------------------------------------------------------ the transport's side of links

    def connect_arrives(self, link: Link) -> None:
        """A dial reaches this site's address."""
        if not self.alive:
            link.refused()
            return
        if link.kind == "peer" and self.world.partitioned:
            return  # the SYN is lost: the dialler's open timeout gives up
        if link.kind == "peer" and self.world.bus is not None and not self.world.bus.up:
            link.refused()  # on a bus: no broker, no link to any site
            return
        link.site_incarnation = self.incarnation
        self.run(self.incarnation, self._accept, link)  # a frozen process accepts when thawed

    def _accept(self, link: Link) -> None:
        self._conn_ids += 1
        link.conn_id = self._conn_ids
        self.links[link.conn_id] = self.conn_links[link.conn_id] = link
        self.feed(self._core().connected, link.conn_id, f"{link.kind}-{link.dialler}")
        link.opened()
        if link.kind == "peer" and self.world.partitioned:
            link.hold()

    def link_frame(self, link: Link, payload: Any) -> None:
        if self.links.get(link.conn_id) is not link:
            return
        if link.kind == "peer":
            payload, stamp = payload
            if payload.startswith('{"type":"PeerAgentEpochs"'):
                self.heard(stamp)
        self.feed(self._core().received, link.conn_id, payload)

    def heard(self, stamp: int) -> None:
        self.heard_peer = max(self.heard_peer, stamp)

    def link_gone(self, link: Link) -> None:
        """The other end closed or reset the connection."""
        if self.links.get(link.conn_id) is link:
            del self.links[link.conn_id]
            link.accepted = False
            self.feed(self._core().disconnected, link.conn_id)

    # ------------------------------------------------------------------ the peer link, as the dialler

    def peer_up(self, peer: str) -> None:
        core = self._core()
        self.feed(lambda now: core.peer_link_up(now, peer_url(peer)))

    def peer_message(self, peer: str, message: p.Message) -> None:
        core = self._core()
        self.feed(lambda message, now: core.peer_link_message(message, now, peer_url(peer)), message)

    def peer_down(self, peer: str) -> None:
        core = self._core()
        self.feed(lambda now: core.peer_link_down(now, peer_url(peer)))

    # ------------------------------------------------------------------ the test's view

    def login_of(self, agent_id: str) -> Any:
        """The core's login of the agent, if this site is running and holds one."""
        if not self.alive or self.core is None:
            return None
        return self.core.sessions.get(agent_id)


class PeerDialer:
    """The outbound half of the peer link (``server_stub.peer.PeerLink``), in its site's process."""

    def __init__(self, site: Site, peer: str) -> None:
        self.site = site
        self.peer = peer
        self.loop = site.loop
        self.link: Link | None = None
        self.up = False
        self.attempt = 0
        self.last_rx = self.last_tx = 0.0
        self.redial_asked = False
        tag = "" if peer == site.peers[0] else f"-{peer}"  # the pair's draws are as they always were
        self.rng = random.Random(f"{site.world.seed}-{site.name}-{site.incarnation}{tag}")

    def dial(self) -> None:
        world = self.site.world
        self.link = link = world.dial(self.site, world.sites[self.peer], "peer", self._opened, self._frame,
                                      self._closed)
        self.site.later(PEER_OPEN_TIMEOUT, self._open_timeout, link)

    def _opened(self, link: Link) -> None:
        if link is not self.link:
            return
        self.up, self.attempt, self.redial_asked = True, 0, False
        self.last_rx = self.last_tx = self.loop.now
        self.site.world.peer_linked()
        self.site.peer_up(self.peer)
        self._arm()

    def _open_timeout(self, link: Link) -> None:
        if link is self.link and not self.up:
            link.close()
            self._failed()

    def _arm(self) -> None:
        self.site.later(max(0.0, self.last_tx + PEER_INTERVAL - self.loop.now), self._beat, self.link)

    def _beat(self, link: Link) -> None:
        if link is not self.link or not self.up:
            return
        if self.loop.now >= self.last_tx + PEER_INTERVAL - 1e-9:
            self.send(HEARTBEAT)
        if link is self.link and self.up:
            self._arm()

    def send(self, frame: str) -> None:
        """Queue ``frame`` on the link of the moment (dropped while down); after the send, a peer
        silent past the timeout is given up."""
        link = self.link
        if not self.up or link is None:
            return
        self.site.world.peer_frame(link.send, frame)
        self.last_tx = self.loop.now
        if self.loop.now - self.last_rx > PEER_TIMEOUT:
            link.close()
            self._lost()
            self._failed()

    def _frame(self, link: Link, payload: tuple[str, int]) -> None:
        if link is not self.link:
            return
        self.last_rx = self.loop.now
        frame, stamp = payload
        try:
            message = p.decode_client(frame)  # the peer speaks the client-side vocabulary
        except p.ProtocolError:
            return
        if isinstance(message, p.PeerAgentEpochs):
            self.site.heard(stamp)
        if not isinstance(message, p.Heartbeat):
            self.site.peer_message(self.peer, message)

    def _closed(self, link: Link, code: int | None) -> None:
        if link is self.link:
            self._lost()
            self._failed()

    def _lost(self) -> None:
        was_up, self.up, self.link = self.up, False, None
        if was_up:
            self.site.soon(self.site.peer_down, self.peer)

    def _failed(self) -> None:
        """The link ended or the attempt failed: dial again after the backoff (at once if asked)."""
        self.link = None
        if self.redial_asked:
            self.redial_asked = False
            self.site.soon(self.dial)
            return
        delay = PEER_RETRY[min(self.attempt, len(PEER_RETRY) - 1)] * (0.5 + self.rng.random())
        self.attempt += 1
        self.site.later(delay, self._dial_if_idle)

    def _dial_if_idle(self) -> None:
        if self.link is None:
            self.dial()

    def refuse(self) -> None:
        """``PeerClose``: the peer failed authentication; close and dial again after the backoff."""
        link = self.link
        if link is not None:
            link.close()
            self._lost()
            self._failed()

    def redial(self) -> None:
        """``PeerRedial``: drop the link if up and dial again at once (after a pending attempt ends)."""
        link = self.link
        if self.up and link is not None:
            link.close()
            self._lost()
            self.dial()
        else:
            self.redial_asked = True
