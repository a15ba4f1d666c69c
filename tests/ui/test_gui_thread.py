"""The GUI thread carries no network and no keyring (issue 11; docs/architecture.md, "Threads").

A slot that blocks the GUI thread for 5 s while the agent is logged in must cost nothing on the
wire: the server keeps hearing the desktop, nobody is logged out, nothing fails over, and the
window shows afterwards what happened meanwhile. The keyring is read and written on a worker
thread only, and never when the agent did not ask to be remembered.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from PySide6.QtCore import Qt, QTimer

from desktop.core.config import SessionConfig
from desktop.ui.controller import DesktopController
from desktop.ui.settings import DesktopSettings, Site
from tests.support.memory_keyring import use_no_keyring, use_spy_keyring
from tests.support.reporting import ReportingWatcher
from tests.support.tcp_relay import TcpRelay
from tests.ui.test_desktop_gui import log_in

WAIT = 10_000  # ms
FREEZE_S = 5.0
# The desktop beats its primary every client_heartbeat_interval (1.5 s) and the server suspects it
# after three of those (asymmetric terms, docs/protocol.md "Heartbeats").
BEAT_S = SessionConfig.client_heartbeat_interval


def block_gui_thread(qtbot, seconds: float, first=lambda: None) -> tuple[float, float]:
    """Run a slot on the GUI thread that calls ``first()`` then blocks the thread for ``seconds``
    (the fault under test: a modal wait, a slow paint, a long Python call); (start, end) monotonic."""
    span: list[float] = []

    def slot() -> None:
        assert threading.current_thread() is threading.main_thread()
        span.append(time.monotonic())
        first()
        time.sleep(seconds)  # the injected fault: this thread does nothing else meanwhile
        span.append(time.monotonic())

    QTimer.singleShot(0, slot)
    qtbot.waitUntil(lambda: len(span) == 2, timeout=int(seconds * 1000) + WAIT)
    return span[0], span[1]


def largest_silence(heard: list[float], start: float, end: float) -> float:
    """The longest span within [start, end] in which nothing was heard."""
    points = [start, *heard, end]
    return max(b - a for a, b in zip(points, points[1:], strict=False))


@pytest.fixture
def watchers(pair):
    made = {server.name: ReportingWatcher(server.url) for server in pair}
    yield made
    for watcher in made.values():
        watcher.close()


@pytest.fixture
def relay_a(pair):
    relay = TcpRelay(pair[0].port)
    yield relay
    relay.stop()


def test_a_blocked_gui_thread_neither_logs_out_nor_fails_over_and_the_window_catches_up(
        pair, watchers, relay_a, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([SimpleNamespace(name="A", url=relay_a.url), b])  # site A heard through the relay
    main = desktop.main_window
    log_in(qtbot, desktop, agent="1001")
    qtbot.waitUntil(lambda: main.isVisible() and main.connections.role_of("A") == "primary, logged in"
                    and main.connections.role_of("B") == "secondary, standby", timeout=WAIT)
    watchers["A"].wait_for("EventAgentLogin", "1001")
    epoch = desktop.bridge.snapshot().epoch
    assert main.state_label.text() != "Not Ready – Meeting"
    logins = {name: len(w.of("EventAgentLogin", "1001")) for name, w in watchers.items()}

    # During the freeze a supervisor forces the agent Not Ready (Meeting) at A.
    start, end = block_gui_thread(qtbot, FREEZE_S, first=lambda: watchers["A"].send(
        {"type": "RequestForceNotReady", "request_id": "sup-freeze-1", "agent_id": "1001", "reason": "meeting"}))
    assert end - start >= FREEZE_S

    # The server heard the desktop all along: heartbeats kept flowing while the GUI thread slept.
    heard = relay_a.heard_between(start, end)
    assert len(heard) >= FREEZE_S / BEAT_S - 1, heard
    assert largest_silence(heard, start, end) < 2 * BEAT_S  # never near the server's suspect threshold
    # The forced state reached the reporting stream during the freeze...
    changed = watchers["A"].wait_for("EventAgentStateChanged", "1001", state="not_ready", reason="meeting")
    assert changed["forced_by"] == "sup1"
    # ...and the window catches up: the state, the log row and the tray note are there after it.
    qtbot.waitUntil(lambda: main.state_label.text() == "Not Ready – Meeting", timeout=WAIT)
    assert "State changed by the server" in [n.title for n in desktop.tray.shown]
    assert any("Meeting" in row.text for row in main.event_log.rows)

    # No logout, no failover: same login, same site, same epoch; no banner, no failover note.
    assert [w.of("EventAgentLogout", "1001") for w in watchers.values()] == [[], []]
    assert {name: len(w.of("EventAgentLogin", "1001")) for name, w in watchers.items()} == logins
    snapshot = desktop.bridge.snapshot()
    assert (snapshot.status, snapshot.primary, snapshot.epoch) == ("logged_in", "A", epoch)
    assert main.connections.role_of("A") == "primary, logged in"
    assert not main.banner.isVisible()
    assert "Connection lost" not in [n.title for n in desktop.tray.shown]
    assert not a.log_has("silent for")


def test_intents_and_events_cross_threads_in_order(pair, make_desktop, qtbot):
    """Clicks made while the GUI thread is busy are carried out in order, and every event is
    delivered on the GUI thread."""
    a, b = pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    threads: set[str] = set()
    desktop.bridge.event.connect(lambda event: threads.add(threading.current_thread().name))
    log_in(qtbot, desktop, agent="1002")
    qtbot.waitUntil(lambda: main.isVisible() and main.connections.role_of("B") == "secondary, standby",
                    timeout=WAIT)
    qtbot.waitUntil(lambda: main.reason_combo.findData("lunch") >= 0, timeout=WAIT)
    main.reason_combo.setCurrentIndex(main.reason_combo.findData("lunch"))
    qtbot.mouseClick(main.ready_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(main.not_ready_button, Qt.MouseButton.LeftButton)  # the last click wins
    qtbot.waitUntil(lambda: desktop.bridge.snapshot().pending == ()
                    and main.state_label.text() == "Not Ready – Lunch", timeout=WAIT)
    assert threads == {threading.main_thread().name}


def test_closing_the_window_logs_out_on_the_wire_then_ends_the_network_thread(pair, watchers, make_desktop, qtbot):
    a, b = pair
    desktop = make_desktop([a, b])
    quits: list[bool] = []
    desktop.quit_app = lambda: quits.append(True)
    before = set(threading.enumerate())
    log_in(qtbot, desktop, agent="1005")
    qtbot.waitUntil(lambda: desktop.main_window.isVisible(), timeout=WAIT)
    network = [t for t in set(threading.enumerate()) - before if t.name == "desktop-network"]
    assert len(network) == 1, "the session runs on a thread of its own"
    desktop.main_window.close()
    qtbot.waitUntil(lambda: bool(quits), timeout=WAIT)
    assert watchers["A"].wait_for("EventAgentLogout", "1005")["reason"] == "logout"
    desktop.shutdown()  # what the application does once Qt quits
    assert not network[0].is_alive()


@pytest.fixture
def spy_keyring(isolated_keyring):
    return use_spy_keyring()


def test_the_keyring_is_never_touched_when_remember_me_is_not_ticked(pair, make_desktop, qtbot, spy_keyring,
                                                                    user_store):
    a, b = pair
    desktop = make_desktop([a, b], keyring_reason=None)
    assert desktop.login_window.remember_check.isEnabled() and not desktop.login_window.remember_check.isChecked()
    log_in(qtbot, desktop, agent="1003")
    qtbot.waitUntil(lambda: desktop.main_window.isVisible(), timeout=WAIT)
    qtbot.mouseClick(desktop.main_window.logout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(desktop.login_window.isVisible, timeout=WAIT)
    again = make_desktop([a, b], store=user_store, keyring_reason=None)  # the next start
    assert again.login_window.agent_edit.text() == "1003"
    log_in(qtbot, again, agent="1003")
    qtbot.waitUntil(lambda: again.main_window.isVisible(), timeout=WAIT)
    for controller in (desktop, again):
        controller.shutdown()  # the application quits: whatever it asked of the keyring has run
    assert spy_keyring.calls == []


def test_remembered_passwords_use_the_keyring_off_the_gui_thread_and_unticking_forgets(
        pair, make_desktop, qtbot, spy_keyring, user_store):
    a, b = pair
    desktop = make_desktop([a, b], keyring_reason=None)
    desktop.login_window.remember_check.setChecked(True)
    log_in(qtbot, desktop, agent="1004")
    qtbot.waitUntil(lambda: spy_keyring.store.get(("agent-desktop", "1004")) == "demo", timeout=WAIT)
    qtbot.mouseClick(desktop.main_window.logout_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: desktop.login_window.password_edit.text() == "demo", timeout=WAIT)
    # The next start: the password comes back; unticking "Remember me" forgets it at the next login.
    again = make_desktop([a, b], store=user_store, keyring_reason=None)
    qtbot.waitUntil(lambda: again.login_window.password_edit.text() == "demo", timeout=WAIT)
    again.login_window.remember_check.setChecked(False)
    qtbot.mouseClick(again.login_window.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: again.main_window.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: ("agent-desktop", "1004") not in spy_keyring.store, timeout=WAIT)
    methods = [method for method, _, _ in spy_keyring.calls]
    assert methods == ["set_password", "get_password", "get_password", "delete_password"], spy_keyring.calls
    assert threading.main_thread().name not in {thread for _, _, thread in spy_keyring.calls}


def test_without_a_keyring_backend_remember_me_is_disabled_once_the_probe_answers(user_store, qtbot):
    """The application's way (``probe_keyring``): the window shows at once, the keyring backend is
    asked on the keyring thread, and "Remember me" is disabled with the reason when there is none."""
    use_no_keyring()
    settings = DesktopSettings(sites=(Site("A", "ws://127.0.0.1:9"),), preferred_site="A")
    controller = DesktopController(settings, user_store, probe_keyring=True)
    try:
        controller.show()
        window = controller.login_window
        qtbot.waitUntil(lambda: not window.remember_check.isEnabled(), timeout=WAIT)
        assert window.remember_reason.isVisible() and "keyring" in window.remember_reason.text().lower()
        assert controller.keyring_reason == window.remember_reason.text()
    finally:
        controller.shutdown()
        for w in (controller.login_window, controller.main_window):
            w.close()
            w.deleteLater()
