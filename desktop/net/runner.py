"""Run a sans-I/O AgentSession on asyncio: real websockets links and loop timers.

The core decides everything; this layer only executes its outputs (open, send, close, timers) and
feeds back what happened (link opened/closed, frames, timer expiries) with the loop's monotonic
time. UI events (everything else the core emits) go to ``on_event``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from server_stub import protocol as p

from ..core import events as ev
from ..core.session import AgentSession

log = logging.getLogger("desktop.net")

OUTBOUND_LIMIT = 1000  # frames queued on one link before it is treated as broken


def _wall_ms() -> int:
    return int(time.time() * 1000)


class _Link:
    """One connection attempt: connect, read until closed, write from a bounded queue."""

    def __init__(self, runner: SessionRunner, link: Any, endpoint: str, url: str):
        self.runner = runner
        self.link = link
        self.endpoint = endpoint
        self.url = url
        self.ws: ClientConnection | None = None
        self.outbound: asyncio.Queue[str | None] = asyncio.Queue(OUTBOUND_LIMIT)
        self.closed = False
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"link-{link}")

    async def _run(self) -> None:
        runner = self.runner
        code: int | None = None
        busy = False
        writer = None
        try:
            self.ws = await connect(
                self.url,
                ssl=runner.ssl_for(self.url),
                proxy=None,  # never route the agent's links through an auto-detected proxy
                open_timeout=None,  # the core arms its own open timeout
                ping_interval=None,  # protocol heartbeats, driven by the core
                close_timeout=0.5,
                compression=None,
                max_size=4 * 1024 * 1024,
                max_queue=256,
                user_agent_header=None,
            )
            if self.closed:
                return
            writer = asyncio.get_running_loop().create_task(self._write())
            runner.feed(runner.session.link_opened, self.link)
            async for frame in self.ws:
                if self.closed:  # given up by the core: nothing more of this link may reach it
                    break
                try:
                    message = p.decode_server(frame)
                except p.ProtocolError as exc:
                    log.warning("link %s (%s): undecodable frame: %s", self.link, self.url, exc.message)
                    continue
                if runner.on_wire is not None:
                    runner.on_wire("received", self.endpoint, message)
                runner.feed(runner.session.message_received, self.link, message)
        except InvalidStatus as exc:  # the server answered, with an HTTP refusal (503: at its connection limits)
            log.debug("link %s (%s): %s", self.link, self.url, exc)
            busy = exc.response.status_code == 503
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError, ConnectionClosed) as exc:
            log.debug("link %s (%s): %s", self.link, self.url, exc)
        except asyncio.CancelledError:
            pass
        finally:
            if writer is not None:
                writer.cancel()
            if self.ws is not None:
                code = self.ws.close_code
            if not self.closed:
                self.closed = True
                runner.links.pop(self.link, None)
                runner.feed(runner.session.link_closed, self.link, code=code, busy=busy)

    async def _write(self) -> None:
        ws = self.ws
        assert ws is not None, "the writer starts once connected"
        try:
            while (frame := await self.outbound.get()) is not None:
                await ws.send(frame)
        except ConnectionClosed:
            pass

    def send(self, frame: str) -> None:
        try:
            self.outbound.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("link %s: %d frames unsent, dropping the link", self.link, OUTBOUND_LIMIT)
            self.close(p.CloseCode.INTERNAL_ERROR, "outbound queue full")

    def close(self, code: int = p.CloseCode.NORMAL, reason: str = "") -> None:
        """Close for good: the core has already forgotten this link, so nothing is fed back."""
        if self.closed:
            return
        self.closed = True
        self.runner.links.pop(self.link, None)
        ws = self.ws
        if ws is None:
            self.task.cancel()
            return
        # Closing a hung peer must not wait for its answer: start the handshake, abort soon after.
        asyncio.get_running_loop().create_task(ws.close(code, reason))


class SessionRunner:
    """Executes an AgentSession's outputs on the running asyncio loop."""

    def __init__(self, session: AgentSession, *, on_event: Callable[[Any], None] = lambda e: None,
                 ca_file: str | None = None, on_wire: Callable[[str, str, p.Message], None] | None = None):
        """``on_wire(direction, endpoint, message)``, if given, sees every frame sent or received
        (for traces: the order of requests and answers across links)."""
        self.session = session
        self.on_event = on_event
        self.on_wire = on_wire
        self.links: dict[Any, _Link] = {}
        self.timers: dict[Any, asyncio.Handle] = {}
        self._ca_file = ca_file
        self._ssl: ssl.SSLContext | None = None
        self.loop = asyncio.get_running_loop()

    def ssl_for(self, url: str) -> ssl.SSLContext | None:
        if not url.startswith("wss://"):
            return None
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self._ca_file)
        return self._ssl

    def feed(self, method: Callable[..., list], *args, **kwargs) -> None:
        """Call a core input with the current time and execute what it returns."""
        outputs = method(*args, now=self.loop.time(), wall_ms=_wall_ms(), **kwargs)
        self.execute(outputs)

    def execute(self, outputs) -> None:
        for out in outputs or ():
            if isinstance(out, ev.Send):
                link = self.links.get(out.link)
                if link is not None:
                    if self.on_wire is not None:
                        self.on_wire("sent", link.endpoint, out.message)
                    link.send(p.encode(out.message))
            elif isinstance(out, ev.OpenLink):
                self.links[out.link] = _Link(self, out.link, out.endpoint, out.url)
            elif isinstance(out, ev.CloseLink):
                link = self.links.get(out.link)
                if link is not None:
                    link.close(out.code, out.reason)
            elif isinstance(out, ev.SetTimer):
                old = self.timers.pop(out.key, None)
                if old:
                    old.cancel()
                self.timers[out.key] = self.loop.call_at(out.at, self._fire, out.key)
            elif isinstance(out, ev.CancelTimer):
                old = self.timers.pop(out.key, None)
                if old:
                    old.cancel()
            else:
                self.on_event(out)

    def _fire(self, key, deferred: bool = False) -> None:
        self.timers.pop(key, None)
        if not deferred and self._unread(key):
            # Frames of this link wait unread (asyncio runs due timers before the reader task has
            # handed them over): let the reader go first, so a starved loop does not judge a link
            # silent that has spoken (docs/failover.md, "Asymmetric liveness"). The reader drains
            # what is queued in one step, so one turn of the loop is enough.
            self.timers[key] = self.loop.call_soon(self._fire, key, True)
            return
        self.feed(self.session.timer_fired, key)

    def _unread(self, key) -> int:
        """How many frames of a link timer's link are received but not yet read (0 otherwise)."""
        link = self.links.get(key[1]) if isinstance(key, tuple) and len(key) == 2 and key[0] == "link" else None
        ws = link.ws if link is not None else None
        # websockets' asyncio connection queues received frames in ``recv_messages.frames``
        # (websockets >= 13); read defensively, an unknown layout only loses the optimisation.
        frames = getattr(getattr(ws, "recv_messages", None), "frames", None)
        try:
            return len(frames) if frames is not None else 0
        except TypeError:
            return 0

    def shutdown(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for link in list(self.links.values()):
            link.close(p.CloseCode.GOING_AWAY, "client shutting down")
