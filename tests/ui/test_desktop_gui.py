"""The agent desktop against real servers (processes where one dies or hangs): log in through the
window, change state, kill -9 the primary, watch the banner and the connection panel, restart,
log out."""

from __future__ import annotations

import asyncio
import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from desktop.ui.controller import DesktopController
from desktop.ui.icons import icon
from tests.support.memory_keyring import use_no_keyring
from tests.support.servers import ServerProcess, refused_ports

pytestmark = pytest.mark.slow
WAIT = 10_000  # ms


def log_in(qtbot, desktop: DesktopController, agent="1001", password="demo", site="A", place="ext-1"):
    window = desktop.login_window
    window.agent_edit.clear()
    window.password_edit.clear()
    qtbot.keyClicks(window.agent_edit, agent)
    qtbot.keyClicks(window.password_edit, password)
    qtbot.keyClicks(window.place_edit, place)
    window.site_combo.setCurrentIndex(window.site_combo.findData(site))
    qtbot.mouseClick(window.login_button, Qt.MouseButton.LeftButton)


def seconds_shown(label_text: str) -> int:
    minutes, seconds = map(int, re.fullmatch(r"(\d+):(\d\d)", label_text).groups())
    return minutes * 60 + seconds


@pytest.mark.server_processes
def test_login_not_ready_kill9_failover_restart_and_logout(pair, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([a, b])
    main = desktop.main_window

    log_in(qtbot, desktop)
    qtbot.waitUntil(lambda: main.isVisible() and not desktop.login_window.isVisible(), timeout=WAIT)
    assert desktop.login_window.password_edit.text() == ""  # the session runs on resume tokens now
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "primary, logged in"
                    and main.connections.role_of("B") == "secondary, standby", timeout=WAIT)

    # Not Ready with a reason, through the combo box and the button.
    qtbot.waitUntil(lambda: main.reason_combo.findData("lunch") >= 0, timeout=WAIT)
    main.reason_combo.setCurrentIndex(main.reason_combo.findData("lunch"))
    qtbot.mouseClick(main.not_ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.state_label.text() == "Not Ready – Lunch", timeout=WAIT)
    # The label shows the intent at once; the time in state is the server's once it has applied it.
    qtbot.waitUntil(lambda: desktop.bridge.snapshot().pending == (), timeout=WAIT)
    since_before = desktop.bridge.snapshot().agent.since_ms
    qtbot.waitUntil(lambda: seconds_shown(main.time_label.text()) >= 1, timeout=WAIT)  # the clock ticks
    shown_before = seconds_shown(main.time_label.text())

    a.kill9()

    qtbot.waitUntil(lambda: main.banner.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: main.banner.headline.text().startswith("Moved to site B in"), timeout=WAIT)
    # A reset is detected at once: the move takes milliseconds, so the phases may all fall between
    # two paints (the silent-failure test below watches them tick).
    assert main.banner.steps.text() == "✓ Detecting the loss   ✓ Logging in on site B   ✓ State restored"
    headline = main.banner.headline.text()
    assert re.fullmatch(r"Moved to site B in \d+ ms; Not Ready – Lunch, \d\d:\d\d, kept", headline), headline
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "primary, logged in", timeout=WAIT)
    assert main.connections.role_of("A") in ("reconnecting", "down, retrying")
    beats = {main.connections.item(i, 0).text(): main.connections.item(i, 3).text() for i in range(2)}
    assert re.fullmatch(r"\d+\.\d s ago", beats["Site B"]) and re.fullmatch(r"\d+\.\d s ago", beats["Site A"])

    def age(row: int) -> float:
        return float(main.connections.item(row, 3).text().split()[0])

    qtbot.waitUntil(lambda: age(0) >= 1.0, timeout=WAIT)  # the dead site's last beat keeps ageing
    assert age(1) < 1.5  # the new primary beats every 0.5 s (1.5 s of silence would drop it)
    assert main.state_label.text() == "Not Ready – Lunch"
    assert desktop.bridge.snapshot().agent.since_ms == since_before, "time in state restarted on failover"
    assert seconds_shown(main.time_label.text()) >= shown_before
    assert [n.title for n in desktop.tray.shown] == ["Connection lost", "Failover done"]
    failover_rows = [r.text for r in main.event_log.rows if r.category == "failover"]
    assert failover_rows[-1].startswith("Failover: restored on site B")

    # The banner can be dismissed.
    qtbot.mouseClick(main.banner.dismiss_button, Qt.MouseButton.LeftButton)
    assert not main.banner.isVisible()

    a.start()
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "secondary, standby", timeout=WAIT)
    assert main.connections.role_of("B") == "primary, logged in"

    qtbot.mouseClick(main.logout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: desktop.login_window.isVisible() and not main.isVisible(), timeout=WAIT)
    assert desktop.login_window.error_label.text() == ""
    assert desktop.login_window.password_edit.text() == ""  # not remembered: nothing to fill in
    assert desktop.bridge.snapshot() is None


