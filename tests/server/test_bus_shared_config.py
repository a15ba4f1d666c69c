"""One configuration and supervisor actions on remote agents over the RabbitMQ transport's seam
(``BusTransport`` on the in-memory bus of test_bus_transport.py, no broker): the same core messages
as on the mesh, so a change at A reaches B, a site that was away catches up, and a supervisor at A
sets an agent of B Not Ready."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from server_stub.config import QueueConfig
from server_stub.directory import AgentRecord, Directory
from tests.server.test_bus_transport import MemoryHub, SiteOnBus, linked, sites


async def linked_sites(hub: MemoryHub) -> tuple[SiteOnBus, SiteOnBus]:
    a, b = sites(hub)
    a.transport._site_up("B")
    b.transport._site_up("A")
    await hub.settle()
    assert linked(a, b)
    return a, b


async def logs_in(hub: MemoryHub, site: SiteOnBus, agent_id: str) -> dict:
    desk = site.registered()
    return await site.ask(hub, desk, {"type": "RequestAgentLogin", "agent_id": agent_id, "password": "pw"})


def test_a_change_at_a_reaches_b_over_the_bus_and_b_catches_up_after_it_was_away():
    async def main() -> None:
        hub = MemoryHub()
        a, b = await linked_sites(hub)
        newcomer = AgentRecord(id="2001", name="New", password_hash="test-only", role="agent", queues=("sales",))
        a.run(a.core.reload(a.core.config, Directory({**a.core.directory.agents, "2001": newcomer}), a.now()))
        await hub.settle()
        assert (await logs_in(hub, b, "2001"))["type"] == "EventAck"
        assert b.core.config_version == a.core.config_version
        # B is away (the broker lost it) while A changes a queue: B takes it when it is back.
        a.transport._site_down("B")
        b.transport._site_down("A")
        queues = (QueueConfig(name="sales", accept_timeout_ms=12_000),)
        a.run(a.core.reload(replace(a.core.config, queues=queues), a.core.directory, a.now()))
        await hub.settle()
        assert b.core.engine.queues["sales"].config.accept_timeout_ms == 30_000
        a.transport._site_up("B")
        b.transport._site_up("A")
        await hub.settle()
        assert b.core.engine.queues["sales"].config.accept_timeout_ms == 12_000
        assert b.core.config_version.generation == 2 and not b.core.rules_differ

    asyncio.run(main())


def test_a_supervisor_at_a_sets_an_agent_logged_in_at_b_not_ready_over_the_bus():
    async def main() -> None:
        hub = MemoryHub()
        a, b = await linked_sites(hub)
        login = await logs_in(hub, b, "1001")
        sup = a.registered()
        assert (await a.ask(hub, sup, {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": "pw",
                                       "scope": "center"}))["type"] == "EventAck"
        ack = await a.ask(hub, sup, {"type": "RequestForceNotReady", "agent_id": "1001", "reason": "meeting"})
        assert ack["type"] == "EventAck" and ack["epoch"] == login["epoch"], ack
        assert (b.core.sessions["1001"].state, b.core.sessions["1001"].reason) == ("not_ready", "meeting")

    asyncio.run(main())
