"""``BusTransport`` (server_stub/bus/transport.py) over an in-memory bus, no broker: two server
cores link over it, and a bus that delivers every hand-over twice, and lets it
overtake the events path, still offers, accepts and completes a call once. The same runs against
RabbitMQ in tests/bus/test_bus_sites.py."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from typing import cast

from server_stub.bus.amqp import AmqpBus
from server_stub.bus.transport import BusTransport
from server_stub.core import Close, Output, PeerClose, PeerRedial, PeerSend, Send
from tests.server.core_driver import CoreDriver, core


@dataclass
class MemoryHub:
    """Frames between the sites' buses, delivered when the test settles them. ``twice``: every
    frame given to ``send`` (hand-overs) is delivered two times, as a redelivery would."""

    buses: dict[str, MemoryBus] = field(default_factory=dict)
    wire: deque[tuple[str, str, bytes]] = field(default_factory=deque)
    twice: bool = False
    sent: int = 0
    record: list[tuple[str, str, bytes]] | None = None  # every frame delivered, when a list

    async def settle(self) -> None:
        for _ in range(1000):
            await asyncio.sleep(0)  # the transports' senders run
            if not self.wire:
                await asyncio.sleep(0)
                if not self.wire:
                    return
            while self.wire:
                to, sender, body = self.wire.popleft()
                if self.record is not None:
                    self.record.append((to, sender, body))
                self.buses[to].on_message(sender, body)
        raise AssertionError("the bus did not settle")


class MemoryBus:
    """What ``BusTransport`` uses of ``AmqpBus``, in memory."""

    def __init__(self, hub: MemoryHub, site: str, on_message) -> None:
        self.hub, self.site, self.on_message = hub, site, on_message
        self.last_error: str | None = None
        hub.buses[site] = self

    def publish_presence(self, agent_id: str, frame: bytes) -> None:
        self.broadcast(frame)

    def broadcast(self, frame: bytes, to: str | None = None) -> None:
        self.hub.wire.extend((other, self.site, frame) for other in self.hub.buses
                             if other != self.site and to in (None, other))

    async def send_batch(self, to_site: str, frames: list[bytes], *, timeout: float | None = None,
                         persistent: bool = True) -> None:
        for frame in frames:
            await self.send(to_site, frame)

    async def send(self, to_site: str, frame: bytes, *, timeout: float | None = None) -> None:
        self.hub.sent += 1
        self.hub.wire.extend([(to_site, self.site, frame)] * (2 if self.hub.twice else 1))

    async def start(self, timeout: float = 5.0) -> bool:
        return True

    async def stop(self) -> None:
        pass


class SiteOnBus(CoreDriver):
    """A core whose peer outputs go to its ``BusTransport``, as ``InteractionServer._run`` does."""

    transport: BusTransport

    def attach(self, hub: MemoryHub) -> None:
        bus = MemoryBus(hub, self.core.name, lambda sender, body: self.transport._message(sender, body))
        self.transport = BusTransport("amqp://memory/", self.core, self.run, self.now, bus=cast(AmqpBus, bus))

    def run(self, outputs: list[Output]) -> None:
        rest: list[Output] = []
        for out in outputs:
            if isinstance(out, PeerSend):
                self.transport.send(out.frame, out.to)
            elif isinstance(out, PeerClose):
                self.transport.close(out.to, out.code, out.reason)
            elif isinstance(out, PeerRedial):
                self.transport.redial()
            elif isinstance(out, (Send, Close)) and self.transport.owns(out.conn):
                if isinstance(out, Send):
                    self.transport.reply(out.conn, out.frame)
                else:
                    self.transport.closed(out.conn)
            else:
                rest.append(out)
        super().run(rest)

    async def ask(self, hub: MemoryHub, conn: int, message: dict) -> dict:
        """A request, the bus settled (an accept waits for the other site), then its answer."""
        request_id = message.setdefault("request_id", f"r{next(self._ids)}")
        self.mono += 0.01
        self.run(self.core.received(conn, json.dumps(message), self.now()))
        await hub.settle()
        return next(m for m in self.received.get(conn, []) if m.get("request_id") == request_id
                    and m["type"] in ("EventAck", "EventError"))


def sites(hub: MemoryHub) -> tuple[SiteOnBus, SiteOnBus]:
    a = SiteOnBus(core=core(name="A", bus_url="amqp://memory/"))
    b = SiteOnBus(core=core(name="B", bus_url="amqp://memory/"))
    for site in (a, b):
        site.attach(hub)
    return a, b


def test_two_cores_link_over_the_bus_and_a_twice_delivered_hand_over_is_offered_and_completed_once():
    async def main() -> None:
        hub = MemoryHub(twice=True)
        a, b = sites(hub)
        a.transport._site_up("B")
        b.transport._site_up("A")
        await hub.settle()
        for site, other in ((a, "B"), (b, "A")):
            assert other in site.core.peer.up, "its link to the other site is proven (the handshake ran)"
            assert len(site.core.peer_inbound) == 1, "the other site's link to it too"
        desk = b.registered()
        login = await b.ask(hub, desk, {"type": "RequestAgentLogin", "agent_id": "1001", "password": "pw"})
        epoch = login["epoch"]
        assert (await b.ask(hub, desk, {"type": "RequestAgentReady", "epoch": epoch}))["type"] == "EventAck"
        assert a.core.pool.remote["1001"].presence.available, "A knows the agent at B is available"
        carrier = a.registered()
        assert (await a.ask(hub, carrier, {"type": "RequestSubscribeReporting", "user_id": "carrier1",
                                           "password": "pw"}))["type"] == "EventAck"
        assert (await a.ask(hub, carrier, {"type": "RequestSubmitInteraction", "interaction": {
            "interaction_id": "call-1", "media": "voice", "queue": "sales", "created_ms": 1}}))["type"] == "EventAck"
        invites = [m for m in b.received[desk] if m["type"] == "EventInvite"]
        assert [m["interaction"]["interaction_id"] for m in invites] == ["call-1"], "offered once, at B"
        assert hub.sent >= 1, "the hand-over went over send() (its answer with the events, to A alone)"
        accept = await b.ask(hub, desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": "call-1"})
        assert accept["type"] == "EventAck", accept
        done = await b.ask(hub, desk, {"type": "RequestCompleteInteraction", "epoch": epoch,
                                       "interaction_id": "call-1", "disposition": "resolved"})
        assert done["type"] == "EventAck", done
        assert len([m for m in b.received[desk] if m["type"] == "EventInvite"]) == 1
        withdrawn = [m for m in a.received[carrier] if m["type"] == "EventInteraction" and m["event"] == "withdrawn"]
        assert len(withdrawn) == 1, withdrawn

    asyncio.run(main())


def linked(*pair: SiteOnBus) -> bool:
    return all(len(site.core.peer.up) == 1 and len(site.core.peer_inbound) == 1 for site in pair)


def test_after_the_broker_came_back_a_replay_of_the_old_links_frames_changes_nothing():
    """The broker went away (both sites down for each other) and came back (up: new links). Then
    everything the first links carried arrives again, late (a backlog, a redelivery): hellos,
    challenges, proofs, full states. Frames of links that are over count for nothing: both new
    links stay up, no old link is proven again (its challenge went to a link that is gone), and
    each site's view of the other's agent is the current one."""
    async def main() -> None:
        hub = MemoryHub(record=[])
        a, b = sites(hub)
        a.transport._site_up("B")
        b.transport._site_up("A")
        await hub.settle()
        assert linked(a, b)
        first_links = list(hub.record or [])
        hub.record = None
        for site, other in ((a, "B"), (b, "A")):
            site.transport._site_down(other)
        assert not a.core.peer.up and not a.core.peer_inbound
        desk = b.registered()
        login = await b.ask(hub, desk, {"type": "RequestAgentLogin", "agent_id": "1001", "password": "pw"})
        assert (await b.ask(hub, desk, {"type": "RequestAgentReady", "epoch": login["epoch"]}))["type"] == "EventAck"
        assert "1001" not in a.core.pool.remote, "A does not hear B while the broker is away"
        for site, other in ((a, "B"), (b, "A")):
            site.transport._site_up(other)
        await hub.settle()
        assert linked(a, b)
        assert a.core.pool.remote["1001"].presence.available, "the full state on the new link tells A"
        hub.wire.extend(first_links)  # the old links' frames, late
        await hub.settle()
        for _ in range(120):  # 12 s: any link the replay opened and never proved is given up
            for site in (a, b):
                site.mono += 0.1
                site.run(site.core.tick(site.now()))
            await hub.settle()
        assert linked(a, b), (a.core.peer.up, a.core.peer_inbound, b.core.peer.up, b.core.peer_inbound)
        assert set(b.transport.inbound) == set(b.core.peer_inbound), "no link left over from the replay"
        seen = a.core.pool.remote["1001"]  # the desk went quiet meanwhile (no heartbeats here): B tells it so
        truth = ("B", login["epoch"], b.core.engine.agents["1001"].available)
        assert (seen.site, seen.presence.epoch, seen.presence.available) == truth
        assert a.core.fencing.peer_logged_in.get("1001") == login["epoch"], "A still fences B's login (an old full " \
            "state, which did not list it, counted for nothing)"

    asyncio.run(main())
