"""The outbound half of the peer link: tell the other site which agents we hold, at which epoch,
and which interactions our agents hold or completed (waiting for its acknowledgement of those).

Each server dials its peer and only *tells* on that link; what the peer tells arrives on the
peer's own outbound link, handled by the server like any socket. The link retries forever with
capped backoff, and its absence never stops the server from serving.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from typing import TYPE_CHECKING

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.frames import CloseCode

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
        self._pending: asyncio.Queue[p.Message] = asyncio.Queue()
        self._acks: dict[int, asyncio.Future] = {}
        self._ack_ids = itertools.count(1)

    def tell(self, epochs: dict[str, int], logged_out: list[str], duplicates: list[str] = (),
             resumed: dict[str, int] | None = None,
             logged_out_epochs: dict[str, dict[str, int]] | None = None) -> None:
        if self.connected.is_set():
            self._pending.put_nowait(p.PeerAgentEpochs(server=self.server.name, epochs=epochs, logged_out=logged_out,
                                                       duplicates=list(duplicates), resumed=resumed or {},
                                                       logged_out_epochs=logged_out_epochs or {}))

    def replicate(self, records: list[p.PeerInteractionRecord]) -> asyncio.Future | None:
        """Send interaction ownership; a future of the ids the peer refused, None if the link is down.
        A link lost before the answer resolves the future with nothing refused (the peer is gone)."""
        if not self.connected.is_set():
            return None
        ack_id = next(self._ack_ids)
        future = asyncio.get_running_loop().create_future()
        self._acks[ack_id] = future
        self._pending.put_nowait(p.PeerInteractions(server=self.server.name, records=records, ack_id=ack_id))
        return future

    def _release_acks(self) -> None:
        for future in self._acks.values():
            if not future.done():
                future.set_result(frozenset())
        self._acks.clear()

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
                    try:
                        await self._serve(ws)
                    except asyncio.CancelledError:  # the server is stopping: going away, not a crash (1011)
                        await ws.close(CloseCode.GOING_AWAY, "server shutting down")
                        raise
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, InvalidURI, TimeoutError) as exc:
                log.debug("peer link to %s: %s", self.url, exc)
            finally:
                if self.connected.is_set():
                    log.info("peer link to %s lost", self.url)
                self.connected.clear()
                self._release_acks()
            await asyncio.sleep(_RETRY[min(attempt, len(_RETRY) - 1)])
            attempt += 1

    async def _serve(self, ws) -> None:
        server = self.server
        secret = server.config.secret
        await ws.send(p.encode(p.PeerHello(server=server.name, proof=peer_proof(secret, server.name))))
        self._pending = asyncio.Queue()
        self.connected.set()
        for frame in server.peer_interaction_sync():  # before the epochs: see InteractionServer._peer_hello
            await ws.send(p.encode(frame))
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
                elif isinstance(message, p.PeerInteractions):
                    server.peer_interactions_received(message, reply_to=None)
                elif isinstance(message, p.PeerInteractionsAck):
                    future = self._acks.pop(message.ack_id, None)
                    if future is not None and not future.done():
                        future.set_result(frozenset(message.refused))

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
