"""A loopback TCP relay in front of a server, on its own thread, that notes when each side was heard.

Tests point a client at ``relay.url`` instead of the server's: the bytes pass unchanged both ways,
and ``heard_from_client`` holds the monotonic time of every chunk the client sent (a heartbeat is a
chunk), so a test can tell what the server heard and when, whatever the server does with it.
``hold_to_client()`` stops what the server sends from reaching the client (kept, in order, until
``release()``) while the client's frames still pass: a live server the client cannot hear.
"""

from __future__ import annotations

import asyncio
import threading
import time


class TcpRelay:
    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.heard_from_client: list[float] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._to_client: asyncio.Event | None = None  # set: the server's bytes pass to the client
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(host),),
                                        name="tcp-relay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the relay did not start")

    @property
    def url(self) -> str:
        return f"ws://{self.target[0]}:{self.port}"

    def heard_between(self, start: float, end: float) -> list[float]:
        return [t for t in list(self.heard_from_client) if start <= t <= end]

    async def _run(self, host: str) -> None:
        self._stop = asyncio.Event()
        self._to_client = asyncio.Event()
        self._to_client.set()
        server = await asyncio.start_server(self._relay, host, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
        # Nothing may be left pending for the garbage collector: end every relayed connection.
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _relay(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return

        async def pipe(reader, writer, heard: list[float] | None, gate: asyncio.Event | None = None) -> None:
            try:
                while chunk := await reader.read(65536):
                    if heard is not None:
                        heard.append(time.monotonic())
                    if gate is not None:
                        await gate.wait()
                    writer.write(chunk)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, server_writer, self.heard_from_client),
                             pipe(server_reader, client_writer, None, self._to_client))

    def hold_to_client(self) -> None:
        assert self._to_client is not None
        self._loop.call_soon_threadsafe(self._to_client.clear)

    def release(self) -> None:
        assert self._to_client is not None
        self._loop.call_soon_threadsafe(self._to_client.set)

    def stop(self) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()
