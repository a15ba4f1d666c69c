"""Three interaction servers linked by the RabbitMQ site bus (``--bus``) instead of a mesh: the
server core's peer messages travel through the session's broker (server_stub/bus/transport.py,
docs/multisite.md "The core's messages on the bus"). In-process servers: nothing here kills a
server; the broker test that kills the broker starts a broker of its own."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator

import pytest

from server_stub.bus.broker import LocalBroker
from tests.server.interaction_steps import (
    agent,
    carrier,
    hand_over_and_complete,
    new_interaction,
    site_config,
    submit,
)
from tests.server.wire import Closed, WireClient, run
from tests.support.inprocess import InProcessServer
from tests.support.rabbitmq import BUS_DEADLINE
from tests.support.servers import async_wait_until, wait_until

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
def bus_servers(broker: LocalBroker, sites: list[str], extra: list[str] | None = None
                ) -> Iterator[list[InProcessServer]]:
    servers = [InProcessServer(site, extra_args=["--bus", broker.url(site), *(extra or [])]) for site in sites]
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
            ready_at = time.monotonic()
            await async_wait_until(lambda: presence_at(site_a, "1001") == (b, epoch_b, "ready", True),
                                   BUS_DEADLINE, interval=0.002, message="A knows the agent at B, Ready and available")
            print(f"Ready at B known at A {1000 * (time.monotonic() - ready_at):.0f} ms after B acknowledged it")
            _, epoch_c = await agent(site_c.url, "1003", ready=False)
            await async_wait_until(lambda: presence_at(site_a, "1003") == (c, epoch_c, "not_ready", False),
                                   BUS_DEADLINE, message="A knows the agent at C, Not Ready")
            feed_a, feed_b = await carrier(site_a.url), await carrier(site_b.url)
            moved = await hand_over_and_complete(feed_a, at_b, epoch_b, feed_b, "1001", timeout=BUS_DEADLINE)
            # A's copy ends once: by B's answer ("handed over to agent 1001 at site B") or, when B's
            # accept claim (events exchange) overtook that answer (B's inbox), by the claim.
            assert f"agent 1001 at site {b}" in moved["reason"] or "held at the peer site by agent 1001" \
                in moved["reason"], moved

        run(scenario(), timeout=120)


RESTART_DEADLINE = 60.0  # a broker restart takes 5-9 s here, more when the machine is loaded


async def answer_every_call(desk: WireClient, epoch: int, completed: list[str]) -> None:
    """A desktop that accepts and completes every call it is offered (``completed``: acknowledged)."""
    pending: dict[str, tuple[str, str]] = {}
    for n in itertools.count():
        try:
            message = await desk.recv(60)
        except Closed:
            return
        except AssertionError:  # nothing for a minute: keep waiting (the test's own deadline rules)
            continue
        if message["type"] == "EventInvite":
            iid = message["interaction"]["interaction_id"]
            pending[f"accept-{n}"] = ("accept", iid)
            await desk.send({"type": "RequestAccept", "request_id": f"accept-{n}", "epoch": epoch,
                             "interaction_id": iid})
        elif message["type"] in ("EventAck", "EventError") and message.get("request_id") in pending:
            step, iid = pending.pop(message["request_id"])
            if message["type"] == "EventAck" and step == "accept":
                pending[f"complete-{n}"] = ("complete", iid)
                await desk.send({"type": "RequestCompleteInteraction", "request_id": f"complete-{n}",
                                 "epoch": epoch, "interaction_id": iid, "disposition": "resolved"})
            elif message["type"] == "EventAck":
                completed.append(iid)


async def collect_reports(feed: WireClient, site: str, reports: list[tuple[str, str, str]]) -> None:
    """Every (site, event, interaction) a carrier's reporting stream tells."""
    while True:
        try:
            message = await feed.recv(60)
        except Closed:
            return
        except AssertionError:
            continue
        if message["type"] == "EventInteraction":
            reports.append((site, message["event"], message["interaction_id"]))


def views_agree(servers: list[InProcessServer]) -> bool:
    """Every site knows every agent logged in at another site as that site has it."""
    try:
        for home in servers:
            assert home.server is not None
            core = home.server.core
            for agent_id, session in list(core.sessions.items()):
                routed = core.engine.agents.get(agent_id)
                truth = (home.name, session.epoch, session.state, routed is not None and routed.available)
                if any(presence_at(other, agent_id) != truth for other in servers if other is not home):
                    return False
    except RuntimeError:  # a dict changed under us (another thread's loop): ask again
        return False
    return True


def peers_down(servers: list[InProcessServer]) -> bool:
    return all(s.server is not None and not s.server.core.peer.up and not s.server.core.peer_inbound
               for s in servers)


@pytest.mark.slow
def test_while_the_broker_is_killed_each_site_serves_its_own_agents_and_all_agree_again_after(rabbitmq, bus_sites,
                                                                                              tmp_path):
    """kill -9 of the broker and its restart: meanwhile each site offers its own calls to its own
    agent; after the restart every site's view of every agent agrees again, and of the calls
    submitted before, during and after, none is lost and none completed twice."""
    sites = bus_sites(3)
    with bus_servers(rabbitmq, sites, site_config(tmp_path)) as servers:
        async def scenario():
            await async_wait_until(lambda: linked(servers), BUS_DEADLINE, message="the three sites linked")
            completed: list[str] = []
            reports: list[tuple[str, str, str]] = []
            tasks = []
            for server, agent_id in zip(servers, ("1001", "1003", "1007"), strict=True):
                desk, epoch = await agent(server.url, agent_id)
                tasks.append(asyncio.create_task(answer_every_call(desk, epoch, completed)))
            feeds = [await carrier(server.url) for server in servers]  # to submit
            watchers = [await carrier(server.url) for server in servers]  # to read every report
            tasks += [asyncio.create_task(collect_reports(watcher, server.name, reports))
                      for watcher, server in zip(watchers, servers, strict=True)]
            await async_wait_until(lambda: views_agree(servers), BUS_DEADLINE, message="every view agrees")
            submitted: list[str] = []
            where: dict[str, str] = {}  # interaction -> the site it was submitted to

            async def submit_at_each(label: str) -> list[str]:
                ids = []
                for feed, server in zip(feeds, servers, strict=True):
                    call = new_interaction(iid=f"{label}-{server.name}-{len(submitted)}")
                    assert (await submit(feed, call))["type"] == "EventAck"
                    ids.append(call["interaction_id"])
                    where[call["interaction_id"]] = server.name
                submitted.extend(ids)
                return ids

            await submit_at_each("before")
            await asyncio.to_thread(rabbitmq.kill)
            await async_wait_until(lambda: peers_down(servers), BUS_DEADLINE, message="every site sees its peers down")
            during = await submit_at_each("during")
            await async_wait_until(lambda: set(during) <= set(completed), BUS_DEADLINE,
                                   message="each site completes the calls submitted to it with its own agent")
            for iid in during:  # served where submitted: no other site was reachable
                assert {site for site, kind, i in reports if i == iid and kind == "completed"} \
                    == {where[iid]}, [r for r in reports if r[2] == iid]
            await asyncio.to_thread(rabbitmq.restart, RESTART_DEADLINE)
            back = time.monotonic()
            await async_wait_until(lambda: linked(servers), BUS_DEADLINE, message="the sites linked again")
            print(f"broker restart {rabbitmq.startup_seconds:.1f} s; linked {time.monotonic() - back:.2f} s after")
            await submit_at_each("after")
            await async_wait_until(lambda: set(submitted) <= set(completed), BUS_DEADLINE,
                                   message=f"every call completed: {sorted(set(submitted) - set(completed))} missing")
            await async_wait_until(lambda: views_agree(servers), BUS_DEADLINE, message="every view agrees again")
            print(f"every view agrees {time.monotonic() - back:.2f} s after the restart (with {len(submitted)} calls)")
            twice = {iid for iid in submitted if completed.count(iid) != 1
                     or sum(1 for _, kind, i in reports if kind == "completed" and i == iid) > 1}
            assert not twice, f"completed twice: {twice}"
            for task in tasks:
                task.cancel()

        run(scenario(), timeout=240)


