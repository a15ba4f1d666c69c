"""Hypothesis stateful test: the session core against two model servers under random faults.

Random steps: clock advances, intents (Ready / Not Ready with a reason / After Call Work), the
agent taking or finishing an interaction, and faults per site (links closed cleanly or reset,
crash, reboot with fresh memory, hang and resume, slow delivery). The world (tests/core/model.py)
checks at every moment: no login request while a server holds the login on a link the desktop
still holds open, no request id twice, one outcome per intent, "applied" only when applied, time in
state kept across failovers.

After every step:
- invariant 1, precisely: at most one server holds the agent's login on a link the desktop holds
  open, and the desktop calls at most one link primary. (A server can still hold a login on a
  link the desktop has already given up, e.g. while it hangs: that login is dead to the agent and
  ends when the server notices; it is not counted.)
- no intent is applied twice within one login (same server incarnation and epoch).

On "heal and settle" (a random step, and at the end): all faults stop, 40 s pass, then the
session must be logged in on a live server that agrees on the login (link, epoch), in the state of
the last intent (or the initial Not Ready), with the desktop showing exactly the server's state,
every other server a standby, no intent left pending and every intent with exactly one outcome;
with failback "when-idle" and no interaction in hand, the login is back on the preferred site.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from desktop.core import events as ev
from tests.core.model import AGENT, PASSWORD, REASONS, World

SITES = st.sampled_from(["A", "B"])


class FailoverMachine(RuleBasedStateMachine):
    world: World | None = None

    @initialize(failback=st.sampled_from(["never", "when-idle"]), peer_fencing=st.booleans(),
                seed=st.integers(0, 2**32 - 1))
    def start(self, failback, peer_fencing, seed):
        self.world = World(failback, peer_fencing, seed)
        self.failback = failback
        self.world.feed(self.world.session.login, AGENT, PASSWORD)
        self.world.run_for(0.5)

    # ------------------------------------------------------------------ time and the agent

    @rule(seconds=st.sampled_from([0.01, 0.1, 0.3, 0.8, 1.6, 3.0, 6.0]))
    def wait(self, seconds):
        self.world.run_for(seconds)

    @rule(state=st.sampled_from(["ready", "not_ready", "after_call_work"]), reason=st.sampled_from(REASONS))
    def intent(self, state, reason):
        session = self.world.session
        if state == "ready":
            self.world.feed(session.set_ready)
        elif state == "not_ready":
            self.world.feed(session.set_not_ready, reason)
        else:
            self.world.feed(session.set_after_call_work)

    @rule(busy=st.booleans())
    def interaction(self, busy):
        self.world.feed(self.world.session.set_has_interaction, busy)

    # ------------------------------------------------------------------ faults

    @rule(site=SITES, code=st.sampled_from([1000, 1001, 1006]))
    def drop_links(self, site, code):
        server = self.world.servers[site]
        if server.up and not server.hung:
            server.drop_links(code)

    @rule(site=SITES)
    def crash(self, site):
        if self.world.servers[site].up:
            self.world.servers[site].crash()

    @rule(site=SITES)
    def reboot(self, site):
        server = self.world.servers[site]
        if not server.up:
            server.boot()

    @rule(site=SITES)
    def hang(self, site):
        self.world.servers[site].hung = True

    @rule(site=SITES)
    def resume(self, site):
        server = self.world.servers[site]
        if server.up and server.hung:
            server.resume()

    @rule(site=SITES, latency=st.sampled_from([0.002, 0.05, 0.3, 0.9, 1.4]))
    def slow(self, site, latency):
        self.world.servers[site].latency = latency

    @rule()
    def heal_and_settle(self):
        self.settle()

    # ------------------------------------------------------------------ checks

    @invariant()
    def one_login_at_a_time(self):
        if self.world is None:
            return
        assert len(self.world.held_logins()) <= 1, self.world.held_logins()
        roles = [link.role for link in self.world.session.snapshot().links]
        assert roles.count("primary") <= 1, roles

    @invariant()
    def no_intent_applied_twice_in_one_login(self):
        if self.world is None:
            return
        for intent_id, applied in self.world.applications.items():
            assert len(applied) == len(set(applied)), (intent_id, applied)

    def settle(self):
        world = self.world
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
        if self.failback == "when-idle" and not snap.has_interaction:
            assert snap.primary == "A", snap

    def teardown(self):
        if self.world is not None:
            self.settle()


FailoverMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_failover_model = FailoverMachine.TestCase
