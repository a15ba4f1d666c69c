"""The site bus through a broker crash (SIGKILL) and restart, on a broker of the test's own: the
bus notices, refuses hand-overs it cannot confirm in time (and completes one that may wait),
reconnects by itself, asks the server to
re-publish its presence, and hand-overs confirmed before the crash are still delivered after it.
Then the broker is stopped and nothing of it (node, epmd, ports) is left."""

from __future__ import annotations

import asyncio
import socket

import pytest

from server_stub.bus.amqp import AmqpBus, BusUnavailable
from server_stub.bus.broker import amqp_greets
from tests.support.rabbitmq import BUS_DEADLINE, Inbox, start_broker, until

pytestmark = [pytest.mark.broker, pytest.mark.slow]

RESTART_DEADLINE = 60.0  # a broker restart takes ~9 s here, more when loaded


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_bus_survives_a_broker_kill_and_restart_and_the_broker_leaves_nothing_behind():
    broker = start_broker("faults")
    ports = (broker.amqp_port, broker.dist_port, broker.epmd_port)
    try:
        broker.add_sites(["A", "B"])
        urls = {site: broker.url(site) for site in "AB"}
        assert broker.pids(), "the node and its epmd run"

        async def main():
            in_a, in_b = Inbox(), Inbox()
            bus_a = AmqpBus(urls["A"], "A", in_a, on_reconnect=in_a.on_reconnect)
            bus_b = AmqpBus(urls["B"], "B", in_b, on_reconnect=in_b.on_reconnect)
            try:
                assert await bus_a.start(timeout=BUS_DEADLINE)
                # B is down for now: its hand-overs wait in its durable inbox.
                for n in range(20):
                    await bus_a.send("B", b"w%d" % n)

                broker.kill()
                assert await bus_a.wait_disconnected(BUS_DEADLINE), "A notices the broker is gone"
                dropped = bus_a.stats.dropped
                bus_a.publish_presence("alice", b"while-away")
                assert bus_a.stats.dropped == dropped + 1, "presence is dropped while the broker is away"
                with pytest.raises(BusUnavailable, match="may or may not"):
                    await bus_a.send("B", b"unconfirmable", timeout=0.5)

                # A hand-over with time to spare waits for the broker instead of failing.
                patient = asyncio.create_task(bus_a.send("B", b"waited", timeout=RESTART_DEADLINE + BUS_DEADLINE))
                await asyncio.to_thread(broker.restart, RESTART_DEADLINE)
                assert await bus_a.wait_connected(BUS_DEADLINE), f"A reconnects by itself: {bus_a.last_error}"
                await until(lambda: in_a.resyncs >= 2, "A asked to re-publish its presence after the reconnect")
                assert bus_a.stats.connects == 2
                await patient  # confirmed after the reconnect

                assert await bus_b.start(timeout=BUS_DEADLINE)
                await until(lambda: len(in_b.bodies(b"w")) >= 20, "B gets the hand-overs confirmed before the crash")
                assert in_b.bodies(b"w") == [b"w%d" % n for n in range(20)] + [b"waited"]
                assert b"unconfirmable" not in in_b.bodies(), "the refused send was never confirmed (nor delivered)"

                # Presence flows again, both ways, after the restart (to a site that hears the sender).
                await until(lambda: bus_a.sites_up == ["B"] and bus_b.sites_up == ["A"], "A and B hear each other")
                bus_a.publish_presence("alice", b"back")
                bus_b.publish_presence("bob", b"back")
                await until(lambda: ("A", b"back") in in_b.frames and ("B", b"back") in in_a.frames, "presence again")
                await bus_a.send("B", b"after")
                await until(lambda: in_b.bodies(b"after"), "hand-overs again")
            finally:
                await bus_b.stop()
                await bus_a.stop()

        asyncio.run(main())
    finally:
        broker.stop()
    assert broker.pids() == [], "no broker or epmd process is left"
    assert all(refused(port) for port in ports), "nothing listens on the broker's ports any more"
    assert not amqp_greets(ports[0])
    assert not broker.dir.exists(), "its temporary directory is removed"


def test_a_port_taken_between_the_pick_and_the_start_makes_the_broker_start_again_elsewhere(monkeypatch):
    """The ports are picked free, then bound by the broker seconds later: something can take one
    in between. Here something holds the first Erlang distribution port picked, then the second
    AMQP port (the node binds the distribution port first, so each fails its own way); each time the
    node exits, the start is tried again on new ports, and the broker works."""
    import server_stub.bus.broker as broker_module

    with socket.socket() as dist_holder, socket.socket() as amqp_holder:
        for holder in (dist_holder, amqp_holder):
            holder.bind(("127.0.0.1", 0))
            holder.listen()
        taken_dist, taken_amqp = dist_holder.getsockname()[1], amqp_holder.getsockname()[1]
        real_pick = broker_module._free_port
        # picks come in threes per attempt: AMQP, distribution, epmd
        picks = iter([real_pick(), taken_dist, real_pick(), taken_amqp])
        monkeypatch.setattr(broker_module, "_free_port", lambda: next(picks, None) or real_pick())
        broker = start_broker("ports")
        try:
            assert taken_dist != broker.dist_port and taken_amqp != broker.amqp_port
            assert amqp_greets(broker.amqp_port)
            output = broker.output(1000).lower()
            assert "dist_port_already_used" in output, "the first start failed on the taken distribution port"
            assert "eaddrinuse" in output, "the second start failed on the taken AMQP port"
        finally:
            broker.stop()
    assert broker.pids() == []
