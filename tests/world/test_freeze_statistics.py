"""The queue statistics a server publishes agree with the interaction events of its own stream, also
while a completion waits for a stopped (SIGSTOP) peer: a supervisor (and bench/chaos.py's ledger)
reads the ``offered`` figure of every EventQueueStatistics as the number of ``offered``
EventInteraction events the same server published before it (docs/protocol.md, Queue statistics)."""

from __future__ import annotations

from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition

from desktop.core.config import FailbackPolicy
from server_stub import protocol as p
from server_stub.core.routing import OFFERED
from tests.world.machine import WorldMachine, world_settings
from tests.world.site import Site
from tests.world.steps import consultation_accepted, holding_a_call
from tests.world.world import World


def statistics_against_events(world: World, site: str) -> list[str]:
    """Every EventQueueStatistics of ``site`` (one incarnation: its figures count since the process
    started) whose offered / answered / abandoned figures differ from its events published before it."""
    counted = {"offered": "offered", "accepted": "answered", "abandoned": "abandoned"}
    seen: dict[tuple[str, str], int] = {}
    wrong = []
    for when, name, message in world.reports.log:
        if name != site:
            continue
        if isinstance(message, p.EventInteraction) and message.event in counted:
            key = (message.queue, counted[message.event])
            seen[key] = seen.get(key, 0) + 1
        elif isinstance(message, p.EventQueueStatistics):
            for q in message.queues:
                got = {f: getattr(q, f) for f in counted.values()}
                expected = {f: seen.get((q.queue, f), 0) for f in counted.values()}
                if got != expected:
                    wrong.append(f"{site} at {when:.3f} s, queue {q.queue}: statistics {got}, events {expected}")
    return wrong


def test_the_offer_a_completion_frees_the_agent_for_is_not_counted_before_it_is_reported():
    """The agent completes its call while the next one waits; the peer is stopped, so the
    completion (and the offer of the next call it made possible) waits for the peer's answer or
    its silence to be taken for death. Statistics published meanwhile must not count that offer:
    its ``offered`` event is not published yet."""
    world, desk, _ = holding_a_call()
    world.carrier.new_interaction()  # waits: the only agent is busy
    world.run_for(0.2)
    world.freeze(world.sites["B"])
    desk.complete(0, final_notes=True)
    world.run_for(6.0)  # A takes B's silence for death, answers, offers the next call
    assert len(desk.session.snapshot().offers) == 1
    assert statistics_against_events(world, "A") == []
    world.thaw(world.sites["B"])
    world.run_for(5.0)
    assert statistics_against_events(world, "A") == []
    assert statistics_against_events(world, "B") == []


class Figures(WorldMachine):
    """The world's random faults (tests/world/machine.py), checking after every step that each
    server's queue figures count exactly the ``offered`` events its current process published, and
    that an interaction offered at a server is the one offer of a logged-in agent there (an agent
    is never left with two offers, nor an offer with no agent)."""

    AGENTS = 4

    @initialize(failback=st.sampled_from(["never", "when-idle"]), seed=st.integers(0, 2**32 - 1))
    def start(self, failback: FailbackPolicy, seed: int) -> None:
        super().start(failback, seed)
        self.published: Counter[tuple[str, int, str]] = Counter()  # (site, incarnation, queue) -> offered events
        publish = self.world.reports.published

        def published(site: Site, message: p.Message) -> None:
            if isinstance(message, p.EventInteraction) and message.event == "offered":
                self.published[(site.name, site.incarnation, message.queue)] += 1
            publish(site, message)

        self.world.reports.published = published  # type: ignore[method-assign]
        for site in self.world.sites.values():  # what was offered before the watch began
            core = site.core
            for name, q in (core.engine.queues.items() if core is not None else ()):
                self.published[(site.name, site.incarnation, name)] = q.offered

    @precondition(lambda self: self.started)
    @invariant()
    def figures_follow_the_stream(self) -> None:
        for site in self.world.sites.values():
            core = site.core
            if core is None or not site.alive:
                continue
            for name, q in core.engine.queues.items():
                assert q.offered == self.published[(site.name, site.incarnation, name)], (site, name)
            for iid, item in core.engine.interactions.items():
                if item.status == OFFERED:
                    agent = core.engine.agents.get(item.agent_id or "")
                    assert agent is not None and agent.offer == iid, (site, iid, item.agent_id,
                                                                      agent and agent.offer)


Figures.TestCase.settings = world_settings(examples=30, steps=40)
test_figures_under_faults = Figures.TestCase


def test_the_answer_of_a_consultation_completed_while_the_peer_is_stopped_is_counted_with_its_event():
    """Seen in the chaos run's freeze mode: the first agent completes a consultation (the consulted
    agent takes the call: an answer in the queue's figures) while the peer is stopped, so the
    completion waits for the peer's answer before its ``accepted`` event is published. Statistics
    published meanwhile must not count that answer yet."""
    world, first, second, iid = consultation_accepted(seed=21)
    world.freeze(world.sites["B"])
    first.act(first.session.end_transfer, iid, True)
    world.run_for(6.0)
    assert iid in [h.interaction.interaction_id for h in second.session.snapshot().held]
    assert statistics_against_events(world, "A") == []
    world.thaw(world.sites["B"])
    world.run_for(5.0)
    assert statistics_against_events(world, "A") == []
