"""Three interaction servers linked by the RabbitMQ site bus (``--bus``) instead of a mesh: the
server core's peer messages travel through the session's broker (server_stub/bus/transport.py,
docs/multisite.md "The core's messages on the bus"). In-process servers: nothing here kills a
server; the broker test that kills the broker starts a broker of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from server_stub.bus.broker import LocalBroker
from tests.server.interaction_steps import agent, agent_request, carrier, event, invite, new_interaction, submit
from tests.server.wire import run
from tests.support.inprocess import InProcessServer
from tests.support.rabbitmq import BUS_DEADLINE
from tests.support.servers import async_wait_until

pytestmark = pytest.mark.broker


def linked(servers: list[InProcessServer]) -> bool:
    """Every site has proved its link to every other, both ways (the handshake ran over the bus)."""
    n = len(servers) - 1
    for s in servers:
        core = s.server.core if s.server else None
        if core is None or len(core.peer.up) < n or len(core.peer_inbound) < n:
            return False
    return True


@contextlib.contextmanager
def bus_servers(broker: LocalBroker, sites: list[str]) -> Iterator[list[InProcessServer]]:
    servers = [InProcessServer(site, extra_args=["--bus", broker.url(site)]) for site in sites]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def presence_at(server: InProcessServer, agent_id: str):
    assert server.server is not None
    seen = server.server.core.pool.remote.get(agent_id)
    return None if seen is None else (seen.site, seen.presence.epoch, seen.presence.state, seen.presence.available)


def test_three_sites_on_the_bus_share_presence_and_hand_a_call_over(rabbitmq, bus_sites):
    """A call submitted at A, where nobody is logged in, reaches the agent at B through the bus and
    is completed there once; the agent logged in at C is known at A with its state."""
    a, b, c = bus_sites(3)
    with bus_servers(rabbitmq, [a, b, c]) as (site_a, site_b, site_c):
        async def scenario():
            await async_wait_until(lambda: linked([site_a, site_b, site_c]), BUS_DEADLINE,
                                   message="every site linked to every other over the bus")
            at_b, epoch_b = await agent(site_b.url, "1001")
            _, epoch_c = await agent(site_c.url, "1003", ready=False)
            await async_wait_until(lambda: presence_at(site_a, "1003") == (c, epoch_c, "not_ready", False),
                                   BUS_DEADLINE, message="A knows the agent at C, Not Ready")
            await async_wait_until(lambda: presence_at(site_a, "1001") == (b, epoch_b, "ready", True),
                                   BUS_DEADLINE, message="A knows the agent at B, Ready and available")
            feed_a, feed_b = await carrier(site_a.url), await carrier(site_b.url)
            call = new_interaction()
            iid = call["interaction_id"]
            assert (await submit(feed_a, call))["type"] == "EventAck"
            offer = await invite(at_b, timeout=BUS_DEADLINE)
            assert offer["interaction"]["interaction_id"] == iid
            assert (await agent_request(at_b, "RequestAccept", epoch_b, interaction_id=iid))["type"] == "EventAck"
            done = await agent_request(at_b, "RequestCompleteInteraction", epoch_b, interaction_id=iid,
                                       disposition="resolved")
            assert done["type"] == "EventAck", done
            await event(feed_b, "completed", iid, agent_id="1001")
            moved = await event(feed_a, "withdrawn", iid)
            assert f"at site {b}" in moved["reason"], moved

        run(scenario(), timeout=120)
