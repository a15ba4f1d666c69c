"""One link to an interaction server, as every asyncio client of the protocol needs it.

The supervisor's reporting client (``desktop.reporting.client``), the carrier
(``server_stub.traffic``) and a server's own peer link all dial a server and then need the same
things: a WebSocket opened the way docs/protocol.md expects (no proxy, no compression, no
WebSocket pings: liveness is the protocol's ``Heartbeat``), the registration that tells the
heartbeat terms, heartbeats while idle, the link declared lost after the heartbeat timeout of
silence (not after TCP's minutes), and a reconnect pace that backs off with jitter, so that the
clients of a site that just died do not all come back in the same millisecond.

This module is that, and only that: it imports websockets and the wire module, nothing of the
server or of the desktop, so both sides may use it. Typical use::

    backoff = Backoff(rng=rng)
    while True:
        try:
            link = Link(await connect(url, ca_file=ca_file))
            await link.register(request_id, "my-client", heartbeat_interval=0.5)
            backoff.reset()
            keepalive = asyncio.create_task(link.keepalive())
            try:
                async for frame in link.frames():
                    ...  # decode and handle
            finally:
                keepalive.cancel()
        except LINK_ERRORS:
            pass
        await asyncio.sleep(backoff.next())

A peer link does not register: it opens ``Link(ws, heartbeat_interval=..., heartbeat_timeout=...)``
with its own configured terms, sends ``PeerHello`` first, then runs ``keepalive()`` the same way.
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
from collections.abc import AsyncIterator, Callable

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as _ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from . import protocol as p

# What connecting to, or talking on, a link raises when the server is unreachable or the link is
# lost: catch these around one connection and reconnect.
LINK_ERRORS: tuple[type[Exception], ...] = (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed)

# The server's defaults (docs/protocol.md, "Heartbeats"), used until a registration says otherwise.
DEFAULT_HEARTBEAT_INTERVAL = 0.5
DEFAULT_HEARTBEAT_TIMEOUT = 1.5
# Timers may fire this early (loop clock resolution) and still count as due.
_EPS = 1e-3


class Refused(Exception):
    """The server answered a request with ``EventError``; ``code`` is its error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# A link that failed or was lost, or a request the server refused: for a client that treats them alike.
SESSION_ERRORS: tuple[type[Exception], ...] = (*LINK_ERRORS, Refused)


# --------------------------------------------------------------------------- reconnect pacing


class Backoff:
    """Reconnect delays: capped exponential, each drawn with jitter.

    The n-th delay in a row (n = 0, 1, ...) is at most ``min(cap, first * factor ** n)`` and at least
    ``1 - jitter`` of that (uniform in between, from ``rng``). ``next()`` returns the next delay and
    counts the failure; ``reset()`` starts again from ``first`` once a link worked. Pass a seeded
    ``random.Random`` for a repeatable sequence.
    """

    def __init__(self, first: float = 0.1, cap: float = 2.0, *, factor: float = 2.0, jitter: float = 0.5,
                 rng: random.Random | None = None) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"need 0 < first <= cap, got first={first} cap={cap}")
        if factor < 1:
            raise ValueError(f"factor must be at least 1, got {factor}")
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be within 0..1, got {jitter}")
        self.first, self.cap, self.factor, self.jitter = first, cap, factor, jitter
        self.failures = 0  # delays handed out since the last reset()
        self._rng = rng if rng is not None else random.Random()

    def ceiling(self, n: int) -> float:
        """The longest the n-th delay in a row may be (n from 0)."""
        if self.factor == 1:
            return self.first
        # Stop multiplying once past the cap: a link down for days must not overflow a float.
        delay = self.first
        for _ in range(n):
            delay *= self.factor
            if delay >= self.cap:
                return self.cap
        return min(delay, self.cap)

    def next(self) -> float:
        """The wait before the next attempt (seconds); counts one more failure."""
        delay = self.ceiling(self.failures) * (1 - self.jitter * self._rng.random())
        self.failures += 1
        return delay

    def reset(self) -> None:
        """The link worked: the next failure waits ``first`` (jittered) again."""
        self.failures = 0


# --------------------------------------------------------------------------- connecting


def client_ssl(url: str, ca_file: str | os.PathLike[str] | None = None) -> ssl.SSLContext | None:
    """The TLS context for ``url``: None for ``ws://``; for ``wss://`` the system store, or only
    ``ca_file`` when given (a private CA)."""
    if not url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=os.fspath(ca_file) if ca_file is not None else None)


async def connect(url: str, *, ca_file: str | os.PathLike[str] | None = None, ssl_context: ssl.SSLContext | None = None,
                  open_timeout: float = 5.0, close_timeout: float = 1.0, max_size: int | None = None,
                  max_queue: int | None = 16) -> ClientConnection:
    """Open a WebSocket to ``url`` (``ws://`` or ``wss://``) as the protocol wants it.

    TLS: ``ssl_context`` if given, else ``client_ssl(url, ca_file)``. ``open_timeout`` bounds
    TCP + TLS + the WebSocket handshake. Never through a proxy from the environment, no
    permessage-deflate, no WebSocket pings (``Heartbeat`` is the liveness signal), no User-Agent.
    ``max_size`` None accepts any frame (a reporting snapshot of thousands of agents is large).
    Raises one of ``LINK_ERRORS`` when the server cannot be reached.
    """
    context = ssl_context if ssl_context is not None else client_ssl(url, ca_file)
    return await _ws_connect(url, ssl=context if url.startswith("wss://") else None, proxy=None,
                             open_timeout=open_timeout, close_timeout=close_timeout, ping_interval=None,
                             compression=None, max_size=max_size, max_queue=max_queue, user_agent_header=None)


