"""Frame writing: the server writes a heartbeat at once when nothing is queued before it on its
socket (server_stub/server.py, ``_write_now``), and everything else through the socket's queue.
A client must see every frame, in the order the server made them (docs/protocol.md), and a quiet
link must still be beaten."""

from __future__ import annotations

import asyncio
import json

from tests.server.wire import login_agent, run


def test_a_burst_of_requests_is_answered_in_order_and_a_quiet_link_is_still_beaten(make_server):
    server = make_server()

    async def scenario():
        desk, ack, _ = await login_agent(server.url, "1001")
        ids = [f"nr-{i}" for i in range(60)]
        for i, request_id in enumerate(ids):  # sent back to back: the answers queue up behind each other
            await desk.send({"type": "RequestAgentNotReady", "request_id": request_id, "epoch": ack["epoch"],
                             "reason": ("break", "lunch")[i % 2]})
        answered: list[str] = []
        while len(answered) < len(ids):
            frame = await desk.recv()
            if frame["type"] in ("EventAck", "EventError") and frame.get("request_id") in ids:
                answered.append(frame["request_id"])
        assert answered == ids
        # The server's own beats keep coming on a link with nothing else to say (the statuses of the
        # last requests may come first).
        beats = 0
        async with asyncio.timeout(10):
            while beats < 2:
                beats += json.loads(await desk.ws.recv()) == {"type": "Heartbeat"}

    run(scenario())
