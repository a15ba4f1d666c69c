"""asyncio side of the supervisor view: one reporting socket per server, feeding the engine.

Each link connects, registers, subscribes (password the first time, the resume token after that,
with the engine's resume point), reads the stream into the engine, sends heartbeats, declares the
server lost after ``heartbeat_timeout_ms`` of silence, renews its token at half-life, and
reconnects with jittered backoff (connecting, registering, heartbeats, silence and backoff are
``server_stub.link``'s). Supervisor actions go on the same socket (the server requires a
subscribed supervisor socket). Runs on any asyncio loop: the supervisor view runs it on its own
network thread (``ThreadedClient``), so a blocked GUI thread delays no heartbeat; every use of the
engine then holds ``engine_lock``, which the window holds too while it reads the engine.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from server_stub import link
from server_stub import protocol as p

from ..loop_thread import LoopThread
from .center import CenterFeed
from .engine import ReportingEngine, Resubscribe
from .messages import decode_frame

log = logging.getLogger("desktop.reporting")

CLIENT_NAME = "supervisor-view 0.1.0"
AUTH_FAILURES = frozenset({"bad_credentials", "forbidden"})  # retrying cannot help: ask the user
TOKEN_FAILURES = frozenset({"invalid_token", "token_expired"})  # fall back to the password


# The server refused a request; ``code`` is its EventError code (the supervisor view catches it).
ActionRefused = link.Refused


def _wall_ms() -> int:
    return int(time.time() * 1000)


class ReportingClient:
    """Keeps one subscribed reporting socket per server and feeds ``engine``.

    ``password`` is called when no usable resume token is held; it returns the supervisor's
    password or raises ``LookupError``. ``on_status(server, text)`` reports link states for the UI
    (on the client's loop's thread).
    """

    def __init__(self, engine: ReportingEngine, endpoints: list[p.Site], user_id: str,
                 password: Callable[[], str], *, on_status: Callable[[str, str], None] | None = None,
                 heartbeat_interval: float = 0.5, ca_file: str | None = None, wall_ms: Callable[[], int] = _wall_ms,
                 rng: random.Random | None = None, center: bool = False):
        """``rng`` jitters the reconnect delays (seed it for a repeatable run). ``center``: one
        subscription with scope center, to the first reachable server, failing over to the next."""
        unknown = [e.name for e in endpoints if e.name not in engine.servers]
        if unknown:
            raise ValueError(f"servers {unknown} are not configured in the engine")
        self.engine = engine
        self.user_id = user_id
        self.password = password
        self.on_status = on_status or (lambda server, text: None)
        self.heartbeat_interval = heartbeat_interval
        self.rng = rng if rng is not None else random.Random()
        self.wall_ms = wall_ms
        self.token: str | None = None
        self.token_expires_ms: int | None = None
        self.credentials_version = 0  # bumped by credentials_changed(): a refusal of older ones is stale
        self.ca_file = ca_file
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        # Held around every use of the engine (re-entrant: the window's flush may ask reasons_for).
        self.engine_lock = threading.RLock()
        if center:
            one = _CenterLink(self, endpoints)
            self.links: dict[str, _Link] = {e.name: one for e in endpoints}  # every site's status: that link's
        else:
            self.links = {e.name: _Link(self, e) for e in endpoints}

    def _unique_links(self) -> list[_Link]:
        return list({id(each): each for each in self.links.values()}.values())

    def start(self) -> None:
        for each in self._unique_links():
            each.start()

    async def stop(self) -> None:
        await asyncio.gather(*(each.stop() for each in self._unique_links()))

    def new_request_id(self, kind: str) -> str:
        return f"sup-{self._prefix}-{kind}-{next(self._ids)}"

    def credentials_changed(self) -> None:
        """The user entered a new password: links stopped by an authentication failure retry."""
        self.token = None
        self.credentials_version += 1
        for each in self.links.values():
            each.auth_retry.set()

    def reasons(self, server: str) -> list[p.ReasonInfo]:
        return list(self.links[server].reasons)

    def server_for(self, agent_id: str) -> str:
        """Where a supervisor action on the agent must go: the server it is logged in at, live."""
        with self.engine_lock:
            server = self.engine.logged_in_server(agent_id)
        if server is None:
            raise ActionRefused("not_logged_in", f"agent {agent_id} is not logged in at a reachable server")
        return server

    def reasons_for(self, agent_id: str) -> list[p.ReasonInfo]:
        with self.engine_lock:
            server = self.engine.logged_in_server(agent_id)
        return self.reasons(server) if server in self.links else []

    async def force_agent_not_ready(self, agent_id: str, reason: str) -> p.EventAck:
        return await self.force_not_ready(self.server_for(agent_id), agent_id, reason)

    async def force_agent_logout(self, agent_id: str) -> p.EventAck:
        return await self.force_logout(self.server_for(agent_id), agent_id)

    async def force_not_ready(self, server: str, agent_id: str, reason: str) -> p.EventAck:
        return await self.links[server].request(
            p.RequestForceNotReady(request_id=self.new_request_id("fnr"), agent_id=agent_id, reason=reason))

    async def force_logout(self, server: str, agent_id: str) -> p.EventAck:
        return await self.links[server].request(
            p.RequestForceLogout(request_id=self.new_request_id("flo"), agent_id=agent_id))


class _Link:
    """One server's reporting socket, reconnected for as long as the client runs."""

    def __init__(self, client: ReportingClient, endpoint: p.Site):
        self.client = client
        self.endpoint = endpoint
        self.name = endpoint.name
        self.conn: link.Link | None = None
        self.reasons: list[p.ReasonInfo] = []
        self.subscribed = False
        self.auth_retry = asyncio.Event()
        self.status = "not connected"
        # Up to 2 s between attempts, from 0.1 s after losing a working subscription.
        self.backoff = link.Backoff(first=0.1, cap=2.0, rng=client.rng)
        self._task: asyncio.Task | None = None
        self._pending: dict[str, tuple[asyncio.Future, bool]] = {}  # request_id -> (answer, is_subscribe)
        self._lock = asyncio.Lock()  # one request in flight per socket (credentialed ones need it)
        self._background: set[asyncio.Task] = set()
        self._stopping = False

    @property
    def ws(self) -> ClientConnection | None:
        """The current socket, while connected."""
        return self.conn.ws if self.conn is not None else None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"reporting-{self.name}")

    async def stop(self) -> None:
        """Cancel until the task has ended: Python 3.11's wait_for can swallow one cancellation
        that races with the completion it was waiting for."""
        self._stopping = True
        task = self._task
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=0.5)
        if task is not None and task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("reporting %s: link ended with %r", self.name, task.exception())

    def _set_status(self, text: str) -> None:
        self.status = text
        self.client.on_status(self.name, text)

    # ------------------------------------------------------------------ the engine (under its lock)

    scope: Literal["site", "center"] = "site"

    def _resume_point(self) -> tuple[str, int] | None:
        return self.client.engine.resume_point(self.name)

    def _stream_opened(self, stream_id: str) -> None:
        self.client.engine.stream_opened(self.name, stream_id, self.client.wall_ms())

    def _stream_lost(self, reason: str) -> None:
        self.client.engine.stream_lost(self.name, reason, self.client.wall_ms())

    def _message(self, message: Any) -> list[Resubscribe]:
        return self.client.engine.message(self.name, message, self.client.wall_ms())

    # ------------------------------------------------------------------ connection lifecycle

    async def _run(self) -> None:
        while not self._stopping:
            version = self.client.credentials_version
            reason = await self._session()
            if reason == "auth":
                if self.client.credentials_version == version:  # nothing new to try: wait for the user
                    self.auth_retry.clear()
                    await self.auth_retry.wait()
                self.backoff.reset()
                continue
            if reason == "was_subscribed":
                self.backoff.reset()
            await asyncio.sleep(self.backoff.next())

    async def _session(self) -> str:
        """One connection: returns why it ended ("auth", "was_subscribed" or "failed")."""
        loop = asyncio.get_running_loop()
        self._set_status("connecting")
        helpers: list[asyncio.Task] = []
        lost_reason = "connection closed"
        outcome = "failed"
        conn: link.Link | None = None
        try:
            conn = self.conn = link.Link(await link.connect(
                self.endpoint.url, ca_file=self.client.ca_file, open_timeout=5, close_timeout=0.5, max_queue=None))
            ack = await conn.register(self.client.new_request_id("reg"), CLIENT_NAME, self.client.heartbeat_interval)
            self.reasons = list(ack.reasons or [])
            reader = loop.create_task(self._read(conn))
            helpers.append(reader)
            helpers.append(loop.create_task(conn.keepalive()))
            try:
                await asyncio.wait_for(self._subscribe(), 10)
            except ActionRefused as refused:
                if refused.code in AUTH_FAILURES:
                    outcome = "auth"
                    self._set_status(f"login refused: {refused.message}")
                    return outcome
                raise
            outcome = "was_subscribed"
            self._set_status("subscribed")
            helpers.append(loop.create_task(self._renew_token()))
            await reader
            lost_reason = conn.end_reason()
        except LookupError as exc:  # no password (or no user id) to sign in with
            outcome = "auth"
            self._set_status(f"no password: {exc}")
            return outcome
        except link.SESSION_ERRORS as exc:
            lost_reason = conn.end_reason() if conn is not None else str(exc) or type(exc).__name__
            log.info("reporting %s: %s", self.name, exc)
        finally:
            for task in helpers:
                task.cancel()
            self._fail_pending()
            if self.subscribed:
                self.subscribed = False
                with self.client.engine_lock:
                    self._stream_lost(lost_reason)
            if conn is not None:
                self.conn = None
                conn.abort()
        if outcome != "auth":
            self._set_status(f"lost: {lost_reason}; reconnecting" if outcome == "was_subscribed"
                             else f"unreachable: {lost_reason}")
        return outcome

    async def _subscribe(self) -> None:
        client = self.client
        if not client.user_id:
            raise LookupError("enter your supervisor id")
        while True:
            with client.engine_lock:
                resume = self._resume_point()
            token = client.token
            if token and client.token_expires_ms and client.token_expires_ms <= client.wall_ms() + 5000:
                token = None
            request = p.RequestSubscribeReporting(
                request_id=client.new_request_id("sub"), user_id=client.user_id,
                resume_token=token, password=None if token else client.password(),
                resume=p.ResumePoint(stream_id=resume[0], seq=resume[1]) if resume else None, scope=self.scope)
            try:
                async with self._lock:
                    await self._ask(request, subscribe=True)
                return
            except ActionRefused as refused:
                if token and refused.code in TOKEN_FAILURES:
                    client.token = None
                    continue
                raise

    async def _resubscribe(self) -> None:
        """Subscribe again on this socket (gap or token renewal): the server resumes from our seq."""
        try:
            await asyncio.wait_for(self._subscribe(), 10)
        except (ActionRefused, TimeoutError, ConnectionClosed, LookupError) as exc:
            log.warning("reporting %s: resubscribe failed (%s); reconnecting", self.name, exc)
            if self.conn is not None:
                await self.conn.ws.close()

    async def _renew_token(self) -> None:
        """Subscribe again at the token's half-life (reporting sockets get no pushed refresh)."""
        client = self.client
        while client.token_expires_ms is not None:
            expires = client.token_expires_ms
            await asyncio.sleep(max(1.0, (expires - client.wall_ms()) / 2000))
            if client.token_expires_ms == expires:  # the other link has not renewed it meanwhile
                await self._resubscribe()

    # ------------------------------------------------------------------ frames

    async def _ask(self, request: p.Request, subscribe: bool = False) -> p.EventAck:
        if self.conn is None:
            raise ConnectionError(f"server {self.name} is not connected")
        future: asyncio.Future[p.EventAck] = asyncio.get_running_loop().create_future()
        self._pending[request.request_id] = (future, subscribe)
        await self.conn.send(request)
        return await future

    async def request(self, request) -> p.EventAck:
        """A supervisor action on this socket; raises ActionRefused or ConnectionError."""
        if not self.subscribed or self.conn is None:
            raise ConnectionError(f"server {self.name} is not connected")
        async with self._lock:
            try:
                return await asyncio.wait_for(self._ask(request), 5)
            except ConnectionClosed:
                raise ConnectionError(f"server {self.name} went away before answering") from None
            finally:
                self._pending.pop(request.request_id, None)

    async def _read(self, conn: link.Link) -> None:
        lock = self.client.engine_lock
        loop = asyncio.get_running_loop()
        try:
            async for frame in conn.frames():
                try:
                    message = decode_frame(frame)
                except p.ProtocolError as exc:
                    log.warning("reporting %s: skipped a frame: %s", self.name, exc.message)
                    continue
                kind = type(message)
                if kind is p.Heartbeat:
                    continue
                if kind is p.EventAck or kind is p.EventError:
                    self._answer(message)
                    continue
                with lock:
                    commands = self._message(message)
                for command in commands:
                    if isinstance(command, Resubscribe):
                        task = loop.create_task(self._resubscribe())
                        self._background.add(task)  # keep a reference until it is done
                        task.add_done_callback(self._background.discard)
        finally:
            self._fail_pending()

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for future, _ in pending.values():
            if not future.done():
                future.set_exception(ConnectionClosed(None, None))
                future.exception()  # retrieved: whoever waited may be gone already

    def _answer(self, message) -> None:
        entry = self._pending.pop(message.request_id, None) if message.request_id else None
        if entry is None:
            if isinstance(message, p.EventError):
                log.warning("reporting %s: server error %s: %s", self.name, message.code, message.message)
            return
        future, subscribe = entry
        if isinstance(message, p.EventError):
            if not future.done():
                future.set_exception(ActionRefused(message.code, message.message))
            return
        if subscribe:
            # Synchronously, before the replay or snapshot frames that follow the answer.
            if message.resume_token:
                self.client.token = message.resume_token
                self.client.token_expires_ms = message.token_expires_ms
            self.subscribed = True
            with self.client.engine_lock:
                self._stream_opened(message.stream_id)
        if not future.done():
            future.set_result(message)


