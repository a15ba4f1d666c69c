"""The stranded-calls scenario of issue 13 in the world (docs/multisite.md): the agents moved to B
when A died and stay there (failback never); A is restarted and the carrier, which prefers A,
submits there again. A hands every call over to B, whose agents are offered it (by B only) and
complete it; nothing is offered at A, where nobody is logged in."""

from __future__ import annotations

import pytest

from .steps import two_sites
from .world import World


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_calls_submitted_at_a_restarted_site_are_answered_by_the_agents_that_moved_away(seed):
    world = two_sites(agents=3, seed=seed)
    for desk in world.desks:
        desk.ready()
    world.kill("A")
    world.run_for(3.0)
    assert [d.session.snapshot().primary for d in world.desks] == ["B"] * 3
    world.restart("A")
    world.run_for(3.0)  # A is back and linked; the carrier sees it up again and submits there
    assert all(feed.up for feed in world.carrier.feeds.values())
    for _ in range(6):
        world.carrier.new_interaction()
    calls = sorted(world.carrier.ledger.entries)
    end = world.loop.now + 20
    while world.loop.now < end and world.unfinished():
        for desk in world.desks:
            desk.work_through()
        world.run_for(0.2)
    assert not world.unfinished(), world.whereabouts(world.unfinished())
    for iid in calls:
        history = world.reports.history[iid]
        if ("A", "queued", None) not in history:
            continue  # submitted while the carrier still had A down (to B)
        assert ("A", "withdrawn", None) in history, history
        assert not [h for h in history if h[0] == "A" and h[1] in ("offered", "completed")], history
        assert [c.site for c in world.reports.completions[iid]] == ["B"], history
    assert any(("A", "queued", None) in world.reports.history[iid] for iid in calls), "none was submitted at A"
    world.settle()


def work_until_done(world: World, seconds: float = 20.0) -> None:
    end = world.loop.now + seconds
    while world.loop.now < end and world.unfinished():
        for desk in world.desks:
            desk.work_through()
        world.run_for(0.2)
        world.check()
    assert not world.unfinished(), world.whereabouts(world.unfinished())


@pytest.mark.parametrize("seed", [3, 4])
def test_three_sites_calls_at_one_are_answered_at_another_and_follow_the_agents_when_their_site_dies(seed):
    """A mesh of three sites in the world: the agents work at C (B their backup), the carrier
    submits at A. Every call is handed from A to C; then C dies, the agents fail over to B, and
    the next calls are handed from A to B. Each is offered by one site at a time, completed once."""
    world = World(seed=seed, agents=3, sites=("A", "B", "C"), endpoints=("C", "B"))
    world.start()
    world.run_for(3.0)
    assert [d.session.snapshot().primary for d in world.desks] == ["C"] * 3
    for desk in world.desks:
        desk.ready()
    world.run_for(0.5)

    def submit(count: int) -> list[str]:
        before = set(world.carrier.ledger.entries)
        for _ in range(count):
            world.carrier.new_interaction()
        world.run_for(0.2)
        return sorted(set(world.carrier.ledger.entries) - before)

    first = submit(4)
    work_until_done(world)
    world.kill("C")
    world.run_for(4.0)
    assert [d.session.snapshot().primary for d in world.desks] == ["B"] * 3
    second = submit(4)
    work_until_done(world)
    for calls, site in ((first, "C"), (second, "B")):
        for iid in calls:
            history = world.reports.history[iid]
            assert ("A", "withdrawn", None) in history, history
            assert not [h for h in history if h[0] == "A" and h[1] in ("offered", "completed")], history
            assert [c.site for c in world.reports.completions[iid]] == [site], history
    world.settle()  # C restarted: everything agrees again within the world's bounds
