"""A supervisor's reporting socket in a background thread, for tests that drive processes.

Plain websockets + json (not the product's client), so the assertions are about the wire.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support.servers import wait_until


async def send_heartbeats(ws, period: float) -> None:
    """The client's side of the heartbeat contract, until the socket closes (or the task is cancelled)."""
    try:
        while True:
            await asyncio.sleep(period)  # the heartbeat period, not a wait for an event
            await ws.send('{"type":"Heartbeat"}')
    except ConnectionClosed:
        pass


class ReportingWatcher:
    def __init__(self, url: str, user: str = "sup1", password: str = "demo"):
        self.url = url
        self.events: list[dict] = []
        self.arrived_at: list[float] = []  # wall-clock arrival of each event (benchmarks compare streams)
        self.closed = threading.Event()
        self.close_code: int | None = None
        self._ready = threading.Event()
        self._ws: ClientConnection | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(user, password),), daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError(f"could not subscribe to {url}: {self.events}")

    async def _run(self, user: str, password: str) -> None:
        try:
            async with connect(self.url, proxy=None, ping_interval=None, compression=None, open_timeout=5,
                               close_timeout=1) as ws:
                self._ws = ws
                await ws.send(json.dumps({"type": "RequestRegisterClient", "request_id": "reg", "protocol_version": 1,
                                          "client_name": "test-supervisor", "heartbeat_interval_ms": 200}))
                await ws.send(json.dumps({"type": "RequestSubscribeReporting", "request_id": "sub",
                                          "user_id": user, "password": password}))
                beat = asyncio.create_task(send_heartbeats(ws, 0.2))
                try:
                    async for frame in ws:
                        message = json.loads(frame)
                        if message["type"] == "Heartbeat":
                            continue
                        self.arrived_at.append(time.time())  # before the event: a reader of both never lacks a time
                        self.events.append(message)
                        if message["type"] == "EventReportingSnapshot":
                            self._ready.set()
                finally:
                    beat.cancel()
        except (OSError, ConnectionClosed):
            pass
        finally:
            self.close_code = self._ws.close_code if self._ws is not None else None
            self.closed.set()
            self._ready.set()


    def of(self, type_: str, agent_id: str | None = None) -> list[dict]:
        out = []
        for e in list(self.events):
            if e["type"] != type_:
                continue
            aid = e.get("agent", {}).get("agent_id") if type_ == "EventAgentLogin" else e.get("agent_id")
            if agent_id is None or aid == agent_id:
                out.append(e)
        return out

    def wait_for(self, type_: str, agent_id: str | None = None, timeout: float = 10.0, **fields) -> dict:
        def found():
            for e in self.of(type_, agent_id):
                body = e.get("agent", e)
                if all(body.get(k, e.get(k)) == v for k, v in fields.items()):
                    return e
            return None
        return wait_until(found, timeout, message=f"{type_} {agent_id} {fields} on {self.url}; got {self.events[-6:]}")

    def send(self, message: dict) -> None:
        """Send a request on this supervisor socket (a supervisor action); its answer arrives in
        ``events``. Callable from any thread: it does not wait for the send."""
        assert self._ws is not None, "the subscription is not open"
        asyncio.run_coroutine_threadsafe(self._ws.send(json.dumps(message)), self._loop)

    def close(self) -> None:
        ws = self._ws
        if ws is not None and not self.closed.is_set():
            asyncio.run_coroutine_threadsafe(ws.close(), self._loop)
        self.closed.wait(5)
