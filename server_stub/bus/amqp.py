"""The site bus over RabbitMQ (aio-pika): presence fan-out, confirmed work hand-over, broadcast.

A thin asyncio transport with no routing logic: frames are opaque bytes, given to the server
through ``on_message(from_site, frame)``. Topology and broker users: ``server_stub.bus.topology``;
the design and its reasons: docs/multisite.md, "RabbitMQ".

Delivery guarantees, which the server's core must build on:

- **Presence and broadcast** (``publish_presence``, ``broadcast``): at most once, non-persistent,
  fire and forget, to every other site that has heard this one (a site's events queue is bound
  to another site's keys when it first hears it, within a beat: never to its own, so the broker
  does not copy a site's fan-out back to it). Frames published while the broker is away are
  dropped (counted in ``stats``).
  Each agent's latest presence frame waiting to be written replaces the one before (latest wins).
  Per sending site, frames arrive in the order they were published. After every (re)connect, and
  whenever another site (re)joins (its ``hello``), the bus calls ``on_reconnect()``: the server
  re-publishes its full presence then, which is how a restarted broker or site catches up.
- **Work hand-over** (``send``): at least once. Persistent, to the receiving site's durable queue,
  with publisher confirms: ``send`` returns once the broker has the frame on disk, and a
  confirm lost with the connection is retried after the reconnect, so a frame may arrive twice.
  The receiver acknowledges a frame only after ``on_message`` returned (those handled in one pass
  of the event loop with one ``basic.ack``, ``multiple``); a receiver that dies or
  loses its connection before that gets the frame again (redelivered). **Consumers must be
  idempotent**: the frames carry the sender's epoch and sequence number, and a frame already seen
  is ignored. A frame ``on_message`` raises on is logged and dropped (not redelivered forever).
- **Which sites are up**: every site beats on the events exchange (``beat_interval``); a site heard
  from (beat, hello, presence or broadcast: live frames, not hand-overs, which may be old) is up,
  ``on_site_up(site)``; a site silent for ``site_timeout``, or every site when this bus loses the
  broker, is down, ``on_site_down(site)``. This is what a peer link's up and down were to the
  embedded mesh (forget the presence of a site that is down: unknown is not available).
- **Sender identity**: ``from_site`` is the second word of the routing key, and the broker lets a
  site's user publish only keys with its own site there (topic permissions), so a site cannot
  speak for another one.

Reconnection is this module's own loop over plain ``aio_pika.connect`` (not aio-pika's robust
connection, whose retry interval is fixed and unjittered, and which restores channels behind the
caller's back): capped exponential back-off with jitter (``server_stub.link.Backoff``), so that the
sites do not hammer a restarting broker in lockstep, and one explicit "connected" state that
``send`` waits on.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import struct
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange, AbstractQueue
from aio_pika.exceptions import DeliveryError, PublishError
from aiormq.abc import DeliveredMessage
from yarl import URL

from ..link import Backoff
from . import wire
from .topology import (
    BEAT,
    BROADCAST,
    EVENTS_EXCHANGE,
    HELLO,
    PRESENCE,
    WORK,
    WORK_EXCHANGE,
    TopologyError,
    check_site,
    events_arguments,
    events_bindings,
    events_bindings_from,
    events_queue_prefix,
    inbox_arguments,
    inbox_binding,
    inbox_queue,
    parse_routing_key,
    routing_key,
)

log = logging.getLogger(__name__)

OnMessage = Callable[[str, bytes], None]
OnReconnect = Callable[[], Awaitable[None] | None]
OnSite = Callable[[str], None]

DEFAULT_HEARTBEAT = 5  # seconds, unless the URL says; aiormq gives up after (5 + 1) * 3 s of silence
SEND_TIMEOUT = 10.0  # seconds ``send`` waits for a connection and a confirm before BusUnavailable
CONNECT_TIMEOUT = 5.0
SETUP_TIMEOUT = 10.0  # declaring and consuming after connecting; a hung step means: reconnect
MAX_PENDING = 100_000  # presence/broadcast frames waiting to be written; beyond it new ones drop
WORK_PREFETCH = 64
BEAT_INTERVAL = 1.0  # seconds between a site's beats
SITE_TIMEOUT = 3.5  # seconds without a live frame from a site before it counts as down
BATCH = "batch"  # AMQP ``type`` of a message carrying several frames, each prefixed by its length
BATCH_FRAMES = 256  # at most this many frames in one message...
BATCH_BYTES = 256 * 1024  # ...and about this many bytes (a single bigger frame goes alone)
_LENGTH = struct.Struct("!I")


def pack(frames: list[bytes]) -> bytes:
    """Several frames as one message body (``BATCH``): each one's length (4 bytes), then it."""
    return b"".join(_LENGTH.pack(len(f)) + f for f in frames)