class _CenterLink(_Link):
    """Center mode: one reporting socket, scope center, to the first reachable server of the list;
    when it is lost, the next one (round the list), where a snapshot replaces the view."""

    scope: Literal["site", "center"] = "center"

    def __init__(self, client: ReportingClient, endpoints: list[p.Site]):
        super().__init__(client, endpoints[0])
        self.endpoints = endpoints
        self.feed = CenterFeed(client.engine)

    async def _session(self) -> str:
        outcome = await super()._session()
        if outcome != "auth":  # lost or unreachable: the next server of the list
            index = self.endpoints.index(self.endpoint)
            self.endpoint = self.endpoints[(index + 1) % len(self.endpoints)]
            self.name = self.endpoint.name
        return outcome

    def _resume_point(self) -> tuple[str, int] | None:
        return self.feed.resume_point(self.name)

    def _stream_opened(self, stream_id: str) -> None:
        self.feed.opened(self.name, stream_id, self.client.wall_ms())

    def _stream_lost(self, reason: str) -> None:
        self.feed.lost(reason, self.client.wall_ms())

    def _message(self, message: Any) -> list[Resubscribe]:
        return self.feed.message(message, self.client.wall_ms())


T = TypeVar("T")


class ThreadedClient:
    """A ReportingClient on its own network thread, with the surface the GUI thread uses.

    The links, their heartbeats and the engine's feeding run on ``thread``'s loop; the GUI thread
    starts and stops it, signals new credentials, and runs supervisor actions, each awaitable on
    the caller's loop. ``links[...].status`` and ``user_id`` are plain attributes, safe to read.
    """

    def __init__(self, client: ReportingClient, thread: LoopThread | None = None):
        self.client = client
        self.thread = thread or LoopThread("supervisor-network")

    @property
    def links(self) -> dict[str, _Link]:
        return self.client.links

    @property
    def engine_lock(self) -> threading.RLock:
        return self.client.engine_lock

    @property
    def user_id(self) -> str:
        return self.client.user_id

    @user_id.setter
    def user_id(self, value: str) -> None:
        self.client.user_id = value

    def start(self) -> None:
        self.thread.start()
        self.thread.call(self.client.start)

    async def stop(self) -> None:
        """Stop the links (awaited on the caller's loop), then end the thread."""
        if self.thread.running:
            try:
                await asyncio.wrap_future(self.thread.submit(self.client.stop()))
            finally:
                self.thread.stop()

    def credentials_changed(self) -> None:
        self.thread.call(self.client.credentials_changed)

    def reasons_for(self, agent_id: str) -> list[p.ReasonInfo]:
        return self.client.reasons_for(agent_id)

    def reasons(self, server: str) -> list[p.ReasonInfo]:
        """The server's Not Ready reasons (the window shows their labels, not their codes)."""
        return self.client.reasons(server)

    async def _on_thread(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(self.thread.submit(coroutine))

    def force_agent_not_ready(self, agent_id: str, reason: str) -> Coroutine[Any, Any, p.EventAck]:
        return self._on_thread(self.client.force_agent_not_ready(agent_id, reason))

    def force_agent_logout(self, agent_id: str) -> Coroutine[Any, Any, p.EventAck]:
        return self._on_thread(self.client.force_agent_logout(agent_id))
