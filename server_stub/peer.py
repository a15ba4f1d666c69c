"""The outbound half of the peer link: tell the other site which agents we hold, at which epoch.

Each server dials its peer and only *tells* on that link; what the peer tells arrives on the
peer's own outbound link, handled by the server like any socket. The link retries forever with
capped backoff, and its absence never stops the server from serving.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import TYPE_CHECKING

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from . import protocol as p
from .tokens import peer_proof

if TYPE_CHECKING:
    from .server import InteractionServer

log = logging.getLogger("interaction_server.peer")

_RETRY = (0.1, 0.25, 0.5, 1.0, 2.0)


class PeerLink:
    def __init__(self, server: "InteractionServer", url: str):
        self.server = server
        self.url = url
        self.connected = asyncio.Event()
        self._pending: asyncio.Queue[p.PeerAgentEpochs] = asyncio.Queue()

    def tell(self, epochs: dict[str, int], logged_out: list[str], duplicates: list[str] = ()) -> None:
        if self.connected.is_set():
            self._pending.put_nowait(p.PeerAgentEpochs(server=self.server.name, epochs=epochs, logged_out=logged_out,
                                                       duplicates=list(duplicates)))

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.url.startswith("wss://"):
            return None
        cafile = self.server.config.ca_file
        return ssl.create_default_context(cafile=str(cafile) if cafile else None)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                async with connect(self.url, ssl=self._ssl(), proxy=None, open_timeout=2, close_timeout=1,
                                   ping_interval=None, compression=None, max_size=None) as ws:
                    attempt = 0
                    await self._serve(ws)
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                log.debug("peer link to %s: %s", self.url, exc)
            finally:
                if self.connected.is_set():
                    log.info("peer link to %s lost", self.url)
                self.connected.clear()
            await asyncio.sleep(_RETRY[min(attempt, len(_RETRY) - 1)])
            attempt += 1

    async def _serve(self, ws) -> None:
        server = self.server
        secret = server.config.secret
        await ws.send(p.encode(p.PeerHello(server=server.name, proof=peer_proof(secret, server.name))))
        self._pending = asyncio.Queue()
        self.connected.set()
        await ws.send(p.encode(server.peer_state()))
        log.info("peer link to %s up", self.url)
        interval = server.config.heartbeat_interval_ms / 1000
        timeout = server.config.heartbeat_timeout_ms / 1000
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
                if isinstance(message, p.PeerAgentEpochs):
                    server.peer_epochs_received(message)

        reader = asyncio.create_task(receive())
        try:
            while not reader.done():
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
                # that lands just as a delta arrives, and the server then never finishes stopping.
                try:
                    async with asyncio.timeout(interval):
                        delta = await self._pending.get()
                except TimeoutError:
                    await ws.send(p.encode(p.Heartbeat()))
                else:
                    await ws.send(p.encode(delta))
                if time.monotonic() - last_rx > timeout:
                    log.info("peer %s silent for %.1f s", self.url, timeout)
                    return
        finally:
            reader.cancel()
