"""The outbound half of the peer link: a socket to the other site that carries what the core tells.

Each server dials its peer and only *tells* on that link (and reads the peer's answers to what it
told); what the peer tells arrives on the peer's own outbound link, handled by the server like any
socket. Dialing, heartbeats, silence and the jittered backoff are the shared link helper's
(``server_stub.link``); this module only relays frames between that link and the server core, and
the link's absence never stops the server from serving.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from . import protocol as p
from .link import LINK_ERRORS, Backoff, Link, connect

log = logging.getLogger("interaction_server.peer")


class PeerLink:
    """Dials ``url`` for as long as it runs; reports up, messages and down to the callbacks."""

    def __init__(self, url: str, *, ca_file: str | None, heartbeat_interval: float, heartbeat_timeout: float,
                 on_up: Callable[[], None], on_message: Callable[[p.Message], None],
                 on_down: Callable[[], None], rng: random.Random | None = None) -> None:
        self.url = url
        self.ca_file = ca_file
        self.interval = heartbeat_interval
        self.timeout = heartbeat_timeout
        self.on_up, self.on_message, self.on_down = on_up, on_message, on_down
        self.connected = asyncio.Event()
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._link: Link | None = None
        self._redial = False
        self._closing: asyncio.Task[None] | None = None
        # Retry after 0.1, 0.2, 0.4, ... s, at most 2 s, each drawn with jitter: two sites that
        # lost each other do not dial in step.
        self._backoff = Backoff(0.1, 2.0, rng=rng)

    def send(self, frame: str) -> None:
        """Queue ``frame`` on the link of the moment (dropped when it is down)."""
        if self.connected.is_set():
            self._outbox.put_nowait(frame)

    def redial(self) -> None:
        """Drop the link (if up) and dial again at once."""
        self._redial = True
        if self._link is not None:
            self._link.abort()

    def close(self, code: int, reason: str) -> None:
        """Close the link of the moment; the next dial comes after the usual backoff."""
        if self._link is not None:
            self._closing = asyncio.get_running_loop().create_task(self._link.ws.close(code, reason))

    async def run(self) -> None:
        while True:
            try:
                link = Link(await connect(self.url, ca_file=self.ca_file, open_timeout=2.0),
                            heartbeat_interval=self.interval, heartbeat_timeout=self.timeout)
                self._backoff.reset()
                try:
                    await self._serve(link)
                except asyncio.CancelledError:  # the server is stopping: going away, not a crash (1011)
                    await link.ws.close(p.CloseCode.GOING_AWAY, "server shutting down")
                    raise
                if link.silent:
                    log.info("peer %s silent for %.1f s", self.url, self.timeout)
            except LINK_ERRORS as exc:
                log.debug("peer link to %s: %s", self.url, exc)
            finally:
                self._link = None
                if self.connected.is_set():
                    self.connected.clear()
                    self.on_down()
            if self._redial:
                self._redial = False
                continue
            await asyncio.sleep(self._backoff.next())

    async def _serve(self, link: Link) -> None:
        self._link = link
        self._outbox = asyncio.Queue()
        self.connected.set()
        self._redial = False
        self.on_up()
        keepalive = asyncio.create_task(link.keepalive())
        writer = asyncio.create_task(self._write(link))
        try:
            async for frame in link.frames():  # heartbeats prove the peer alive; it answers our hello
                try:
                    message = p.decode_client(frame)  # the peer speaks the client-side vocabulary
                except p.ProtocolError:
                    log.info("peer %s answered: %s", self.url, str(frame)[:200])
                    continue
                if not isinstance(message, p.Heartbeat):
                    self.on_message(message)
        finally:
            keepalive.cancel()
            writer.cancel()

    async def _write(self, link: Link) -> None:
        try:
            while True:
                await link.send_frame(await self._outbox.get())
        except LINK_ERRORS:  # the reader sees the link end too, and the run loop dials again
            link.abort()