def unpack(body: bytes) -> list[bytes]:
    """The frames of a ``BATCH`` body; ``ValueError`` if it is not one."""
    frames, at = [], 0
    while at < len(body):
        if at + _LENGTH.size > len(body):
            raise ValueError("a batch ends inside a length")
        (size,) = _LENGTH.unpack_from(body, at)
        at += _LENGTH.size
        if at + size > len(body):
            raise ValueError("a batch ends inside a frame")
        frames.append(body[at:at + size])
        at += size
    return frames


class BusError(Exception):
    """The bus could not do what was asked (the message says why)."""


class BusUnavailable(BusError):
    """No broker connection, or no confirm, within the deadline: the frame may or may not have been
    delivered (sending it again is safe: consumers are idempotent)."""


class BusRefused(BusError):
    """The broker refused the frame: unroutable (no inbox for that site), negatively confirmed, or
    not permitted for this site's user. Sending it again will not help."""


@dataclass
class BusStats:
    connects: int = 0
    presence_published: int = 0
    broadcast_published: int = 0
    dropped: int = 0  # presence/broadcast frames dropped: broker away or MAX_PENDING reached
    received: int = 0  # frames given to on_message
    redelivered: int = 0  # of which the broker marked as possibly seen before
    sends: int = 0  # confirmed hand-overs
    messages_published: int = 0  # AMQP messages (a batch of frames is one)
    send_retries: int = 0  # hand-overs published again after a lost confirm
    own_returned: int = 0  # own presence/broadcast frames the broker gave back (none: bound per sender)


@dataclass
class _Session:
    connection: AbstractConnection
    events: AbstractExchange  # on a channel without confirms
    work: AbstractExchange  # on a channel with confirms and returns raised
    channels: tuple[AbstractChannel, ...]


class _Acker:
    """Acknowledges the inbox's deliveries on one channel after ``on_message`` took them, several at
    a time: the deliveries handled during one pass of the event loop cost one ``basic.ack`` with
    ``multiple`` (up to the last of them), not one each. A frame that could not be taken is
    rejected (without requeue) on its own, after the acknowledgement of those before it. A
    connection lost before the acknowledgement: the broker redelivers, the consumers are
    idempotent (as before, when each was acknowledged alone)."""

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self._settled: list[tuple[int, bool]] = []  # delivery tag, taken; in delivery order
        self._task: asyncio.Task[None] | None = None
        self.calls = 0  # basic.ack / basic.reject sent

    def settle(self, tag: int, ok: bool) -> None:
        self._settled.append((tag, ok))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        with contextlib.suppress(Exception):  # a lost connection: the broker redelivers the frames
            while self._settled:
                settled, self._settled = self._settled, []
                upto = None
                for tag, ok in settled:
                    if ok:
                        upto = tag
                        continue
                    if upto is not None:
                        await self._ack(upto)
                        upto = None
                    self.calls += 1
                    await self.channel.basic_reject(tag, requeue=False)
                if upto is not None:
                    await self._ack(upto)

    async def _ack(self, tag: int) -> None:
        self.calls += 1
        await self.channel.basic_ack(tag, multiple=True)


