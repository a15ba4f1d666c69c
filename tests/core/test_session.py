"""docs/protocol.md's sequence diagrams, one by one, against the sans-I/O session playing the servers."""

from __future__ import annotations

import dataclasses

import pytest

from desktop.core import events as ev
from desktop.core.config import SessionConfig
from server_stub import protocol as p
from tests.core.harness import CONFIG, PASSWORD, TOKEN1, WALL0, Bench, keep_alive, logged_in_on_a

TOKEN2 = "tok-epoch-2"


def fail_over_to_b(bench: Bench) -> p.RequestAgentLogin:
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    bench.ack("B", login, role="primary", epoch=2, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    return login


# --------------------------------------------------------------------------- normal start


def test_start_opens_a_link_to_every_endpoint_and_registers_on_each():
    bench = Bench()
    bench.feed(bench.session.start)
    assert [(o.endpoint, o.url) for o in bench.opened] == [("A", "ws://a.test"), ("B", "ws://b.test")]
    assert bench.opened[0].link != bench.opened[1].link
    bench.feed(bench.session.link_opened, bench.link["A"])
    register = bench.one("A", p.RequestRegisterClient)
    assert (register.protocol_version, register.client_name, register.heartbeat_interval_ms) == (1, "desk-7", 500)
    assert bench.take_sent("B") == []  # B is not open yet
    bench.ack("A", register, protocol_version=1)
    assert bench.roles() == {"A": "registered", "B": "connecting"}


def test_login_goes_to_the_preferred_endpoint_and_the_other_becomes_secondary():
    bench = Bench()
    bench.feed(bench.session.start)
    bench.register("B")  # B answers first: the login still waits for A, the preferred site
    bench.feed(bench.session.login, "1001", PASSWORD, place="desk-7")
    assert bench.take_sent(kind=p.RequestAgentLogin) == []
    bench.register("A")
    login = bench.one("A", p.RequestAgentLogin)
    assert (login.agent_id, login.password, login.resume_token, login.place, login.epoch) == (
        "1001", PASSWORD, None, "desk-7", None)
    assert bench.take_sent("B") == []  # nothing for B until the login is held
    bench.ack("A", login, role="primary", epoch=1, resume_token=TOKEN1, token_expires_ms=WALL0 + 600_000)
    assert bench.take_events(ev.LoggedIn) == [ev.LoggedIn("1001", 1, "A", resumed=False)]
    available = bench.one("B", p.RequestAgentAvailable)
    assert (available.agent_id, available.resume_token, available.password) == ("1001", TOKEN1, None)
    assert bench.roles() == {"A": "primary", "B": "registered"}
    bench.ack("B", available, role="secondary")
    assert bench.roles() == {"A": "primary", "B": "secondary"}
    bench.status("A", 1, "not_ready", WALL0)
    assert bench.take_events(ev.AgentStateChanged) == [ev.AgentStateChanged("not_ready", None, WALL0, 1, "A", None)]
    snap = bench.session.snapshot()
    assert (snap.status, snap.epoch, snap.primary, snap.agent_id) == ("logged_in", 1, "A", "1001")
    assert [r.code for r in snap.reasons] == ["lunch", "break"]


def test_the_password_is_forgotten_after_the_first_login():
    bench = Bench()
    bench.feed(bench.session.login, "1001", PASSWORD)  # login() also starts the session
    bench.register("A")
    assert PASSWORD in repr(vars(bench.session))  # needed until the login is answered
    bench.ack("A", bench.one("A", p.RequestAgentLogin), role="primary", epoch=1, resume_token=TOKEN1,
              token_expires_ms=WALL0 + 600_000)
    assert PASSWORD not in repr(vars(bench.session))
    assert TOKEN1 in repr(vars(bench.session))


def test_login_moves_to_the_backup_when_the_preferred_endpoint_cannot_be_reached():
    bench = Bench()
    bench.feed(bench.session.login, "1001", PASSWORD)
    bench.register("B")
    keep_alive(bench, 1.9, "B")
    assert bench.take_sent(kind=p.RequestAgentLogin) == []  # A still has its open timeout to go
    keep_alive(bench, 0.2, "B")
    assert [(c.link, c.code) for c in bench.closed] == [(bench.opened[0].link, p.CloseCode.HEARTBEAT)]
    assert bench.one("B", p.RequestAgentLogin).password == PASSWORD
    assert bench.roles()["A"] == "reconnecting"


def test_backup_delay_gives_the_preferred_endpoint_time_to_come_back():
    bench = Bench(dataclasses.replace(CONFIG, backup_delay=3.0))
    bench.feed(bench.session.login, "1001", PASSWORD)
    bench.register("B")
    bench.kill("A")  # refused at once
    keep_alive(bench, 2.5, "B")
    assert bench.take_sent(kind=p.RequestAgentLogin) == []
    keep_alive(bench, 0.6, "B")
    assert bench.one("B", p.RequestAgentLogin).password == PASSWORD

    bench = Bench(dataclasses.replace(CONFIG, backup_delay=3.0))
    bench.feed(bench.session.login, "1001", PASSWORD)
    bench.register("B")
    bench.kill("A")
    keep_alive(bench, 1.0, "B")  # A's retry is due within 0.25 s: it comes back inside the delay
    assert bench.opened[-1].endpoint == "A"
    bench.register("A")
    assert bench.one("A", p.RequestAgentLogin).password == PASSWORD
    assert bench.take_sent("B", p.RequestAgentLogin) == []


# --------------------------------------------------------------------------- failover


def test_losing_the_primary_logs_in_on_the_secondary_with_token_next_epoch_and_state():
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.now += 0.3
    bench.kill("A")
    assert bench.take_sent("A") == []  # the old link is never used again
    login = bench.one("B", p.RequestAgentLogin)
    assert (login.resume_token, login.password, login.epoch, login.place) == (TOKEN1, None, 2, "desk-7")
    assert login.state == p.StateSnapshot(state="not_ready", since_ms=WALL0 - 60_000, reason="lunch")
    assert [(e.phase, e.from_endpoint, e.to_endpoint) for e in bench.take_events(ev.FailoverPhase)] == [
        ("detecting", "A", None), ("logging_in", "A", "B")]
    assert bench.session.snapshot().status == "failing_over"
    bench.now += 0.05
    bench.ack("B", login, role="primary", epoch=2, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    (restored,) = bench.take_events(ev.FailoverPhase)
    assert (restored.phase, restored.kind, restored.to_endpoint) == ("restored", "failover", "B")
    assert restored.elapsed == pytest.approx(0.05)
    assert bench.take_events(ev.LoggedIn) == [ev.LoggedIn("1001", 2, "B", resumed=True)]
    assert bench.roles() == {"A": "reconnecting", "B": "primary"}
    assert bench.session.snapshot().epoch == 2


def test_a_timed_after_call_work_carries_its_end_across_a_failover():
    bench = logged_in_on_a(state="ready", reason=None)
    bench.deliver("A", p.EventCurrentAgentStatus(agent_id="1001", epoch=1, server="A", state="after_call_work",
                                                 since_ms=WALL0, until_ms=WALL0 + 30_000))
    (changed,) = bench.take_events(ev.AgentStateChanged)
    assert changed.until_ms == WALL0 + 30_000  # the desktop counts down to it
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    assert login.state == p.StateSnapshot(state="after_call_work", since_ms=WALL0, until_ms=WALL0 + 30_000)


def test_a_password_login_that_ended_another_desktop_says_which_site_it_was():
    bench = Bench(CONFIG)
    bench.feed(bench.session.start)
    bench.register("A")
    bench.feed(bench.session.login, "1001", PASSWORD)
    login = bench.one("A", p.RequestAgentLogin)
    bench.ack("A", login, role="primary", epoch=4, resume_token=TOKEN1, token_expires_ms=WALL0 + 600_000,
              replaced=p.ReplacedLogin(server="B", epoch=3))
    assert bench.take_events(ev.LoggedIn) == [ev.LoggedIn("1001", 4, "A", resumed=False, replaced="B")]


def test_the_lost_endpoint_comes_back_as_secondary_on_a_new_link():
    bench = logged_in_on_a()
    old_link = bench.link["A"]
    fail_over_to_b(bench)
    (retry_at,) = [at for key, at in bench.timers.items() if key == ("retry", "A")]
    assert bench.now <= retry_at <= bench.now + 1.0  # the first delay comes from initial_delay_range
    bench.advance(retry_at - bench.now)
    assert bench.opened[-1].endpoint == "A" and bench.link["A"] != old_link
    bench.register("A")
    available = bench.one("A", p.RequestAgentAvailable)
    assert available.resume_token == TOKEN2
    assert bench.take_sent("A", p.RequestAgentLogin) == []
    bench.ack("A", available, role="secondary")
    assert bench.roles() == {"A": "secondary", "B": "primary"}
    keep_alive(bench, 60, "A", "B")
    assert bench.roles() == {"A": "secondary", "B": "primary"}  # failback "never" is the default


def test_a_silent_primary_is_declared_dead_after_the_heartbeat_timeout():
    bench = logged_in_on_a()
    start = bench.now
    keep_alive(bench, 1.25, "B")  # A sends nothing at all from now on
    assert bench.take_sent("A", p.Heartbeat)  # we keep beating while quiet
    assert bench.closed == [] and bench.take_sent("B", p.RequestAgentLogin) == []
    keep_alive(bench, 0.5, "B")
    (close,) = bench.closed
    assert (close.link, close.code) == (bench.opened[0].link, p.CloseCode.HEARTBEAT)
    assert bench.now - start >= 1.5
    assert bench.one("B", p.RequestAgentLogin).epoch == 2


def busy_primary(bench: Bench, seconds: float) -> None:
    """An intent every 0.25 s keeps A busy; B hears nothing but heartbeats."""
    for _ in range(round(seconds / 0.25)):
        bench.advance(0.25)
        bench.beat("A", "B")
        bench.feed(bench.session.set_ready)
        bench.ack("A", bench.one("A", p.RequestAgentReady))


def test_heartbeats_are_sent_only_on_quiet_links():
    bench = logged_in_on_a(dataclasses.replace(CONFIG, standby_heartbeat_interval=0.5))
    busy_primary(bench, 2.0)
    assert bench.take_sent("A", p.Heartbeat) == []
    assert len(bench.take_sent("B", p.Heartbeat)) == 4


def test_a_busy_primary_sends_no_heartbeats_and_a_quiet_standby_one_every_5_s():
    """The standby only has to notice a dead backup eventually: heartbeated every
    STANDBY_HEARTBEAT_MS (the server keeps a standby for its client timeout), half the frames."""
    bench = logged_in_on_a()
    busy_primary(bench, 10.0)
    assert bench.take_sent("A", p.Heartbeat) == []
    assert len(bench.take_sent("B", p.Heartbeat)) == 2
    assert bench.roles() == {"A": "primary", "B": "secondary"}


def test_a_quiet_standby_is_kept_through_seconds_of_silence_and_lost_after_three_standby_intervals():
    bench = logged_in_on_a()
    keep_alive(bench, 14.0, "A")  # B (standby) silent: its server heartbeats it every 5 s at most
    assert bench.closed == [] and bench.roles()["B"] == "secondary"
    keep_alive(bench, 1.25, "A")
    (close,) = bench.closed
    assert (close.link, close.code) == (bench.opened[1].link, p.CloseCode.HEARTBEAT)


def test_a_failover_login_on_a_quiet_standby_is_judged_from_its_sending_and_given_up_after_the_login_timeout():
    bench = logged_in_on_a()
    keep_alive(bench, 4.0, "A")  # the standby's last frame is 4 s old: normal for a standby
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    assert login.resume_token is not None and bench.closed == []  # not lost at once for its old silence
    sent = bench.now
    b_link = bench.opened[1].link

    def b_closed() -> list[ev.CloseLink]:
        return [c for c in bench.closed if c.link == b_link]

    while not b_closed() and bench.now < sent + 8.0:  # B never answers: a hung backup (or a busy one)
        keep_alive(bench, 0.05, step=0.05)
    (close,) = b_closed()
    login_timeout = SessionConfig.login_timeout  # slow is not hung: a storm's last logins are answered late
    assert close.link == bench.opened[1].link and login_timeout - 1e-6 <= bench.now - sent <= login_timeout + 0.25


def test_a_silent_link_that_recovers_in_time_is_kept():
    bench = logged_in_on_a()
    keep_alive(bench, 1.25, "B")
    bench.beat("A")
    keep_alive(bench, 1.25, "B")
    assert bench.closed == [] and bench.roles()["A"] == "primary"


def test_frames_from_a_closed_link_are_ignored():
    bench = logged_in_on_a()
    old = bench.link["A"]
    fail_over_to_b(bench)
    bench.take_events()
    bench.deliver("A", p.EventForcedLogout(agent_id="1001", epoch=2, reason="forced", message="x"), link=old)
    bench.deliver("A", p.EventCurrentAgentStatus(agent_id="1001", epoch=2, server="A", state="ready",
                                                  since_ms=WALL0), link=old)
    assert bench.take_events() == [] and bench.session.snapshot().status == "logged_in"


def test_with_no_secondary_the_login_goes_to_whichever_endpoint_comes_back_first():
    bench = logged_in_on_a()
    bench.kill("B")
    bench.kill("A")
    assert bench.take_sent(kind=p.RequestAgentLogin) == []
    assert bench.session.snapshot().phase == "detecting"
    bench.advance(1.0)  # both retries are due within initial_delay_range
    bench.register("B")
    assert bench.one("B", p.RequestAgentLogin).epoch == 2


# --------------------------------------------------------------------------- intents


def test_an_intent_during_failover_is_pending_then_applied_once_on_the_new_primary():
    bench = logged_in_on_a()
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    bench.feed(bench.session.set_ready)
    (pending,) = bench.take_events(ev.IntentPending)
    assert pending.queued and pending.intent == ev.StateIntent("ready")
    assert bench.take_sent(kind=p.RequestAgentReady) == []
    assert bench.session.snapshot().pending == ((pending.request_id, ev.StateIntent("ready")),)
    bench.ack("B", login, role="primary", epoch=2, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    ready = bench.one("B", p.RequestAgentReady)
    assert ready.epoch == 2
    bench.ack("B", ready, epoch=2)
    assert bench.take_events(ev.IntentApplied) == [
        ev.IntentApplied(pending.request_id, ev.StateIntent("ready"), "B", 2)
    ]
    keep_alive(bench, 5, "B")
    assert bench.take_sent(kind=p.RequestAgentReady) == [] and bench.session.snapshot().pending == ()


def test_consecutive_intents_during_failover_collapse_to_the_last_one():
    bench = logged_in_on_a()
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    bench.feed(bench.session.set_ready)
    bench.feed(bench.session.set_after_call_work)
    bench.feed(bench.session.set_not_ready, "break")
    first, second, third = bench.take_events(ev.IntentPending)
    assert bench.take_events(ev.IntentSuperseded) == [
        ev.IntentSuperseded(first.request_id, first.intent, second.request_id),
        ev.IntentSuperseded(second.request_id, second.intent, third.request_id)]
    bench.ack("B", login, role="primary", epoch=2, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    assert bench.take_sent(kind=p.RequestAgentReady) == []
    assert bench.take_sent(kind=p.RequestAgentAfterCallWork) == []
    not_ready = bench.one("B", p.RequestAgentNotReady)
    assert (not_ready.reason, not_ready.epoch) == ("break", 2)


def test_an_intent_unanswered_when_the_primary_dies_is_carried_by_the_failover_login_not_sent_again():
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.now += 2.0
    clicked = bench.wall
    bench.feed(bench.session.set_ready)
    (pending,) = bench.take_events(ev.IntentPending)
    assert not pending.queued
    on_a = bench.one("A", p.RequestAgentReady)
    assert (on_a.epoch, on_a.request_id) == (1, pending.request_id + "/1")
    bench.now += 0.1  # A may have applied it; its answer is lost with the link
    login = fail_over_to_b(bench)
    # The login restores the state the agent asked for, from the moment it was asked for: applied
    # once on the new login, whether A had applied it or not, and time in state is not restarted.
    assert login.state == p.StateSnapshot(state="ready", since_ms=clicked)
    assert bench.take_events(ev.IntentApplied) == [
        ev.IntentApplied(pending.request_id, ev.StateIntent("ready"), "B", 2)
    ]
    keep_alive(bench, 5, "B")
    assert bench.take_sent(kind=p.RequestAgentReady) == [] and bench.session.snapshot().pending == ()


def test_a_repeated_intent_keeps_the_time_of_the_state_it_repeats():
    bench = logged_in_on_a(state="not_ready", reason="lunch")  # since WALL0 - 60 s
    bench.feed(bench.session.set_not_ready, "lunch")
    bench.one("A", p.RequestAgentNotReady)
    bench.now += 1.0
    bench.feed(bench.session.set_ready)
    bench.now += 1.0
    ready_again_at = bench.wall
    bench.feed(bench.session.set_ready)
    assert len(bench.take_sent("A", p.RequestAgentReady)) == 2
    login = fail_over_to_b(bench)
    # The last two asked for Ready: Ready since the first of them; the Not Ready lunch they
    # follow does not lend its time to a different state.
    assert login.state == p.StateSnapshot(state="ready", since_ms=ready_again_at - 1000)
    superseded = bench.take_events(ev.IntentSuperseded)
    assert [e.intent for e in superseded] == [ev.StateIntent("not_ready", "lunch"), ev.StateIntent("ready")]
    (applied,) = bench.take_events(ev.IntentApplied)
    assert (applied.intent, applied.endpoint, applied.epoch) == (ev.StateIntent("ready"), "B", 2)


def test_an_intent_equal_to_the_confirmed_state_carries_the_confirmed_time():
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.now += 3.0
    bench.feed(bench.session.set_not_ready, "lunch")
    login = fail_over_to_b(bench)
    assert login.state == p.StateSnapshot(state="not_ready", since_ms=WALL0 - 60_000, reason="lunch")


def test_a_carried_intent_with_a_reason_the_backup_lacks_fails_and_the_login_keeps_the_state():
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.feed(bench.session.set_not_ready, "break")
    bench.kill("A")
    first = bench.one("B", p.RequestAgentLogin)
    assert first.state is not None and first.state.reason == "break"
    bench.refuse("B", first, "invalid_reason", "unknown Not Ready reason 'break'")
    (failed,) = bench.take_events(ev.IntentFailed)
    assert (failed.intent, failed.code) == (ev.StateIntent("not_ready", "break"), "invalid_reason")
    retry = bench.one("B", p.RequestAgentLogin)
    assert retry.state == p.StateSnapshot(state="not_ready", since_ms=WALL0 - 60_000, reason="lunch")
    assert bench.take_events(ev.LoginFailed) == []


def test_intents_while_logged_in_are_sent_at_once_and_all_applied_in_order():
    bench = logged_in_on_a()
    bench.feed(bench.session.set_ready)
    bench.feed(bench.session.set_not_ready, "break")
    ready, not_ready = bench.take_sent("A")
    assert isinstance(ready, p.RequestAgentReady) and isinstance(not_ready, p.RequestAgentNotReady)
    bench.ack("A", ready, epoch=1)
    bench.refuse("A", not_ready, "invalid_reason", "unknown Not Ready reason 'break'")
    applied, = bench.take_events(ev.IntentApplied)
    failed, = bench.take_events(ev.IntentFailed)
    assert applied.intent == ev.StateIntent("ready")
    assert (failed.intent, failed.code) == (ev.StateIntent("not_ready", "break"), "invalid_reason")
    assert bench.session.snapshot().pending == ()


def test_stale_epoch_on_a_state_request_is_surfaced_and_the_login_taken_again():
    bench = logged_in_on_a()
    bench.feed(bench.session.set_after_call_work)
    acw = bench.one("A", p.RequestAgentAfterCallWork)
    bench.refuse("A", acw, "stale_epoch", "request for epoch 1, but the login here is at epoch 3")
    assert [(e.code, e.endpoint) for e in bench.take_events(ev.ErrorEvent)] == [("stale_epoch", "A")]
    assert [(c.link, c.code) for c in bench.closed] == [(bench.opened[0].link, p.CloseCode.NORMAL)]
    login = bench.one("B", p.RequestAgentLogin)
    assert login.state is not None
    assert login.state.state == "after_call_work"  # the intent is not lost: the login carries it
    bench.ack("B", login, role="primary", epoch=4, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    assert [(e.intent.state, e.endpoint, e.epoch) for e in bench.take_events(ev.IntentApplied)] == [
        ("after_call_work", "B", 4)]


# --------------------------------------------------------------------------- epochs and forced logouts


def test_events_from_an_older_epoch_are_ignored_and_reported():
    bench = logged_in_on_a()
    fail_over_to_b(bench)
    bench.status("B", 2, "ready", WALL0 + 5)
    bench.take_events()
    bench.status("B", 1, "not_ready", WALL0 + 9, "break")
    bench.deliver("B", p.EventResumeToken(epoch=1, resume_token="old", token_expires_ms=WALL0 + 1))
    bench.deliver("B", p.EventForcedLogout(agent_id="1001", epoch=1, reason="duplicate_login", message="old"))
    assert bench.take_events() == [
        ev.StaleEventIgnored("B", "EventCurrentAgentStatus", 1, 2),
        ev.StaleEventIgnored("B", "EventResumeToken", 1, 2),
        ev.StaleEventIgnored("B", "EventForcedLogout", 1, 2),
    ]
    snap = bench.session.snapshot()
    assert snap.agent is not None and (snap.status, snap.agent.state, snap.agent.epoch) == ("logged_in", "ready", 2)
    bench.kill("B")  # and the token used next is still the epoch-2 one
    bench.advance(1.0)
    bench.register("A")
    assert bench.one("A", p.RequestAgentLogin).resume_token == TOKEN2


def test_a_fresh_resume_token_replaces_the_old_one():
    bench = logged_in_on_a()
    bench.deliver("A", p.EventResumeToken(epoch=1, resume_token="tok-refreshed", token_expires_ms=WALL0 + 900_000))
    bench.kill("A")
    assert bench.one("B", p.RequestAgentLogin).resume_token == "tok-refreshed"


@pytest.mark.parametrize("reason", ["duplicate_login", "forced", "moved"])
def test_a_forced_logout_at_the_current_epoch_ends_the_session(reason):
    bench = logged_in_on_a()
    bench.deliver("A", p.EventForcedLogout(agent_id="1001", epoch=1, reason=reason, message="taken"))
    assert bench.take_events(ev.LoggedOut) == [ev.LoggedOut(reason)]
    assert isinstance(bench.one("B", p.RequestAgentNotAvailable), p.RequestAgentNotAvailable)
    assert {c.link for c in bench.closed} == {bench.link["A"], bench.link["B"]}
    keep_alive(bench, 30)
    assert bench.take_sent() == [] and len(bench.opened) == 2  # no automatic re-login, no reconnect
    assert bench.session.snapshot().status == "ended"
    assert bench.roles() == {"A": "down", "B": "down"}


# --------------------------------------------------------------------------- logout and login failures


def test_logout_acks_on_the_primary_before_withdrawing_the_secondaries():
    bench = logged_in_on_a()
    bench.feed(bench.session.logout)
    logout = bench.one("A", p.RequestAgentLogout)
    assert (logout.epoch, logout.handover) == (1, False)  # the agent is done: its tokens end here
    assert bench.take_sent("B") == [] and bench.closed == []
    assert bench.session.snapshot().status == "logging_out"
    start = len(bench.outputs)
    bench.ack("A", logout, epoch=1)
    tail = [o for o in bench.outputs[start:] if isinstance(o, (ev.Send, ev.CloseLink, ev.LoggedOut))]
    assert [type(o).__name__ for o in tail] == ["Send", "CloseLink", "CloseLink", "LoggedOut"]
    send, close1, close2 = tail[:3]
    assert isinstance(send, ev.Send) and isinstance(close1, ev.CloseLink) and isinstance(close2, ev.CloseLink)
    assert isinstance(send.message, p.RequestAgentNotAvailable) and send.link == bench.link["B"]
    assert {close1.link, close2.link} == {bench.link["A"], bench.link["B"]}
    assert tail[3] == ev.LoggedOut("logout")
    assert bench.timers == {}


def test_logout_during_failover_waits_for_the_login_in_flight_then_logs_out_there():
    bench = logged_in_on_a()
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    bench.feed(bench.session.logout)
    assert bench.take_events(ev.LoggedOut) == []
    bench.ack("B", login, role="primary", epoch=2, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    bench.ack("B", bench.one("B", p.RequestAgentLogout), epoch=2)
    assert bench.take_events(ev.LoggedOut) == [ev.LoggedOut("logout")]


def test_bad_credentials_fail_the_login_without_retrying():
    bench = Bench()
    bench.feed(bench.session.login, "1001", "wrong")
    bench.register("A")
    bench.register("B")
    bench.refuse("A", bench.one("A", p.RequestAgentLogin), "bad_credentials", "unknown user or wrong password")
    assert bench.take_events(ev.LoginFailed) == [
        ev.LoginFailed("bad_credentials", "unknown user or wrong password", "A")
    ]
    assert "wrong" not in repr(vars(bench.session))
    keep_alive(bench, 30, "A", "B")
    assert bench.take_sent(kind=p.RequestAgentLogin) == []
    assert bench.session.snapshot().status == "idle"
    bench.feed(bench.session.login, "1001", PASSWORD)  # the user types it again
    assert bench.one("A", p.RequestAgentLogin).password == PASSWORD


def test_a_stale_token_refusal_moves_the_failover_login_to_the_site_that_may_hold_it():
    # The failover login on B was made but its ack was lost with the link; A, told of epoch 2 by
    # its peer, refuses the epoch-1 token. B made that login from that token and takes it again.
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.kill("A")
    lost = bench.one("B", p.RequestAgentLogin)
    bench.kill("B")
    bench.advance(1.0)  # both reconnect within initial_delay_range
    bench.register("A")
    on_a = bench.one("A", p.RequestAgentLogin)
    assert (on_a.resume_token, on_a.epoch) == (TOKEN1, 3)
    bench.refuse("A", on_a, "stale_epoch", "the agent has logged in again since this token (epoch 2)")
    assert bench.take_events(ev.LoginFailed) == []
    (error,) = bench.take_events(ev.ErrorEvent)
    assert (error.code, error.endpoint) == ("stale_epoch", "A") and "trying the resume token on B" in error.message
    keep_alive(bench, 3, "A")
    assert bench.take_sent("A", p.RequestAgentLogin) == []  # A said no: not asked again
    bench.register("B")
    on_b = bench.one("B", p.RequestAgentLogin)
    # Each attempt asks for a higher epoch (2 went to B unanswered, 3 to A): B can tell this
    # retry from its lost original arriving late.
    assert (lost.epoch, on_b.resume_token, on_b.epoch, on_b.state) == (2, TOKEN1, 4, lost.state)
    bench.ack("B", on_b, role="primary", epoch=4, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    assert bench.take_events(ev.LoggedIn) == [ev.LoggedIn("1001", 4, "B", resumed=True)]
    assert bench.session.snapshot().status == "logged_in"
    assert bench.one("A", p.RequestAgentAvailable).resume_token == TOKEN2


def refusing_connections(bench, seconds: float, endpoint: str, *alive: str) -> None:
    """``seconds`` pass with ``alive`` beating; every attempt on ``endpoint`` is refused at once (its
    port closed: the process is gone, the host answers)."""
    end = bench.now + seconds
    while bench.now < end - 1e-9:
        keep_alive(bench, min(0.25, end - bench.now), *alive)
        if bench.roles()[endpoint] == "connecting":
            bench.kill(endpoint, code=None)


def test_a_stale_token_waiting_for_a_site_that_never_comes_back_asks_for_the_password_in_time():
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.kill("A")
    bench.refuse("B", bench.one("B", p.RequestAgentLogin), "stale_epoch", "log in with the password")
    # A is dead for good (its port refuses): waiting for it must end, in words the agent can act on.
    refusing_connections(bench, CONFIG.token_retry_wait - 1, "A", "B")
    assert bench.take_events(ev.LoginFailed) == []
    refusing_connections(bench, 1.5, "A", "B")
    (failed,) = bench.take_events(ev.LoginFailed)
    assert failed.code == "stale_epoch" and "no other site took it within 30 s" in failed.message
    assert bench.session.snapshot().status == "idle"


def test_a_token_every_site_refuses_as_stale_asks_for_the_password_and_keeps_the_state():
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.kill("A")
    bench.refuse("B", bench.one("B", p.RequestAgentLogin), "stale_epoch", "log in with the password")
    assert bench.take_events(ev.LoginFailed) == []
    bench.advance(1.0)
    bench.register("A")
    bench.refuse("A", bench.one("A", p.RequestAgentLogin), "stale_epoch", "log in with the password")
    assert [(e.code, e.endpoint) for e in bench.take_events(ev.LoginFailed)] == [("stale_epoch", "A")]
    assert bench.take_events(ev.FailoverPhase)[-1].phase == "idle"
    keep_alive(bench, 10, "A", "B")
    assert bench.take_sent(kind=p.RequestAgentLogin) == []
    bench.feed(bench.session.login, "1001", PASSWORD)
    login = bench.one("A", p.RequestAgentLogin)
    assert (login.password, login.resume_token, login.epoch) == (PASSWORD, None, 4)  # above both attempts
    assert login.state == p.StateSnapshot(state="not_ready", since_ms=WALL0 - 60_000, reason="lunch")


def test_a_transient_login_refusal_is_retried_after_a_delay():
    bench = Bench()
    bench.feed(bench.session.login, "1001", PASSWORD)
    bench.register("A")
    bench.register("B")
    bench.refuse("A", bench.one("A", p.RequestAgentLogin), "internal", "bug")
    assert [e.code for e in bench.take_events(ev.ErrorEvent)] == ["internal"]
    assert bench.take_sent(kind=p.RequestAgentLogin) == []
    keep_alive(bench, 0.3, "A", "B")  # retry_delays[0] = 0.25 s, jittered down
    assert bench.one("A", p.RequestAgentLogin).password == PASSWORD


def test_an_unknown_reason_at_the_backup_site_does_not_cost_the_login():
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.kill("A")
    bench.refuse("B", bench.one("B", p.RequestAgentLogin), "invalid_reason", "unknown Not Ready reason 'lunch'")
    retry = bench.one("B", p.RequestAgentLogin)
    assert retry.state == p.StateSnapshot(state="not_ready", since_ms=WALL0 - 60_000, reason=None)
    assert bench.take_events(ev.LoginFailed) == []


# --------------------------------------------------------------------------- failback


def test_failback_when_idle_logs_out_first_then_logs_in_on_the_preferred_endpoint():
    bench = logged_in_on_a(dataclasses.replace(CONFIG, failback="when-idle"))
    fail_over_to_b(bench)
    bench.status("B", 2, "ready", WALL0 - 30_000)
    bench.feed(bench.session.set_has_interaction, True)
    bench.advance(1.0)
    bench.register("A")
    bench.ack("A", bench.one("A", p.RequestAgentAvailable), role="secondary")
    keep_alive(bench, 10, "A", "B")
    assert bench.take_sent(kind=p.RequestAgentLogout) == []  # an interaction in hand: stay
    bench.feed(bench.session.set_has_interaction, False)
    keep_alive(bench, 4.5, "A", "B")
    assert bench.take_sent(kind=p.RequestAgentLogout) == []  # failback_hold (5 s) not over yet
    keep_alive(bench, 1.0, "A", "B")
    release = bench.one("B", p.RequestAgentLogout)
    assert (release.epoch, release.handover) == (2, True)  # the login on A needs B's token
    assert bench.take_sent("A", p.RequestAgentLogin) == []  # not before B has let go (invariant 1)
    clicked = bench.wall
    bench.feed(bench.session.set_after_call_work)  # an intent meanwhile waits for the new primary
    assert bench.take_sent(kind=p.RequestAgentAfterCallWork) == []
    bench.ack("B", release, epoch=2)
    login = bench.one("A", p.RequestAgentLogin)
    assert (login.resume_token, login.epoch) == (TOKEN2, 3)
    assert login.state == p.StateSnapshot(state="after_call_work", since_ms=clicked)  # the login carries it
    bench.ack("A", login, role="primary", epoch=3, resume_token="tok-3", token_expires_ms=WALL0 + 600_000)
    (applied,) = bench.take_events(ev.IntentApplied)
    assert (applied.intent, applied.endpoint, applied.epoch) == (ev.StateIntent("after_call_work"), "A", 3)
    assert bench.take_sent(kind=p.RequestAgentAfterCallWork) == []
    bench.ack("B", bench.one("B", p.RequestAgentAvailable), role="secondary")
    assert bench.roles() == {"A": "primary", "B": "secondary"}
    assert [(e.phase, e.kind, e.from_endpoint, e.to_endpoint) for e in bench.take_events(ev.FailoverPhase)][-2:] == [
        ("logging_in", "failback", "B", "A"), ("restored", "failback", "B", "A")]


def releasing_b_for_a_failback() -> tuple[Bench, p.RequestAgentLogout]:
    """On B after a failover, A back as a healthy secondary: the failback's release sent to B."""
    bench = logged_in_on_a(dataclasses.replace(CONFIG, failback="when-idle", failback_hold=0.0))
    fail_over_to_b(bench)
    bench.advance(1.0)
    bench.register("A")
    bench.ack("A", bench.one("A", p.RequestAgentAvailable), role="secondary")
    return bench, bench.one("B", p.RequestAgentLogout)


def test_failback_falls_back_to_the_old_primary_if_the_preferred_dies_meanwhile():
    bench, release = releasing_b_for_a_failback()
    bench.ack("B", release, epoch=2)
    assert bench.one("A", p.RequestAgentLogin).epoch == 3
    bench.kill("A")
    assert bench.one("B", p.RequestAgentLogin).epoch == 4  # above the attempt on A, which may have been made


def test_a_logout_clicked_during_a_refused_release_is_sent_on_the_login_kept():
    bench, release = releasing_b_for_a_failback()
    bench.feed(bench.session.logout)  # waits for the release in flight
    assert bench.take_sent(kind=p.RequestAgentLogout) == []
    bench.refuse("B", release, "internal")  # B still holds the login
    logout = bench.one("B", p.RequestAgentLogout)
    assert (logout.epoch, logout.handover) == (2, False)
    bench.ack("B", logout, epoch=2)
    assert bench.session.snapshot().status == "ended"
    assert ev.LoggedOut("logout") in bench.take_events(ev.LoggedOut)


# --------------------------------------------------------------------------- timing knobs


def test_reconnect_delays_back_off_with_jitter_and_the_last_repeats():
    config = SessionConfig(endpoints=(p.Site("A", "ws://a.test"),), retry_delays=(0.5, 1.0, 4.0), retry_jitter=0.5,
                           initial_delay_range=(0.2, 0.4))
    bench = Bench(config)
    bench.feed(bench.session.start)
    bench.register("A")
    delays = []
    bench.kill("A")  # an established link: the first wait comes from initial_delay_range
    for _ in range(6):
        at = bench.timers[("retry", "A")]
        delays.append(at - bench.now)
        bench.advance(at - bench.now)
        bench.kill("A")  # every attempt is refused
    assert 0.2 <= delays[0] <= 0.4
    for delay, nominal in zip(delays[1:], (0.5, 1.0, 4.0, 4.0, 4.0), strict=False):
        assert nominal / 2 <= delay <= nominal
    assert len(set(delays[3:])) == 3  # jittered, not lockstep
    assert bench.session.snapshot().links[0].failures == 6


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        SessionConfig(endpoints=())
    with pytest.raises(ValueError):
        SessionConfig(endpoints=(p.Site("A", "ws://a"), p.Site("A", "ws://b")))
    with pytest.raises(ValueError):
        SessionConfig(endpoints=(p.Site("A", "ws://a"),), heartbeat_interval=2.0, heartbeat_timeout=1.0)
    with pytest.raises(ValueError):
        SessionConfig(endpoints=(p.Site("A", "ws://a"),), failback="always")  # type: ignore[arg-type]


def test_undecodable_frames_are_reported_and_count_as_liveness():
    bench = logged_in_on_a()
    keep_alive(bench, 1.25, "B")
    bench.feed(bench.session.message_received, bench.link["A"], '{"type": "EventNope"}')
    assert [e.code for e in bench.take_events(ev.ErrorEvent)] == ["unknown_type"]
    keep_alive(bench, 1.0, "B")
    assert bench.roles()["A"] == "primary"


def test_a_site_too_slow_to_finish_a_handshake_gets_twice_as_long_each_attempt_and_the_full_time_back_once_in():
    """An attempt that ran past open_timeout is abandoned, and the site's half-done work with it; on
    a site drowning in a morning's handshakes, attempts made again on the same clock only add to the
    load. Each one in a row gets twice as long (2, 4, 8, 8 s); once one registers, 2 s again."""
    bench = Bench()
    bench.feed(bench.session.start)

    def attempt_lasted() -> float:
        link, opened_at = bench.link["A"], bench.now
        while not any(c.link == link for c in bench.closed):
            bench.advance(0.05)
        assert next(c for c in bench.closed if c.link == link).reason == "open timeout"
        took = bench.now - opened_at
        while bench.link["A"] == link:  # the backoff, then the next attempt
            bench.advance(0.05)
        return took

    assert [round(attempt_lasted(), 1) for _ in range(4)] == [2.0, 4.0, 8.0, 8.0]
    bench.register("A")
    registered = bench.link["A"]
    bench.feed(bench.session.link_closed, registered)  # lost later: the next attempts start at 2 s again
    while bench.link["A"] == registered:
        bench.advance(0.05)
    assert round(attempt_lasted(), 1) == 2.0
