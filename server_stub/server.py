"""The interaction server's transport: sockets, writer tasks, the password pool, rate limits, timers.

One asyncio process per site. All decisions are the core's (``core.ServerCore``); this layer feeds
it what happens, with the time, and carries out what it returns. Every socket gets its own bounded
outbound queue and writer task, so a slow or hostile client can only hurt itself.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import resource
import secrets
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from . import protocol as p
from .config import MOST, ServerConfig
from .config_store import load_version, store
from .core import (
    CheckPassword,
    Close,
    ConnId,
    Now,
    Output,
    PeerClose,
    PeerRedial,
    PeerSend,
    Rehash,
    Send,
    ServerCore,
    StoreConfig,
)
from .directory import Directory, hash_password, store_rehash, verify_password
from .mesh import Mesh, PeerTransport
from .peer import PeerLink

if TYPE_CHECKING:  # the bus (aio-pika, yarl) is imported only by a server started with --bus
    from .bus.transport import BusTransport

log = logging.getLogger("interaction_server")

TICK_S = 0.1  # the core's clock: heartbeats, silences, offer and token timers
CLOSE_WAIT_S = 2.0  # a socket whose close does not complete by then (it stopped reading) is aborted
SPARE_FILES = 64  # descriptors kept free of sockets: log files, the peer link, scrypt, a restart
# A server that dials us (its PeerHello answered with a challenge) sends its full state (every agent
# logged in there: about 175 bytes each) after the handshake: more than ``max_message_bytes``
# (64 KiB) from about 370 agents on. Its socket takes frames up to the configurable maximum.
PEER_MAX_MESSAGE_BYTES = int(MOST["max_message_bytes"])


def now() -> Now:
    return Now(time.monotonic(), int(time.time() * 1000))


class PasswordChecks:
    """scrypt on a few threads, shared in turn between client addresses: a flood of logins from
    one address waits behind everyone else's, instead of everyone waiting behind it."""

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="scrypt")
        self._workers = workers
        self._busy = 0
        self._queues: OrderedDict[str, deque[tuple[asyncio.Future[bool], str, str]]] = OrderedDict()

    async def check(self, source: str, password: str, password_hash: str) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(source, deque()).append((future, password, password_hash))
        self._start()
        return await future  # cancelled: dropped from its queue, or its result ignored

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        while self._busy < self._workers and self._queues:
            source, queue = self._queues.popitem(last=False)
            future, password, password_hash = queue.popleft()
            if queue:
                self._queues[source] = queue  # this address's next check goes after the others'
            if future.done():
                continue
            self._busy += 1
            work = loop.run_in_executor(self._pool, verify_password, password, password_hash)
            work.add_done_callback(functools.partial(self._finished, future))

    async def hash(self, password: str) -> str:
        """A new hash of ``password`` with today's parameters, on the same threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, hash_password, password)

    def _finished(self, future: asyncio.Future[bool], done: asyncio.Future[bool]) -> None:
        self._busy -= 1
        if not future.done():
            future.set_result(not done.cancelled() and done.exception() is None and done.result())
        self._start()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass(eq=False)
class _Socket:
    """What the transport keeps of one socket: its queue, writer, rate budget and password check."""

    id: ConnId
    ws: ServerConnection
    source: str
    queue: asyncio.Queue[str | None]
    tokens: float
    bucket_at: float
    queued_bytes: int = 0  # in ``queue``, not yet handed to the WebSocket layer
    authenticated: bool = False  # logged in, made available or subscribed (or a peer)
    peer_sized: bool = False  # said PeerHello: takes frames up to PEER_MAX_MESSAGE_BYTES
    writer: asyncio.Task[None] | None = None
    sending: bool = False  # the writer is inside ``ws.send`` (waiting for the socket to drain)
    check: asyncio.Task[None] | None = None
    closing: bool = False
    flooding_since: float | None = None
    last_refused: float = 0.0
    last_rate_notice: float = 0.0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class InteractionServer:
    def __init__(self, config: ServerConfig, directory: Directory, *, directory_path: Path | None = None,
                 shared_files: tuple[Path, Path] | None = None):
        """``directory_path``: the file ``directory`` came from, where password hashes below
        today's guidance are replaced at the agent's next login (None: they are not).
        ``shared_files``: this site's (site configuration, agent directory) files, where a shared
        configuration taken from another site is stored (None: it is not; config_store.py)."""
        self.config = config.validate()
        self.directory = directory
        self.directory_path = directory_path
        self.shared_files = shared_files
        self.name = config.name
        self.core = ServerCore(self.config, directory, now(), stream_id=secrets.token_hex(8),
                               config_version=load_version(shared_files[1]) if shared_files else None)
        self._storing: asyncio.Lock | None = None  # one write of the site's files at a time, in order
        self.port: int | None = None
        self.peers: PeerTransport | None = None  # the links to the other sites (server_stub/mesh.py)
        self.bus: BusTransport | None = None  # the same over RabbitMQ (--bus), also in ``peers``
        self._sockets: dict[ConnId, _Socket] = {}
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # Password checks (scrypt) share a small pool, in turn between addresses; with at most one
        # per socket, a socket flooding logins waits its turn behind everyone else's.
        self._verifier = PasswordChecks(config.password_workers)
        self._per_source: Counter[str] = Counter()  # open sockets by address
        self._background_tasks: set[asyncio.Task[None]] = set()
        self._unauthenticated: Counter[str] = Counter()
        self.max_connections = self.config.max_connections

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.max_connections = min(self.config.max_connections, _open_file_limit() - SPARE_FILES)
        self._server = await serve(
            self._handle, self.config.host, self.config.port,
            process_request=self._admit_connection,
            ssl=self.config.server_ssl(),
            max_size=self.config.max_message_bytes,
            max_queue=64,
            ping_interval=None,  # application heartbeats (protocol `Heartbeat`) do this job
            close_timeout=1,  # a client that does not answer a close within 1 s is hung; do not wait 10
            compression=None,  # small frames; deflate costs more CPU than it saves
            server_header=None,
            logger=logging.getLogger("interaction_server.ws"),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._tasks.append(asyncio.create_task(self._ticker(), name="ticker"))
        if self.config.peer_urls:
            core = self.core
            self.peers = Mesh(
                self.config.peer_urls, ca_file=str(self.config.ca_file) if self.config.ca_file else None,
                heartbeat_interval=self.config.heartbeat_interval_ms / 1000,
                heartbeat_timeout=self.config.heartbeat_timeout_ms / 1000,
                on_up=lambda url: self._run(core.peer_link_up(now(), url)),
                on_message=lambda url, message: self._run(core.peer_link_message(message, now(), url)),
                on_down=lambda url: self._run(core.peer_link_down(now(), url)))
            self._tasks.append(asyncio.create_task(self.peers.run(), name="peer-links"))
        elif self.config.bus_url:
            from .bus.transport import BusTransport

            self.peers = self.bus = BusTransport(self.config.bus_url, self.core, self._run, now)
            self._tasks.append(asyncio.create_task(self.bus.run(), name="site-bus"))
        scheme = "wss" if self.config.tls_cert else "ws"
        bus = "none"
        if self.config.bus_url:
            from yarl import URL  # aio-pika's URL type, loaded with the bus

            bus = f"bus {URL(self.config.bus_url).with_password(None)}"
        peers = ", ".join(self.config.peer_urls) or bus  # the bus URL without its password
        log.info("server %s listening on %s://%s:%s (peer %s, duplicate policy %s)", self.name, scheme,
                 self.config.host, self.port, peers, self.config.duplicate_policy)

    @property
    def peer(self) -> PeerLink | None:
        """The pair's one outbound peer link (the first of a mesh's)."""
        mesh = self.peers
        return next(iter(mesh.links.values()), None) if isinstance(mesh, Mesh) else None

    def reload(self, config: ServerConfig, directory: Directory) -> None:
        """New rules from the files (SIGHUP): applied by the core at once, told to the other sites."""
        self.directory = directory
        self._run(self.core.reload(config, directory, now()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._run(self.core.shutdown(now()))
        writers = []
        for sock in list(self._sockets.values()):  # let every socket drain (the logouts above) before closing
            if not sock.closing and sock.writer is not None:
                if not sock.queue.full():
                    sock.queue.put_nowait(None)
                writers.append(sock.writer)
            sock.closing = True
        if writers:
            await asyncio.wait(writers, timeout=1.0)
        if self._server is not None:
            self._server.close(close_connections=False)
            closing = [self._close_socket(sock, p.CloseCode.GOING_AWAY, "server shutting down")
                       for sock in list(self._sockets.values())]
            await asyncio.gather(*closing, return_exceptions=True)
            await self._server.wait_closed()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._verifier.shutdown()
        log.info("server %s stopped", self.name)

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._run(self.core.tick(now()), write_now=True)
            for sock in list(self._sockets.values()):
                # What the WebSocket layer queued itself (pongs to a ping flood) counts too.
                if sock.ws.transport.get_write_buffer_size() > self.config.max_outbound_bytes:
                    log.warning("%s: more than %d bytes unread, dropping the connection",
                                self.core.conns.get(sock.id) or f"conn#{sock.id}", self.config.max_outbound_bytes)
                    sock.closing = True
                    sock.ws.transport.abort()

    def _admit_connection(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse a handshake (503) beyond the connection limits, before it costs a socket task."""
        source = str((connection.remote_address or ("?",))[0])
        cfg = self.config
        if len(self._sockets) >= self.max_connections:
            why = f"the server is at its limit of {self.max_connections} connections"
        elif cfg.max_connections_per_source and self._per_source[source] >= cfg.max_connections_per_source:
            why = f"too many connections from {source} (limit {cfg.max_connections_per_source})"
        elif self._unauthenticated[source] >= cfg.max_unauthenticated_per_source:
            why = (f"too many connections from {source} that have not logged in "
                   f"(limit {cfg.max_unauthenticated_per_source})")
        else:
            return None
        log.warning("refused a connection from %s: %s", source, why)
        return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{why}; try again later\n")

    # ------------------------------------------------------------------ sockets

    async def _handle(self, ws: ServerConnection) -> None:
        t = now()
        host, port, *_ = ws.remote_address or ("?", 0)
        sock = _Socket(id=next(self._ids), ws=ws, source=str(host), queue=asyncio.Queue(self.config.outbound_queue),
                       tokens=self.config.rate_burst, bucket_at=t.mono)
        self._sockets[sock.id] = sock
        self._per_source[sock.source] += 1
        self._unauthenticated[sock.source] += 1
        self._run(self.core.connected(sock.id, f"{host}:{port}", t))
        writer = sock.writer = asyncio.create_task(self._writer(sock))
        try:
            async for frame in ws:
                t = now()
                conn = self.core.conns.get(sock.id)
                if conn is not None and conn.kind == "peer":  # the peer link has its own budget: none
                    self._run(self.core.received(sock.id, frame, t))
                elif self._admit(sock, t.mono):
                    self._run(self.core.received(sock.id, frame, t))
                    if not sock.authenticated:
                        self._check_authenticated(sock)
                    if not sock.peer_sized:
                        self._size_for_peer(sock)
                else:
                    self.core.heard(sock.id, t)
        except ConnectionClosed:
            pass
        finally:
            self._per_source[sock.source] -= 1
            if not sock.authenticated:
                self._unauthenticated[sock.source] -= 1
            writer.cancel()
            if sock.check is not None:
                sock.check.cancel()
            self._sockets.pop(sock.id, None)
            label = self.core.conns.get(sock.id) or f"conn#{sock.id} {host}:{port}"
            self._run(self.core.disconnected(sock.id, now()))
            # The code we sent counts when the client never answered it (e.g. 1009: websockets
            # fails the connection without waiting), else every refusal would read as 1006.
            sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
            code = rcvd.code if rcvd is not None else sent.code if sent is not None else ws.close_code
            log.info("%s disconnected (code %s%s)", label, code, f", {sent.reason}" if sent and sent.reason else "")

    def _size_for_peer(self, sock: _Socket) -> None:
        """A server dialing us said hello (the core challenged it): its full state, which comes
        after the handshake, may be bigger than a client's frame limit. The limit is read per
        frame, so it holds from the frame after the next one on (the proof) at the latest."""
        conn = self.core.conns.get(sock.id)
        if conn is not None and conn.peer_challenge is not None:
            sock.peer_sized = True
            sock.ws.protocol.max_message_size = max(self.config.max_message_bytes, PEER_MAX_MESSAGE_BYTES)

    def _check_authenticated(self, sock: _Socket) -> None:
        conn = self.core.conns.get(sock.id)
        if conn is not None and (conn.kind == "peer" or conn.login is not None or conn.standby_for is not None
                                 or conn.reporting):
            sock.authenticated = True
            self._unauthenticated[sock.source] -= 1

    async def _writer(self, sock: _Socket) -> None:
        try:
            while True:
                frame = await sock.queue.get()
                if frame is None:
                    return
                sock.queued_bytes -= len(frame)
                sock.sending = True
                try:
                    await sock.ws.send(frame)
                finally:
                    sock.sending = False
        except ConnectionClosed:
            pass

    @staticmethod
    def _write_now(sock: _Socket, frame: str) -> bool:
        """Write ``frame`` at once, as the writer task would, when nothing is queued before it and
        the writer would not wait: its queue empty, no send of its own in progress, and the socket
        not paused by flow control (the kernel's and the transport's buffers below the WebSocket
        layer's high-water mark). Most heartbeats find a socket like that (a server beats every
        desktop twice a second: 10,000 frames/s at 5,000 agents); writing them here saves waking the
        task and a future per frame, a third of a busy server's CPU with the task (docs/failover.md,
        "Frame writing"). Otherwise (False) the frame goes through the queue as before: a client that
        stops reading pauses its socket, its frames queue up behind, and it is closed by the same
        rule (outbound queue or bytes, 4008)."""
        ws = sock.ws
        if sock.sending or ws.paused or not sock.queue.empty() or ws.protocol.state is not State.OPEN \
                or ws.send_in_progress is not None or ws.transport.is_closing():
            return False
        ws.protocol.send_text(frame.encode())
        ws.send_data()
        return True

    def _run(self, outputs: list[Output], write_now: bool = False) -> None:
        """Carry out what the core decided, in order. ``write_now``: frames may be written at once
        (``_write_now``): the clock's outputs (heartbeats, timers), never the answers a socket's own
        frames produced, which a client sending a burst without reading finds queued as before."""
        for out in outputs:
            if isinstance(out, Send):
                sock = self._sockets.get(out.conn)
                if sock is not None:
                    self._enqueue(sock, out.frame, write_now)
                elif self.bus is not None and self.bus.owns(out.conn):  # a site's link over the bus
                    self.bus.reply(out.conn, out.frame)
            elif isinstance(out, Close):
                sock = self._sockets.get(out.conn)
                if sock is not None:
                    self._close(sock, out.code, out.reason)
                elif self.bus is not None and self.bus.owns(out.conn):
                    self.bus.closed(out.conn)
            elif isinstance(out, CheckPassword):
                sock = self._sockets.get(out.conn)
                if sock is not None:
                    label = str(self.core.conns.get(out.conn))  # for the log, after the core forgot it
                    sock.check = asyncio.get_running_loop().create_task(self._check_password(out, label))
            elif isinstance(out, PeerSend):
                if self.peers is not None:
                    self.peers.send(out.frame, out.to)
            elif isinstance(out, PeerRedial):
                if self.peers is not None:
                    self.peers.redial()
            elif isinstance(out, Rehash):
                if self.directory_path is not None:
                    self._background(self._rehash(out))
            elif isinstance(out, PeerClose):
                if self.peers is not None:
                    self.peers.close(out.to, out.code, out.reason)
            elif isinstance(out, StoreConfig):
                if out.files:
                    self.directory = out.directory
                self._background(self._store(out))

    @property
    def writing_files(self) -> bool:
        """This server is writing its own files (a configuration taken, a stronger hash): the file
        watch must not read them half written (a new site file beside the old directory)."""
        return self._storing is not None and self._storing.locked()

    async def _store(self, out: StoreConfig) -> None:
        """Keep the shared configuration for the next start (config_store.py), off the loop."""
        version = f"{out.version.generation}@{out.version.origin}"
        if self.shared_files is None:
            if out.files:
                log.warning("shared configuration %s applied but not stored (no --config and --agents files of "
                            "this site's own): a restart takes it from the other sites again", version)
            return
        self._storing = self._storing or asyncio.Lock()
        async with self._storing:
            try:
                await asyncio.to_thread(store, out, *self.shared_files)
            except (OSError, ValueError) as exc:
                log.error("could not store shared configuration %s in %s: %s", version,
                          ", ".join(map(str, self.shared_files)), exc)
                return
        log.info("shared configuration %s stored%s", version,
                 f" in {', '.join(map(str, self.shared_files))}" if out.files else "")

    async def _check_password(self, out: CheckPassword, label: str) -> None:
        try:
            ok = await self._verifier.check(out.source, out.password, out.password_hash)
        except asyncio.CancelledError:
            log.info("%s: %s abandoned: the socket is closing", label, out.request)
            raise
        self._run(self.core.password_checked(out.conn, out.check, ok, now()))
        sock = self._sockets.get(out.conn)
        if sock is not None and not sock.authenticated:
            self._check_authenticated(sock)

    async def _rehash(self, out: Rehash) -> None:
        record = self.directory.get(out.agent_id)
        if record is None or self.directory_path is None:
            return
        new_hash = await self._verifier.hash(out.password)
        self._storing = self._storing or asyncio.Lock()
        try:
            async with self._storing:  # after a configuration being stored, never across it
                stored = await asyncio.to_thread(store_rehash, self.directory_path, out.agent_id,
                                                 record.password_hash, new_hash)
        except (OSError, ValueError) as exc:
            log.warning("could not store a stronger password hash for %s in %s: %s", out.agent_id,
                        self.directory_path, exc)
            return
        if stored:
            self.directory.rehashed(out.agent_id, new_hash)
            log.info("password hash of %s re-made with today's scrypt parameters", out.agent_id)

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background_tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._background_tasks.discard)

    def _enqueue(self, sock: _Socket, frame: str, write_now: bool = False) -> None:
        if sock.closing:
            return
        queued = sock.queued_bytes + len(frame) + sock.ws.transport.get_write_buffer_size()
        try:
            if queued > self.config.max_outbound_bytes:
                raise asyncio.QueueFull
            if write_now and self._write_now(sock, frame):
                return
            sock.queue.put_nowait(frame)
            sock.queued_bytes += len(frame)
        except asyncio.QueueFull:
            log.warning("%s: outbound queue full, closing (client too slow)", self.core.conns.get(sock.id) or sock.id)
            sock.queue = asyncio.Queue()  # drop the backlog; the writer ends the socket
            sock.queue.put_nowait(None)
            sock.queued_bytes = 0
            sock.closing = True
            self._spawn(sock, self._close_socket(sock, p.CloseCode.RATE_LIMITED, "client too slow"))

    def _close(self, sock: _Socket, code: p.CloseCode, reason: str) -> None:
        if sock.closing:
            return
        sock.closing = True
        if sock.check is not None:
            sock.check.cancel()
        if not sock.queue.full():
            sock.queue.put_nowait(None)

        async def close_after_flush() -> None:
            # Let the writer drain what was queued (the error telling why) before closing.
            if sock.writer is not None:
                await asyncio.wait([sock.writer], timeout=0.5)
            await self._close_socket(sock, code, reason)

        self._spawn(sock, close_after_flush())

    async def _close_socket(self, sock: _Socket, code: int, reason: str) -> None:
        """Close, and abort the connection if the close does not complete: a client that stopped
        reading would otherwise keep it (and what it holds) open for as long as it likes."""
        try:
            async with asyncio.timeout(CLOSE_WAIT_S):
                await sock.ws.close(code, reason)
        except TimeoutError:
            log.info("conn#%d: close did not complete in %.0f s; aborting the connection", sock.id, CLOSE_WAIT_S)
            sock.ws.transport.abort()

    def _spawn(self, sock: _Socket, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        sock.tasks.add(task)  # keep a reference until done
        task.add_done_callback(sock.tasks.discard)

    def _admit(self, sock: _Socket, mono: float) -> bool:
        """Token-bucket flood control: over the rate, frames are refused; a steady flood closes."""
        cfg = self.config
        sock.tokens = min(cfg.rate_burst, sock.tokens + (mono - sock.bucket_at) * cfg.rate_per_s)
        sock.bucket_at = mono
        if sock.tokens >= 1:
            sock.tokens -= 1
            # A flood gets a frame through whenever a token trickles in; it has only stopped
            # flooding once nothing was refused for a second.
            if mono - sock.last_refused > 1.0:
                sock.flooding_since = None
            return True
        sock.last_refused = mono
        if sock.flooding_since is None:
            sock.flooding_since = mono
        if mono - sock.flooding_since > 2.0:
            log.warning("%s: flooding, closing", self.core.conns.get(sock.id) or sock.id)
            self._close(sock, p.CloseCode.RATE_LIMITED, "rate limit exceeded")
        elif mono - sock.last_rate_notice >= 1.0:
            sock.last_rate_notice = mono
            self._enqueue(sock, p.encode(p.EventError(
                code="rate_limited", message=f"more than {cfg.rate_per_s:g} messages/s; frames are being dropped")))
        return False


def _open_file_limit() -> int:
    """The process's open-file limit, raised to its hard limit first (often 1,024 by default,
    which a contact center's sockets exceed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = 1_048_576 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft
