"""Qt-free presentation logic: the sentences and labels the agent reads, with a fake clock."""

from __future__ import annotations

from desktop.core import events as ev
from desktop.ui import presenter as pr
from server_stub import protocol as p

LABELS = {"lunch": "Lunch", "break": "Break"}
LUNCH = ev.StateIntent("not_ready", "lunch")


def snapshot(status="logged_in", roles=(("A", "primary", 0), ("B", "secondary", 0)), agent=None, wall=0):
    links = tuple(ev.LinkInfo(name, f"ws://127.0.0.1:{8700 + i}", i + 1 if role != "reconnecting" else None,
                              role, wall - 300, failures) for i, (name, role, failures) in enumerate(roles))
    return ev.SessionSnapshot(status=status, agent_id="1001", epoch=1, primary=None, phase="idle", agent=agent,
                              links=links, pending=(), reasons=(p.ReasonInfo(code="lunch", label="Lunch"),),
                              has_interaction=False)


def status(state="not_ready", reason="lunch", since_ms=1_000_000, endpoint="A"):
    return ev.AgentStatus(state, reason, since_ms, 1, endpoint)


def test_formatting():
    assert pr.format_duration(252) == "04:12"
    assert pr.format_duration(3723) == "1:02:03"
    assert pr.format_duration(-5) == "00:00"
    assert pr.format_elapsed(0.084) == "84 ms"
    assert pr.format_elapsed(3.42) == "3.4 s"
    assert pr.state_text("not_ready", "lunch", LABELS) == "Not Ready – Lunch"
    assert pr.state_text("not_ready", "unknown-code", LABELS) == "Not Ready – unknown-code"
    assert pr.state_text("after_call_work", None) == "After Call Work"
    assert pr.time_in_state(1_000_000, 1_252_000) == "04:12"
    assert pr.heartbeat_age(1_000, 1_300) == "0.3 s ago"
    assert pr.heartbeat_age(None, 1_300) == "never"


def test_role_labels_of_the_connection_panel():
    assert pr.role_text("primary") == "primary, logged in"
    assert pr.role_text("secondary") == "secondary, standby"
    assert pr.role_text("reconnecting", failures=0) == "reconnecting"
    assert pr.role_text("reconnecting", failures=3) == "down, retrying"
    rows = pr.link_rows(snapshot(wall=10_000), 10_000)
    assert [(r.site, r.role_text, r.heartbeat) for r in rows] == [
        ("Site A", "primary, logged in", "0.3 s ago"), ("Site B", "secondary, standby", "0.3 s ago")]


def test_banner_walks_the_phases_and_ends_in_a_summary():
    banner = pr.FailoverBanner()
    before = status(since_ms=1_000_000)
    assert banner.on_event(ev.FailoverPhase("detecting", "failover", "A", None, 0.0), now=50.0,
                           last_status=before, labels=LABELS)
    assert banner.visible and banner.text(50.0) == "Site A lost: detecting… 0 ms"
    assert banner.text(50.25) == "Site A lost: detecting… 250 ms"  # ticks with the clock
    banner.on_event(ev.FailoverPhase("logging_in", "failover", "A", "B", 0.060), now=50.06)
    assert banner.text(50.07) == "Site A lost: logging in on site B… 70 ms"
    assert banner.steps() == [("Detecting the loss", "done"), ("Logging in on site B", "active"),
                              ("State restored", "waiting")]
    # An action taken meanwhile is queued: pending, then applied.
    banner.on_event(ev.IntentPending("r1", ev.StateIntent("ready"), queued=True), now=50.07, labels=LABELS)
    assert banner.pending_lines() == ["Ready: pending"]
    after = snapshot(agent=status(since_ms=1_000_000, endpoint="B"))
    banner.on_event(ev.FailoverPhase("restored", "failover", "A", "B", 0.084), now=50.09, snapshot=after,
                    labels=LABELS, wall_ms=1_252_000)
    assert banner.text(60.0) == "Moved to site B in 84 ms; Not Ready – Lunch, 04:12, kept"
    banner.on_event(ev.IntentApplied("r1", ev.StateIntent("ready"), "B", 2), now=50.1)
    assert banner.pending_lines() == ["Ready: applied"]
    banner.dismiss()
    assert not banner.visible


def test_banner_says_when_the_state_was_not_kept():
    banner = pr.FailoverBanner()
    banner.on_event(ev.FailoverPhase("detecting", "failover", "A", None, 0.0), now=0, last_status=status())
    after = snapshot(agent=status(state="ready", reason=None, since_ms=1_200_000, endpoint="B"))
    banner.on_event(ev.FailoverPhase("restored", "failover", "A", "B", 2.5), now=2.5, snapshot=after,
                    labels=LABELS, wall_ms=1_252_000)
    assert banner.text(3) == "Moved to site B in 2.5 s; now Ready (was Not Ready – Lunch)"


def test_login_messages_are_actionable():
    presenter = pr.LoginPresenter(unreachable_after=5)
    presenter.started("1001", now=100.0)
    assert presenter.failure_text(ev.LoginFailed("bad_credentials", "x", "A")).startswith("Wrong agent id or password")
    assert "already logged in elsewhere" in presenter.failure_text(ev.LoginFailed("already_logged_in", "x", "A"))
    assert presenter.failure_text(ev.LoginFailed("weird", "server says so", "B")) == \
        "Site B refused the login: server says so"
    assert "another desktop" in presenter.logged_out_text("duplicate_login")
    assert presenter.logged_out_text("logout") == ""
    assert presenter.validate("", "pw", "A", ["A"]) == "Enter your agent id."
    assert presenter.validate("1001", "", "A", ["A"]) == "Enter your password."
    assert presenter.validate("1001", "pw", None, []).startswith("Choose a site")