class AmqpBus:
    """One site's connection to the bus. ``on_message(from_site, frame)`` gets every frame other
    sites publish (presence, broadcast) and every hand-over sent to this site; it is called on the
    event loop, in arrival order, and must not block. ``on_reconnect()`` (plain or async) is asked
    to re-publish this site's full presence (see the module docstring)."""

    def __init__(self, url: str, site: str, on_message: OnMessage, *, on_reconnect: OnReconnect | None = None,
                 on_site_up: OnSite | None = None, on_site_down: OnSite | None = None,
                 send_timeout: float = SEND_TIMEOUT, backoff: Backoff | None = None,
                 beat_interval: float = BEAT_INTERVAL, site_timeout: float = SITE_TIMEOUT) -> None:
        self.site = check_site(site)
        parsed = URL(url)
        if parsed.scheme not in ("amqp", "amqps"):
            raise ValueError(f"the bus URL must be amqp:// or amqps://, not {url!r}")
        if "heartbeat" not in parsed.query:
            parsed = parsed.update_query(heartbeat=DEFAULT_HEARTBEAT)
        self.url = parsed
        self.on_message = on_message
        self.on_reconnect = on_reconnect
        self.on_site_up, self.on_site_down = on_site_up, on_site_down
        self.send_timeout = send_timeout
        self.beat_interval, self.site_timeout = beat_interval, site_timeout
        self._last_heard: dict[str, float] = {}  # site -> loop time of its last live frame
        self.stats = BusStats()
        self.last_error: str | None = None  # why the last connection attempt or connection failed
        self._backoff = backoff or Backoff(first=0.1, cap=2.0)
        self._session: _Session | None = None
        self._up = asyncio.Event()
        self._down = asyncio.Event()
        self._down.set()
        self._pending: OrderedDict[tuple[str, str], tuple[str, bytes]] = OrderedDict()
        self._pending_wakeup = asyncio.Event()
        self._broadcasts = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        self._resync_again = False
        self._stopping = False
        self._background: set[asyncio.Task[None]] = set()  # closes in flight (kept from the GC)
        self._wire = wire.CoalescingTransportFactory()
        self._broadcast_key = routing_key(BROADCAST, self.site)
        self._message_ids = uuid.uuid4().hex[:16] + "-"  # hand-overs' message ids: this, then a count
        self._sent_messages = itertools.count(1)
        self._acker: _Acker | None = None  # the live session's inbox acknowledgements
        # The events queue of the live session, the sites whose fan-out it is bound to, and what
        # came from a site while binding to it (``_learn``).
        self._fanout: tuple[AbstractConnection, AbstractQueue] | None = None
        self._bound: set[str] = set()
        self._learning: dict[str, list[DeliveredMessage]] = {}

    # ------------------------------------------------------------------ life cycle

    async def start(self, timeout: float = CONNECT_TIMEOUT) -> bool:
        """Start connecting (and reconnecting, until ``stop()``); wait up to ``timeout`` seconds for
        the first connection. Returns whether connected: a site whose broker is away keeps serving
        its own agents, and the bus connects in the background when the broker comes."""
        if self._supervisor is None:
            self._stopping = False
            self._supervisor = asyncio.create_task(self._supervise(), name=f"amqp-bus-{self.site}")
        return await self.wait_connected(timeout)

    async def stop(self) -> None:
        """Close the connection (unacknowledged hand-overs go back to the queue) and stop
        reconnecting. Frames not yet written are dropped."""
        self._stopping = True
        for task in (self._supervisor, self._resync):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._supervisor, self._resync) if t is not None), return_exceptions=True)
        self._supervisor = self._resync = None
        self._pending.clear()

    @property
    def connected(self) -> bool:
        return self._session is not None

    @property
    def sites_up(self) -> list[str]:
        """The other sites heard from lately (see the module docstring)."""
        return sorted(self._last_heard)

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._up.wait()
        return self.connected

    async def wait_disconnected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._down.wait()
        return not self.connected

    # ------------------------------------------------------------------ publishing

    def publish_presence(self, agent_id: str, frame: bytes) -> None:
        """Fan ``frame`` out to every other site (routing key ``presence.<site>.<agent>``).
        Dropped while the broker is away; replaces this agent's frame still waiting to be written."""
        self._enqueue((PRESENCE, agent_id), routing_key(PRESENCE, self.site, agent_id), frame)

    def broadcast(self, frame: bytes, to: str | None = None) -> None:
        """Send ``frame`` to every other site (``broadcast.<site>``), or only to site ``to``
        (``broadcast.<site>.<to>``: only its events queue is bound to that key), at most once, in
        order with presence. Dropped while the broker is away."""
        self._broadcasts += 1
        rest = None if to is None else check_site(to)
        self._enqueue((BROADCAST, str(self._broadcasts)), routing_key(BROADCAST, self.site, rest), frame)

    async def send(self, to_site: str, frame: bytes, *, timeout: float | None = None,
                   persistent: bool = True) -> None:
        """``send_batch`` of one frame."""
        await self.send_batch(to_site, [frame], timeout=timeout, persistent=persistent)

    async def send_batch(self, to_site: str, frames: list[bytes], *, timeout: float | None = None,
                         persistent: bool = True) -> None:
        """Hand ``frame`` over to ``to_site`` (``work.<site>.<to_site>``, to its inbox); return once
        the broker confirmed it. While the broker is away, wait for it, up to ``timeout`` (default
        ``send_timeout``) in all, then raise ``BusUnavailable``; a confirm lost with the connection
        is retried within the same deadline (so the frame may arrive twice). ``BusRefused`` when
        the broker refuses it. ``persistent=False`` for a frame worth nothing after a broker
        restart (an answer on a link that a restart ends anyway): confirmed once routed, no disk.

        Several frames go as one message (``BATCH``), confirmed, delivered and acknowledged as one,
        given to ``on_message`` one by one in order. Calls may overlap: while connected, the
        messages of concurrent calls are published in the order the calls were made (the
        channel's lock is taken in that order; a retry after a lost connection may come later) and
        confirmed together, so a caller with many frames should not await each confirm before
        publishing the next."""
        key = routing_key(WORK, self.site, check_site(to_site))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.send_timeout if timeout is None else timeout)
        mode = aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
        message = aio_pika.Message(frames[0] if len(frames) == 1 else pack(frames), delivery_mode=mode,
                                   message_id=f"{self._message_ids}{next(self._sent_messages)}", app_id=self.site,
                                   type=None if len(frames) == 1 else BATCH)
        attempts = 0
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.wait_connected(remaining):
                raise BusUnavailable(f"hand-over to site {to_site} not confirmed within the deadline (no usable "
                                     f"broker connection; last error: {self.last_error or 'none'}); it may or may "
                                     "not have been delivered")
            session = self._session
            assert session is not None
            if attempts:
                self.stats.send_retries += 1
            attempts += 1
            try:
                await session.work.publish(message, key, mandatory=True, timeout=max(0.001, deadline - loop.time()))
            except PublishError as e:
                raise BusRefused(f"hand-over to site {to_site}: the broker has no inbox for it (is site "
                                 f"{to_site} provisioned on the broker? docs/multisite.md)") from e
            except DeliveryError as e:
                raise BusRefused(f"hand-over to site {to_site}: the broker refused it (negative confirm)") from e
            except aiormq.exceptions.ChannelAccessRefused as e:
                self._lose(session, f"access refused: {e}")
                raise BusRefused(f"hand-over to site {to_site}: not permitted for this site's broker user "
                                 f"({e}); is the URL's user the one of site {self.site}?") from e
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                continue  # the deadline passed on a live connection: BusUnavailable above
            except Exception as e:  # connection or channel lost: outcome unknown, retry while time is left
                log.info("bus %s: hand-over to %s unconfirmed (%r); retrying after reconnect", self.site, to_site, e)
                self._lose(session, f"{type(e).__name__}: {e}")
                if self._session is session:  # wait for the supervisor to drop it (no spinning on it)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(0.0, deadline - loop.time())):
                            await self._down.wait()
                continue
            self.stats.sends += len(frames)
            self.stats.messages_published += 1
            return

    def _enqueue(self, slot: tuple[str, str], key: str, frame: bytes) -> None:
        if self._session is None or (len(self._pending) >= MAX_PENDING and slot not in self._pending):
            self.stats.dropped += 1
            return
        self._pending[slot] = (key, frame)
        self._pending.move_to_end(slot)
        self._pending_wakeup.set()

    async def _write_pending(self, session: _Session) -> None:
        """Write presence and broadcasts, oldest first, on the channel without confirms. What
        waits when the writer comes round goes as one message (``BATCH``, on this site's
        ``broadcast`` key, or its ``broadcast.<site>.<to>`` key when every frame is for site ``to``:
        a batch is made of consecutive frames with one destination): the broker's cost is per
        message and per queue it reaches, so a busy site sends fewer, larger messages instead of
        falling behind; an idle one sends each frame alone, at once."""
        while True:
            await self._pending_wakeup.wait()
            self._pending_wakeup.clear()
            while self._pending:
                entries: list[tuple[str, str, bytes]] = []  # kind, routing key, frame
                size = 0
                batch_key = ""
                while self._pending and len(entries) < BATCH_FRAMES:
                    (kind, _), (key, frame) = next(iter(self._pending.items()))
                    # Addressed to one site: broadcast.<us>.<to>; anything else goes to every site.
                    frame_key = key if kind == BROADCAST else self._broadcast_key
                    if entries and (size + len(frame) > BATCH_BYTES or frame_key != batch_key):
                        break
                    batch_key = frame_key
                    (kind, _), _ = self._pending.popitem(last=False)
                    entries.append((kind, key, frame))
                    size += len(frame)
                if len(entries) > 1:  # a beat only says "alive", which the batch itself says
                    entries = [e for e in entries if e[0] != BEAT] or entries[:1]
                kinds = [kind for kind, _, _ in entries]
                frames = [frame for _, _, frame in entries]
                if len(frames) == 1:
                    key = entries[0][1]
                    message = aio_pika.Message(frames[0], delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
                else:
                    key = batch_key
                    message = aio_pika.Message(pack(frames), delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                                               type=BATCH)
                await session.events.publish(message, key, mandatory=False)
                self.stats.messages_published += 1
                self.stats.presence_published += kinds.count(PRESENCE)
                self.stats.broadcast_published += kinds.count(BROADCAST)

    # ------------------------------------------------------------------ receiving

    def _deliver(self, message: DeliveredMessage) -> bool:
        """Give one message's frame (or a batch's frames, in order) to the server; whether to
        acknowledge it (a frame that cannot be taken alone is dropped: acknowledged negatively
        without requeue; a batch is acknowledged, its other frames were taken)."""
        key = message.routing_key or ""
        try:
            kind, from_site, _ = parse_routing_key(key)
        except TopologyError:
            log.warning("bus %s: dropped a frame with a foreign routing key %r", self.site, key)
            return False
        if from_site == self.site and kind != WORK:
            if kind in (PRESENCE, BROADCAST):
                self.stats.own_returned += 1
            return True  # our own hello or beat, back from the exchange
        if kind != WORK:
            if from_site not in self._bound:
                self._learn(from_site, message)
                return True
            self._heard(from_site)
        if kind == HELLO:
            self._request_resync()
            return True
        if kind == BEAT:
            return True
        redelivered = bool(getattr(message.delivery, "redelivered", False))
        if message.header.properties.message_type == BATCH:
            try:
                frames = unpack(message.body)
            except ValueError as e:
                log.warning("bus %s: dropped a malformed batch from %s: %s", self.site, from_site, e)
                return False
        else:
            frames = [message.body]
        ok = True
        for frame in frames:
            self.stats.received += 1
            if redelivered:
                self.stats.redelivered += 1
            try:
                self.on_message(from_site, frame)
            except Exception:
                log.exception("bus %s: on_message failed on a %s frame from %s; frame dropped", self.site, kind,
                              from_site)
                ok = False  # the others of its batch were taken: a redelivery would repeat them for nothing
        return ok or len(frames) > 1

    def _learn(self, site: str, message: DeliveredMessage) -> None:
        """A frame from a site whose fan-out this site's events queue is not bound to yet: bind it
        (``events_bindings_from``), and hold the site's frames until the broker confirmed the
        binding. Only then is the site heard (up): whatever it tells every site after its first
        frame that counts here (its link's handshake comes after) reaches this queue. What it told
        before it was heard here counts nowhere (no link), so nothing that counts is missed."""
        held = self._learning.get(site)
        if held is None:
            held = self._learning[site] = []
            if self._fanout is not None:
                task = asyncio.get_running_loop().create_task(self._bind(site, *self._fanout))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        held.append(message)

    async def _bind(self, site: str, connection: AbstractConnection, fanout: AbstractQueue) -> None:
        try:
            for binding in events_bindings_from(site):
                await fanout.bind(EVENTS_EXCHANGE, binding)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.last_error = f"binding to site {site}'s fan-out failed: {type(e).__name__}: {e}"
            self._close_soon(connection)  # a new connection, a new queue, bound again
            return
        if self._fanout is None or self._fanout[1] is not fanout:
            return  # a session that is over
        self._bound.add(site)
        for message in self._learning.pop(site, []):
            self._deliver(message)

    async def _on_event(self, message: DeliveredMessage) -> None:
        self._deliver(message)  # the events queue is consumed without acknowledgements

    async def _on_work(self, message: DeliveredMessage) -> None:
        ok = self._deliver(message)  # first, before any await: on_message sees frames in order
        acker, tag = self._acker, getattr(message.delivery, "delivery_tag", None)
        if acker is not None and acker.channel is message.channel and tag is not None:
            acker.settle(tag, ok)

    # ------------------------------------------------------------------ which sites are up

    def _heard(self, site: str) -> None:
        new = site not in self._last_heard
        self._last_heard[site] = asyncio.get_running_loop().time()
        if new:
            self._site_event(self.on_site_up, site, "up")

    def _site_event(self, callback: OnSite | None, site: str, what: str) -> None:
        log.info("bus %s: site %s is %s", self.site, site, what)
        if callback is not None:
            try:
                callback(site)
            except Exception:
                log.exception("bus %s: on_site_%s(%s) failed", self.site, what, site)

    def _all_down(self) -> None:
        for site in sorted(self._last_heard):
            del self._last_heard[site]
            self._site_event(self.on_site_down, site, "down")

    async def _beat(self) -> None:
        """Beat, and declare down the sites silent for too long."""
        loop = asyncio.get_running_loop()
        key = routing_key(BEAT, self.site)
        while True:
            self._enqueue((BEAT, ""), key, b"")
            now = loop.time()
            for site, heard in sorted(self._last_heard.items()):
                if now - heard > self.site_timeout:
                    del self._last_heard[site]
                    self._site_event(self.on_site_down, site, "down")
            await asyncio.sleep(self.beat_interval)

    # ------------------------------------------------------------------ resync

    def _request_resync(self) -> None:
        """Run ``on_reconnect`` once more; requests while it runs coalesce into one more run."""
        if self.on_reconnect is None:
            return
        if self._resync is not None and not self._resync.done():
            self._resync_again = True
            return
        self._resync = asyncio.create_task(self._run_resync())

    async def _run_resync(self) -> None:
        again = True
        while again and self.on_reconnect is not None:
            self._resync_again = False
            try:
                result = self.on_reconnect()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("bus %s: on_reconnect failed", self.site)
            again = self._resync_again

    # ------------------------------------------------------------------ connection

    def _lose(self, session: _Session, why: str) -> None:
        """Give up on ``session`` (the supervisor notices and reconnects)."""
        self.last_error = why
        self._close_soon(session.connection)

    def _close_soon(self, connection: AbstractConnection) -> None:
        if not connection.is_closed:
            task = asyncio.get_running_loop().create_task(self._close(connection))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                connection = await wire.connect(self.url, timeout=CONNECT_TIMEOUT,
                                                client_properties={"connection_name": f"site {self.site}"},
                                                factory=self._wire)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.last_error = f"cannot connect: {type(e).__name__}: {e}"
                log.info("bus %s: %s", self.site, self.last_error)
            else:
                await self._run(connection)
            if not self._stopping:
                await asyncio.sleep(self._backoff.next())

    async def _run(self, connection: AbstractConnection) -> None:
        """Set up channels, queues and consumers on ``connection``; serve until it closes."""
        closed = asyncio.Event()
        connection.close_callbacks.add(lambda *_: closed.set())
        try:
            async with asyncio.timeout(SETUP_TIMEOUT):
                session = await self._setup(connection)
        except asyncio.CancelledError:
            await self._close(connection)
            raise
        except Exception as e:
            self.last_error = f"setting up the bus failed: {type(e).__name__}: {e}"
            log.warning("bus %s: %s (is the broker provisioned for the site bus? docs/multisite.md)",
                        self.site, self.last_error)
            await self._close(connection)
            return
        await self._serve(connection, session, closed)

    async def _setup(self, connection: AbstractConnection) -> _Session:
        """Channels, queues, bindings and consumers of one connection; then the hello."""
        events_channel = await connection.channel(publisher_confirms=False)
        work_channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        consume_channel = await connection.channel(publisher_confirms=False)
        channels = (events_channel, work_channel, consume_channel)
        for channel in channels:  # a channel the broker closes (refused) ends the connection
            channel.close_callbacks.add(lambda _ch, exc: self._channel_closed(connection, exc))
        await consume_channel.set_qos(prefetch_count=WORK_PREFETCH)
        events = await events_channel.get_exchange(EVENTS_EXCHANGE, ensure=True)
        work = await work_channel.get_exchange(WORK_EXCHANGE, ensure=True)
        inbox = await consume_channel.declare_queue(inbox_queue(self.site), durable=True,
                                                    arguments=inbox_arguments())
        await inbox.bind(WORK_EXCHANGE, inbox_binding(self.site))
        fanout = await consume_channel.declare_queue(events_queue_prefix(self.site) + uuid.uuid4().hex[:12],
                                                     exclusive=True, auto_delete=True,
                                                     arguments=events_arguments())
        for binding in events_bindings(self.site):
            await fanout.bind(EVENTS_EXCHANGE, binding)
        self._bound, self._learning, self._fanout = set(), {}, (connection, fanout)
        # Consumed on aiormq's channel, not through aio-pika's Queue.consume: that one makes a
        # second task and an IncomingMessage per delivery, which the bus does not need.
        raw = await consume_channel.get_underlay_channel()
        self._acker = _Acker(raw)
        await raw.basic_consume(fanout.name, self._on_event, no_ack=True)
        await raw.basic_consume(inbox.name, self._on_work)
        await events.publish(aio_pika.Message(b""), routing_key(HELLO, self.site), mandatory=False)
        return _Session(connection, events, work, channels)

    async def _serve(self, connection: AbstractConnection, session: _Session, closed: asyncio.Event) -> None:
        """Be connected until ``connection`` closes (or the writer fails)."""
        self._session = session
        self._up.set()
        self._down.clear()
        self.stats.connects += 1
        self._backoff.reset()
        log.info("bus %s: connected to %s", self.site, self.url.with_password(None) if self.url.password else self.url)
        writer = asyncio.create_task(self._write_pending(session))
        beat = asyncio.create_task(self._beat())
        self._request_resync()
        try:
            done = asyncio.create_task(closed.wait())
            await asyncio.wait({done, writer, beat}, return_when=asyncio.FIRST_COMPLETED)
            if writer.done() and not writer.cancelled() and writer.exception() is not None:
                self.last_error = f"publishing failed: {writer.exception()!r}"
            done.cancel()
        finally:
            self._session = None
            self._fanout, self._acker = None, None
            self._bound.clear()
            self._learning.clear()
            self._up.clear()
            self._down.set()
            self._pending.clear()  # dropped: the full presence is re-published on reconnect
            for task in (writer, beat):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._all_down()  # heard through the broker only: unknown now
            await self._close(connection)
            if not self._stopping:
                log.info("bus %s: connection lost (%s); reconnecting", self.site, self.last_error)

    def _channel_closed(self, connection: AbstractConnection, exc: Any) -> None:
        if isinstance(exc, aiormq.exceptions.ChannelClosed) and str(exc):  # the broker's reason, not ours
            self.last_error = f"channel closed by the broker: {exc}"
        if not self._stopping:
            self._close_soon(connection)

    @staticmethod
    async def _close(connection: AbstractConnection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 2.0)
