"""The RabbitMQ site bus, simulated in the world (``World(bus=True)``; docs/multisite.md, "RabbitMQ").

With a bus the sites do not reach each other: every frame between two sites goes through the
broker. ``SimBus`` gives the world's peer links the broker's delivery rules and its faults, so the
real server cores run through what ``--bus`` gives them:

- **Order.** What a site tells every site (presence, claims, full states, the handshake) goes on
  the events exchange, one queue per receiving site: per sender, in the order published. The
  hand-overs and the answers other sites wait for (``PeerHandover``, ``PeerHandoverAck``,
  ``PeerInteractionsAck``) go to the receiver's inbox, another queue: they may overtake the
  events or be overtaken by them. (The real bus now sends only hand-overs that way,
  ``server_stub.bus.transport.WORK_TYPES``, and the answers with the events, in order; answers
  on the inbox's rules, reordered and redelivered, are the harsher case the cores still meet.)
- **Message delay** (``delay``): the broker is slow; each frame waits up to that long more, events
  still in order per sender.
- **Redelivery** (``redeliver``, a probability): an inbox frame arrives a second time, later (a
  consumer that lost its connection before its acknowledgement reached the broker, a publisher
  whose confirm was lost). The cores must treat it as a duplicate.
- **Broker down, then back** (``down()``, ``back()``): every site loses every other at once (its
  connection to the broker died: every peer link resets, what was in flight is lost) and no link
  can be made until the broker is back; then the sites link again and exchange their full states,
  as they do on a real reconnect.

What it does not run is ``BusTransport``'s own machinery over these rules (link generations, the
"dial me again" answer, the beats): that is asyncio code, tested over an in-memory bus
(tests/server/test_bus_transport.py) and with a real broker (tests/bus/). Here a site's link to
another is the world's peer link, whose up and down are what ``on_site_up``/``on_site_down`` are
to the bus transport.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .world import World

INBOX_TYPES = tuple(f'{{"type":"{kind}"' for kind in ("PeerHandover", "PeerHandoverAck", "PeerInteractionsAck"))


class SimBus:
    def __init__(self, world: World) -> None:
        self.world = world
        self.up = True
        self.delay = 0.0  # seconds a frame may wait at the broker (at most)
        self.redeliver = 0.0  # chance that an inbox frame arrives twice
        self.rng = random.Random(f"{world.seed}-bus")
        self.outages: list[list[float]] = []  # [down at, back at]
        self.redelivered = 0
        self.inbox_frames = 0

    def carry(self, send: Callable[..., None], frame: str, payload: Any) -> None:
        """One frame from one site to another, through the broker."""
        if not self.up:
            return  # nobody is connected: the links are reset (``down``), nothing is published
        extra = self.rng.uniform(0.0, self.delay) if self.delay else 0.0
        if not frame.startswith(INBOX_TYPES):
            send(payload, extra=extra)  # the events queue: in order per sender
            return
        # The inbox: a queue of its own, not in order with the events.
        self.inbox_frames += 1
        send(payload, extra=extra, fifo=False)
        if self.rng.random() < self.redeliver:
            self.redelivered += 1
            send(payload, extra=extra + self.rng.uniform(0.0, max(self.delay, 0.1)), fifo=False)

    def down(self) -> None:
        """The broker dies (SIGKILL): every site's connection to it drops, so does every link."""
        if not self.up:
            return
        self.up = False
        self.outages.append([self.world.loop.now, float("inf")])
        for site in self.world.sites.values():
            for dialer in site.dialers.values():
                if dialer.link is not None:
                    dialer.link.reset()
            for link in list(site.links.values()):
                if link.kind == "peer":
                    link.reset()

    def back(self) -> None:
        """The broker is back (restarted, empty): the sites connect and link again."""
        if not self.up:
            self.up = True
            self.outages[-1][1] = self.world.loop.now

    def heal(self) -> None:
        self.back()
        self.delay = 0.0
        self.redeliver = 0.0
