"""The asyncio layer under the session core (desktop/net/runner.py): a link timer that falls due
while frames of its link wait unread lets the reader go first (docs/failover.md, "Asymmetric
liveness"). On a starved loop asyncio runs a due timer before the reader task has handed over what
the socket received, so an on-time silence timer would condemn a server that has spoken."""

from __future__ import annotations

import asyncio
import random
import threading

from websockets.sync.server import serve

from desktop.core import events as ev
from desktop.core.config import SessionConfig
from desktop.core.session import AgentSession
from desktop.net.runner import SessionRunner
from server_stub import protocol as p
from server_stub.protocol import Site


class QuietServer:
    """A server that registers the client, then speaks only when told to (``beat``)."""

    def __init__(self) -> None:
        self.beat = threading.Event()
        self.closed = threading.Event()
        self.server = serve(self._handle, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handle(self, ws) -> None:
        register = p.decode_client(ws.recv())
        assert isinstance(register, p.RequestRegisterClient), register
        ws.send(p.encode(p.EventAck(request_id=register.request_id, server="A", protocol_version=p.PROTOCOL_VERSION,
                                    heartbeat_interval_ms=500, heartbeat_timeout_ms=1500, client_timeout_ms=20_000)))
        while not self.closed.is_set():
            if self.beat.wait(0.05):
                self.beat.clear()
                ws.send(p.encode(p.Heartbeat()))
            try:
                ws.recv(timeout=0)  # the client's heartbeats; a close ends the handler
            except TimeoutError:
                pass
            except Exception:
                self.closed.set()

    def stop(self) -> None:
        self.closed.set()  # the handler returns: shutdown need not wait for its close handshake
        self.server.shutdown()


def test_a_silence_timer_due_while_a_frame_waits_unread_reads_it_first_and_keeps_the_link():
    server = QuietServer()
    roles: list[tuple[str, str]] = []

    async def scenario() -> None:
        changed = {"registered": asyncio.Event(), "reconnecting": asyncio.Event()}

        def on_event(e: object) -> None:
            if isinstance(e, ev.LinkRoleChanged):
                roles.append((e.endpoint, e.role))
                if e.role in changed:
                    changed[e.role].set()

        session = AgentSession(SessionConfig(endpoints=(Site("A", server.url),)), rng=random.Random(1))
        runner = SessionRunner(session, on_event=on_event)
        runner.feed(session.start)
        await asyncio.wait_for(changed["registered"].wait(), 10)
        # Just before A's silence is judged (1.5 s after its ack), the loop is starved: A's
        # heartbeat arrives meanwhile, and the loop gets the CPU back just as the timer is due.
        loop = asyncio.get_running_loop()

        def starved() -> None:
            (key,) = [k for k in runner.timers if k[0] == "link"]
            handle = runner.timers[key]
            assert isinstance(handle, asyncio.TimerHandle), handle
            due = handle.when()
            server.beat.set()
            while loop.time() < due + 0.03:  # the process has no CPU (a busy loop, not a wait)
                pass

        loop.call_later(1.2, starved)
        try:  # the link would be lost at the timer (1.5 s); a heartbeat 0.5 s later if kept
            await asyncio.wait_for(changed["reconnecting"].wait(), 2.0)
        except TimeoutError:
            pass
        runner.shutdown()

    try:
        asyncio.run(scenario())
    finally:
        server.stop()
    assert ("A", "reconnecting") not in roles, roles  # the heartbeat was read: the link was kept