def test_state_shortcuts_drive_the_primary(pair, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    log_in(qtbot, desktop, agent="1003")
    qtbot.waitUntil(lambda: main.isVisible() and main.connections.role_of("A") == "primary, logged in", timeout=WAIT)
    with qtbot.waitActive(main):  # window shortcuts act in the active window
        main.activateWindow()
    for keys, expected in ((Qt.Key.Key_1, "Ready"), (Qt.Key.Key_3, "After Call Work")):
        qtbot.keyClick(main, keys, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda expected=expected: main.state_label.text() == expected, timeout=WAIT)
    qtbot.waitUntil(lambda: main.reason_combo.count() > 0, timeout=WAIT)
    main.reason_combo.setCurrentIndex(main.reason_combo.findData("break"))
    qtbot.keyClick(main, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: main.state_label.text() == "Not Ready – Break", timeout=WAIT)
    # The event log filters, and "copy for support" copies the summary and the visible rows.
    main.tabs.setCurrentWidget(main.event_log)
    qtbot.keyClicks(main.event_log.filter_edit, "break")
    shown = main.event_log.visible_rows()
    assert shown and all("break" in r.line().lower() for r in shown)
    hidden = [i for i in range(main.event_log.table.rowCount()) if main.event_log.table.isRowHidden(i)]
    assert len(hidden) == len(main.event_log.rows) - len(shown)
    qtbot.mouseClick(main.event_log.copy_button, Qt.MouseButton.LeftButton)
    copied = QApplication.clipboard().text()
    assert copied.startswith("agent-desktop ") and "agent: 1003" in copied
    assert f"server A {a.url}: primary" in copied
    assert shown[-1].line() in copied and "Site B: secondary, standby" not in copied
    qtbot.keyClick(main, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: desktop.login_window.isVisible(), timeout=WAIT)


def test_wrong_password_shows_inline_error(pair, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([a, b])
    log_in(qtbot, desktop, password="not-the-password")
    error = desktop.login_window.error_label
    qtbot.waitUntil(lambda: error.isVisible() and bool(error.text()), timeout=WAIT)
    assert error.text() == "Wrong agent id or password. Check both and try again."
    assert not desktop.main_window.isVisible()
    assert desktop.login_window.login_button.isEnabled()
    # Correcting the password on the same window logs in.
    log_in(qtbot, desktop)
    qtbot.waitUntil(lambda: desktop.main_window.isVisible(), timeout=WAIT)


def test_without_keyring_remember_me_is_disabled_with_reason_and_login_works(pair, make_desktop, qtbot):
    use_no_keyring()
    a, b = pair
    desktop = make_desktop([a, b])
    window = desktop.login_window
    assert not window.remember_check.isEnabled()
    assert window.remember_reason.isVisible()
    assert "keyring" in window.remember_reason.text().lower()
    assert "\n" not in window.remember_reason.text()
    log_in(qtbot, desktop, agent="1004")
    qtbot.waitUntil(lambda: desktop.main_window.isVisible(), timeout=WAIT)


def test_remember_me_stores_the_password_in_the_keyring(pair, make_desktop, qtbot, isolated_keyring, user_store):
    a, b = pair
    desktop = make_desktop([a, b])
    desktop.login_window.remember_check.setChecked(True)
    log_in(qtbot, desktop, agent="1005")
    qtbot.waitUntil(lambda: desktop.main_window.isVisible(), timeout=WAIT)
    # Written by the keyring thread, never the GUI thread: it lands shortly after the login.
    qtbot.waitUntil(lambda: isolated_keyring.store.get(("agent-desktop", "1005")) == "demo", timeout=WAIT)
    assert desktop.login_window.password_edit.text() == "", "kept in memory while logged in"
    # Back at the login window after a logout, the remembered password is filled in again.
    qtbot.mouseClick(desktop.main_window.logout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(desktop.login_window.isVisible, timeout=WAIT)
    qtbot.waitUntil(lambda: desktop.login_window.password_edit.text() == "demo", timeout=WAIT)
    # The next start fills in the agent and (once the keyring thread has read it) the remembered password.
    again = make_desktop([a, b], store=user_store)
    assert again.login_window.agent_edit.text() == "1005"
    assert again.login_window.remember_check.isChecked()
    qtbot.waitUntil(lambda: again.login_window.password_edit.text() == "demo", timeout=WAIT)


def test_unreachable_servers_are_reported_in_words(make_desktop, qtbot):
    with refused_ports(2) as (pa, pb):
        nobody = [ServerProcess("A", pa), ServerProcess("B", pb)]  # never started
        desktop = make_desktop(nobody, unreachable_after=1.0)
        log_in(qtbot, desktop)
        error = desktop.login_window.error_label
        qtbot.waitUntil(lambda: error.text().startswith("No server is reachable"), timeout=WAIT)
        assert f"127.0.0.1:{nobody[0].port}" in error.text()


def test_duplicate_login_elsewhere_force_logout_policy(pair, make_desktop, qtbot):
    a, b = pair
    first = make_desktop([a, b])
    log_in(qtbot, first, agent="1006")
    qtbot.waitUntil(lambda: first.main_window.isVisible(), timeout=WAIT)
    second = make_desktop([a, b])
    log_in(qtbot, second, agent="1006")
    qtbot.waitUntil(lambda: second.main_window.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: first.login_window.isVisible(), timeout=WAIT)
    assert first.login_window.error_label.text() == (
        "You were logged out: agent 1006 logged in on another desktop, and the server's duplicate-login "
        "policy ends the older login.")
    # The new desktop says what its login did to the other one.
    assert second.main_window.statusBar().currentMessage() == (
        "Your login on another desktop (site A) was ended: the servers log out the older login when the "
        "same agent logs in again.")


def test_duplicate_login_elsewhere_deny_policy(make_pair, make_desktop, qtbot):
    a, b = make_pair(["--duplicate-policy", "deny"])
    first = make_desktop([a, b])
    log_in(qtbot, first, agent="1007")
    qtbot.waitUntil(lambda: first.main_window.isVisible(), timeout=WAIT)
    second = make_desktop([a, b])
    log_in(qtbot, second, agent="1007")
    error = second.login_window.error_label
    qtbot.waitUntil(lambda: error.isVisible() and bool(error.text()), timeout=WAIT)
    assert error.text().startswith("Agent 1007 is already logged in elsewhere, and the server's duplicate-login "
                                   "policy refused this second login.")
    assert first.main_window.isVisible()


def test_closing_the_main_window_logs_out_before_quitting(pair, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([a, b])
    quits = []
    desktop.quit_app = lambda: quits.append(desktop.bridge.snapshot())
    log_in(qtbot, desktop, agent="1008")
    qtbot.waitUntil(lambda: desktop.main_window.isVisible(), timeout=WAIT)
    desktop.main_window.close()
    assert desktop.main_window.isVisible(), "closed while still logged in"
    qtbot.waitUntil(lambda: bool(quits), timeout=WAIT)
    assert quits == [None], "quit before the logout finished"
    assert [r.text for r in desktop.main_window.event_log.rows][-1] == "Logged out (logout)"
    assert not desktop.login_window.isVisible()


def record_banner(main) -> list[tuple[str, str]]:
    """(headline, phase list) each time the failover banner is drawn differently."""
    shown: list[tuple[str, str]] = []
    render = main.banner.render

    def recording_render(banner, now):
        render(banner, now)
        drawn = (main.banner.headline.text(), main.banner.steps.text())
        if main.banner.isVisible() and (not shown or shown[-1] != drawn):
            shown.append(drawn)

    main.banner.render = recording_render
    return shown


@pytest.mark.server_processes
def test_action_during_a_silent_failure_shows_pending_then_applied(pair, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    log_in(qtbot, desktop, agent="1009")
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "secondary, standby", timeout=WAIT)
    shown = record_banner(main)
    a.sigstop()  # hung, not dead: only the missing heartbeats tell
    qtbot.mouseClick(main.ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.banner.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: "Ready: applied" in main.banner.pending.text(), timeout=WAIT)
    assert main.banner.headline.text().startswith("Moved to site B in")
    # The banner was up while the heartbeats were missing, its elapsed time ticking, before the summary.
    detecting = [h for h, steps in shown if re.fullmatch(r"Site A lost: detecting… (\d+ ms|\d+\.\d s)", h)
                 and steps.startswith("… Detecting the loss")]
    assert len(set(detecting)) >= 2, shown
    assert shown[-1][1] == "✓ Detecting the loss   ✓ Logging in on site B   ✓ State restored"
    assert main.state_label.text() == "Ready"
    states = [r.text for r in main.event_log.rows if r.category == "action"]
    assert states[-2:] == ["Ready: pending", "Ready: applied on site B"]


def test_state_forced_by_a_supervisor_is_shown_and_notified(pair, make_desktop, qtbot):
    from tests.server.wire import subscribe

    a, b = pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    log_in(qtbot, desktop, agent="1010")
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "primary, logged in", timeout=WAIT)
    supervisor = asyncio.ensure_future(subscribe(a.url))
    qtbot.waitUntil(supervisor.done, timeout=WAIT)
    sup = supervisor.result()[0]
    forced = asyncio.ensure_future(sup.send({"type": "RequestForceNotReady", "request_id": "f1",
                                              "agent_id": "1010", "reason": "meeting"}))
    qtbot.waitUntil(lambda: main.state_label.text() == "Not Ready – Meeting", timeout=WAIT)
    assert forced.done()
    note = desktop.tray.shown[-1]
    assert (note.title, note.message) == ("State changed by the server", "sup1 set you to Not Ready – Meeting.")
    asyncio.ensure_future(sup.send({"type": "RequestForceLogout", "request_id": "f2", "agent_id": "1010"}))
    qtbot.waitUntil(lambda: desktop.login_window.isVisible(), timeout=WAIT)
    assert desktop.login_window.error_label.text() == "Supervisor sup1 logged you out."
    closing = asyncio.ensure_future(sup.close())
    qtbot.waitUntil(closing.done, timeout=WAIT)


@pytest.mark.server_processes
def test_failback_when_idle_from_settings_moves_back_to_the_preferred_site(pair, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([a, b], settings={"failback": "when-idle"})
    main = desktop.main_window
    log_in(qtbot, desktop, agent="1002")
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "secondary, standby", timeout=WAIT)
    a.kill9()
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "primary, logged in", timeout=WAIT)
    a.start()
    # After the hold time (5 s by default) with no interaction in hand, the login moves back to A.
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "primary, logged in", timeout=20_000)
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "secondary, standby", timeout=WAIT)
    qtbot.waitUntil(lambda: main.banner.headline.text().startswith("Moved back to site A in"), timeout=WAIT)
    assert re.fullmatch(r"Moved back to site A in \d+ ms; Not Ready, \d\d:\d\d, kept", main.banner.headline.text())
    assert [r.text for r in main.event_log.rows if r.category == "failover"][-1].startswith(
        "Failback: restored on site A")


