"""Stopping a server whose peer link has a delta in flight (in-process, so the timing is exact).

On Python 3.11, ``asyncio.wait_for`` swallows a cancellation that arrives just as the awaited
queue item does; the peer link then never ended and SIGTERM left the process running until it was
killed. The process-level symptom was a 10 s hang at the teardown of about one pair in five.
"""

from __future__ import annotations

import asyncio

import pytest

from server_stub import protocol as p
from server_stub.config import ServerConfig
from server_stub.directory import Directory
from server_stub.resources import resource_path
from server_stub.server import InteractionServer
from tests.server.test_duplicates_fencing import peer_conn_closed
from tests.support.servers import linked, reserve_port, wait_until

SECRET = b"test-shutdown-secret-0123"


async def start_linked(directory: Directory) -> tuple[InteractionServer, InteractionServer]:
    """A and B on ports reserved for them, each in the other's peer URL."""
    pa, pb = reserve_port(), reserve_port()
    a = InteractionServer(ServerConfig(name="A", port=pa, peer_url=f"ws://127.0.0.1:{pb}", secret=SECRET), directory)
    await a.start()
    b = InteractionServer(ServerConfig(name="B", port=pb, peer_url=f"ws://127.0.0.1:{pa}", secret=SECRET), directory)
    try:
        await b.start()
    except BaseException:
        await a.stop()
        raise
    return a, b


async def stop_with_delta_in_flight(spins: int) -> None:
    a, b = await start_linked(Directory.load(resource_path("demo_agents.toml")))
    try:
        assert a.peer is not None  # a linked pair
        await asyncio.wait_for(a.peer.connected.wait(), 5)
        # e.g. an agent's socket closed just before the signal
        a.peer.send(p.encode(p.PeerAgentEpochs(server="A", epochs={}, logged_out=["1001"])))
        for _ in range(spins):
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.shield(a.stop()), 3)
    finally:
        await asyncio.wait_for(b.stop(), 3)


@pytest.mark.parametrize("spins", [0, 1, 2, 3])
def test_stop_finishes_with_a_peer_delta_in_flight(spins):
    asyncio.run(stop_with_delta_in_flight(spins))


def test_a_stopping_server_closes_its_peer_link_as_going_away(make_pair):
    """SIGTERM is a clean stop: the peer sees 1001 on the link, not 1011 (an internal error)."""
    a, b = make_pair()
    wait_until(lambda: linked(a, b), message="peer link up")
    assert a.stop() == 0
    wait_until(lambda: peer_conn_closed(b, "A"), message="B sees the link from A end")
    link = next(line for line in b.lines if ": peer link from A" in line).split("conn#", 1)[1].split(" ", 1)[0]
    closed = [line for line in b.lines if f"conn#{link} " in line and "disconnected" in line]
    assert "disconnected (code 1001" in closed[0], closed
