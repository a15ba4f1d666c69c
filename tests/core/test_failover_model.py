"""Hypothesis stateful test: the session core against two model servers under random faults.

Random steps: clock advances, intents (Ready / Not Ready with a reason / After Call Work), the
agent taking or finishing an interaction, and faults per site (links closed cleanly or reset,
crash, reboot with fresh memory, hang and resume, slow delivery). The world (tests/core/model.py)
checks at every moment: no login request while a server holds the login on a link the desktop
still holds open, no request id twice, one outcome per intent, "applied" only when applied, time in
state kept across failovers.

Interactions: the model servers offer interactions (a random step per site), revoke offers and
abandon interactions in hand; the agent accepts or rejects offers, types notes and completes what it
holds (with or without final notes), all interleaved with the faults. The world also checks that a
completion is never sent again after its ack, nor twice on one link, that InteractionStarted
follows a real accept or adoption, and that an interaction ends at most once.

After every step:
- invariant 1, precisely: at most one server holds the agent's login on a link the desktop holds
  open, and the desktop calls at most one link primary. (A server can still hold a login on a
  link the desktop has already given up, e.g. while it hangs: that login is dead to the agent and
  ends when the server notices; it is not counted.)
- no intent is applied twice: a state request of an intent is applied at most once across all
  servers and logins (an intent unanswered when its primary dies is carried by the next login as the
  state to restore, with its original time, so time in state is never restarted by a duplicate).
- an interaction in hand stays in hand (across failovers) until it ends with an InteractionEnded.
- completion exactly once across servers: a second completion of one id happens only when the
  desktop never learned of the first (its ack was lost with its link), or, without the peer link, by a
  stale server at an older epoch than the first.

On "heal and settle" (a random step, and at the end): all faults stop, 40 s pass, then the
session must be logged in on a live server that agrees on the login (link, epoch), in the state of
the last intent (or the initial Not Ready), with the desktop showing exactly the server's state,
every other server a standby, no intent left pending and every intent with exactly one outcome;
with failback "when-idle" and nothing in hand or offered, the login is back on the preferred site.
For interactions: no interaction intent left pending; everything in hand is held by the primary at
the current epoch with the notes the agent typed last (notes never lost); every completion the agent
asked for ended (completed exactly once, or with an explicit reason), and the completion a server
applied carries the notes the agent had when completing.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from desktop.core import events as ev
from server_stub.protocol import CloseCode
from tests.core.model import AGENT, BASE_LATENCY, PASSWORD, REASONS, World

SITES = st.sampled_from(["A", "B"])
PICK = st.integers(0, 7)


class FailoverMachine(RuleBasedStateMachine):
    world: World | None = None  # None until @initialize ran (invariants may be checked before)

    @property
    def live(self) -> World:
        """The world, in rules (which run only after @initialize)."""
        assert self.world is not None
        return self.world

    @initialize(failback=st.sampled_from(["never", "when-idle"]), peer_fencing=st.booleans(),
                seed=st.integers(0, 2**32 - 1))
    def start(self, failback, peer_fencing, seed):
        self.world = World(failback, peer_fencing, seed)
        self.failback = failback
        self.live.feed(self.live.session.login, AGENT, PASSWORD)
        self.live.run_for(0.5)

    # ------------------------------------------------------------------ time and the agent

    @rule(seconds=st.sampled_from([0.01, 0.1, 0.3, 0.8, 1.6, 3.0, 6.0]))
    def wait(self, seconds):
        self.live.run_for(seconds)

    @rule(state=st.sampled_from(["ready", "not_ready", "after_call_work"]), reason=st.sampled_from(REASONS))
    def intent(self, state, reason):
        session = self.live.session
        if state == "ready":
            self.live.feed(session.set_ready)
        elif state == "not_ready":
            self.live.feed(session.set_not_ready, reason)
        else:
            self.live.feed(session.set_after_call_work)

    @rule(busy=st.booleans())
    def interaction(self, busy):
        self.live.feed(self.live.session.set_has_interaction, busy)

    # ------------------------------------------------------------------ interactions

    @rule(site=SITES)
    def offer(self, site):
        self.live.servers[site].offer()

    def flow(self, step, final_notes):
        """The agent's usual flow, so that calls happen often: answer what is offered, else type
        notes or complete what is in hand, else the primary offers a new interaction."""
        snap = self.live.session.snapshot()
        if snap.offers:
            self.answer(0, True)
        elif snap.held:
            self.notes(0) if step == "notes" else self.complete(0, final_notes)
        elif snap.primary is not None:
            self.offer(snap.primary)
        self.live.run_for(0.02)  # a few round trips: the next step sees the answer

    # Two rules for the same flow: rules are drawn uniformly, and calls should be frequent.
    @rule(step=st.sampled_from(["next", "next", "notes"]), final_notes=st.booleans())
    def work(self, step, final_notes):
        self.flow(step, final_notes)

    @rule(step=st.sampled_from(["next", "notes"]), final_notes=st.booleans())
    def work_on(self, step, final_notes):
        self.flow(step, final_notes)

    @rule(site=SITES, held=st.booleans())
    def revoke(self, site, held):
        self.live.servers[site].revoke(held)

    @rule(pick=PICK, take=st.booleans())
    def answer(self, pick, take):
        session = self.live.session
        offers = session.snapshot().offers
        if offers:
            iid = offers[pick % len(offers)].interaction.interaction_id
            self.live.feed(session.accept if take else session.reject, iid)

    @rule(pick=PICK)
    def notes(self, pick):
        world = self.live
        held = world.session.snapshot().held
        if held:
            iid = held[pick % len(held)].interaction.interaction_id
            text = f"notes {iid} #{next(world.ix_counter)}"
            world.feed(world.session.update_notes, iid, text)
            if not isinstance(world.ix_outcome[list(world.ix_outcome)[-1]], ev.InteractionFailed):
                world.typed[iid] = text  # accepted (not refused at once, e.g. while completing)

    @rule(pick=PICK, final_notes=st.booleans())
    def complete(self, pick, final_notes):
        world = self.live
        held = world.session.snapshot().held
        if held:
            info = held[pick % len(held)]
            iid = info.interaction.interaction_id
            notes = f"final {iid}" if final_notes else None
            world.feed(world.session.complete, iid, "resolved", notes)
            last = world.ix_outcome[list(world.ix_outcome)[-1]]
            if not isinstance(last, ev.InteractionFailed):  # accepted (not refused at once as a duplicate)
                world.completing.setdefault(iid, notes if notes is not None else info.notes)
                if notes is not None:
                    world.typed[iid] = notes

    # ------------------------------------------------------------------ faults

    @rule(site=SITES, code=st.sampled_from([CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.ABNORMAL]))
    def drop_links(self, site, code):
        server = self.live.servers[site]
        if server.up and not server.hung:
            server.drop_links(code)

    @rule(site=SITES)
    def crash(self, site):
        if self.live.servers[site].up:
            self.live.servers[site].crash()

    @rule(site=SITES)
    def reboot(self, site):
        server = self.live.servers[site]
        if not server.up:
            server.boot()

    @rule(site=SITES)
    def hang(self, site):
        self.live.servers[site].hung = True

    @rule(site=SITES)
    def resume(self, site):
        server = self.live.servers[site]
        if server.up and server.hung:
            server.resume()

    @rule(site=SITES, latency=st.sampled_from([0.002, 0.05, 0.3, 0.9, 1.4]))
    def slow(self, site, latency):
        self.live.servers[site].latency = latency

    @rule()
    def heal_and_settle(self):
        self.settle()

    # ------------------------------------------------------------------ checks

    @invariant()
    def one_login_at_a_time(self):
        if self.world is None:
            return
        assert len(self.live.held_logins()) <= 1, self.live.held_logins()
        roles = [link.role for link in self.live.session.snapshot().links]
        assert roles.count("primary") <= 1, roles

    @invariant()
    def no_intent_applied_twice(self):
        """Across logins and servers: an intent unanswered when its primary was lost is carried by
        the next login as its state (checked by the world), never sent again as a request."""
        if self.world is None:
            return
        for intent_id, applied in self.live.applications.items():
            assert len(applied) <= 1, (intent_id, applied)

    @invariant()
    def in_hand_stays_in_hand(self):
        if self.world is None:
            return
        held = {h.interaction.interaction_id for h in self.live.session.snapshot().held}
        assert self.live.in_hand <= held, (self.live.in_hand, held)

    @invariant()
    def completed_exactly_once_across_servers(self):
        if self.world is None:
            return
        world = self.live
        for iid, applied in world.completions.items():
            for earlier, later in zip(applied, applied[1:], strict=False):
                stale = not world.peer_fencing and later[2] < earlier[2]
                assert earlier[3] not in world.acked_ids or stale, (iid, applied)

    def settle(self):
        world = self.live
        world.heal()
        world.run_for(40.0)
        snap = world.session.snapshot()
        assert snap.status == "logged_in", snap
        primary = world.servers[snap.primary]
        links = {info.endpoint: info for info in snap.links}
        login = primary.login
        assert login is not None and login.conn.link == links[snap.primary].link, (snap, login)
        assert login.epoch == snap.epoch
        for name, server in world.servers.items():
            if name != snap.primary:
                assert links[name].role == "secondary", snap
                standby = [c for c in server.conns if c.link == links[name].link]
                assert standby and standby[0].standby and server.login is None, (name, snap)
        assert snap.pending == ()
        assert all(outcome is not None for outcome in world.outcome.values()), world.outcome
        final = world.issued[-1][1] if world.issued else ev.StateIntent("not_ready")
        assert (login.state, login.reason) == (final.state, final.reason), (login, world.issued)
        assert (snap.agent.state, snap.agent.reason, snap.agent.since_ms) == (login.state, login.reason, login.since_ms)
        if self.failback == "when-idle" and not snap.has_interaction and not snap.offers:
            assert snap.primary == "A", snap
        self.settle_interactions(snap, primary)

    def settle_interactions(self, snap, primary):
        world = self.live
        assert snap.interaction_pending == (), snap.interaction_pending
        assert all(outcome is not None for outcome in world.ix_outcome.values()), world.ix_outcome
        for info in snap.held:
            iid = info.interaction.interaction_id
            assert info.epoch == snap.epoch and info.endpoint == snap.primary, (info, snap.epoch)
            there = primary.held.get(iid)
            assert there is not None and there.epoch == snap.epoch, (iid, primary.held)
            assert info.notes == world.typed.get(iid, ""), (iid, info.notes, world.typed.get(iid))
            assert there.notes == info.notes, (iid, there.notes, info.notes)  # the server has the latest
        for iid, notes in world.completing.items():
            ended = world.ended[iid]
            assert len(ended) == 1, (iid, ended, snap.held)
            applied = world.completions[iid]
            if ended[0].reason == "completed":
                assert applied, iid
                assert applied[0][4] == notes, (iid, applied, notes)
            else:
                assert ended[0].reason in ("abandoned", "not_adopted", "unknown_interaction"), ended

    def teardown(self):
        if self.world is not None:
            self.settle()


FailoverMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_failover_model = FailoverMachine.TestCase


# --------------------------------------------------------------------------- the two cases that once needed luck


def answers_crawl_back(world: World, site: str) -> None:
    """What the desktop just sent reaches ``site`` at once; the answer then takes longer than the
    heartbeat timeout, so the desktop gives the link up first: the request was applied, its ack lost."""
    world.servers[site].latency = 1.6  # latency is taken when a message is sent: only answers crawl
    world.run_for(3.0)


def test_a_failover_login_whose_ack_is_lost_converges_without_the_password():
    world = World("never", peer_fencing=True, seed=3)
    world.feed(world.session.login, AGENT, PASSWORD)
    world.run_for(0.5)
    assert world.session.snapshot().primary == "A"
    world.servers["A"].drop_links(CloseCode.ABNORMAL)  # A stays up, so it hears from B about the new login
    world.run_for(BASE_LATENCY)  # the desktop learns it and sends the failover login to B
    answers_crawl_back(world, "B")
    assert [(name, epoch) for name, _, epoch, _ in world.logins] == [("A", 1), ("B", 2)]
    assert world.session.snapshot().status == "failing_over"
    world.servers["B"].latency = BASE_LATENCY
    world.run_for(15.0)
    snap = world.session.snapshot()
    assert (snap.status, snap.primary, snap.epoch) == ("logged_in", "B", 4), snap  # 3 was asked of A
    assert world.login_failures == 0  # nobody typed the password again
    assert world.servers["B"].login.conn.link in world.client_open


def test_an_intent_applied_by_a_primary_whose_ack_is_lost_takes_effect_once_with_its_time():
    world = World("never", peer_fencing=True, seed=4)
    world.feed(world.session.login, AGENT, PASSWORD)
    world.run_for(0.5)
    clicked = world.wall
    world.feed(world.session.set_not_ready, "break")
    (intent_id, _), = world.issued
    answers_crawl_back(world, "A")
    assert [name for name, _, _ in world.applications[intent_id]] == ["A"]  # applied, answer lost
    world.servers["A"].latency = BASE_LATENCY
    world.run_for(15.0)
    snap = world.session.snapshot()
    assert (snap.status, snap.primary) == ("logged_in", "B"), snap
    assert [name for name, _, _ in world.applications[intent_id]] == ["A"]  # not sent again
    login = world.servers["B"].login
    assert (login.state, login.reason, login.since_ms) == ("not_ready", "break", clicked)
    assert isinstance(world.outcome[intent_id], ev.IntentApplied) and world.outcome[intent_id].endpoint == "B"
