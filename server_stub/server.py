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
from dataclasses import dataclass, field

import websockets
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from . import protocol as p
from .config import ServerConfig
from .directory import AgentRecord, Directory, verify_password
from .peer import PeerLink
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
PEER_SYNC_GRACE = 1.0  # seconds a restarted server waits for its peer before accepting logins anyway


def wall_ms() -> int:
    return int(time.time() * 1000)


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

    def report(self) -> p.AgentReport:
        return p.AgentReport(
            agent_id=self.agent.id, name=self.agent.name, epoch=self.epoch, state=self.state,
            since_ms=self.since_ms, login_ms=self.login_ms, reason=self.reason, place=self.place,
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
        self.sessions: dict[str, AgentSession] = {}  # agent id -> login here
        self.standby: dict[str, set[Conn]] = collections.defaultdict(set)
        self.known_epoch: dict[str, int] = {}  # highest epoch ever seen for an agent
        self.peer_logged_in: dict[str, int] = {}  # what the peer says it holds
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
        conn.queue.put_nowait(None) if not conn.queue.full() else None

        async def close_after_flush() -> None:
            # Let the writer drain what was queued (the error telling why) before closing.
            for _ in range(50):
                if conn.queue.empty():
                    break
                await asyncio.sleep(0.01)
            await conn.ws.close(code, reason)

        asyncio.get_running_loop().create_task(close_after_flush())

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
        self._send(conn, p.EventError(code=code, message=message, request_id=request_id))
        now = time.monotonic()
        conn.errors.append(now)
        window = self.config.error_window_ms / 1000
        if sum(1 for t in conn.errors if now - t <= window) > self.config.max_errors:
            self._close(conn, CLOSE_TOO_MANY_ERRORS, "too many protocol errors")

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
        if isinstance(msg, p.PeerAgentEpochs):
            if conn.kind != "peer":
                self._protocol_error(conn, "forbidden", "peer messages need a peer link (PeerHello)", None)
            else:
                self.peer_epochs_received(msg)
            return
        request_id = msg.request_id
        cached = conn.answers.get(request_id)
        if cached is None and conn.principal and not isinstance(msg, _SOCKET_BINDING):
            cached = self.agent_answers[conn.principal.id].get(request_id)
        if cached is not None:
            _enqueue(conn, cached)  # a retry: the original answer, no second effect
            return
        handler = self._handlers.get(type(msg))
        if not conn.registered and not isinstance(msg, p.RequestRegisterClient):
            self._protocol_error(conn, "not_registered", "send RequestRegisterClient first", request_id)
            return
        if isinstance(msg, _CREDENTIALED) and (msg.password is None) == (msg.resume_token is None):
            self._protocol_error(conn, "bad_message", f"{type(msg).__name__} needs exactly one of password and resume_token", request_id)
            return
        if handler in _ASYNC_HANDLERS:
            asyncio.get_running_loop().create_task(self._run_async(conn, handler, msg))
            return
        self._answer(conn, msg, handler)

    def _answer(self, conn: Conn, msg: p.Request, handler, *args) -> None:
        try:
            ack, after = handler(self, conn, msg, *args)
        except _Silent:
            return
        except Refusal as refusal:
            self._protocol_error(conn, refusal.code, refusal.message, msg.request_id)
            return
        frame = self._send(conn, ack)
        conn.answers.remember(msg.request_id, frame)
        if conn.principal and not isinstance(msg, _SOCKET_BINDING):
            self.agent_answers[conn.principal.id].remember(msg.request_id, frame)
        for event in after:
            self._send(conn, event)

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
        except Exception:  # as in _handle: a bug costs one request (answered), never silence
            log.exception("%s: internal error", conn.label())
            self._send(conn, p.EventError(code="internal", message="internal server error; the request had no effect",
                                          request_id=msg.request_id))

    async def _authenticate(self, msg) -> tuple[AgentRecord, int | None]:
        """(record, token epoch or None for a password)."""
        user_id = msg.user_id if isinstance(msg, p.RequestSubscribeReporting) else msg.agent_id
        record = self.directory.get(user_id)
        if msg.resume_token is not None:
            try:
                claim = verify_token(self.config.secret, msg.resume_token, wall_ms())
            except TokenError as exc:
                raise Refusal(exc.code, str(exc)) from None
            if claim.agent_id != user_id or record is None:
                raise Refusal("invalid_token", "resume token belongs to another user")
            return record, claim.epoch
        hash_ = record.password_hash if record else _DUMMY_HASH  # same cost for unknown ids
        ok = await asyncio.to_thread(verify_password, msg.password, hash_)
        if not ok or record is None:
            raise Refusal("bad_credentials", "unknown user or wrong password")
        return record, None

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
        ), ()

    def _bind(self, conn: Conn, record: AgentRecord) -> None:
        if conn.principal is not None and conn.principal.id != record.id:
            raise Refusal("forbidden", f"this socket belongs to {conn.principal.id}; open another socket for {record.id}")
        conn.principal = record

    def _login(self, conn: Conn, msg: p.RequestAgentLogin, auth):
        record, token_epoch = auth
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
        if token_epoch is not None and token_epoch < newest:
            raise Refusal("stale_epoch", f"the agent has logged in again since this token (epoch {newest}); log in with the password")
        duplicate = (here is not None or agent_id in self.peer_logged_in) and token_epoch is None
        if duplicate and self.config.duplicate_policy == "deny":
            where = "here" if here else "at the peer site"
            raise Refusal("already_logged_in", f"agent {agent_id} is already logged in {where} (duplicate policy: deny)")
        known = max(current, self.known_epoch.get(agent_id, 0), token_epoch or 0)
        epoch = max(msg.epoch or 1, known + 1)
        if here is not None:
            ended = "duplicate_login" if duplicate else "moved"  # not `reason`: that is the new state's
            self._end_session(here, ended, f"logged in again elsewhere (epoch {epoch})", close=True)
        if conn.standby_for is not None:
            self.standby[conn.standby_for].discard(conn)
            conn.standby_for = None
        session = AgentSession(agent=record, epoch=epoch, state=state, reason=reason, since_ms=since,
                               login_ms=now, conn=conn, place=msg.place)
        self.sessions[agent_id] = session
        self.known_epoch[agent_id] = epoch
        conn.login = session
        token, expires = self._issue_token(session)
        self.reporting.publish(lambda seq: p.EventAgentLogin(server=self.name, seq=seq, agent=session.report()))
        if self.peer:
            # A password login while the peer holds the agent is a second desktop, not a move.
            self.peer.tell({agent_id: epoch}, [], [agent_id] if duplicate else [])
        log.info("%s: agent %s logged in at epoch %d (%s%s)", conn.label(), agent_id, epoch,
                 "resume token" if token_epoch is not None else "password", ", duplicate" if duplicate else "")
        return p.EventAck(request_id=msg.request_id, server=self.name, role="primary", epoch=epoch,
                          resume_token=token, token_expires_ms=expires), (self._status(session),)

    def _issue_token(self, session: AgentSession) -> tuple[str, int]:
        expires = wall_ms() + self.config.token_ttl_ms
        token = issue_token(self.config.secret, session.agent.id, session.epoch, expires)
        loop = asyncio.get_running_loop()
        session.token_refresh = loop.call_later(self.config.token_ttl_ms / 2000, self._refresh_token, session)
        return token, expires

    def _refresh_token(self, session: AgentSession) -> None:
        if self.sessions.get(session.agent.id) is session:
            token, expires = self._issue_token(session)
            self._send(session.conn, p.EventResumeToken(epoch=session.epoch, resume_token=token, token_expires_ms=expires))

    def _available(self, conn: Conn, msg: p.RequestAgentAvailable, auth):
        record, _ = auth
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
        return session

    def _set_state(self, conn: Conn, msg, state: str, reason: str | None = None):
        session = self._own_login(conn, msg.epoch)
        if reason is not None and reason not in self.reasons:
            raise Refusal("invalid_reason", f"unknown Not Ready reason {reason!r}; known: {sorted(self.reasons)}")
        self.change_state(session, state, reason)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), (self._status(session),)

    def change_state(self, session: AgentSession, state: str, reason: str | None, forced_by: str | None = None) -> bool:
        if (session.state, session.reason) == (state, reason):
            return False
        session.state, session.reason, session.since_ms = state, reason, wall_ms()
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
        self._end_session(session, "logout", "logged out", close=False)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _subscribe(self, conn: Conn, msg: p.RequestSubscribeReporting, auth):
        record, _ = auth
        if record.role != "supervisor":
            raise Refusal("forbidden", f"{record.id} is not a supervisor; the reporting stream needs the supervisor role")
        self._bind(conn, record)
        stream = self.reporting
        replay = None
        if msg.resume is not None and msg.resume.stream_id == stream.stream_id:
            replay = stream.replay_from(msg.resume.seq)
        expires = wall_ms() + self.config.token_ttl_ms
        token = issue_token(self.config.secret, record.id, 1, expires)
        ack = p.EventAck(request_id=msg.request_id, server=self.name, stream_id=stream.stream_id,
                         resume_token=token, token_expires_ms=expires)
        conn.reporting = True
        stream.subscribers.add(conn)
        log.info("%s: supervisor %s subscribed (%s)", conn.label(), record.id,
                 "replay" if replay is not None else "snapshot")
        if replay is not None:
            frame = self._send(conn, ack)
            conn.answers.remember(msg.request_id, frame)
            for f in replay:
                _enqueue(conn, f)
            raise _Silent()
        snapshot = p.EventReportingSnapshot(server=self.name, stream_id=stream.stream_id, seq=stream.seq,
                                            agents=[s.report() for s in self.sessions.values()])
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
        self._send(session.conn, self._status(session, forced_by=by))
        log.info("%s: supervisor %s set agent %s Not Ready (%s)", conn.label(), by, msg.agent_id, msg.reason)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _force_logout(self, conn: Conn, msg: p.RequestForceLogout):
        session = self._supervised(conn, msg.agent_id)
        by = conn.principal.id
        self._end_session(session, "forced", f"logged out by supervisor {by}", close=True, by=by)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    # ------------------------------------------------------------------ session end

    def _status(self, session: AgentSession, forced_by: str | None = None) -> p.EventCurrentAgentStatus:
        return p.EventCurrentAgentStatus(
            agent_id=session.agent.id, epoch=session.epoch, server=self.name, state=session.state,
            since_ms=session.since_ms, reason=session.reason, place=session.place, forced_by=forced_by)

    def _end_session(self, session: AgentSession, reason: str, message: str, *, close: bool, by: str | None = None) -> None:
        agent_id = session.agent.id
        if self.sessions.get(agent_id) is not session:
            return
        del self.sessions[agent_id]
        session.conn.login = None
        if session.token_refresh:
            session.token_refresh.cancel()
        self.reporting.publish(lambda seq: p.EventAgentLogout(
            server=self.name, seq=seq, agent_id=agent_id, epoch=session.epoch, reason=reason))
        if self.peer:
            self.peer.tell({}, [agent_id])
        log.info("%s: agent %s logged out at epoch %d (%s)", session.conn.label(), agent_id, session.epoch, reason)
        if close:
            self._send(session.conn, p.EventForcedLogout(agent_id=agent_id, epoch=session.epoch, reason=reason,
                                                         message=message, by=by))
            self._close(session.conn, CLOSE_SUPERSEDED, reason)

    def _disconnected(self, conn: Conn) -> None:
        self.conns.discard(conn)
        self.peer_inbound.discard(conn)
        self.reporting.subscribers.discard(conn)
        if conn.kind == "peer" and not self.peer_inbound:
            self.peer_logged_in.clear()  # the peer's logins are unknown now, not still valid
        if conn.standby_for is not None:
            self.standby[conn.standby_for].discard(conn)
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
        self._send(conn, self.peer_state())
        log.info("%s: peer link from %s", conn.label(), msg.server)

    def peer_state(self) -> p.PeerAgentEpochs:
        return p.PeerAgentEpochs(server=self.name, epochs=self.held_epochs(), known=dict(self.known_epoch), full=True)

    def peer_epochs_received(self, msg: p.PeerAgentEpochs) -> None:
        if msg.full:
            self.peer_logged_in.clear()
            for agent_id, epoch in msg.known.items():
                self.known_epoch[agent_id] = max(self.known_epoch.get(agent_id, 0), epoch)
            self.peer_synced.set()
        for agent_id in msg.logged_out:
            self.peer_logged_in.pop(agent_id, None)
        for agent_id, epoch in msg.epochs.items():
            self.peer_logged_in[agent_id] = epoch
            self.known_epoch[agent_id] = max(self.known_epoch.get(agent_id, 0), epoch)
            here = self.sessions.get(agent_id)
            # Equal epochs (two logins during a partition) are settled the same way on both
            # sides: the server with the smaller name keeps the login.
            if here is not None and (here.epoch < epoch or (here.epoch == epoch and msg.server < self.name)):
                reason = "duplicate_login" if agent_id in msg.duplicates else "moved"
                self._end_session(here, reason, f"logged in at {msg.server} at epoch {epoch}", close=True, by=msg.server)

    def held_epochs(self) -> dict[str, int]:
        return {agent_id: s.epoch for agent_id, s in self.sessions.items()}

    # ------------------------------------------------------------------ heartbeats

    async def _sweep(self) -> None:
        """Send heartbeats on quiet sockets and close silent ones, for every socket at once."""
        period = 0.1
        last = time.monotonic()
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if now - last > 1.0:
                # The whole process stalled (SIGSTOP, swap): the silence was ours, not theirs.
                log.warning("server stalled for %.1f s; giving every socket a fresh timeout", now - last)
                for conn in self.conns:
                    conn.last_rx = now
            last = now
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
    }


class _Silent(Refusal):
    """The handler already answered (or closed); send nothing more."""

    def __init__(self):
        super().__init__("internal", "")


_CREDENTIALED = (p.RequestAgentLogin, p.RequestAgentAvailable, p.RequestSubscribeReporting)
_SOCKET_BINDING = _CREDENTIALED + (p.RequestRegisterClient,)
_ASYNC_HANDLERS = {InteractionServer._login, InteractionServer._available, InteractionServer._subscribe}
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
