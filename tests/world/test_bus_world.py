"""Three sites on a simulated RabbitMQ bus (tests/world/bus.py), its faults and faults at site C.

The agents work at A (B their backup); C has no agent. Throughout, the broker delays frames and
redelivers hand-overs and answers. Calls waiting at C are handed to A's agents; the broker goes
down and comes back (each site serves its own agents meanwhile; C's calls wait for the bus, then
are handed over); C is frozen while A and B go on routing; C is killed with calls of its own and
the carrier re-submits them elsewhere. Every call is offered by one site at a time and completed
once (the world's checks), none stays stranded at C once the bus links it to the agents again,
and every site's pool view of every agent agrees again."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import rule

from .machine import WorldMachine, world_settings
from .world import World

LINK_AGAIN_S = 6.0  # after the broker is back: peer redial back-off (2 s, jittered) and the handshakes


def work_until(world: World, done, seconds: float) -> float:
    """The agents work (Ready, take every offer, complete) until ``done()``; how long it took."""
    start = world.loop.now
    while world.loop.now - start < seconds and not done():
        for desk in world.desks:
            desk.work_through()
        world.run_for(0.1)
        world.check()
    assert done(), world.whereabouts(world.unfinished())
    return world.loop.now - start


def completed(world: World, calls: list[str]) -> bool:
    return all(world.reports.completions[iid] for iid in calls)


def offered_somewhere(world: World, calls: list[str]) -> bool:
    return all(any(h[1] in ("offered", "completed") for h in world.reports.history[iid]) for iid in calls)


def pool_views(world: World) -> list[str]:
    """Where every running site thinks each agent is logged in, against where it is."""
    wrong = []
    for desk in world.desks:
        at = [s for s in world.sites.values() if s.login_of(desk.agent_id) is not None]
        if len(at) != 1:
            wrong.append(f"{desk.agent_id} logged in at {[s.name for s in at]}")
            continue
        home, epoch = at[0].name, at[0].login_of(desk.agent_id).epoch
        for site in world.sites.values():
            if site is at[0] or not site.alive or site.core is None:
                continue
            seen = site.core.pool.remote.get(desk.agent_id)
            view = None if seen is None else (seen.site, seen.presence.epoch, seen.presence.logged_in)
            if view != (home, epoch, True):
                wrong.append(f"{site.name} sees {desk.agent_id} as {view}, it is at {home} epoch {epoch}")
    return wrong


def views_agree_within(world: World, seconds: float) -> float:
    start = world.loop.now
    while world.loop.now - start < seconds and pool_views(world):
        world.run_for(0.1)
    assert not pool_views(world), pool_views(world)
    return world.loop.now - start


@pytest.mark.parametrize("seed", [11, 12])
def test_faults_at_c_on_a_simulated_bus_strand_nothing_and_every_pool_view_agrees_again(seed):
    world = World(seed=seed, agents=3, sites=("A", "B", "C"), endpoints=("A", "B"), bus=True)
    bus = world.bus
    assert bus is not None
    bus.delay, bus.redeliver = 0.05, 0.3
    world.start()
    world.run_for(3.0)
    assert [d.session.snapshot().primary for d in world.desks] == ["A"] * 3
    for desk in world.desks:
        desk.ready()
    views_agree_within(world, 3.0)

    # Calls at C, where nobody works: handed to A's agents through the bus.
    at_c = [world.carrier.new_interaction_at("C") for _ in range(3)]
    work_until(world, lambda: completed(world, at_c), 10.0)
    for iid in at_c:
        assert ("C", "withdrawn", None) in world.reports.history[iid], world.reports.history[iid]
        assert [c.site for c in world.reports.completions[iid]] == ["A"]

    # The broker goes down: each site serves its own agents; C's calls wait for the bus.
    bus.down()
    world.run_for(0.5)
    at_a = [world.carrier.new_interaction_at("A") for _ in range(2)]
    waiting_at_c = [world.carrier.new_interaction_at("C") for _ in range(2)]
    work_until(world, lambda: completed(world, at_a), 5.0)
    assert not offered_somewhere(world, waiting_at_c)
    bus.back()
    # Not stranded: offered to A's agents as soon as the bus links C and A again.
    took = work_until(world, lambda: offered_somewhere(world, waiting_at_c), LINK_AGAIN_S)
    assert took <= LINK_AGAIN_S
    work_until(world, lambda: completed(world, waiting_at_c), 10.0)
    views_agree_within(world, 3.0)

    # C frozen: A and B go on routing (B's calls handed to A, confirmed without C).
    world.freeze(world.sites["C"])
    at_b = [world.carrier.new_interaction_at("B") for _ in range(3)]
    work_until(world, lambda: completed(world, at_b), 10.0)
    world.thaw(world.sites["C"])
    views_agree_within(world, 5.0)

    # C killed with calls of its own: the carrier re-submits what it had not handed over.
    lost_with_c = [world.carrier.new_interaction_at("C") for _ in range(2)]
    world.kill("C")
    work_until(world, lambda: completed(world, lost_with_c), 15.0)
    world.restart("C")
    views_agree_within(world, LINK_AGAIN_S)

    assert bus.redelivered > 0 and bus.outages
    for iid in at_c + at_a + waiting_at_c + at_b + lost_with_c:
        assert len(world.reports.completions[iid]) == 1, world.reports.history[iid]
    world.settle()


class ThreeSitesOnABus(WorldMachine):
    """Every fault of the world (tests/world/machine.py; they strike A and B) in three sites on a
    simulated bus, with the broker's own faults besides: down and back, slow, redelivering."""

    AGENTS = 4
    SITES = ("A", "B", "C")
    BUS = True

    @rule()
    def broker_down(self) -> None:
        assert self.world.bus is not None
        self.world.bus.down()

    @rule()
    def broker_back(self) -> None:
        assert self.world.bus is not None
        self.world.bus.back()

    @rule(delay=st.sampled_from([0.0, 0.02, 0.2, 0.6]), redeliver=st.sampled_from([0.0, 0.2, 0.5]))
    def broker_slow(self, delay: float, redeliver: float) -> None:
        assert self.world.bus is not None
        self.world.bus.delay, self.world.bus.redeliver = delay, redeliver


ThreeSitesOnABus.TestCase.settings = world_settings(examples=30, steps=30)
test_world_of_three_sites_on_a_bus = ThreeSitesOnABus.TestCase
