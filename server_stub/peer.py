"""The outbound half of the peer link: a socket to the other site that carries what the core tells.

Each server dials its peer and only *tells* on that link (and reads the peer's answers to what it
told); what the peer tells arrives on the peer's own outbound link, handled by the server like any
socket. The link beats while idle, gives up on a peer silent past the heartbeat timeout, retries
forever with capped, jittered backoff, and its absence never stops the server from serving.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from . import protocol as p

log = logging.getLogger("interaction_server.peer")

_RETRY = (0.1, 0.25, 0.5, 1.0, 2.0)


class PeerLink:
    """Dials ``url`` for as long as it runs; reports up, messages and down to the callbacks."""

    def __init__(self, url: str, *, ca_file: str | None, heartbeat_interval: float, heartbeat_timeout: float,
                 on_up: Callable[[], None], on_message: Callable[[p.Message], None],
                 on_down: Callable[[], None]) -> None:
        self.url = url
        self.ca_file = ca_file
        self.interval = heartbeat_interval
        self.timeout = heartbeat_timeout
        self.on_up, self.on_message, self.on_down = on_up, on_message, on_down
        self.connected = asyncio.Event()
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._redial = False
        self._closing: asyncio.Task[None] | None = None
        self._random = random.Random()

    def send(self, frame: str) -> None:
        """Queue ``frame`` on the link of the moment (dropped when it is down)."""
        if self.connected.is_set():
            self._outbox.put_nowait(frame)

    def redial(self) -> None:
        """Drop the link (if up) and dial again at once."""
        self._redial = True
        if self._ws is not None:
            self._ws.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Close the link of the moment; the next dial comes after the usual backoff."""
        if self._ws is not None:
            self._closing = asyncio.get_running_loop().create_task(self._ws.close(code, reason))

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.url.startswith("wss://"):
            return None
        return ssl.create_default_context(cafile=self.ca_file)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                async with connect(self.url, ssl=self._ssl(), proxy=None, open_timeout=2, close_timeout=1,
                                   ping_interval=None, compression=None, max_size=None) as ws:
                    attempt = 0
                    try:
                        await self._serve(ws)
                    except asyncio.CancelledError:  # the server is stopping: going away, not a crash (1011)
                        await ws.close(p.CloseCode.GOING_AWAY, "server shutting down")
                        raise
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                log.debug("peer link to %s: %s", self.url, exc)
            finally:
                self._ws = None
                if self.connected.is_set():
                    self.connected.clear()
                    self.on_down()
            if self._redial:
                self._redial = False
                continue
            delay = _RETRY[min(attempt, len(_RETRY) - 1)]
            await asyncio.sleep(delay * (0.5 + self._random.random()))  # jitter: two sites do not dial in step
            attempt += 1

    async def _serve(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._outbox = asyncio.Queue()
        self.connected.set()
        self._redial = False
        self.on_up()
        last_rx = time.monotonic()

        async def receive() -> None:
            nonlocal last_rx
            async for frame in ws:  # heartbeats prove the peer alive; it answers PeerHello with its state
                last_rx = time.monotonic()
                try:
                    message = p.decode_client(frame)  # the peer speaks the client-side vocabulary
                except p.ProtocolError:
                    log.info("peer %s answered: %s", self.url, str(frame)[:200])
                    continue
                if not isinstance(message, p.Heartbeat):
                    self.on_message(message)

        reader = asyncio.create_task(receive())
        try:
            while not reader.done():
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
                # that lands just as a delta arrives, and the server then never finishes stopping.
                try:
                    async with asyncio.timeout(self.interval):
                        frame = await self._outbox.get()
                except TimeoutError:
                    frame = p.encode(p.Heartbeat())
                await ws.send(frame)
                if time.monotonic() - last_rx > self.timeout:
                    log.info("peer %s silent for %.1f s", self.url, self.timeout)
                    return
        finally:
            reader.cancel()
