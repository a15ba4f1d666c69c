"""Hold and transfers in the world (tests/world/world.py): the real desktops and servers on a fake
clock, with a site killed in the middle of a transfer. The world's invariants hold throughout (an
interaction completed at most once, never in two agents' hands unnoticed, everything submitted
ends) and every call is completed once after healing. Then the random machine of
tests/world/machine.py with transfers among the agents' work."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from .desk import Desk
from .machine import WHO, WorldMachine, world_settings
from .steps import consultation_accepted, in_hand, two_sites
from .world import World


def held(desk: Desk) -> list[str]:
    return [h.interaction.interaction_id for h in desk.session.snapshot().held]


def completed_once(world: World, iid: str) -> None:
    world.settle()
    assert len(world.reports.completions[iid]) == 1, world.reports.history[iid]


def test_a_blind_transfer_to_a_queue_survives_the_death_of_its_site_before_anyone_took_it():
    world = two_sites(agents=2, seed=11)
    first, second = world.desks
    second.intent("not_ready")
    iid = in_hand(world, first)
    first.intent("not_ready")
    world.run_for(0.2)
    first.act(first.session.transfer, iid, "blind", to_queue="q")
    world.run_for(0.1)
    assert held(first) == [] and world.sites["A"].core is not None
    assert world.sites["A"].core.engine.interactions[iid].status == "queued"
    world.kill("A")
    world.run_for(3.0)
    assert [d.session.snapshot().primary for d in world.desks] == ["B", "B"]
    assert world.sites["B"].core is not None
    assert world.sites["B"].core.engine.interactions[iid].status == "queued", "B queued it itself"
    second.ready()
    world.run_for(0.5)
    assert [o.interaction.interaction_id for o in second.session.snapshot().offers] == [iid]
    completed_once(world, iid)


def test_a_consultation_lost_with_its_site_leaves_the_call_with_the_first_agent():
    world = two_sites(agents=2, seed=12)
    first, second = world.desks
    second.intent("not_ready")
    iid = in_hand(world, first)
    first.act(first.session.hold, iid, True)
    second.ready()
    world.run_for(0.2)
    first.act(first.session.transfer, iid, "consult", to_agent=second.agent_id)
    world.run_for(0.2)
    (offer,) = second.session.snapshot().offers
    assert offer.consult_from == first.agent_id
    second.answer(0, take=True)
    world.run_for(0.2)
    info = first.session.snapshot().held[0]
    assert info.transfer is not None and info.transfer.status == "accepted" and info.hold_since_ms is not None
    world.kill("A")
    world.run_for(3.0)
    assert held(first) == [iid] and second.session.snapshot().offers == ()
    info = first.session.snapshot().held[0]
    assert info.transfer is None and info.hold_since_ms is not None, "still on hold at B, the consultation gone"
    assert world.sites["B"].core is not None
    assert world.sites["B"].core.engine.interactions[iid].hold_since == info.hold_since_ms
    assert ("B", "on_hold", first.agent_id) in world.reports.history[iid], "supervisors at B see it on hold"
    completed_once(world, iid)


def test_a_site_killed_right_after_a_consultation_was_completed_leaves_the_call_in_one_pair_of_hands():
    for seed, delay in ((13, 0.0), (14, 0.004), (15, 0.05)):
        world, first, _, iid = consultation_accepted(seed)
        first.act(first.session.end_transfer, iid, True)
        world.run_for(delay)
        world.kill("A")
        world.run_for(4.0)
        holders = [d.agent_id for d in world.desks if iid in held(d)]
        assert len(holders) == 1, (delay, holders, world.reports.history[iid])
        completed_once(world, iid)


class WithTransfers(WorldMachine):
    """The world's random faults, with the agents also putting calls on hold and transferring them
    (blind to the queue or to another agent, or consulting one and then completing or taking it
    back); answering a consultation is the machine's own ``answer``."""

    AGENTS = 3

    @rule(who=WHO, on=st.booleans())
    def hold(self, who: int, on: bool) -> None:
        desk = self.desk(who)
        if ids := held(desk):
            desk.act(desk.session.hold, ids[0], on)

    def _in_hand(self, desk: Desk) -> list[str]:
        """What the agent holds, after a few steps of its usual flow to get a call when it has none
        (rules are drawn uniformly among many: transfers would rarely find a call in hand)."""
        for _ in range(4):
            if ids := held(desk):
                return ids
            desk.flow("next", False)
            self.world.run_for(0.05)
        return held(desk)

    @rule(who=WHO, to=WHO, kind=st.sampled_from(["blind", "consult"]), queue=st.booleans())
    def transfer(self, who: int, to: int, kind: str, queue: bool) -> None:
        desk, target = self.desk(who), self.desk(to)
        if ids := self._in_hand(desk):
            target.ready()
            where = {"to_queue": "q"} if queue else {"to_agent": target.agent_id}
            desk.act(desk.session.transfer, ids[0], kind, **where)
            self.world.run_for(0.05)

    @rule(who=WHO, to=WHO, take=st.sampled_from([True, True, False]), complete=st.sampled_from([True, True, False]))
    def consult(self, who: int, to: int, take: bool, complete: bool) -> None:
        """A whole consultation, step by step: asked, answered, then completed or taken back."""
        desk = self.desk(who)
        if not (ids := self._in_hand(desk)):
            return
        free = [d for d in self.world.desks if d is not desk and not held(d) and not d.session.snapshot().offers]
        if not free:
            return
        target = free[to % len(free)]
        target.ready()
        self.world.run_for(0.05)
        desk.act(desk.session.transfer, ids[0], "consult", to_agent=target.agent_id)
        self.world.run_for(0.05)
        offers = [o for o in target.session.snapshot().offers if o.interaction.interaction_id == ids[0]]
        if offers:
            target.act(target.session.accept if take else target.session.reject, ids[0])
            self.world.run_for(0.05)
        if take:
            desk.act(desk.session.end_transfer, ids[0], complete)
            self.world.run_for(0.05)

    @rule(who=WHO, complete=st.booleans())
    def end_transfer(self, who: int, complete: bool) -> None:
        desk = self.desk(who)
        consulting = [h.interaction.interaction_id for h in desk.session.snapshot().held if h.transfer is not None]
        if consulting:
            desk.act(desk.session.end_transfer, consulting[0], complete)
            self.world.run_for(0.02)


WithTransfers.TestCase.settings = world_settings(examples=60, steps=40)
test_world_with_transfers = WithTransfers.TestCase


class ThreeSitesWithTransfers(WithTransfers):
    """The same in a mesh of three sites: transfers and consultations across any two of them."""

    AGENTS = 4
    SITES = ("A", "B", "C")


ThreeSitesWithTransfers.TestCase.settings = world_settings(examples=20, steps=30)
test_world_of_three_sites_with_transfers = ThreeSitesWithTransfers.TestCase
