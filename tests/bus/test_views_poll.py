"""How bench/multisite.py's fault run reads each site's view of the center (``views_agree``).

A site whose links come up again (after a broker restart, or when a site comes back) streams a
burst of center events to a fresh ``scope: "center"`` subscriber right after its snapshot: every
agent of the sites it hears again. The bench takes the snapshot and closes. It used to read none
of the burst: the WebSocket client stopped reading after 16 unread frames (its flow control), so
it never saw the site's answer to its close, and the wait for that answer, inside the poll's 5 s
timeout, turned a snapshot received in milliseconds into "the site did not answer": that round
of polling took the whole 5 s, and views seemed to agree 5-7 s after the broker instead of 1-2 s.
These tests use a stand-in for one site (its reporting snapshot then a burst), no server.
"""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.server import serve

from bench.multisite import center_view, views_agree

AGENTS = [{"agent_id": "a1", "epoch": 3, "server": "B"}, {"agent_id": "a2", "epoch": 1, "server": "C"}]


async def site_with_a_burst(ws, burst: int = 200) -> None:
    """Answers the registration and the subscription (ack, snapshot), then sends ``burst`` center
    events at once, as a site does whose bus links have just come up; then serves the close."""
    async for raw in ws:
        message = json.loads(raw)
        await ws.send(json.dumps({"type": "EventAck", "request_id": message["request_id"], "server": "A"}))
        if message["type"] == "RequestSubscribeReporting":
            await ws.send(json.dumps({"type": "EventReportingSnapshot", "server": "A", "agents": AGENTS}))
            for n in range(burst):
                await ws.send(json.dumps({"type": "EventAgentState", "server": "A", "seq": n, "agent_id": "a2",
                                          "epoch": 1, "state": "ready", "reachable": True}))


def test_a_snapshot_followed_by_a_burst_of_events_counts_as_the_sites_answer():
    async def main() -> None:
        async with serve(site_with_a_burst, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            view = await center_view(f"ws://127.0.0.1:{port}")
        assert view == {"a1": ("B", 3, True), "a2": ("C", 1, True)}

    asyncio.run(main())


def test_views_agree_on_the_first_poll_when_every_site_answers_with_a_burst():
    async def main() -> None:
        async with serve(site_with_a_burst, "127.0.0.1", 0) as one, serve(site_with_a_burst, "127.0.0.1", 0) as two:
            urls = [f"ws://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in (one, two)]
            why: list[str] = []
            polls: list[int] = []
            took = await views_agree(urls, ["a1", "a2"], 60.0, why, polls)
        assert took is not None, why
        assert polls == [1], "every site answered the first poll; it should have been the last"

    asyncio.run(main())
