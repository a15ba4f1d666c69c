"""One configuration and supervisor actions on remote agents over a real RabbitMQ broker (issue
13): a change read at site A (as SIGHUP reads it) reaches site B through the bus, the new agent
logs in at B, and a supervisor subscribed at A sets that agent Not Ready at B."""

from __future__ import annotations

import pytest

from server_stub.directory import AgentRecord, Directory, hash_password
from tests.bus.test_bus_sites import bus_servers, linked
from tests.server.interaction_steps import answer as answer_to
from tests.server.wire import PASSWORD, connect_registered, login, run
from tests.support.inprocess import InProcessServer
from tests.support.rabbitmq import BUS_DEADLINE
from tests.support.servers import async_wait_until

pytestmark = pytest.mark.broker


def reload_with(site: InProcessServer, record: AgentRecord) -> None:
    """What SIGHUP (or the file watch) does after ``add-agent`` wrote the directory, on the site's loop."""
    server = site.server
    assert server is not None and site._loop is not None
    directory = Directory({**server.directory.agents, record.id: record})
    site._loop.call_soon_threadsafe(server.reload, server.config, directory)


def test_an_agent_added_at_a_logs_in_at_b_and_a_supervisor_at_a_acts_on_it_there(rabbitmq, bus_sites):
    a, b = bus_sites(2)
    newcomer = AgentRecord(id="3001", name="Newcomer", password_hash=hash_password("pw-new"), role="agent",
                           queues=("sales",))
    with bus_servers(rabbitmq, [a, b]) as (site_a, site_b):
        async def scenario():
            await async_wait_until(lambda: linked([site_a, site_b]), BUS_DEADLINE, message="linked over the bus")
            reload_with(site_a, newcomer)
            await async_wait_until(lambda: site_b.log_has("taking shared configuration version 1@"), BUS_DEADLINE,
                                   message="B taking A's change from the bus")
            desk = await connect_registered(site_b.url)
            ack, _ = await login(desk, "3001", password="pw-new")
            supervisor = await connect_registered(site_a.url, "supervisor-view")
            subscribed = await supervisor.request({"type": "RequestSubscribeReporting", "user_id": "sup1",
                                                   "password": PASSWORD, "scope": "center"})
            assert subscribed["type"] == "EventAck", subscribed
            core_a = site_a.server.core if site_a.server else None
            await async_wait_until(lambda: core_a is not None and "3001" in core_a.pool.remote, BUS_DEADLINE,
                                   message="A knows the agent at B")
            await supervisor.send({"type": "RequestForceNotReady", "request_id": "force-1", "agent_id": "3001",
                                   "reason": "break"})
            answer = await answer_to(supervisor, "force-1", timeout=BUS_DEADLINE)
            assert answer["type"] == "EventAck" and answer["epoch"] == ack["epoch"], answer
            forced = await desk.expect("EventCurrentAgentStatus", timeout=BUS_DEADLINE, forced_by=f"sup1@{a}")
            assert forced["state"] == "not_ready"

        run(scenario())
