"""The client's lateness check (docs/failover.md, "Asymmetric liveness"): a pause of the desktop's
own process must not condemn a healthy server. When a link timer fires late (the process was
stopped, or starved of CPU) and finds the link silent, the frames that arrived meanwhile are read
first: the link is suspected for a confirm window of one heartbeat interval, and any frame from the
server clears it. A server that is really silent is still lost within 2.5 s, and a closed socket
(kill -9) at once. The core computes lateness from the ``now`` it is given against the time it
armed: a fake clock drives it here."""

from __future__ import annotations

from desktop.core import events as ev
from server_stub import protocol as p
from tests.core.harness import Bench, keep_alive, logged_in_on_a


def paused(bench: Bench, seconds: float) -> None:
    """The process is stopped for ``seconds``: on SIGCONT, the timers that fell due meanwhile fire
    all at once, late, before the frames that waited on the socket are read."""
    bench.now += seconds
    for key, at in sorted(bench.timers.items(), key=lambda kv: kv[1]):
        if at <= bench.now and bench.timers.get(key) == at:
            del bench.timers[key]
            bench.feed(bench.session.timer_fired, key)


def lost_links(bench: Bench) -> list[tuple[int, int]]:
    return [(c.link, c.code) for c in bench.closed]


def lost_after(bench: Bench, seconds: float, *alive: str) -> float | None:
    """Advance in small steps with ``alive`` beating; when the first link was given up, if it was."""
    end = bench.now + seconds
    while bench.now < end - 1e-9 and not bench.closed:
        keep_alive(bench, 0.05, *alive, step=0.05)
    return bench.now if bench.closed else None


def test_a_desktop_stopped_for_8_s_reads_what_its_servers_sent_before_it_judges_them():
    bench = logged_in_on_a()
    keep_alive(bench, 1.0, "A", "B")
    paused(bench, 8.0)
    assert lost_links(bench) == []  # the timers fired 8 s late: suspected, not lost
    assert bench.roles() == {"A": "primary", "B": "secondary"}
    assert bench.take_sent("A", kind=p.Heartbeat)  # and it says at once that it is alive
    bench.beat("A", "B")  # the heartbeats both servers sent meanwhile, read now
    keep_alive(bench, 5.0, "A", "B")
    assert lost_links(bench) == []
    snap = bench.session.snapshot()
    assert (snap.status, snap.primary, snap.epoch, snap.phase) == ("logged_in", "A", 1, "idle")
    assert bench.take_sent(kind=p.RequestAgentLogin) == []  # no failover login
    assert not [e for e in bench.take_events() if isinstance(e, (ev.FailoverPhase, ev.LoggedIn))]


def test_a_server_silent_after_the_pause_is_lost_at_the_end_of_the_confirm_window():
    bench = logged_in_on_a()
    keep_alive(bench, 1.0, "A", "B")
    paused(bench, 4.0)
    bench.beat("B")  # B spoke meanwhile; A did not, and does not now
    resumed = bench.now
    when = lost_after(bench, 2.0, "B")
    assert lost_links(bench) == [(bench.opened[0].link, p.CloseCode.HEARTBEAT)]
    assert when is not None and when - resumed <= 0.5 + 0.05  # one heartbeat interval
    assert bench.one("B", p.RequestAgentLogin).resume_token is not None  # fails over without the password


def test_a_silent_primary_is_still_detected_within_2_5_s_when_every_timer_fires_late():
    """Starved of CPU: every timer fires 0.2 s late. The silence is confirmed once, not for ever."""
    bench = logged_in_on_a()
    keep_alive(bench, 1.0, "A", "B")
    last_heard = bench.now
    end = bench.now + 4.0
    while bench.now < end and not bench.closed:
        due = min(bench.timers.values())
        bench.now = max(bench.now, due + 0.2)
        paused(bench, 0.0)
        bench.beat("B")
    (lost,) = bench.closed
    assert lost.link == bench.opened[0].link
    assert bench.now - last_heard <= 2.5, f"silent primary lost after {bench.now - last_heard:.2f} s"


def test_a_timer_on_time_loses_a_silent_primary_after_the_heartbeat_timeout_as_before():
    bench = logged_in_on_a()
    keep_alive(bench, 1.0, "A", "B")
    last_heard = bench.now
    when = lost_after(bench, 3.0, "B")
    assert [c.link for c in bench.closed] == [bench.opened[0].link]
    assert when is not None and 1.5 - 1e-6 <= when - last_heard <= 1.5 + 0.05


def test_a_closed_socket_is_acted_on_at_once_even_while_its_silence_is_being_confirmed():
    bench = logged_in_on_a()
    keep_alive(bench, 1.0, "A", "B")
    paused(bench, 3.0)
    assert lost_links(bench) == []
    bench.beat("B")
    bench.kill("A")  # kill -9: the socket closes, no confirm window
    assert bench.one("B", p.RequestAgentLogin).resume_token is not None


def test_the_standby_link_gets_the_same_check():
    bench = logged_in_on_a()
    keep_alive(bench, 1.0, "A", "B")
    paused(bench, 6.0)
    bench.beat("A", "B")
    keep_alive(bench, 3.0, "A", "B")
    assert lost_links(bench) == []
    assert bench.roles() == {"A": "primary", "B": "secondary"}


def test_a_stale_refusal_while_the_other_site_is_starved_is_not_given_up_by_timing_alone():
    """Under CPU starvation: A made a login from this token whose ack was lost, B refuses the token
    as stale, and A's links keep opening but dying before A answers. The desktop keeps trying
    (each wait ends with A heard, so another round, B asked again) and, once A answers, is logged
    in with the same token: never asked for the password."""
    bench = logged_in_on_a(state="not_ready", reason="lunch")
    bench.kill("A")
    bench.refuse("B", bench.one("B", p.RequestAgentLogin), "stale_epoch", "log in with the password")
    end = bench.now + 75.0
    while bench.now < end:
        keep_alive(bench, 1.0, "B")
        if bench.roles()["A"] == "connecting":
            bench.feed(bench.session.link_opened, bench.link["A"])  # A accepts the socket...
            bench.one("A", p.RequestRegisterClient)
            bench.kill("A")  # ... but is too slow to answer before the link dies
        for login in bench.take_sent("B", kind=p.RequestAgentLogin):  # B asked again each round: still stale
            bench.refuse("B", login, "stale_epoch", "log in with the password")
    assert bench.take_events(ev.LoginFailed) == []
    assert bench.session.snapshot().status == "failing_over"
    while bench.roles()["A"] != "connecting":
        keep_alive(bench, 0.5, "B")
    bench.register("A")  # A gets through at last and takes the retry of the login it made
    login = bench.one("A", p.RequestAgentLogin)
    assert login.resume_token is not None and login.password is None
    bench.ack("A", login, role="primary", epoch=login.epoch, resume_token="tok-2", token_expires_ms=bench.wall + 1)
    assert bench.session.snapshot().status == "logged_in"
    assert bench.take_events(ev.LoginFailed) == []
