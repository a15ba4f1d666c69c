"""The interaction server: agent sessions, the reporting stream and the peer link.

One asyncio process per site. Every socket gets its own bounded outbound queue and writer task,
so a slow or hostile client can only hurt itself. All session state lives in plain dicts on the
server object and is changed only on the event loop, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import itertools
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from . import protocol as p
from .config import ServerConfig
from .directory import AgentRecord, Directory, verify_password
from .peer import PeerLink
from .routing import EngineRefusal, HeldChanged, Offer, Report, Revoke, RoutingEngine, SetState
from .tokens import TokenError, issue_token, peer_proof, verify_token

log = logging.getLogger("interaction_server")

# WebSocket close codes (docs/protocol.md, "Close codes").
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_INTERNAL = 1011
CLOSE_HEARTBEAT = 4000
CLOSE_TOO_MANY_ERRORS = 4001
CLOSE_UNSUPPORTED_VERSION = 4002
CLOSE_PEER_AUTH = 4003
CLOSE_RATE_LIMITED = 4008
CLOSE_SUPERSEDED = 4009

_ANSWER_CACHE = 256  # request ids remembered per socket and per agent
# A login may ask for at most this much above the newest epoch known for the agent: enough for a
# desktop that raises its epoch on every attempt through a long outage, and far from the wire
# limit, which one absurd request would otherwise push the pair's epochs past (breaking peer sync).
EPOCH_LEAP = 1_000
# The desktop retries a lost ack within seconds (heartbeat timeout, reconnect); a token copy
# turning up after the window is not that desktop.
LOST_ACK_WINDOW_MS = p.LOST_ACK_WINDOW_MS
PEER_SYNC_GRACE = 1.0  # seconds a restarted server waits for its peer before accepting logins anyway


def wall_ms() -> int:
    return int(time.time() * 1000)


class _LostAck(NamedTuple):
    """A login made with a resume token, whose lost-ack retry (the same token) is let through."""

    epoch: int
    token_epoch: int
    until_ms: int


class Refusal(Exception):
    """Raised by a handler to answer its request with EventError and no effect."""

    def __init__(self, code: p.ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class _LRU(collections.OrderedDict):
    def remember(self, key, value) -> None:
        self[key] = value
        if len(self) > _ANSWER_CACHE:
            self.popitem(last=False)


@dataclass(eq=False)
class Conn:
    """One client socket and what the server knows about it."""

    ws: ServerConnection
    id: int
    peer: str
    opened: float
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    registered: bool = False
    client_name: str = ""
    principal: AgentRecord | None = None
    kind: str = "client"  # client | peer
    login: "AgentSession | None" = None
    standby_for: str | None = None
    reporting: bool = False
    hb_interval: float = 0.5
    hb_timeout: float = 1.5
    last_rx: float = 0.0
    last_tx: float = 0.0
    errors: collections.deque = field(default_factory=lambda: collections.deque(maxlen=64))
    tokens: float = 0.0
    bucket_at: float = 0.0
    flooding_since: float | None = None
    last_refused: float = 0.0
    last_rate_notice: float = 0.0
    answers: _LRU = field(default_factory=_LRU)
    # Request ids being processed (credentials checked, or the peer awaited) -> how many retry
    # copies arrived meanwhile: each copy gets the original answer when it is sent.
    inflight: dict = field(default_factory=dict)
    verifying: asyncio.Task | None = None  # the one credentialed request being checked
    closing: bool = False
    writer: asyncio.Task | None = None

    def label(self) -> str:
        who = self.principal.id if self.principal else "-"
        return f"conn#{self.id} {self.peer} [{who}]"


@dataclass(eq=False)
class AgentSession:
    """A login: this server is the agent's primary for ``epoch``."""

    agent: AgentRecord
    epoch: int
    state: str
    since_ms: int
    login_ms: int
    conn: Conn
    reason: str | None = None
    place: str | None = None
    token_refresh: asyncio.TimerHandle | None = None
    # (issuing site, epoch) of the resume token this login was made with: a logout voids it too,
    # since the login it came from did not end with a logout (a failover or a failback).
    made_from: tuple[str, int] | None = None

    def report(self, interaction_id: str | None = None) -> p.AgentReport:
        return p.AgentReport(
            agent_id=self.agent.id, name=self.agent.name, epoch=self.epoch, state=self.state,
            since_ms=self.since_ms, login_ms=self.login_ms, reason=self.reason, place=self.place,
            interaction_id=interaction_id,
        )


class ReportingStream:
    """This server's reporting events: numbered, kept in a bounded replay buffer, fanned out."""

    def __init__(self, server_name: str, capacity: int):
        self.server = server_name
        self.stream_id = secrets.token_hex(8)  # new on every start: a resume across restarts fails
        self.seq = 0
        self.buffer: collections.deque[tuple[int, str]] = collections.deque(maxlen=capacity)
        self.subscribers: set[Conn] = set()

    def publish(self, make) -> None:
        self.seq += 1
        frame = p.encode(make(self.seq))
        self.buffer.append((self.seq, frame))
        for conn in self.subscribers:
            _enqueue(conn, frame)

    def replay_from(self, seq: int) -> list[str] | None:
        """Frames after ``seq``, or None when the buffer no longer reaches back that far."""
        if seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.buffer or self.buffer[0][0] > seq + 1:
            return None
        return [frame for s, frame in self.buffer if s > seq]


def _enqueue(conn: Conn, frame: str) -> None:
    if conn.closing:
        return
    try:
        conn.queue.put_nowait(frame)
    except asyncio.QueueFull:
        conn.closing = True
        log.warning("%s: outbound queue full, closing (client too slow)", conn.label())
        conn.queue = asyncio.Queue()  # drop the backlog; the writer ends the socket
        conn.queue.put_nowait(None)
        asyncio.get_running_loop().create_task(conn.ws.close(CLOSE_RATE_LIMITED, "client too slow"))


