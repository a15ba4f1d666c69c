"""Hypothesis stateful test: the session core against the real server cores, one agent at a time.

The world of tests/world/world.py (sites A and B running ``ServerCore``, peer-linked; the carrier;
the supervisor) with a single desktop, so that a failure reads as one agent's story. Random steps:
clock advances, intents (Ready / Not Ready with a reason / After Call Work), the agent's work
(answering offers, typing notes, completing with or without final notes), carrier submissions,
and faults per site: links closed cleanly, reset or held, kill and restart with fresh memory,
freeze and thaw (SIGSTOP/SIGCONT) of a site (also right after the agent's completion, accept or
state request) or of the desktop, peer partitions, peer-link chaos, slow delivery.

Checked at every moment (tests/world/desk.py, tests/world/reports.py): no login request while a
server holds the login on a link the desktop still holds open, no request id twice, one outcome per
intent, "applied" only when a server applied it, time in state kept across failovers (by the
desktop, and by every login reported), LoginFailed only when no running server would take the
token, a completion never sent again after its ack nor twice on one link, InteractionStarted only
after a reported accept or adoption, an interaction ending at most once and completed once.

After every step (``World.check``): at most one server holds the agent's login on a link the
desktop holds open, and the desktop calls at most one link primary; no intent applied twice (an
intent unanswered when its primary dies is carried by the next login as the state to restore); an
interaction in hand stays in hand until it ends.

On "heal and settle" (a random step, and at the end): all faults stop; within 45 s the session is
logged in on a live server that agrees on the login (link, epoch), in the state of the last intent
(or the initial Not Ready) with the desktop showing exactly the server's state and time in state,
the other server a standby, no intent pending and every intent with one outcome, back on the
preferred site with failback "when-idle" once idle; everything in hand is held by the primary at
the current epoch with the notes the agent typed last; every completion the agent asked for ended
(completed once with the notes the agent had, or with an explicit reason); the supervisor's view of
both reporting streams agrees. Then the agent works through what is left and every interaction
ends, completed or with a reason.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import rule

from desktop.core import events as ev
from tests.world.machine import WorldMachine, world_settings
from tests.world.net import BASE_LATENCY
from tests.world.world import World


class OneAgent(WorldMachine):
    AGENTS = 1

    @rule(busy=st.booleans())
    def interaction_outside(self, busy: bool) -> None:
        """An interaction in hand outside the protocol (blocks a "when-idle" failback)."""
        self.world.desks[0].act(self.world.desks[0].session.set_has_interaction, busy)


OneAgent.TestCase.settings = world_settings(examples=120, steps=30)
test_failover_model = OneAgent.TestCase


# --------------------------------------------------------------------------- the two cases that once needed luck


def logged_in(seed: int) -> World:
    world = World(seed, agents=1)
    world.start()
    world.run_for(1.0)
    assert world.desks[0].session.snapshot().primary == "A"
    return world


def answers_crawl_back(world: World, site: str) -> None:
    """What the desktop just sent reaches ``site`` at once; the answer then takes longer than the
    heartbeat timeout, so the desktop gives the link up first: the request was applied, its ack lost."""
    world.sites[site].latency = 1.6  # latency is taken when a frame is sent: only answers crawl
    world.run_for(3.0)


def test_a_failover_login_whose_ack_is_lost_converges_without_the_password():
    world = logged_in(seed=3)
    desk = world.desks[0]
    world.cut("A", "reset")  # A stays up, so it hears from B about the new login
    world.run_for(BASE_LATENCY)  # the desktop learns it and sends the failover login to B
    answers_crawl_back(world, "B")
    assert [(site, epoch) for site, _, epoch, _ in desk.logins][:2] == [("A", 1), ("B", 2)]
    assert desk.session.snapshot().epoch != 2  # B made the login, its ack never arrived
    world.sites["B"].latency = BASE_LATENCY
    world.run_for(15.0)
    snap = desk.session.snapshot()
    assert snap.status == "logged_in", snap
    assert desk.login_failures == 0  # nobody typed the password again
    assert world.login_holders(desk) == [snap.primary]
    world.settle()


def test_an_intent_applied_by_a_primary_whose_ack_is_lost_takes_effect_once_with_its_time():
    world = logged_in(seed=4)
    desk = world.desks[0]
    clicked = world.loop.wall_ms
    desk.intent("not_ready", "break")
    (intent_id, _), = desk.issued
    answers_crawl_back(world, "A")
    assert [site for site, _, _ in desk.applications[intent_id]] == ["A"]  # applied, answer lost
    world.sites["A"].latency = BASE_LATENCY
    world.run_for(15.0)
    snap = desk.session.snapshot()
    assert (snap.status, snap.primary) == ("logged_in", "B"), snap
    assert [site for site, _, _ in desk.applications[intent_id]] == ["A"]  # not sent again
    login = world.sites["B"].login_of(desk.agent_id)
    assert (login.state, login.reason, login.since_ms) == ("not_ready", "break", clicked)
    outcome = desk.outcome[intent_id]
    assert isinstance(outcome, ev.IntentApplied) and outcome.endpoint == "B", outcome
    world.settle()
