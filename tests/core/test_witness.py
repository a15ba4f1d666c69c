"""The witness, from the desktop's side (docs/failover.md, "Overload"): a primary silent past the
heartbeat timeout is not left at once while a standby is registered; the standby's server is
asked first (RequestPrimaryCheck) whether the primary is alive and still hears this desktop. The
test plays both servers on a fake clock."""

from __future__ import annotations

import dataclasses

from desktop.core import events as ev
from server_stub import protocol as p
from tests.core.harness import CONFIG, Bench, keep_alive, logged_in_on_a

WITNESS = dataclasses.replace(CONFIG, witness_rounds=2)


def silent_primary() -> tuple[Bench, p.RequestPrimaryCheck]:
    """A stops talking (B keeps beating): at the heartbeat timeout the desktop asks B."""
    bench = logged_in_on_a(WITNESS)
    keep_alive(bench, 1.0, "A", "B")
    keep_alive(bench, 1.6, "B")
    (check,) = bench.take_sent("B", kind=p.RequestPrimaryCheck)
    assert check.epoch == 1
    assert bench.closed == [] and bench.roles()["A"] == "primary"  # not left while B is asked
    assert bench.take_sent(kind=p.RequestAgentLogin) == []
    return bench, check


def test_the_standby_vouching_for_the_primary_keeps_the_login():
    bench, check = silent_primary()
    bench.ack("B", check, primary_alive=True)
    keep_alive(bench, 1.0, "B")  # judged again only after another heartbeat timeout
    assert bench.closed == [] and bench.take_sent(kind=p.RequestAgentLogin) == []
    bench.beat("A")  # A's heartbeat gets through: nothing happened, as far as anyone can see
    keep_alive(bench, 5.0, "A", "B")
    snap = bench.session.snapshot()
    assert (snap.status, snap.primary, snap.epoch, snap.phase) == ("logged_in", "A", 1, "idle")
    assert bench.closed == [] and bench.take_sent(kind=p.RequestPrimaryCheck) == []


def test_a_standby_that_cannot_hear_the_primary_either_gets_the_failover_login_at_once():
    bench, check = silent_primary()
    bench.ack("B", check, primary_alive=False)
    assert [c.link for c in bench.closed] == [bench.opened[0].link]
    (login,) = bench.take_sent("B", kind=p.RequestAgentLogin)
    assert login.epoch == 2 and login.resume_token is not None


def test_a_primary_that_stays_silent_is_left_after_witness_rounds_vouchings():
    bench, check = silent_primary()
    for _ in range(WITNESS.witness_rounds):
        assert not check.release
        bench.ack("B", check, primary_alive=True)
        keep_alive(bench, 1.6, "B")
        (check,) = bench.take_sent("B", kind=p.RequestPrimaryCheck)
    # Vouched for twice, still silent: the login moves whatever the answer, and the primary is
    # asked to end it first (release), so it is never reported beside the new one.
    assert check.release and bench.closed == []
    bench.ack("B", check, primary_alive=True)  # even a "yes" (a server that ignores release) moves it
    assert [c.link for c in bench.closed] == [bench.opened[0].link]
    assert bench.take_sent("B", kind=p.RequestAgentLogin)


def test_no_answer_from_the_standby_within_the_heartbeat_timeout_fails_over_as_before():
    bench, _ = silent_primary()
    keep_alive(bench, 1.25, "B")  # asked 0.1 s before this started
    assert bench.closed == []
    keep_alive(bench, 0.25, "B")
    assert [c.link for c in bench.closed] == [bench.opened[0].link]
    assert bench.take_sent("B", kind=p.RequestAgentLogin)


def test_a_server_without_the_witness_refuses_the_check_and_the_login_moves_at_once():
    bench, check = silent_primary()
    bench.refuse("B", check, "unknown_type")
    assert [c.link for c in bench.closed] == [bench.opened[0].link]
    assert bench.take_sent("B", kind=p.RequestAgentLogin)


def test_a_kill_of_the_primary_asks_nobody():
    bench = logged_in_on_a(WITNESS)
    bench.kill("A")
    assert bench.take_sent("B", kind=p.RequestPrimaryCheck) == []
    assert bench.take_sent("B", kind=p.RequestAgentLogin)


def test_with_no_other_site_registered_a_silent_primary_is_left_at_the_last_site_timeout_unasked():
    """The last site standing (the other one died): nobody to ask and nowhere to move, so its
    silence is given 5 s (``last_site_timeout``), not 1.5 s: right after a site died under thousands
    of agents the survivor is at its busiest, and leaving it only adds a login to its load."""
    bench = logged_in_on_a(WITNESS)
    bench.kill("B")
    keep_alive(bench, 1.6)
    assert bench.opened[0].link not in [c.link for c in bench.closed]
    keep_alive(bench, WITNESS.last_site_timeout - 1.6 + 0.1)
    assert bench.take_sent(kind=p.RequestPrimaryCheck) == []
    assert bench.opened[0].link in [c.link for c in bench.closed]


def test_a_stale_token_waiting_for_a_site_that_refuses_handshakes_as_busy_keeps_waiting():
    """B refused the token as stale; A, which may hold the login, is alive but at its connection
    limits (every handshake refused with 503, e.g. thousands of desktops behind one address): it
    counts as heard, so the wait goes another round instead of asking for the password."""
    bench = logged_in_on_a(WITNESS)
    bench.kill("A")
    bench.refuse("B", bench.one("B", p.RequestAgentLogin), "stale_epoch", "log in with the password")
    end = bench.now + WITNESS.token_retry_wait + 1.5
    while bench.now < end:
        keep_alive(bench, 0.25, "B")
        if bench.roles()["A"] == "connecting":
            bench.feed(bench.session.link_closed, bench.link["A"], code=None, busy=True)
    assert bench.take_events(ev.LoginFailed) == []
    assert any("answered too slowly" in e.message for e in bench.take_events(ev.ErrorEvent))
    assert bench.session.snapshot().status != "idle"


def test_a_stale_token_waiting_for_a_site_too_slow_to_open_keeps_waiting_while_the_token_lives():
    """B refused the token as stale; A, which may hold the login, accepts connections but does not
    finish a handshake within open_timeout (overloaded, or blackholed): timing, not a refusal. The
    wait goes another round while the token may still be taken; once it has expired, the agent is
    asked for the password."""
    bench = logged_in_on_a(WITNESS)  # the token lives 600 s (harness)
    bench.kill("A")
    bench.refuse("B", bench.one("B", p.RequestAgentLogin), "stale_epoch", "log in with the password")
    def refused_by_b(seconds: float) -> None:  # B, asked again each round, refuses again
        end = bench.now + seconds
        while bench.now < end - 1e-9:
            keep_alive(bench, 0.5, "B")  # every attempt on A runs into open_timeout
            for login in bench.take_sent("B", kind=p.RequestAgentLogin):
                bench.refuse("B", login, "stale_epoch", "log in with the password")

    refused_by_b(WITNESS.token_retry_wait + 1.5)
    assert bench.take_events(ev.LoginFailed) == []
    assert any("answered too slowly" in e.message for e in bench.take_events(ev.ErrorEvent))
    refused_by_b(600)
    (failed,) = bench.take_events(ev.LoginFailed)
    assert failed.code == "stale_epoch"
