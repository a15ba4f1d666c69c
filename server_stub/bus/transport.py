"""The server core's peer messages over the RabbitMQ site bus: ``--bus amqp://…`` instead of ``--peer``.

``BusTransport`` stands behind the same seam as the embedded mesh (``server_stub.mesh``): the core
emits ``PeerSend``/``PeerClose``/``PeerRedial`` and is told ``peer_link_up``/``_message``/``_down``
per peer, here keyed by the other site's *name* (the mesh keys them by URL). Between two sites the
bus carries what the two sockets of a mesh pair carry, so the core runs unchanged:

- **our outbound link to site X** (``core.links[X]``): comes up when the bus hears X
  (``on_site_up``), goes down when X falls silent or the broker goes away (``on_site_down``);
  the core's ``PeerHello`` → X's ``PeerChallenge`` → our ``PeerProof`` runs over the bus, then X
  answers with its full state, exactly as on a socket;
- **X's link to us**: a virtual connection in the core (negative ``ConnId``), created by X's
  ``PeerHello``; what the core sends on it (challenge, full state, answers) goes back to X.

Each frame on the bus has a one-line header, ``<dir> <gen> <to>``: ``dir`` is ``o`` (on the
sender's outbound link), ``i`` (an answer on the sender's end of the receiver's link) or ``x``
("no such link here": the receiver restarted or dropped it, or, with ``gen`` ``*``, has no link
from the receiver at all; dial again); ``gen`` names one link
(the dialing process's incarnation, a dot, a counter), so frames of an older link (a stalled
process's backlog, a previous life of the site) never count on a newer one; ``to`` is the site it
is for (``*``: every site; the bus fans everything on the events exchange out to every site).

Which bus primitive carries what (docs/multisite.md, "The core's messages on the bus"):

- frames to every site: ``publish_presence`` (a presence delta of one agent, keyed by agent: a
  newer one waiting replaces it) or ``broadcast``; the handshake and full states to one site also
  go on the events exchange (addressed by ``to``), so that each site's frames reach every other in
  the order it sent them, full state before the deltas that follow it;
- hand-overs (``PeerHandover``): ``send`` (persistent, publisher-confirmed, one ordered sender per
  site), the one frame whose loss would lose work;
- the answers other sites wait for (``PeerHandoverAck``, ``PeerInteractionsAck``) go on the events
  exchange to that site alone, like the handshake: an answer belongs to a link, and whenever one
  could be lost on the way (the broker or a site's connection gone) that link ends, which the
  core counts as that site's answer (a claim) or retries (a hand-over). They were confirmed and
  acknowledged in the inbox before: 8 of the bus's ~12 messages per interaction at 5 sites, each
  with a confirm and an acknowledgement, for a guarantee the link's end already gave
  (docs/multisite.md, "Per-message CPU").

Duplicates are harmless: the core answers a repeated hand-over as it answered the first and
ignores an answer to an attempt that is over; presence and epochs go by epoch and sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import protocol as p
from ..core import ConnId, Now, Output, ServerCore
from .amqp import BATCH_BYTES, BATCH_FRAMES, AmqpBus, BusError

log = logging.getLogger("interaction_server.bus")

HEARTBEAT = p.encode(p.Heartbeat())
WORK_TYPES = (b"PeerHandover",)  # carried by ``send``: confirmed, to the receiver's inbox
DURABLE_TYPES = (b"PeerHandover",)  # persistent in the inbox (docs/multisite.md)
SEND_WINDOW = 64  # messages to one site published and not yet confirmed; beyond it the sender waits
HANDSHAKE_TIMEOUT = 5.0  # seconds for a link's handshake before it is started again
RESYNC_PATIENCE = 0.5  # seconds a handshake may take before a site's hello restarts it
REDIAL_AFTER = 2.0  # seconds after a link failed authentication or was closed before dialing again
MAINTAIN_EVERY = 0.25  # seconds between keeping the virtual links alive and retrying handshakes
MAX_EARLY = 1_000  # frames held for a link whose handshake has not finished (a hand-over overtook it)
SEND_TIMEOUT = 10.0


def _type(frame: bytes) -> bytes:
    """The message type of an encoded frame (msgspec writes the tag first: ``{"type":"X",...``)."""
    if frame.startswith(b'{"type":"'):
        end = frame.find(b'"', 9)
        if end > 0:
            return frame[9:end]
    return b""


@dataclass
class _Inbound:
    """Site X's link to us (one of X's generations): a virtual connection of the core."""

    conn: ConnId
    site: str
    gen: str
    early: list[str] = field(default_factory=list)  # frames that came before the handshake ended


class BusTransport:
    """One site's peer links over an ``AmqpBus``. ``run_outputs`` carries out what the core
    returns (the server's ``_run``); the server hands back what the core sends on the virtual
    connections (``owns``/``reply``/``closed``)."""

    def __init__(self, url: str, core: ServerCore, run_outputs: Callable[[list[Output]], None],
                 now: Callable[[], Now], *, bus: AmqpBus | None = None) -> None:
        self.core = core
        self.site = core.name
        self._run = run_outputs
        self._now = now
        self.incarnation = secrets.token_hex(4)
        self._gens = itertools.count(1)
        self._conn_ids = itertools.count(-1, -1)
        self.out_gen: dict[str, str] = {}  # site -> our outbound link's generation (while up)
        self._dialed_at: dict[str, float] = {}
        self._redial_at: dict[str, float] = {}
        self.inbound: dict[ConnId, _Inbound] = {}
        self._incarnations: dict[str, str] = {}  # site -> the incarnation its last hello came from
        self.up: set[str] = set()
        self._work: dict[str, asyncio.Queue[tuple[bytes, bool]]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self.bus = bus or AmqpBus(url, self.site, self._message, on_reconnect=self._reconnected,
                                  on_site_up=self._site_up, on_site_down=self._site_down)

    # ------------------------------------------------------------------ the seam (PeerTransport)

    def send(self, frame: str, to: str | None) -> None:
        data = frame.encode()
        kind = _type(data)
        if to is None:
            body = b"o " + self.incarnation.encode() + b" *\n" + data
            agent = _single_agent(data) if kind == b"PeerPresence" else None
            if agent is not None:
                self.bus.publish_presence(agent, body)
            else:
                self.bus.broadcast(body)
            return
        gen = self.out_gen.get(to)
        if gen is None:
            return  # the link is down: dropped, as on a closed socket
        self._emit(to, b"o", gen, data, kind)

    def redial(self) -> None:
        """After a stall of this process: every link again (a fresh full state from each site)."""
        asyncio.get_running_loop().call_soon(self._redial_all)

    def close(self, to: str | None, code: int, reason: str) -> None:
        """The core closes our link to ``to`` (it failed authentication): down now, dialed again later."""
        loop = asyncio.get_running_loop()
        for site in [to] if to is not None else list(self.out_gen):
            loop.call_soon(self._link_down, site, REDIAL_AFTER)

    async def run(self) -> None:
        try:
            if not await self.bus.start():
                log.warning("bus %s: no broker yet (%s); serving this site's agents alone meanwhile", self.site,
                            self.bus.last_error)
            while True:
                await asyncio.sleep(MAINTAIN_EVERY)
                self._maintain()
        finally:
            for task in self._senders.values():
                task.cancel()
            await self.bus.stop()

    # ------------------------------------------------------------------ the virtual connections

    def owns(self, conn: ConnId) -> bool:
        return conn in self.inbound

    def reply(self, conn: ConnId, frame: str) -> None:
        """What the core sends on site X's link to us goes back to X (heartbeats excepted: the
        bus's beats say whether X is up)."""
        link = self.inbound.get(conn)
        if link is None or frame == HEARTBEAT:
            return
        data = frame.encode()
        self._emit(link.site, b"i", link.gen, data, _type(data))

    def closed(self, conn: ConnId) -> None:
        """The core closed site X's link to us (authentication, errors, silence): X dials again."""
        link = self.inbound.get(conn)
        if link is not None:
            self._emit(link.site, b"x", link.gen, b"", b"")
            asyncio.get_running_loop().call_soon(self._drop_inbound, conn)

    # ------------------------------------------------------------------ sending

    def _emit(self, site: str, direction: bytes, gen: str, data: bytes, kind: bytes) -> None:
        body = direction + b" " + gen.encode() + b" " + site.encode() + b"\n" + data
        if kind in WORK_TYPES:
            queue = self._work.get(site)
            if queue is None:
                queue = self._work[site] = asyncio.Queue()
                self._senders[site] = asyncio.get_running_loop().create_task(self._sender(site, queue))
            queue.put_nowait((body, kind in DURABLE_TYPES))
        else:
            self.bus.broadcast(body, to=site)  # only that site's events queue gets it

    async def _sender(self, site: str, queue: asyncio.Queue[tuple[bytes, bool]]) -> None:
        """Hand-overs to ``site`` (``WORK_TYPES``): what is queued goes at once as one message (a
        batch), persistent if it holds a hand-over; its confirm is awaited by a task of its own,
        at most ``SEND_WINDOW`` messages unconfirmed, so the next batch does not wait for it.
        Awaiting each frame's confirm before publishing the next (as before) capped one site's
        frames to another at one per confirm round trip, 15-130 ms on a loaded broker: fewer than
        a busy center needs (docs/multisite.md)."""
        window = asyncio.Semaphore(SEND_WINDOW)
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                body, persistent = await queue.get()
                await window.acquire()  # meanwhile more may come: they go in this batch
                frames, size = [body], len(body)
                while not queue.empty() and len(frames) < BATCH_FRAMES and size < BATCH_BYTES:
                    body, durable = queue.get_nowait()
                    frames.append(body)
                    size += len(body)
                    persistent = persistent or durable
                task = asyncio.get_running_loop().create_task(self._send(site, frames, persistent, window))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
        finally:
            for task in in_flight:
                task.cancel()

    async def _send(self, site: str, frames: list[bytes], persistent: bool, window: asyncio.Semaphore) -> None:
        try:
            await self.bus.send_batch(site, frames, timeout=SEND_TIMEOUT, persistent=persistent)
        except BusError as e:  # the sender's custody covers it: the hand-over goes again on the next link
            log.info("bus %s: %d frame(s) for %s not confirmed: %s", self.site, len(frames), site, e)
        finally:
            window.release()

    # ------------------------------------------------------------------ receiving

    def _message(self, from_site: str, body: bytes) -> None:
        header, _, data = body.partition(b"\n")
        try:
            direction, gen_b, to_b = header.split(b" ")
            gen, to = gen_b.decode(), to_b.decode()
        except ValueError:
            log.warning("bus %s: dropped a frame from %s without a link header", self.site, from_site)
            return
        if to not in ("*", self.site) or from_site == self.site:
            return
        if direction == b"o":
            self._on_outbound_of(from_site, gen, to == "*", data)
        elif direction == b"i":
            self._on_answer(from_site, gen, data)
        elif direction == b"x":
            self._dial_again(from_site, gen)

    def _dial_again(self, site: str, gen: str) -> None:
        """``site`` does not know our link ``gen`` (``*``: it has no link from us at all)."""
        current = self.out_gen.get(site)
        if gen == "*":
            if current is None:
                if site in self.up:
                    self._link_up(site)
                return
            # Even with our hello on its way (it may have been lost): one handshake more at worst.
        elif current != gen:
            return  # about a link that is over
        log.info("bus %s: site %s no longer knows our link; dialing again", self.site, site)
        self._redial(site)

    def _on_answer(self, site: str, gen: str, data: bytes) -> None:
        """An answer on our link to ``site`` (only the link of the moment counts)."""
        if self.out_gen.get(site) != gen:
            return
        try:
            message = p.decode_client(data)
        except p.ProtocolError as e:
            log.warning("bus %s: site %s answered an invalid frame: %s", self.site, site, e.message)
            return
        if isinstance(message, p.PeerChallenge) and message.server != site:
            # The broker vouches for the sending site (its user may publish only its own keys).
            log.warning("bus %s: site %s answered as %r; ignored", self.site, site, message.server)
            return
        self._run(self.core.peer_link_message(message, self._now(), site))
        if isinstance(message, p.PeerChallenge) and site in self.core.peer.up \
                and not any(i.site == site for i in self.inbound.values()):
            # Our link to it stands, its link to us not: it did not see us lose the broker for a
            # moment (or drop our end of its link). It must dial again, or its news never reaches us.
            self._emit(site, b"x", "*", b"", b"")

    def _on_outbound_of(self, site: str, gen: str, everyone: bool, data: bytes) -> None:
        """A frame site ``site`` sent on its link to us (or to every site)."""
        kind = _type(data)
        if everyone:
            link = self._current_inbound(site, gen)
            if link is None:
                return  # not linked (yet): nothing counts before the handshake, as on a socket
        elif kind == b"PeerHello":
            link = self._hello(site, gen, data)
            if link is None:
                return
        else:
            link = next((i for i in self.inbound.values() if i.site == site and i.gen == gen), None)
            if link is None:
                self._emit(site, b"x", gen, b"", b"")  # a link we do not know (restarted, dropped): dial again
                return
        conn = self.core.conns.get(link.conn)
        if conn is None:
            return
        if conn.kind != "peer" and kind not in (b"PeerHello", b"PeerProof"):
            if len(link.early) < MAX_EARLY:
                link.early.append(data.decode())  # it overtook the handshake (a hand-over: another queue)
            return
        self._feed(link, data.decode())

    def _feed(self, link: _Inbound, frame: str) -> None:
        was_peer = self._is_peer(link)
        self._run(self.core.received(link.conn, frame, self._now()))
        if not was_peer and self._is_peer(link):
            # Proven: older links of that site end now (not before: its logins stay known meanwhile).
            for other in [i for i in self.inbound.values() if i.site == link.site and i is not link]:
                self._drop_inbound(other.conn)
            early, link.early = link.early, []
            for frame in early:
                self._run(self.core.received(link.conn, frame, self._now()))

    def _is_peer(self, link: _Inbound) -> bool:
        conn = self.core.conns.get(link.conn)
        return conn is not None and conn.kind == "peer"

    def _hello(self, site: str, gen: str, data: bytes) -> _Inbound | None:
        try:
            hello = p.decode_client(data)
        except p.ProtocolError:
            return None
        if not isinstance(hello, p.PeerHello) or hello.server != site:
            log.warning("bus %s: a hello from site %s in the name of %r; ignored", self.site, site,
                        getattr(hello, "server", "?"))
            return None
        incarnation = gen.partition(".")[0]
        if self._incarnations.get(site, incarnation) != incarnation and site in self.out_gen:
            log.info("bus %s: site %s restarted; dialing it again", self.site, site)
            self._redial(site)  # its end of our link went with its previous life
        self._incarnations[site] = incarnation
        link = next((i for i in self.inbound.values() if i.site == site and i.gen == gen), None)
        if link is None:
            link = _Inbound(next(self._conn_ids), site, gen)
            self.inbound[link.conn] = link
            self._run(self.core.connected(link.conn, f"bus:{site}", self._now()))
        return link

    def _current_inbound(self, site: str, incarnation: str) -> _Inbound | None:
        """Site ``site``'s proven link to us from that incarnation (the newest), if any."""
        links = [i for i in self.inbound.values()
                 if i.site == site and i.gen.partition(".")[0] == incarnation and self._is_peer(i)]
        return links[-1] if links else None

    def _drop_inbound(self, conn: ConnId) -> None:
        if self.inbound.pop(conn, None) is not None:
            self._run(self.core.disconnected(conn, self._now()))

    # ------------------------------------------------------------------ sites up and down

    def _site_up(self, site: str) -> None:
        if site == self.site:
            return
        self.up.add(site)
        self._link_up(site)

    def _site_down(self, site: str) -> None:
        self.up.discard(site)
        self._link_down(site, None)
        for link in [i for i in self.inbound.values() if i.site == site]:
            self._drop_inbound(link.conn)
        queue = self._work.get(site)
        while queue is not None and not queue.empty():
            queue.get_nowait()  # for a link that is gone: the other end would not take them

    def _link_up(self, site: str) -> None:
        self._redial_at.pop(site, None)
        gen = f"{self.incarnation}.{next(self._gens)}"
        self.out_gen[site] = gen
        now = self._now()
        self._dialed_at[site] = now.mono
        self._run(self.core.peer_link_up(now, site))

    def _link_down(self, site: str, redial_after: float | None) -> None:
        if self.out_gen.pop(site, None) is not None:
            self._run(self.core.peer_link_down(self._now(), site))
        if redial_after is not None and site in self.up:
            self._redial_at[site] = self._now().mono + redial_after

    def _redial(self, site: str) -> None:
        self._link_down(site, None)
        if site in self.up:
            self._link_up(site)

    def _redial_all(self) -> None:
        for site in sorted(self.up):
            self._redial(site)

    def _reconnected(self) -> None:
        """The bus (re)connected or a site said hello: a handshake that has waited a while starts
        again (its hello may have gone to a queue that is gone). Younger ones go on: sites joining
        together would otherwise restart each other's handshakes; a lost one is asked for again by
        the other site (``x *``) or retried after ``HANDSHAKE_TIMEOUT``."""
        mono = self._now().mono
        for site in sorted(self.up):
            if site in self.out_gen and site not in self.core.peer.up \
                    and mono - self._dialed_at.get(site, mono) >= RESYNC_PATIENCE:
                self._redial(site)

    def _maintain(self) -> None:
        now = self._now()
        for link in list(self.inbound.values()):
            if link.site in self.up:
                self.core.heard(link.conn, now)  # alive while the bus hears the site
        for site in sorted(self.up):
            at = self._redial_at.get(site)
            if at is not None and now.mono >= at:
                self._link_up(site)
            elif site in self.out_gen and site not in self.core.peer.up \
                    and now.mono - self._dialed_at.get(site, now.mono) > HANDSHAKE_TIMEOUT:
                log.info("bus %s: no answer to our hello from %s; dialing again", self.site, site)
                self._redial(site)


def _single_agent(data: bytes) -> str | None:
    """The agent of a presence delta about one agent (the key ``publish_presence`` wants)."""
    with contextlib.suppress(p.ProtocolError):
        message = p.decode_client(data)
        if isinstance(message, p.PeerPresence) and not message.full and len(message.agents) == 1:
            return message.agents[0].agent_id
    return None