class RecordingTrayIcon(QSystemTrayIcon):
    """A real tray icon object (offscreen has no tray to show it in) that counts what reaches it."""

    def __init__(self):
        super().__init__()
        self.calls: list[str] = []

    def setIcon(self, value) -> None:
        self.calls.append("icon")
        super().setIcon(value)

    def setToolTip(self, text: str) -> None:
        self.calls.append("tooltip")
        super().setToolTip(text)


def test_tray_icon_and_tooltip_follow_the_state_and_change_only_when_it_does(pair, make_desktop, qtbot):
    a, b = pair
    tray = RecordingTrayIcon()
    desktop = make_desktop([a, b], tray_icon=tray)
    main = desktop.main_window

    def shows(name: str, tooltip: str) -> bool:
        return tray.toolTip() == f"Agent Desktop – {tooltip}" and tray.icon().cacheKey() == icon(name).cacheKey()

    log_in(qtbot, desktop, agent="1004")
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "secondary, standby", timeout=WAIT)
    qtbot.waitUntil(lambda: shows("not-ready", "Not Ready"), timeout=WAIT)
    calls = len(tray.calls)
    ticks = []
    desktop.refresh_timer.timeout.connect(lambda: ticks.append(1))
    qtbot.waitUntil(lambda: len(ticks) >= 8, timeout=WAIT)  # two seconds of clock ticks, no state change
    assert len(tray.calls) == calls, "the tray was reset on every refresh"
    qtbot.mouseClick(main.ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: shows("ready", "Ready"), timeout=WAIT)
    assert tray.calls[calls:] == ["icon", "tooltip"]
    qtbot.mouseClick(main.logout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: shows("offline", "logged out"), timeout=WAIT)