def drop_broker_connection(server: InProcessServer) -> None:
    """Close one site's AMQP connection (it reconnects in a fraction of a second, before the other
    sites count it down): as a broker-side network blip would."""
    assert server.server is not None and server.server.bus is not None and server._loop is not None
    bus = server.server.bus.bus
    connects = bus.stats.connects

    async def close() -> None:
        session = bus._session
        assert session is not None, "connected"
        await session.connection.close()

    asyncio.run_coroutine_threadsafe(close(), server._loop).result(BUS_DEADLINE)
    wait_until(lambda: bus.stats.connects > connects and bus.connected, BUS_DEADLINE, message="reconnected")


def test_a_site_that_lost_the_broker_for_a_moment_hears_and_is_heard_again(rabbitmq, bus_sites):
    """A's connection drops and comes back before B and C notice: A forgot their links, they did
    not forget A's. Both directions come back (A asks them to dial again), and what changes at
    any site afterwards is known everywhere."""
    sites = bus_sites(3)
    with bus_servers(rabbitmq, sites) as servers:
        async def scenario():
            await async_wait_until(lambda: linked(servers), BUS_DEADLINE, message="the three sites linked")
            await asyncio.to_thread(drop_broker_connection, servers[0])
            await async_wait_until(lambda: linked(servers), BUS_DEADLINE, message="linked again")
            for server, agent_id in zip(servers, ("1001", "1003", "1007"), strict=True):
                await agent(server.url, agent_id)
            await async_wait_until(lambda: all(presence_at(other, agent_id) is not None
                                               for agent_id in ("1001", "1003", "1007") for other in servers
                                               if other.server and agent_id not in other.server.core.sessions),
                                   BUS_DEADLINE, message="every login known at every other site")
            await async_wait_until(lambda: views_agree(servers), BUS_DEADLINE, message="every view agrees")

        run(scenario(), timeout=120)


def counts_down(observer: InProcessServer, site: InProcessServer) -> bool:
    bus = observer.server.bus if observer.server is not None else None
    return bus is not None and site.name not in bus.up


def test_a_site_stalled_past_the_others_patience_links_again_and_every_call_is_completed_once(rabbitmq, bus_sites):
    """A's event loop stops for 5 s (a stalled process: the others count A down after 3.5 s, and
    frames wait for A in its queues). When A runs again it takes a fresh full state from every
    site (PeerRedial: new links, the old links' backlog does not count), every view agrees again,
    and calls submitted meanwhile and after are completed once."""
    sites = bus_sites(3)
    with bus_servers(rabbitmq, sites) as servers:
        site_a, site_b, site_c = servers

        async def scenario():
            await async_wait_until(lambda: linked(servers), BUS_DEADLINE, message="the three sites linked")
            completed: list[str] = []
            tasks = []
            for server, agent_id in ((site_a, "1001"), (site_b, "1003")):
                desk, epoch = await agent(server.url, agent_id)
                tasks.append(asyncio.create_task(answer_every_call(desk, epoch, completed)))
            await async_wait_until(lambda: views_agree(servers), BUS_DEADLINE, message="every view agrees")
            feed_b, feed_c = await carrier(site_b.url), await carrier(site_c.url)
            assert site_a._loop is not None
            site_a._loop.call_soon_threadsafe(time.sleep, 5.0)  # the whole loop stops, as under SIGSTOP
            await async_wait_until(lambda: counts_down(site_b, site_a), BUS_DEADLINE, message="B counts A down")
            ids = []
            for feed in (feed_b, feed_c):
                call = new_interaction()
                assert (await submit(feed, call))["type"] == "EventAck"
                ids.append(call["interaction_id"])
            await async_wait_until(lambda: linked(servers), BUS_DEADLINE, message="linked again after the stall")
            for feed in (feed_b, feed_c):
                call = new_interaction()
                assert (await submit(feed, call))["type"] == "EventAck"
                ids.append(call["interaction_id"])
            await async_wait_until(lambda: set(ids) <= set(completed), BUS_DEADLINE,
                                   message=f"every call completed: {sorted(set(ids) - set(completed))} missing")
            await async_wait_until(lambda: views_agree(servers), BUS_DEADLINE, message="every view agrees again")
            assert all(completed.count(iid) == 1 for iid in ids), completed
            assert site_a.log_has("stalled for"), "A saw its own stall"
            for task in tasks:
                task.cancel()

        run(scenario(), timeout=120)
