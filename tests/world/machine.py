"""The Hypothesis state machine that drives the world (tests/world/world.py): random steps of time,
agents' work and carrier submissions, interleaved with every fault the world has; the world's
checks after every step and after healing (``World.check``, ``World.settle``)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from desktop.core.config import FailbackPolicy

from .desk import Desk
from .world import SITES, World

SITE = st.sampled_from(SITES)
WHO = st.integers(0, 63)  # an agent, modulo their number
PICK = st.integers(0, 7)
REASONS = ("break", "lunch")


class WorldMachine(RuleBasedStateMachine):
    AGENTS = 5
    SITES: tuple[str, ...] = SITES  # a mesh when more than two (the faults strike the first two)
    BUS = False  # the sites' frames through a simulated broker (tests/world/bus.py)
    world: World

    def __init__(self) -> None:
        super().__init__()
        self.started = False

    @initialize(failback=st.sampled_from(["never", "when-idle"]), seed=st.integers(0, 2**32 - 1))
    def start(self, failback: FailbackPolicy, seed: int) -> None:
        self.world = World(seed, agents=self.AGENTS, failback=failback, sites=self.SITES, bus=self.BUS)
        self.world.start()
        self.world.run_for(1.0)
        self.started = True

    def desk(self, who: int) -> Desk:
        return self.world.desks[who % len(self.world.desks)]

    # ------------------------------------------------------------------ time, agents, carrier

    @rule(seconds=st.sampled_from([0.01, 0.1, 0.3, 0.8, 1.6, 3.0, 6.0]))
    def wait(self, seconds: float) -> None:
        self.world.run_for(seconds)

    @rule(who=WHO, state=st.sampled_from(["ready", "not_ready", "after_call_work"]), reason=st.sampled_from(REASONS))
    def intent(self, who: int, state: str, reason: str) -> None:
        self.desk(who).intent(state, reason)

    # Two rules for the same flow: rules are drawn uniformly, and calls should be frequent.
    @rule(who=WHO, step=st.sampled_from(["next", "next", "notes"]), final_notes=st.booleans())
    def work(self, who: int, step: str, final_notes: bool) -> None:
        self.desk(who).flow(step, final_notes)
        self.world.run_for(0.02)  # a few round trips: the next step sees the answer

    @rule(who=WHO, step=st.sampled_from(["next", "notes"]), final_notes=st.booleans())
    def work_on(self, who: int, step: str, final_notes: bool) -> None:
        self.desk(who).flow(step, final_notes)
        self.world.run_for(0.02)

    @rule(who=WHO, pick=PICK, take=st.booleans())
    def answer(self, who: int, pick: int, take: bool) -> None:
        self.desk(who).answer(pick, take)

    @rule(who=WHO, pick=PICK)
    def notes(self, who: int, pick: int) -> None:
        self.desk(who).write_notes(pick)

    @rule(who=WHO, pick=PICK, final_notes=st.booleans())
    def complete(self, who: int, pick: int, final_notes: bool) -> None:
        self.desk(who).complete(pick, final_notes)

    @rule()
    def submit(self) -> None:
        self.world.carrier.new_interaction()

    # ------------------------------------------------------------------ faults

    @rule(site=SITE)
    def kill(self, site: str) -> None:
        self.world.kill(site)

    @rule(site=SITE)
    def restart(self, site: str) -> None:
        self.world.restart(site)

    @rule(site=SITE)
    def freeze(self, site: str) -> None:
        self.world.freeze(self.world.sites[site])

    @rule(site=SITE)
    def thaw(self, site: str) -> None:
        self.world.thaw(self.world.sites[site])

    @rule(who=WHO, seconds=st.sampled_from([0.5, 1.0, 2.0, 4.0, 8.0]))
    def stop_mid_request(self, who: int, seconds: float) -> None:
        """An agent acts (completes what it holds, else accepts its offer, else asks for Not Ready) and
        its primary stops (SIGSTOP) before reading the request, for ``seconds``. Agents with an
        interaction in hand or offered are picked first."""
        busy = [d for d in self.world.desks
                if not d.frozen and (d.session.snapshot().held or d.session.snapshot().offers)]
        desk = busy[who % len(busy)] if busy else self.desk(who)
        snap = desk.session.snapshot()
        if snap.held:
            desk.complete(0, final_notes=True)
        elif snap.offers:
            desk.answer(0, take=True)
        else:
            desk.intent("not_ready", "lunch")
        if snap.primary is not None:
            primary = self.world.sites[snap.primary]
            self.world.freeze(primary)
            self.world.run_for(seconds)
            self.world.thaw(primary)

    @rule(who=WHO)
    def freeze_desk(self, who: int) -> None:
        self.world.freeze(self.desk(who))

    @rule(who=WHO)
    def thaw_desk(self, who: int) -> None:
        self.world.thaw(self.desk(who))

    @rule(site=SITE, how=st.sampled_from(["close", "reset", "hold"]), who=st.none() | WHO)
    def cut(self, site: str, how: str, who: int | None) -> None:
        self.world.cut(site, how, None if who is None else self.desk(who))

    @rule()
    def partition(self) -> None:
        self.world.partition()

    @rule()
    def end_partition(self) -> None:
        self.world.end_partition()

    @rule(seed=st.none() | st.integers(0, 2**16))
    def peer_chaos(self, seed: int | None) -> None:
        self.world.set_chaos(seed)

    @rule(site=SITE, latency=st.sampled_from([0.002, 0.05, 0.3, 0.9, 1.4]))
    def slow(self, site: str, latency: float) -> None:
        self.world.sites[site].latency = latency

    @rule(latency=st.sampled_from([0.002, 0.01, 0.05, 0.3]))
    def slow_peer_link(self, latency: float) -> None:
        self.world.peer_latency = latency

    @rule()
    def heal_and_settle(self) -> None:
        self.world.settle()

    # ------------------------------------------------------------------ checks

    @precondition(lambda self: self.started)
    @invariant()
    def holds(self) -> None:
        self.world.check()

    def teardown(self) -> None:
        if self.started:
            self.world.settle()


def world_settings(examples: int, steps: int) -> settings:
    """``WORLD_EXAMPLES`` (and ``WORLD_STEPS``) in the environment run more for a longer local search.

    The test command runs the same examples every time (derandomized): a red CI must be a change's
    doing, reproducible from the commit. ``WORLD_SEARCH=1`` draws new ones for a search."""
    searching = bool(os.environ.get("WORLD_SEARCH"))
    return settings(max_examples=int(os.environ.get("WORLD_EXAMPLES", examples)),
                    stateful_step_count=int(os.environ.get("WORLD_STEPS", steps)), deadline=None,
                    derandomize=not searching, database=None,
                    # The test command reports a failing example as found: shrinking a world run can
                    # outlast the test timeout. A search shrinks and explains.
                    phases=list(Phase) if searching else [Phase.explicit, Phase.reuse, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