def test_unreachable_only_after_the_grace_period_and_only_while_nothing_registered():
    presenter = pr.LoginPresenter(unreachable_after=5)
    presenter.started("1001", now=100.0)
    down = snapshot(status="logging_in", roles=(("A", "reconnecting", 2), ("B", "connecting", 1)))
    assert presenter.unreachable_text(down, now=104.9) is None
    text = presenter.unreachable_text(down, now=105.0)
    assert text.startswith("No server is reachable: tried site A (ws://127.0.0.1:8700), site B")
    half = snapshot(status="logging_in", roles=(("A", "reconnecting", 2), ("B", "registered", 0)))
    assert presenter.unreachable_text(half, now=110.0) is None
    presenter.finished()
    assert presenter.unreachable_text(down, now=200.0) is None


def test_event_log_rows_filter_and_support_text():
    rows = [pr.log_row(ev.LinkRoleChanged(1, "A", "primary", 0), 1_000),
            pr.log_row(ev.FailoverPhase("restored", "failover", "A", "B", 0.084), 2_000),
            pr.log_row(ev.AgentStateChanged("not_ready", "lunch", 0, 2, "B", None), 3_000, LABELS),
            pr.log_row(ev.ErrorEvent("rate_limited", "slow down", "B"), 4_000)]
    assert [r.category for r in rows] == ["connection", "failover", "state", "error"]
    assert rows[2].text == "Not Ready – Lunch on site B (epoch 2)"
    assert pr.filter_rows(rows, "failover") == [rows[1]]
    assert pr.filter_rows(rows, None, "LUNCH") == [rows[2]]
    text = pr.support_text(rows, "1001", snapshot(), "0.1.0")
    assert text.startswith("agent-desktop 0.1.0\nagent: 1001\n")
    assert "server A ws://127.0.0.1:8700: primary" in text
    assert rows[1].line() in text
    assert pr.log_row(ev.SetTimer("k", 1.0), 0) is None


def test_tray_notifications():
    done = pr.notification_for(ev.FailoverPhase("restored", "failover", "A", "B", 0.084))
    assert (done.title, done.message) == ("Failover done", "Moved to site B in 84 ms")
    lost = pr.notification_for(ev.FailoverPhase("detecting", "failover", "A", None, 0))
    assert lost.title == "Connection lost" and lost.critical
    forced = pr.notification_for(ev.AgentStateChanged("not_ready", "system", 0, 1, "A", "sup1"),
                                 {"system": "System"})
    assert forced.message == "sup1 set you to Not Ready – System."
    assert pr.notification_for(ev.AgentStateChanged("ready", None, 0, 1, "A", None)) is None
    everything_down = snapshot(status="logged_in", roles=(("A", "reconnecting", 1), ("B", "reconnecting", 0)))
    assert pr.notification_for(ev.LinkRoleChanged(None, "B", "reconnecting", 0), snapshot=everything_down).title \
        == "Connection lost"
    assert pr.notification_for(ev.LinkRoleChanged(None, "B", "reconnecting", 0), snapshot=snapshot()) is None
    assert pr.notification_for(ev.FailoverPhase("restored", "failback", "B", "A", 0.1)) is None
    assert pr.state_icon("ready") == "ready" and pr.state_icon("ready", connected=False) == "offline"


def test_banner_lists_actions_unanswered_by_the_lost_primary_as_pending():
    banner = pr.FailoverBanner()
    lost = snapshot(status="failing_over")
    lost = ev.SessionSnapshot(**{**lost.__dict__, "pending": (("r7", ev.StateIntent("ready")),)})
    banner.on_event(ev.FailoverPhase("detecting", "failover", "A", None, 0.0), now=0, snapshot=lost, labels=LABELS)
    assert banner.pending_lines() == ["Ready: pending"]
    banner.on_event(ev.IntentApplied("r7", ev.StateIntent("ready"), "B", 2), now=0.1)
    assert banner.pending_lines() == ["Ready: applied"]


def test_presentation_and_settings_logic_do_not_load_qt():
    import subprocess
    import sys

    code = ("import sys, desktop.ui.presenter, desktop.ui.settings, desktop.demo; "
            "print(sorted(m for m in sys.modules if m.startswith('PySide6')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_an_agent_is_never_offered_a_reason_the_server_flags_server_only():
    reasons = [p.ReasonInfo(code="break", label="Break"), p.ReasonInfo(code="lunch", label="Lunch"),
               p.ReasonInfo(code="away", label="Away (set by the server)", server_only=True)]
    assert pr.agent_reasons(reasons) == {"break": "Break", "lunch": "Lunch"}
    # Nothing is hard-coded: a site whose "system" reason is an ordinary one offers it.
    assert pr.agent_reasons([p.ReasonInfo(code="system", label="System")]) == {"system": "System"}
    labels = {"break": "Break", "system": "System (set by the server)", "lunch": "Lunch"}
    # ...but the state line still names it when the server sets it.
    assert pr.state_text("not_ready", "system", labels) == "Not Ready – System (set by the server)"