class InteractionServer:
    def __init__(self, config: ServerConfig, directory: Directory):
        self.config = config.validate()
        self.directory = directory
        self.name = config.name
        self.reasons = {r.code for r in config.reasons}
        self.dispositions = {d.code for d in config.dispositions}
        self.engine = RoutingEngine(config.queues, max_offer_timeouts=config.max_offer_timeouts,
                                    offer_timeout_reason=config.offer_timeout_reason,
                                    orphan_timeout_ms=config.orphan_timeout_ms)
        self._queue_members: dict[str, dict[str, int]] = collections.defaultdict(dict)  # agent -> queue -> penalty
        for queue in config.queues:
            for agent_id, penalty in queue.members:
                self._queue_members[agent_id][queue.name] = penalty
        # Published again only when they change; the snapshot carries the initial zeros.
        self._last_statistics: list | None = self.engine.statistics(0)
        self._sweep_at = time.monotonic()  # the heartbeat sweep's last run: a stall shows as a gap
        self.sessions: dict[str, AgentSession] = {}  # agent id -> login here
        self.standby: dict[str, set[Conn]] = collections.defaultdict(set)
        self.known_epoch: dict[str, int] = {}  # highest epoch ever seen for an agent
        # Agent -> (epoch of its last login made with a resume token, here or at the peer; that
        # token's epoch). A desktop whose failover login was acknowledged but whose link died
        # before the ack arrived retries with the same token; it is the only holder of that
        # token, so the retry is let through, here or (the peer told us) at the peer's survivor.
        # Ends after LOST_ACK_WINDOW_MS, or once that login's socket shows it got its ack.
        self.resumed_from: dict[str, _LostAck] = {}
        self.peer_logged_in: dict[str, int] = {}  # what the peer says it holds
        # Agent -> issuing site -> epoch of the agent's last login there that a logout (not a
        # handover) or a supervisor ended, as seen here or told by the peer: that site's tokens up
        # to that epoch are void, so a copy cannot log in again. Per site, because two sites cut
        # off from each other can both hand out the same epoch, and one's logout must not void
        # the other's live login.
        self.logged_out_epoch: dict[str, dict[str, int]] = collections.defaultdict(dict)
        self.agent_answers: dict[str, _LRU] = collections.defaultdict(_LRU)
        self.reporting = ReportingStream(self.name, config.replay_buffer)
        self.conns: set[Conn] = set()
        self.peer_inbound: set[Conn] = set()
        self._ids = itertools.count(1)
        self._server = None
        self._tasks: list[asyncio.Task] = []
        self.peer: PeerLink | None = None
        self.port: int | None = None
        self.peer_synced: asyncio.Event | None = None
        self.peer_name: str | None = None  # the peer's site name, once it has told us its epochs
        # Password checks (scrypt) share a small pool, first come first served; with at most one
        # per socket, a socket flooding logins waits its turn behind everyone else's.
        self._verifier = ThreadPoolExecutor(max_workers=config.password_workers, thread_name_prefix="scrypt")

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._server = await serve(
            self._handle, self.config.host, self.config.port,
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
        # A restarted server has forgotten every epoch. Logins wait (briefly) until the peer has
        # told us what it holds and has seen, so we never reuse an epoch or split the brain.
        self.peer_synced = asyncio.Event()
        if self.config.peer_url:
            asyncio.get_running_loop().call_later(PEER_SYNC_GRACE, self.peer_synced.set)
        else:
            self.peer_synced.set()
        self._sweep_at = time.monotonic()
        self._tasks.append(asyncio.create_task(self._sweep(), name="heartbeat-sweep"))
        if self.config.peer_url:
            self.peer = PeerLink(self, self.config.peer_url)
            self._tasks.append(asyncio.create_task(self.peer.run(), name="peer-link"))
        scheme = "wss" if self.config.tls_cert else "ws"
        log.info("server %s listening on %s://%s:%s (peer %s, duplicate policy %s)", self.name, scheme,
                 self.config.host, self.port, self.config.peer_url or "none", self.config.duplicate_policy)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.engine.hold(2**62)  # no offers to agents being logged out by the shutdown
        for session in list(self.sessions.values()):
            self._end_session(session, "server_shutdown", "server shutting down", close=False)
        writers = []
        for conn in list(self.conns):  # let every socket drain (the logouts above) before closing
            if not conn.closing and conn.writer is not None:
                conn.queue.put_nowait(None) if not conn.queue.full() else None
                writers.append(conn.writer)
            conn.closing = True
        if writers:
            await asyncio.wait(writers, timeout=1.0)
        if self._server is not None:
            self._server.close(close_connections=False)
            closing = [c.ws.close(CLOSE_GOING_AWAY, "server shutting down") for c in list(self.conns)]
            await asyncio.gather(*closing, return_exceptions=True)
            await self._server.wait_closed()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._verifier.shutdown(wait=False, cancel_futures=True)
        log.info("server %s stopped", self.name)

    # ------------------------------------------------------------------ socket loop

    async def _handle(self, ws: ServerConnection) -> None:
        now = time.monotonic()
        host, port, *_ = ws.remote_address or ("?", 0)
        conn = Conn(ws=ws, id=next(self._ids), peer=f"{host}:{port}", opened=now,
                    queue=asyncio.Queue(self.config.outbound_queue),
                    hb_interval=self.config.heartbeat_interval_ms / 1000,
                    hb_timeout=self.config.register_timeout_ms / 1000,
                    last_rx=now, last_tx=now, tokens=self.config.rate_burst, bucket_at=now)
        self.conns.add(conn)
        log.info("%s connected", conn.label())
        writer = conn.writer = asyncio.create_task(self._writer(conn))
        try:
            async for frame in ws:
                conn.last_rx = time.monotonic()
                if conn.last_rx - self._sweep_at > 1.0:
                    self._stalled(conn.last_rx - self._sweep_at)
                if not self._admit(conn):
                    continue
                try:
                    self._dispatch(conn, frame)
                except Exception:  # a bug must cost one request, never the process
                    log.exception("%s: internal error", conn.label())
                    self._send(conn, p.EventError(code="internal", message="internal server error; the request had no effect"))
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self._disconnected(conn)
            # The code we sent counts when the client never answered it (e.g. 1009: websockets
            # fails the connection without waiting), else every refusal would read as 1006.
            sent, rcvd = ws.protocol.close_sent, ws.protocol.close_rcvd
            code = rcvd.code if rcvd is not None else sent.code if sent is not None else ws.close_code
            log.info("%s disconnected (code %s%s)", conn.label(), code, f", {sent.reason}" if sent and sent.reason else "")

    async def _writer(self, conn: Conn) -> None:
        try:
            while True:
                frame = await conn.queue.get()
                if frame is None:
                    return
                await conn.ws.send(frame)
        except ConnectionClosed:
            pass

    def _send(self, conn: Conn, message: p.Message) -> str:
        frame = p.encode(message)
        conn.last_tx = time.monotonic()
        _enqueue(conn, frame)
        return frame

    def _close(self, conn: Conn, code: int, reason: str) -> None:
        if conn.closing:
            return
        conn.closing = True
        self._abandon_verification(conn)
        conn.queue.put_nowait(None) if not conn.queue.full() else None

        async def close_after_flush() -> None:
            # Let the writer drain what was queued (the error telling why) before closing.
            for _ in range(50):
                if conn.queue.empty():
                    break
                await asyncio.sleep(0.01)
            await conn.ws.close(code, reason)

        asyncio.get_running_loop().create_task(close_after_flush())

    def _abandon_verification(self, conn: Conn) -> None:
        """A closing socket's queued password check would only cost everyone else time."""
        if conn.verifying is not None:
            conn.verifying.cancel()

    def _admit(self, conn: Conn) -> bool:
        """Token-bucket flood control: over the rate, frames are refused; a steady flood closes."""
        now = conn.last_rx
        cfg = self.config
        conn.tokens = min(cfg.rate_burst, conn.tokens + (now - conn.bucket_at) * cfg.rate_per_s)
        conn.bucket_at = now
        if conn.tokens >= 1:
            conn.tokens -= 1
            # A flood gets a frame through whenever a token trickles in; it has only stopped
            # flooding once nothing was refused for a second.
            if now - conn.last_refused > 1.0:
                conn.flooding_since = None
            return True
        conn.last_refused = now
        if conn.flooding_since is None:
            conn.flooding_since = now
        if now - conn.flooding_since > 2.0:
            log.warning("%s: flooding, closing", conn.label())
            self._close(conn, CLOSE_RATE_LIMITED, "rate limit exceeded")
        elif now - conn.last_rate_notice >= 1.0:
            conn.last_rate_notice = now
            self._send(conn, p.EventError(code="rate_limited", message=f"more than {cfg.rate_per_s:g} messages/s; frames are being dropped"))
        return False

    def _protocol_error(self, conn: Conn, code: str, message: str, request_id: str | None) -> None:
        log.info("%s: %s: %s", conn.label(), code, message)
        self._answered(conn, request_id, self._send(conn, p.EventError(code=code, message=message, request_id=request_id)))
        now = time.monotonic()
        conn.errors.append(now)
        window = self.config.error_window_ms / 1000
        if sum(1 for t in conn.errors if now - t <= window) > self.config.max_errors:
            self._close(conn, CLOSE_TOO_MANY_ERRORS, "too many protocol errors")

    def _answered(self, conn: Conn, request_id: str | None, frame: str) -> None:
        """The answer again for each retry copy that arrived while its request was in flight."""
        for _ in range(conn.inflight.pop(request_id, 0)):
            _enqueue(conn, frame)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, conn: Conn, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self._protocol_error(conn, "bad_message", "binary frames are not accepted; send JSON text frames", None)
            return
        try:
            msg = p.decode_client(frame)
        except p.ProtocolError as exc:
            self._protocol_error(conn, exc.code, exc.message, exc.request_id)
            return
        if isinstance(msg, p.Heartbeat):
            return
        if isinstance(msg, p.PeerHello):
            self._peer_hello(conn, msg)
            return
        if isinstance(msg, (p.PeerAgentEpochs, p.PeerInteractions, p.PeerInteractionsAck)):
            if conn.kind != "peer":
                self._protocol_error(conn, "forbidden", "peer messages need a peer link (PeerHello)", None)
            elif isinstance(msg, p.PeerAgentEpochs):
                self.peer_epochs_received(msg)
            elif isinstance(msg, p.PeerInteractions):
                self.peer_interactions_received(msg, reply_to=conn)
            return
        request_id = msg.request_id
        cached = conn.answers.get(request_id)
        if cached is None and conn.principal and not isinstance(msg, _SOCKET_BINDING):
            cached = self.agent_answers[conn.principal.id].get(request_id)
        if cached is not None:
            _enqueue(conn, cached)  # a retry: the original answer, no second effect
            return
        if request_id in conn.inflight:  # a retry of a request still in flight: it gets the same answer
            conn.inflight[request_id] += 1
            return
        handler = self._handlers.get(type(msg))
        if not conn.registered and not isinstance(msg, p.RequestRegisterClient):
            self._protocol_error(conn, "not_registered", "send RequestRegisterClient first", request_id)
            return
        if isinstance(msg, _CREDENTIALED) and (msg.password is None) == (msg.resume_token is None):
            self._protocol_error(conn, "bad_message", f"{type(msg).__name__} needs exactly one of password and resume_token", request_id)
            return
        if handler in _ASYNC_HANDLERS:
            if conn.verifying is not None:
                self._protocol_error(conn, "login_in_progress", "another credentialed request on this socket is still "
                                     "being verified; wait for its answer", request_id)
                return
            conn.inflight[request_id] = 0
            conn.verifying = asyncio.get_running_loop().create_task(self._run_async(conn, handler, msg))
            return
        self._answer(conn, msg, handler)

    def _answer(self, conn: Conn, msg: p.Request, handler, *args) -> None:
        try:
            ack, after = handler(self, conn, msg, *args)
        except _Silent:
            return
        except _Deferred as deferred:
            conn.inflight[msg.request_id] = 0
            asyncio.get_running_loop().create_task(self._answer_later(conn, msg, deferred))
            return
        except Refusal as refusal:
            self._protocol_error(conn, refusal.code, refusal.message, msg.request_id)
            return
        self._deliver(conn, msg, ack, after)

    def _deliver(self, conn: Conn, msg: p.Request, ack: p.EventAck, after) -> None:
        frame = self._send(conn, ack)
        conn.answers.remember(msg.request_id, frame)
        self._answered(conn, msg.request_id, frame)
        if conn.principal and not isinstance(msg, _SOCKET_BINDING):
            self.agent_answers[conn.principal.id].remember(msg.request_id, frame)
        for event in after:
            if callable(event):  # work that must follow the answer (an offer after a login)
                event()
            else:
                self._send(conn, event)

    async def _answer_later(self, conn: Conn, msg: p.Request, deferred: "_Deferred") -> None:
        """Answer once the peer confirmed (or did not answer in time: then it is taken as down)."""
        try:
            try:
                async with asyncio.timeout(self.config.peer_ack_timeout_ms / 1000):
                    refused = await deferred.waiter
            except TimeoutError:
                log.warning("%s: the peer did not confirm %s in time; going ahead", conn.label(), type(msg).__name__)
                refused = None
            try:
                ack, after = deferred.finish(refused or frozenset())
            except Refusal as refusal:
                self._protocol_error(conn, refusal.code, refusal.message, msg.request_id)
                return
            self._deliver(conn, msg, ack, after)
        except Exception:
            self._internal_error(conn, msg.request_id)
        finally:
            conn.inflight.pop(msg.request_id, None)

    def _internal_error(self, conn: Conn, request_id: str) -> None:
        log.exception("%s: internal error", conn.label())
        frame = self._send(conn, p.EventError(code="internal", message="internal server error; the request had no effect",
                                              request_id=request_id))
        self._answered(conn, request_id, frame)

    async def _run_async(self, conn: Conn, handler, msg) -> None:
        """Verify credentials off the loop (scrypt), then run the handler on the loop."""
        try:
            if isinstance(msg, p.RequestAgentLogin) and not self.peer_synced.is_set():
                await self.peer_synced.wait()
            try:
                record = await self._authenticate(msg)
            except Refusal as refusal:
                self._protocol_error(conn, refusal.code, refusal.message, msg.request_id)
                return
            if conn.ws.close_code is not None or conn.closing:
                return
            self._answer(conn, msg, handler, record)
        except asyncio.CancelledError:
            log.info("%s: %s abandoned: the socket is closing", conn.label(), type(msg).__name__)
        except Exception:  # as in _handle: a bug costs one request (answered), never silence
            self._internal_error(conn, msg.request_id)
        finally:
            conn.inflight.pop(msg.request_id, None)
            conn.verifying = None

    async def _authenticate(self, msg) -> tuple[AgentRecord, int | None]:
        """(record, token epoch, token's issuing site); epoch and site None for a password."""
        user_id = msg.user_id if isinstance(msg, p.RequestSubscribeReporting) else msg.agent_id
        record = self.directory.get(user_id)
        if msg.resume_token is not None:
            try:
                claim = verify_token(self.config.secret, msg.resume_token, wall_ms())
            except TokenError as exc:
                raise Refusal(exc.code, str(exc)) from None
            if claim.agent_id != user_id or record is None:
                raise Refusal("invalid_token", "resume token belongs to another user")
            void = self.logged_out_epoch.get(user_id, {}).get(claim.site, 0)  # no site: never voided
            if not isinstance(msg, p.RequestSubscribeReporting) and claim.epoch <= void:
                raise Refusal("invalid_token", f"the login of this token (epoch {claim.epoch}) was logged out; "
                                               f"log in with the password")
            return record, claim.epoch, claim.site
        hash_ = record.password_hash if record else _DUMMY_HASH  # same cost for unknown ids
        ok = await asyncio.get_running_loop().run_in_executor(self._verifier, verify_password, msg.password, hash_)
        if not ok or record is None:
            raise Refusal("bad_credentials", "unknown user or wrong password")
        return record, None, None

    # ------------------------------------------------------------------ handlers

    def _register(self, conn: Conn, msg: p.RequestRegisterClient):
        if conn.registered:
            raise Refusal("already_registered", "this socket is already registered")
        if msg.protocol_version != p.PROTOCOL_VERSION:
            self._send(conn, p.EventError(code="unsupported_version", request_id=msg.request_id,
                                          message=f"this server speaks protocol version {p.PROTOCOL_VERSION}"))
            self._close(conn, CLOSE_UNSUPPORTED_VERSION, "unsupported protocol version")
            raise _Silent()
        conn.registered = True
        conn.client_name = msg.client_name
        interval = msg.heartbeat_interval_ms or self.config.heartbeat_interval_ms
        timeout = max(self.config.heartbeat_timeout_ms, 3 * interval)
        conn.hb_interval, conn.hb_timeout = interval / 1000, timeout / 1000
        log.info("%s registered as %r", conn.label(), msg.client_name)
        return p.EventAck(
            request_id=msg.request_id, server=self.name, protocol_version=p.PROTOCOL_VERSION,
            heartbeat_interval_ms=interval, heartbeat_timeout_ms=timeout, reasons=list(self.config.reasons),
            dispositions=list(self.config.dispositions),
        ), ()

    def _bind(self, conn: Conn, record: AgentRecord) -> None:
        if conn.principal is not None and conn.principal.id != record.id:
            raise Refusal("forbidden", f"this socket belongs to {conn.principal.id}; open another socket for {record.id}")
        conn.principal = record

    def _login(self, conn: Conn, msg: p.RequestAgentLogin, auth):
        record, token_epoch, token_site = auth
        self._bind(conn, record)
        if conn.login is not None:
            raise Refusal("already_logged_in", f"this socket is already logged in at epoch {conn.login.epoch}")
        agent_id = record.id
        now = wall_ms()
        state, reason, since = "not_ready", None, now
        if msg.state is not None:
            state, since = msg.state.state, min(msg.state.since_ms, now)
            reason = msg.state.reason if state == "not_ready" else None
            if reason is not None and reason not in self.reasons:
                raise Refusal("invalid_reason", f"unknown Not Ready reason {reason!r}; known: {sorted(self.reasons)}")
        here = self.sessions.get(agent_id)
        current = max(here.epoch if here else 0, self.peer_logged_in.get(agent_id, 0))
        # A newer login seen here or told by the peer makes the token stale even when that login
        # is gone (peer lost, logged out): epochs only go up.
        newest = max(current, self.known_epoch.get(agent_id, 0))
        # The lost-ack retry asks for an epoch above the login it repeats; a late original does not,
        # so it can never displace the retry that overtook it.
        if msg.epoch is not None and msg.epoch > max(newest, token_epoch or 0) + EPOCH_LEAP:
            raise Refusal("bad_message", f"epoch {msg.epoch} is more than {EPOCH_LEAP} above the newest epoch known "
                                         f"for agent {agent_id} ({newest}); ask for your last epoch + 1")
        lost_ack = self.resumed_from.get(agent_id)
        retry = (token_epoch is not None and lost_ack is not None
                 and (lost_ack.epoch, lost_ack.token_epoch) == (newest, token_epoch)
                 and now <= lost_ack.until_ms and (msg.epoch or 0) > newest)
        if token_epoch is not None and token_epoch < newest and not retry:
            raise Refusal("stale_epoch", f"the agent has logged in again since this token (epoch {newest}); log in with the password")
        duplicate = (here is not None or agent_id in self.peer_logged_in) and token_epoch is None
        if duplicate and self.config.duplicate_policy == "deny":
            where = "here" if here else "at the peer site"
            raise Refusal("already_logged_in", f"agent {agent_id} is already logged in {where} (duplicate policy: deny)")
        known = max(current, self.known_epoch.get(agent_id, 0), token_epoch or 0)
        epoch = max(msg.epoch or 1, known + 1)
        replaced = None
        if duplicate:  # force-logout: tell the new desktop whose login it ended
            replaced = (p.ReplacedLogin(server=self.name, epoch=here.epoch) if here is not None else
                        p.ReplacedLogin(server=self.peer_name or "peer", epoch=self.peer_logged_in[agent_id]))
        if here is not None:
            ended = "duplicate_login" if duplicate else "moved"  # not `reason`: that is the new state's
            self._end_session(here, ended, f"logged in again elsewhere (epoch {epoch})", close=True)
        if conn.standby_for is not None:
            self.standby[conn.standby_for].discard(conn)
            conn.standby_for = None
        session = AgentSession(agent=record, epoch=epoch, state=state, reason=reason, since_ms=since,
                               login_ms=now, conn=conn, place=msg.place,
                               made_from=(token_site, token_epoch) if token_site is not None else None)
        self.sessions[agent_id] = session
        self.known_epoch[agent_id] = epoch
        if token_epoch is not None:
            self.resumed_from[agent_id] = _LostAck(epoch, token_epoch, now + LOST_ACK_WINDOW_MS)
        else:
            self.resumed_from.pop(agent_id, None)
        conn.login = session
        token, expires = self._issue_token(session)
        # Adopt what a failover login brings before anything can be offered to the agent.
        adopted, effects = self.engine.login(agent_id, self._penalties(record), state, now, msg.interactions,
                                             msg.state.until_ms if msg.state is not None else None)
        self.reporting.publish(lambda seq: p.EventAgentLogin(server=self.name, seq=seq, agent=self._report(session)))
        if self.peer:
            # A password login while the peer holds the agent is a second desktop, not a move.
            self.peer.tell({agent_id: epoch}, [], [agent_id] if duplicate else [],
                           {agent_id: token_epoch} if token_epoch is not None else None)
        log.info("%s: agent %s logged in at epoch %d (%s%s)%s", conn.label(), agent_id, epoch,
                 "resume token" if token_epoch is not None else "password", ", duplicate" if duplicate else "",
                 f", adopted {adopted}" if adopted else "")
        if adopted:
            self._replicate([self._peer_row(self.engine.interactions[i], "held", "adopt") for i in adopted])
        return p.EventAck(request_id=msg.request_id, server=self.name, role="primary", epoch=epoch,
                          resume_token=token, token_expires_ms=expires, replaced=replaced), (self._status(session), lambda: self._apply(effects))

    def _issue_token(self, session: AgentSession) -> tuple[str, int]:
        expires = wall_ms() + self.config.token_ttl_ms
        token = issue_token(self.config.secret, session.agent.id, session.epoch, expires, site=self.name)
        loop = asyncio.get_running_loop()
        session.token_refresh = loop.call_later(self.config.token_ttl_ms / 2000, self._refresh_token, session)
        return token, expires

    def _refresh_token(self, session: AgentSession) -> None:
        if self.sessions.get(session.agent.id) is session:
            token, expires = self._issue_token(session)
            self._send(session.conn, p.EventResumeToken(epoch=session.epoch, resume_token=token, token_expires_ms=expires))

    def _available(self, conn: Conn, msg: p.RequestAgentAvailable, auth):
        record, _, _ = auth
        self._bind(conn, record)
        if conn.login is not None:
            raise Refusal("invalid_state", "this socket holds the login; it cannot also be the standby")
        conn.standby_for = record.id
        self.standby[record.id].add(conn)
        log.info("%s: agent %s available (secondary)", conn.label(), record.id)
        return p.EventAck(request_id=msg.request_id, server=self.name, role="secondary"), ()

    def _not_available(self, conn: Conn, msg: p.RequestAgentNotAvailable):
        if conn.standby_for is None:
            raise Refusal("invalid_state", "this socket is not a standby (send RequestAgentAvailable first)")
        log.info("%s: agent %s not available (standby withdrawn)", conn.label(), conn.standby_for)
        self.standby[conn.standby_for].discard(conn)
        conn.standby_for = None
        return p.EventAck(request_id=msg.request_id, server=self.name), ()

    def _own_login(self, conn: Conn, epoch: int) -> AgentSession:
        if conn.principal is None:
            raise Refusal("not_authenticated", "log in first (RequestAgentLogin)")
        session = conn.login
        if session is None:
            raise Refusal("not_logged_in", "this socket has no login; send RequestAgentLogin first")
        if epoch != session.epoch:
            raise Refusal("stale_epoch", f"request for epoch {epoch}, but the login here is at epoch {session.epoch}")
        marker = self.resumed_from.get(session.agent.id)
        if marker is not None and marker.epoch == epoch:
            del self.resumed_from[session.agent.id]  # it knows its epoch: it got the ack, no retry to expect
        return session

    def _set_state(self, conn: Conn, msg, state: str, reason: str | None = None):
        session = self._own_login(conn, msg.epoch)
        if reason is not None and reason not in self.reasons:
            raise Refusal("invalid_reason", f"unknown Not Ready reason {reason!r}; known: {sorted(self.reasons)}")
        self.change_state(session, state, reason)
        effects = self.engine.set_state(session.agent.id, state, wall_ms())
        return (p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch),
                (self._status(session), lambda: self._apply(effects)))

    def change_state(self, session: AgentSession, state: str, reason: str | None, forced_by: str | None = None,
                     since_ms: int | None = None) -> bool:
        """Record and report a state change (the routing engine is told by the caller)."""
        if (session.state, session.reason) == (state, reason):
            return False
        session.state, session.reason = state, reason
        session.since_ms = since_ms if since_ms is not None else wall_ms()
        self.reporting.publish(lambda seq: p.EventAgentStateChanged(
            server=self.name, seq=seq, agent_id=session.agent.id, epoch=session.epoch, state=state,
            since_ms=session.since_ms, reason=reason, forced_by=forced_by))
        return True

    def _ready(self, conn, msg):
        return self._set_state(conn, msg, "ready")

    def _not_ready(self, conn, msg):
        return self._set_state(conn, msg, "not_ready", msg.reason)

    def _acw(self, conn, msg):
        return self._set_state(conn, msg, "after_call_work")

    def _logout(self, conn: Conn, msg: p.RequestAgentLogout):
        session = self._own_login(conn, msg.epoch)
        self._end_session(session, "logout", "logged out", close=False, void_tokens=not msg.handover)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _subscribe(self, conn: Conn, msg: p.RequestSubscribeReporting, auth):
        record, _, _ = auth
        if record.role not in ("supervisor", "carrier"):
            raise Refusal("forbidden", f"{record.id} is not a supervisor; the reporting stream needs the supervisor (or carrier) role")
        self._bind(conn, record)
        stream = self.reporting
        replay = None
        if msg.resume is not None and msg.resume.stream_id == stream.stream_id:
            replay = stream.replay_from(msg.resume.seq)
        expires = wall_ms() + self.config.token_ttl_ms
        token = issue_token(self.config.secret, record.id, 1, expires, site=self.name)
        ack = p.EventAck(request_id=msg.request_id, server=self.name, stream_id=stream.stream_id,
                         resume_token=token, token_expires_ms=expires)
        conn.reporting = True
        stream.subscribers.add(conn)
        log.info("%s: supervisor %s subscribed (%s)", conn.label(), record.id,
                 "replay" if replay is not None else "snapshot")
        if replay is not None:
            def send_replay() -> None:  # the stored frames, as they were, after the ack
                for frame in replay:
                    _enqueue(conn, frame)
            return ack, (send_replay,)
        snapshot = p.EventReportingSnapshot(server=self.name, stream_id=stream.stream_id, seq=stream.seq,
                                            agents=[self._report(s) for s in self.sessions.values()],
                                            queues=self.engine.statistics(wall_ms()))
        return ack, (snapshot,)

    def _supervised(self, conn: Conn, agent_id: str) -> AgentSession:
        """The session a supervisor action targets; only on a subscribed supervisor socket."""
        if conn.principal is None or not conn.reporting:
            raise Refusal("not_authenticated", "subscribe to reporting as a supervisor first (RequestSubscribeReporting)")
        if conn.principal.role != "supervisor":
            raise Refusal("forbidden", f"{conn.principal.id} is not a supervisor")
        session = self.sessions.get(agent_id)
        if session is None:
            raise Refusal("not_logged_in", f"agent {agent_id} is not logged in at {self.name}; ask the server that reports it")
        return session

    def _force_not_ready(self, conn: Conn, msg: p.RequestForceNotReady):
        session = self._supervised(conn, msg.agent_id)
        if msg.reason not in self.reasons:
            raise Refusal("invalid_reason", f"unknown Not Ready reason {msg.reason!r}; known: {sorted(self.reasons)}")
        by = conn.principal.id
        self.change_state(session, "not_ready", msg.reason, forced_by=by)
        self._apply(self.engine.set_state(session.agent.id, "not_ready", wall_ms()))
        self._send(session.conn, self._status(session, forced_by=by))
        log.info("%s: supervisor %s set agent %s Not Ready (%s)", conn.label(), by, msg.agent_id, msg.reason)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _force_logout(self, conn: Conn, msg: p.RequestForceLogout):
        session = self._supervised(conn, msg.agent_id)
        by = conn.principal.id
        self._end_session(session, "forced", f"logged out by supervisor {by}", close=True, by=by, void_tokens=True)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    # ------------------------------------------------------------------ interactions

    def _penalties(self, record: AgentRecord) -> dict[str, int]:
        """Queue -> penalty: the directory's memberships, overridden by the site's queue members."""
        return {**record.queue_penalties(), **self._queue_members.get(record.id, {})}

    def _engine(self, call, *args):
        try:
            return call(*args)
        except EngineRefusal as refusal:
            raise Refusal(refusal.code, refusal.message) from None

    def _apply(self, effects: list) -> None:
        """Carry out what the routing engine decided: offers, revocations, reports, state changes."""
        now = wall_ms()
        for effect in effects:
            if isinstance(effect, Report):
                i = effect.interaction
                session = self.sessions.get(effect.agent_id) if effect.agent_id else None
                self.reporting.publish(lambda seq, e=effect, i=i, session=session: p.EventInteraction(
                    server=self.name, seq=seq, interaction_id=i.interaction_id, event=e.event, at_ms=now,
                    queue=i.queue, media=i.media, agent_id=e.agent_id, epoch=session.epoch if session else None,
                    disposition=e.disposition, reason=e.reason[:256] if e.reason else None))
                if effect.event == "abandoned":  # so that a re-submission to the peer is a duplicate
                    self._replicate([p.PeerInteractionRecord(interaction_id=i.interaction_id, status="ended",
                                                             queue=i.queue, media=i.media, agent_id=effect.agent_id)])
                continue
            session = self.sessions.get(effect.agent_id)
            if session is None:
                continue
            if isinstance(effect, Offer):
                self._send(session.conn, p.EventInvite(agent_id=effect.agent_id, epoch=session.epoch,
                                                       interaction=effect.interaction, offered_ms=effect.offered_ms,
                                                       expires_ms=effect.expires_ms))
            elif isinstance(effect, Revoke):
                self._send(session.conn, p.EventInviteRevoked(agent_id=effect.agent_id, epoch=session.epoch,
                                                              interaction_id=effect.interaction_id,
                                                              reason=effect.reason, message=effect.message))
            elif isinstance(effect, SetState):
                self.change_state(session, effect.state, effect.reason, since_ms=effect.at_ms)
                self._send(session.conn, self._status(session))
            elif isinstance(effect, HeldChanged):
                self._send(session.conn, self._status(session))

    def _accept(self, conn: Conn, msg: p.RequestAccept):
        session = self._own_login(conn, msg.epoch)
        iid = msg.interaction_id
        effects = self._engine(self.engine.accept, session.agent.id, iid, wall_ms())
        ack = p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch)
        if not effects:  # already in this agent's hands: a repeat
            return ack, (self._status(session),)

        def finish(refused):
            if iid in refused:  # an agent at the peer site has it: the first taker keeps it
                self._apply(self.engine.accept_refused(session.agent.id, iid, wall_ms(), "taken by an agent at the peer site"))
                raise Refusal("unknown_interaction", f"{iid} was taken by an agent at the peer site")
            self.engine.confirm(iid)
            self._apply(effects)
            return ack, (self._status(session),)

        waiter = self._replicate([self._peer_row(self.engine.interactions[iid], "held", "accept")])
        if waiter is None:
            return finish(frozenset())
        raise _Deferred(waiter, finish)

    def _reject(self, conn: Conn, msg: p.RequestReject):
        session = self._own_login(conn, msg.epoch)
        effects = self._engine(self.engine.reject, session.agent.id, msg.interaction_id, wall_ms())
        return (p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch),
                (lambda: self._apply(effects),))

    def _update_notes(self, conn: Conn, msg: p.RequestUpdateNotes):
        session = self._own_login(conn, msg.epoch)
        self._engine(self.engine.update_notes, session.agent.id, msg.interaction_id, msg.notes)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _complete(self, conn: Conn, msg: p.RequestCompleteInteraction):
        session = self._own_login(conn, msg.epoch)
        if msg.disposition not in self.dispositions:
            raise Refusal("invalid_disposition", f"unknown disposition {msg.disposition!r}; known: {sorted(self.dispositions)}")
        iid = msg.interaction_id
        effects = self._engine(self.engine.complete, session.agent.id, iid, msg.disposition, msg.notes, wall_ms())
        ack = p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch)
        if not effects:  # completed already (here, or at the peer before a failover): a repeat
            return ack, (self._status(session),)

        item = self.engine.interactions.get(iid)
        if item is None:  # completed at the peer, which died before reporting it: reported here
            self._apply(effects)
            self._replicate([self._peer_row_for(iid, effects, "reported")])
            return ack, (self._status(session),)

        def finish(refused):
            # Reported only once the peer knows: if this server dies now, the survivor answers a
            # re-sent completion as a repeat instead of counting it a second time. Then the peer
            # is told it was reported (until then it would report a re-sent completion itself).
            # The next offer for the agent follows the answer and the status.
            self._apply([e for e in effects if not isinstance(e, Offer)])
            self.engine.mark_reported(iid)
            self._replicate([self._peer_row(item, "completed", "reported")])
            return ack, (self._status(session), lambda: self._apply([e for e in effects if isinstance(e, Offer)]))

        waiter = self._replicate([self._peer_row(item, "completed", "complete")])
        if waiter is None:
            return finish(frozenset())
        raise _Deferred(waiter, finish)

    def _submit(self, conn: Conn, msg: p.RequestSubmitInteraction):
        principal = conn.principal
        if principal is not None and principal.role == "agent":
            raise Refusal("forbidden", f"{principal.id} is an agent; interactions are submitted by a carrier or a supervisor")
        if principal is None or not conn.reporting:
            raise Refusal("not_authenticated", "subscribe as a carrier or supervisor first (RequestSubscribeReporting)")
        effects = self._engine(self.engine.submit, msg.interaction, wall_ms())
        return p.EventAck(request_id=msg.request_id, server=self.name), (lambda: self._apply(effects),)

    def _peer_row(self, item, status: str, claim: str) -> p.PeerInteractionRecord:
        i = item.interaction
        return p.PeerInteractionRecord(interaction_id=i.interaction_id, status=status, queue=i.queue, media=i.media,
                                       agent_id=item.agent_id, claim=claim)

    def _peer_row_for(self, iid: str, effects: list, claim: str) -> p.PeerInteractionRecord:
        report = next(e for e in effects if isinstance(e, Report))
        return p.PeerInteractionRecord(interaction_id=iid, status="completed", queue=report.interaction.queue,
                                       media=report.interaction.media, agent_id=report.agent_id, claim=claim)

    def _replicate(self, rows: list) -> "asyncio.Future | None":
        """Tell the peer what we hold or completed; a future of the ids it refused, or None when
        there is no peer link to wait for."""
        if self.peer is None or not rows:
            return None
        return self.peer.replicate(rows)

    def _stalled(self, seconds: float) -> None:
        """The process was stopped: agents have probably moved meanwhile. Offer nothing (and time
        no offer out) until the peer has told us its epochs, which fences the logins that moved, or
        a heartbeat timeout has passed. Also called from the frame loop, which may run before the
        sweep notices: frames queued during the stall must not be routed to stale logins."""
        if self.engine.hold_until > wall_ms():
            return
        log.warning("stalled for %.1f s: no offers until the peer is heard", seconds)
        self.engine.hold(wall_ms() + self.config.heartbeat_timeout_ms)
        self._sweep_at = time.monotonic()

    def _publish_statistics(self) -> None:
        if not self.engine.queues:
            return
        stats = self.engine.statistics(wall_ms())
        if stats == self._last_statistics:
            return
        self._last_statistics = stats
        self.reporting.publish(lambda seq: p.EventQueueStatistics(server=self.name, seq=seq, at_ms=wall_ms(), queues=stats))

    # ------------------------------------------------------------------ session end

    def _status(self, session: AgentSession, forced_by: str | None = None) -> p.EventCurrentAgentStatus:
        return p.EventCurrentAgentStatus(
            agent_id=session.agent.id, epoch=session.epoch, server=self.name, state=session.state,
            since_ms=session.since_ms, reason=session.reason, place=session.place, forced_by=forced_by,
            interaction_ids=self.engine.held_by(session.agent.id), until_ms=self.engine.acw_until(session.agent.id))

    def _report(self, session: AgentSession) -> p.AgentReport:
        held = self.engine.held_by(session.agent.id)
        return session.report(held[0] if held else None)

    def _end_session(self, session: AgentSession, reason: str, message: str, *, close: bool, by: str | None = None,
                     void_tokens: bool = False) -> None:
        agent_id = session.agent.id
        if self.sessions.get(agent_id) is not session:
            return
        del self.sessions[agent_id]
        session.conn.login = None
        if session.token_refresh:
            session.token_refresh.cancel()
        self.reporting.publish(lambda seq: p.EventAgentLogout(
            server=self.name, seq=seq, agent_id=agent_id, epoch=session.epoch, reason=reason))
        self._apply(self.engine.logout(agent_id, wall_ms()))
        voided = {}
        if void_tokens:  # this login's own tokens, and the token it was made from
            voided = {self.name: session.epoch}
            if session.made_from is not None:
                site, epoch = session.made_from
                voided[site] = max(epoch, voided.get(site, 0))
            for site, epoch in voided.items():
                self._void_tokens(agent_id, site, epoch)
        if self.peer:
            self.peer.tell({}, [agent_id], logged_out_epochs={agent_id: voided} if voided else None)
        log.info("%s: agent %s logged out at epoch %d (%s)", session.conn.label(), agent_id, session.epoch, reason)
        if close:
            self._send(session.conn, p.EventForcedLogout(agent_id=agent_id, epoch=session.epoch, reason=reason,
                                                         message=message, by=by))
            self._close(session.conn, CLOSE_SUPERSEDED, reason)

    def _void_tokens(self, agent_id: str, site: str, epoch: int) -> None:
        voids = self.logged_out_epoch[agent_id]
        voids[site] = max(voids.get(site, 0), epoch)

    def _disconnected(self, conn: Conn) -> None:
        self.conns.discard(conn)
        self.peer_inbound.discard(conn)
        self.reporting.subscribers.discard(conn)
        if conn.kind == "peer" and not self.peer_inbound:
            self.peer_logged_in.clear()  # the peer's logins are unknown now, not still valid
            self.engine.peer_lost(wall_ms())
        if conn.standby_for is not None:
            self.standby[conn.standby_for].discard(conn)
        self._abandon_verification(conn)
        if conn.login is not None:
            self._end_session(conn.login, "disconnected", "link lost", close=False)

    # ------------------------------------------------------------------ peer

    def _peer_hello(self, conn: Conn, msg: p.PeerHello) -> None:
        if not hmac.compare_digest(peer_proof(self.config.secret, msg.server).encode(), msg.proof.encode()):
            log.warning("%s: peer %r failed authentication", conn.label(), msg.server)
            self._close(conn, CLOSE_PEER_AUTH, "peer authentication failed")
            return
        conn.kind = "peer"
        conn.registered = True
        conn.hb_timeout = self.config.heartbeat_timeout_ms / 1000
        self.peer_inbound.add(conn)
        # Answer on the same link with what we hold and know: the dialling server may have just
        # restarted and is waiting for this before it accepts logins.
        # Interactions first: the full epochs end a stalled server's hold on offers, and by then it
        # must know what our agents hold.
        for frame in self.peer_interaction_sync():
            self._send(conn, frame)
        self._send(conn, self.peer_state())
        log.info("%s: peer link from %s", conn.label(), msg.server)

    def peer_state(self) -> p.PeerAgentEpochs:
        held = self.held_epochs()
        now = wall_ms()
        resumed = {agent: marker.token_epoch for agent, marker in self.resumed_from.items()
                   if held.get(agent) == marker.epoch and marker.until_ms >= now}
        return p.PeerAgentEpochs(server=self.name, epochs=held, known=dict(self.known_epoch), full=True, resumed=resumed,
                                 logged_out_epochs={agent: dict(sites) for agent, sites in self.logged_out_epoch.items()})

    def peer_epochs_received(self, msg: p.PeerAgentEpochs) -> None:
        self.peer_name = msg.server
        if msg.full:
            self.peer_logged_in.clear()
            for agent_id, epoch in msg.known.items():
                self.known_epoch[agent_id] = max(self.known_epoch.get(agent_id, 0), epoch)
            self.peer_synced.set()
            self.engine.hold(0)  # fresh news from the peer: a stalled server may offer again
        for agent_id in msg.logged_out:
            self.peer_logged_in.pop(agent_id, None)
        for agent_id, sites in msg.logged_out_epochs.items():
            for site, epoch in sites.items():
                self._void_tokens(agent_id, site, epoch)
        for agent_id, epoch in msg.epochs.items():
            self.peer_logged_in[agent_id] = epoch
            self.known_epoch[agent_id] = max(self.known_epoch.get(agent_id, 0), epoch)
            if agent_id in msg.resumed:
                self.resumed_from[agent_id] = _LostAck(epoch, msg.resumed[agent_id], wall_ms() + LOST_ACK_WINDOW_MS)
            elif agent_id in self.resumed_from and self.resumed_from[agent_id].epoch <= epoch:
                # A password login there at this epoch or above: an older marker describes nothing.
                self.resumed_from.pop(agent_id, None)
            here = self.sessions.get(agent_id)
            # Equal epochs (two logins during a partition) are settled the same way on both
            # sides: the server with the smaller name keeps the login.
            if here is not None and (here.epoch < epoch or (here.epoch == epoch and msg.server < self.name)):
                reason = "duplicate_login" if agent_id in msg.duplicates else "moved"
                self._end_session(here, reason, f"logged in at {msg.server} at epoch {epoch}", close=True, by=msg.server)

    def peer_interaction_sync(self) -> list[p.PeerInteractions]:
        """Every interaction held or completed here, in frames small enough for the peer's limit."""
        rows = [p.PeerInteractionRecord(interaction_id=iid, status=status, queue=queue, media=media, agent_id=agent,
                                        claim=claim)
                for iid, status, agent, queue, media, claim in self.engine.peer_records()]
        return [p.PeerInteractions(server=self.name, records=rows[i:i + 100]) for i in range(0, len(rows), 100)]

    def peer_interactions_received(self, msg: p.PeerInteractions, reply_to: Conn | None) -> None:
        refused = []
        now = wall_ms()
        for row in msg.records:
            agreed, effects = self.engine.peer_record(row.interaction_id, row.status, row.agent_id, row.queue,
                                                      row.media, row.claim, now, peer_wins_ties=msg.server < self.name)
            if not agreed:
                refused.append(row.interaction_id)
                log.info("peer %s: refused %s claim on %s (held or completed here)", msg.server, row.claim, row.interaction_id)
            self._apply(effects)
        if msg.ack_id is not None and reply_to is not None:
            self._send(reply_to, p.PeerInteractionsAck(server=self.name, ack_id=msg.ack_id, refused=refused))

    def held_epochs(self) -> dict[str, int]:
        return {agent_id: s.epoch for agent_id, s in self.sessions.items()}

    # ------------------------------------------------------------------ heartbeats

    async def _sweep(self) -> None:
        """Send heartbeats on quiet sockets and close silent ones, for every socket at once."""
        period = 0.1
        last = time.monotonic()
        last_statistics = last
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if now - last > 1.0:
                # The whole process stalled (SIGSTOP, swap): the silence was ours, not theirs.
                log.warning("server stalled for %.1f s; giving every socket a fresh timeout", now - last)
                for conn in self.conns:
                    conn.last_rx = now
                self._stalled(now - last)
            last = self._sweep_at = now
            self._apply(self.engine.tick(wall_ms()))
            if now - last_statistics >= 1.0:
                last_statistics = now
                self._publish_statistics()
            frame = None
            for conn in list(self.conns):
                if conn.closing:
                    continue
                # Heartbeats do not stand in for registering: the open timeout runs from the open.
                unregistered = not conn.registered and now - conn.opened > conn.hb_timeout
                if now - conn.last_rx > conn.hb_timeout or unregistered:
                    what = "did not register" if not conn.registered else "silent"
                    log.info("%s: %s for %.1f s, closing", conn.label(), what,
                             now - (conn.opened if unregistered else conn.last_rx))
                    self._close(conn, CLOSE_HEARTBEAT, "heartbeat timeout")
                    # A hung client (or peer server) never answers the close: handle the disconnect
                    # now (logout reported, peer's logins forgotten), not when the handshake gives up.
                    self._disconnected(conn)
                elif now - conn.last_tx >= conn.hb_interval and conn.registered:
                    frame = frame or p.encode(p.Heartbeat())
                    conn.last_tx = now
                    _enqueue(conn, frame)

    _handlers = {
        p.RequestRegisterClient: _register,
        p.RequestAgentLogin: _login,
        p.RequestAgentAvailable: _available,
        p.RequestAgentNotAvailable: _not_available,
        p.RequestAgentReady: _ready,
        p.RequestAgentNotReady: _not_ready,
        p.RequestAgentAfterCallWork: _acw,
        p.RequestAgentLogout: _logout,
        p.RequestSubscribeReporting: _subscribe,
        p.RequestForceNotReady: _force_not_ready,
        p.RequestForceLogout: _force_logout,
        p.RequestAccept: _accept,
        p.RequestReject: _reject,
        p.RequestUpdateNotes: _update_notes,
        p.RequestCompleteInteraction: _complete,
        p.RequestSubmitInteraction: _submit,
    }


class _Deferred(Exception):
    """The handler's answer waits for the peer: ``finish(refused ids)`` gives (ack, after) or raises Refusal."""

    def __init__(self, waiter, finish):
        super().__init__("deferred")
        self.waiter = waiter
        self.finish = finish


class _Silent(Refusal):
    """The handler already answered (or closed); send nothing more."""

    def __init__(self):
        super().__init__("internal", "")


_CREDENTIALED = (p.RequestAgentLogin, p.RequestAgentAvailable, p.RequestSubscribeReporting)
_SOCKET_BINDING = _CREDENTIALED + (p.RequestRegisterClient,)
_ASYNC_HANDLERS = {InteractionServer._login, InteractionServer._available, InteractionServer._subscribe}
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