# --------------------------------------------------------------------------- an open link


class Link:
    """An open connection with the protocol's liveness rules.

    Every frame sent through ``send`` and received through ``frames``/``request`` is noted, so
    ``keepalive()`` sends a ``Heartbeat`` only when nothing else went out for
    ``heartbeat_interval`` and declares the link lost (``silent``) when nothing came in for
    ``heartbeat_timeout``. Both are seconds; ``register()`` sets them from the server's answer.
    ``clock`` is the monotonic time in seconds (the running loop's by default).
    """

    def __init__(self, ws: ClientConnection, *, heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
                 heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
                 clock: Callable[[], float] | None = None) -> None:
        self.ws = ws
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.silent = False  # keepalive() gave the link up: nothing heard for heartbeat_timeout
        self._clock = clock if clock is not None else asyncio.get_running_loop().time
        self.last_rx = self.last_tx = self._clock()

    # ------------------------------------------------------------------ sending and receiving

    async def send(self, message: p.Message) -> None:
        """Send one message (one text frame). Raises ``ConnectionClosed`` on a closed link."""
        self.last_tx = self._clock()
        await self.ws.send(p.encode(message))

    async def send_frame(self, frame: str) -> None:
        """Send a frame already encoded (a server's peer link relays what its core encoded)."""
        self.last_tx = self._clock()
        await self.ws.send(frame)

    async def frames(self) -> AsyncIterator[str | bytes]:
        """Every frame received, raw (decode with the side's decoder), until the link closes; a
        link closed by the server or by ``keepalive`` ends the iteration without an exception."""
        try:
            async for frame in self.ws:
                self.last_rx = self._clock()
                yield frame
        except ConnectionClosed:
            return

    async def request(self, message: p.Request, timeout: float = 5.0) -> p.EventAck:
        """Send a request and read frames until its answer: the ``EventAck``, or ``Refused`` for an
        ``EventError``. Other frames read meanwhile are dropped, so use it only while nothing else
        reads the link (before a reader task starts). Raises ``TimeoutError`` after ``timeout``."""
        await self.send(message)
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.ws.recv()
                self.last_rx = self._clock()
                try:
                    answer = p.decode_server(frame)
                except p.ProtocolError:
                    continue
                if isinstance(answer, p.EventAck) and answer.request_id == message.request_id:
                    return answer
                if isinstance(answer, p.EventError) and answer.request_id == message.request_id:
                    raise Refused(answer.code, answer.message)

    async def register(self, request_id: str, client_name: str, heartbeat_interval: float | None = None,
                       timeout: float = 5.0) -> p.EventAck:
        """``RequestRegisterClient`` (proposing ``heartbeat_interval`` seconds, else the server's
        default applies); adopts the interval and timeout the ``EventAck`` tells and returns it."""
        interval_ms = round(heartbeat_interval * 1000) if heartbeat_interval is not None else None
        ack = await self.request(p.RequestRegisterClient(request_id=request_id, protocol_version=p.PROTOCOL_VERSION,
                                                         client_name=client_name, heartbeat_interval_ms=interval_ms),
                                 timeout)
        if ack.heartbeat_interval_ms:
            self.heartbeat_interval = ack.heartbeat_interval_ms / 1000
        if ack.heartbeat_timeout_ms:
            self.heartbeat_timeout = ack.heartbeat_timeout_ms / 1000
        return ack

    # ------------------------------------------------------------------ liveness

    async def keepalive(self) -> None:
        """Run beside the reader for the life of the link: send a ``Heartbeat`` whenever nothing
        went out for ``heartbeat_interval``; when nothing came in for ``heartbeat_timeout``, set
        ``silent``, abort the connection (no close handshake with a server that does not answer;
        the reader's ``frames()`` ends) and return. Returns too, quietly, if the link closes."""
        while True:
            now = self._clock()
            if now - self.last_rx >= self.heartbeat_timeout - _EPS:
                self.silent = True
                self.abort()
                return
            if now - self.last_tx >= self.heartbeat_interval - _EPS:
                try:
                    await self.send(p.Heartbeat())
                except ConnectionClosed:
                    return
                now = self._clock()
            wake = min(self.last_tx + self.heartbeat_interval, self.last_rx + self.heartbeat_timeout)
            await asyncio.sleep(max(0.0, wake - now))

    def abort(self) -> None:
        """Drop the connection at once (TCP reset of our side; no close handshake)."""
        transport = self.ws.transport
        if transport is not None:
            transport.abort()

    def end_reason(self) -> str:
        """Why the link ended, for logs and status lines: ``silent``, ``closed <code>`` or
        ``connection lost`` (no close frame)."""
        if self.silent:
            return "silent"
        code = self.ws.close_code
        if code is None:
            return "connection lost"
        return f"closed {code}"
