"""The asyncio layer under the session core (desktop/net/runner.py): a handshake refused with 503
(a server at its connection limits, e.g. many desktops behind one address) reaches the core as a
busy server, which counts as heard (docs/failover.md, "Overload"), unlike a refused connection."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from http import HTTPStatus

from websockets.sync.server import serve

from desktop.core.config import SessionConfig
from desktop.core.session import AgentSession
from desktop.net.runner import SessionRunner
from server_stub.protocol import Site


def closes_seen(url: str) -> list[bool]:
    """Start a session on ``url`` alone; the ``busy`` flag of every link_closed until the first."""
    seen: list[bool] = []

    async def scenario() -> None:
        session = AgentSession(SessionConfig(endpoints=(Site("A", url),)), rng=random.Random(1))
        closed = asyncio.Event()
        original = session.link_closed

        def link_closed(link, now, wall_ms, code=None, busy=False):
            seen.append(busy)
            closed.set()
            return original(link, now, wall_ms, code=code, busy=busy)

        session.link_closed = link_closed  # type: ignore[method-assign]
        runner = SessionRunner(session)
        runner.feed(session.start)
        await asyncio.wait_for(closed.wait(), 10)
        runner.shutdown()

    asyncio.run(scenario())
    return seen


def test_a_handshake_refused_with_503_tells_the_core_the_server_is_busy():
    server = serve(lambda ws: None, "127.0.0.1", 0,
                   process_request=lambda conn, request: conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "busy\n"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert closes_seen(f"ws://127.0.0.1:{server.socket.getsockname()[1]}")[:1] == [True]
    finally:
        server.shutdown()


def test_a_refused_connection_is_not_a_busy_server():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert closes_seen(f"ws://127.0.0.1:{port}")[:1] == [False]
