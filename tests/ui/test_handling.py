"""Wrap-up and handling states in the agent desktop, against real in-process servers: a
disposition chosen for each interaction (none by default, none carried over), the state line
following the work (Ringing, Talking with its timer, After Call Work with its countdown), the
server-only Not Ready reason, closing with work in hand, and the window at its minimum size."""

from __future__ import annotations

import asyncio
import re

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QSystemTrayIcon, QWidget

from desktop.core import events as ev
from desktop.ui import interaction_presenter as ip
from desktop.ui import presenter as pr
from desktop.ui import translations
from desktop.ui.controller import DesktopController
from desktop.ui.dialogs import Question
from desktop.ui.settings import DesktopSettings, Site
from desktop.ui.widgets import MAIN_MINIMUM, LoginWindow, MainWindow
from server_stub import protocol as p
from tests.support.reporting import ReportingWatcher
from tests.ui.test_desktop_gui import WAIT, log_in
from tests.ui.test_interactions_gui import interaction_events, logged_in_ready, submit, wait_reported

pytestmark = pytest.mark.slow
SHIFT_CTRL = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


@pytest.fixture
def watch_a(pair):
    watcher = ReportingWatcher(pair[0].url)
    yield watcher
    watcher.close()


def keyboard(qtbot, main, key) -> None:
    with qtbot.waitActive(main):
        main.activateWindow()
    qtbot.keyClick(main, key, SHIFT_CTRL)


def completes(seen: list[ev.Event], interaction_id: str) -> list[ev.InteractionPending]:
    """Every Done the desktop sent (or queued) for ``interaction_id``."""
    return [e for e in seen if isinstance(e, ev.InteractionPending) and e.intent.action == "complete"
            and e.intent.interaction_id == interaction_id]


def accept_by_keyboard(qtbot, desktop, watch_a, interaction_id: str) -> None:
    main = desktop.main_window
    submit(qtbot, watch_a, interaction_id, customer={"name": "Dana Ortiz"})
    qtbot.waitUntil(main.offer_toast.isVisible, timeout=WAIT)
    qtbot.waitUntil(lambda: main.state_label.text() == "Ringing – Voice call", timeout=WAIT)
    keyboard(qtbot, main, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: main.interactions.detail.isVisible() and not main.offer_toast.isVisible(), timeout=WAIT)
    wait_reported(qtbot, watch_a, interaction_id, "accepted")


def test_a_disposition_is_chosen_for_each_interaction_and_never_carried_over(pair, watch_a, make_desktop, qtbot):
    desktop = make_desktop(list(pair))
    main, panel = desktop.main_window, desktop.main_window.interactions
    seen: list[ev.Event] = []
    desktop.bridge.event.connect(seen.append)
    logged_in_ready(qtbot, desktop, "1003")

    accept_by_keyboard(qtbot, desktop, watch_a, "wrap-1")
    # The state follows the work: Talking with its own clock; the chosen state is kept beside it.
    assert main.state_label.text() == "Talking – Voice call"
    assert re.fullmatch(r"\d\d:\d\d", main.time_label.text())
    assert main.agent_label.text().endswith("after this: Ready")
    combo = panel.disposition_combo
    assert combo.currentText() == ip.CHOOSE_DISPOSITION and combo.currentData() is None
    panel.disposition_combo.setFocus()
    qtbot.keyClick(panel.disposition_combo, Qt.Key.Key_Down)  # Resolved
    qtbot.keyClick(panel.disposition_combo, Qt.Key.Key_Down)  # Follow-up needed
    assert panel.disposition_combo.currentData() == "follow_up"
    keyboard(qtbot, main, Qt.Key.Key_D)
    wait_reported(qtbot, watch_a, "wrap-1", "completed")
    assert [e["disposition"] for e in interaction_events(watch_a, "wrap-1", "completed")] == ["follow_up"]
    # sales has 5 s of After Call Work: the state line counts it down, then the server makes the agent Ready.
    qtbot.waitUntil(lambda: main.state_label.text() == "After Call Work"
                    and re.fullmatch(r"00:0[0-5] left", main.time_label.text()) is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: main.state_label.text() == "Ready", timeout=WAIT)

    accept_by_keyboard(qtbot, desktop, watch_a, "wrap-2")
    assert panel.disposition_combo.currentData() is None, "the last call's disposition carried over"
    keyboard(qtbot, main, Qt.Key.Key_D)  # Done without choosing: refused here, with the reason
    qtbot.waitUntil(panel.done_error.isVisible, timeout=WAIT)  # (a shortcut clicks its button a moment later)
    assert panel.done_error.text() == ip.DISPOSITION_REQUIRED
    assert panel.disposition_combo.hasFocus()
    assert completes(seen, "wrap-2") == [] and panel.detail.isVisible()
    assert not interaction_events(watch_a, "wrap-2", "completed")

    panel.disposition_combo.setCurrentIndex(panel.disposition_combo.findData("resolved"))
    assert not panel.done_error.isVisible()
    keyboard(qtbot, main, Qt.Key.Key_D)
    wait_reported(qtbot, watch_a, "wrap-2", "completed")
    assert [e["disposition"] for e in interaction_events(watch_a, "wrap-2", "completed")] == ["resolved"]
    # The desktop's own record of that Done crosses from the network thread as a queued signal,
    # which a loaded machine may deliver after the server's report arrived.
    qtbot.waitUntil(lambda: [e.intent.disposition for e in completes(seen, "wrap-2")] == ["resolved"], timeout=WAIT)


def test_the_server_only_reason_is_not_offered_but_shown_when_the_server_sets_it(pair, make_desktop, qtbot):
    from tests.server.wire import subscribe

    a, b = pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    log_in(qtbot, desktop, agent="1007")
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "primary, logged in" and main.reason_combo.count() > 0,
                    timeout=WAIT)
    offered = [main.reason_combo.itemData(i) for i in range(main.reason_combo.count())]
    assert "system" not in offered and {"break", "lunch"} <= set(offered)
    supervisor = asyncio.ensure_future(subscribe(a.url))
    qtbot.waitUntil(supervisor.done, timeout=WAIT)
    sup = supervisor.result()[0]
    asyncio.ensure_future(sup.send({"type": "RequestForceNotReady", "request_id": "f1", "agent_id": "1007",
                                    "reason": "system"}))
    label = desktop.labels["system"]
    qtbot.waitUntil(lambda: main.state_label.text() == f"Not Ready – {label}", timeout=WAIT)
    assert "system" not in [main.reason_combo.itemData(i) for i in range(main.reason_combo.count())]
    closing = asyncio.ensure_future(sup.close())
    qtbot.waitUntil(closing.done, timeout=WAIT)


def close_question(main: MainWindow) -> Question:
    box = main.close_question
    assert box is not None and box.isVisible() and box.objectName() == "closeQuestion", "no question before closing"
    return box


def button(box: Question, name: str):
    return next(b for b in box.buttons.values() if b.accessibleName() == name)


def test_closing_with_work_in_hand_asks_first_and_hiding_keeps_the_interaction(pair, watch_a, make_desktop, qtbot):
    desktop = make_desktop(list(pair))
    main = desktop.main_window
    main.tray_available = True  # a desktop with a tray (offscreen has none)
    quits: list[object] = []
    desktop.quit_app = lambda: quits.append(desktop.bridge.snapshot())
    logged_in_ready(qtbot, desktop, "1003")
    accept_by_keyboard(qtbot, desktop, watch_a, "close-1")

    main.close()
    box = close_question(main)
    assert "Voice call – sales – Dana Ortiz" in box.text_label.text()
    assert "the interaction stays with you" in box.info_label.text()
    assert main.isVisible() and box.windowModality() == Qt.WindowModality.WindowModal
    qtbot.keyClick(box, Qt.Key.Key_Escape)  # Esc cancels: nothing happens
    qtbot.waitUntil(lambda: main.close_question is None, timeout=WAIT)
    assert main.isVisible() and not quits and len(desktop.bridge.snapshot().held) == 1

    main.close()
    qtbot.mouseClick(button(close_question(main), "Hide to tray"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not main.isVisible(), timeout=WAIT)
    snapshot = desktop.bridge.snapshot()
    assert snapshot.status == "logged_in" and [h.interaction.interaction_id for h in snapshot.held] == ["close-1"]
    assert not quits

    desktop.raise_current_window()
    qtbot.waitUntil(main.isVisible, timeout=WAIT)
    main.close()
    qtbot.mouseClick(button(close_question(main), "Log out and quit"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(quits), timeout=WAIT)
    assert quits == [None], "quit before the logout finished"


def test_the_tray_icon_has_its_icon_before_it_is_shown(qloop, user_store, monkeypatch):
    """Shown without an icon, a tray icon makes Qt warn "No Icon set" at every start. Offscreen has
    no tray, so a tray icon that records what it had when shown stands in for the platform's."""
    from desktop.ui import controller as controller_module

    shown_with: list[bool] = []

    class PlatformTray(QSystemTrayIcon):
        @staticmethod
        def isSystemTrayAvailable() -> bool:
            return True

        def show(self) -> None:  # the platform's part (a real tray) is not here
            shown_with.append(not self.icon().isNull())

    monkeypatch.setattr(controller_module, "QSystemTrayIcon", PlatformTray)
    settings = DesktopSettings(sites=(Site("A", "ws://127.0.0.1:9"),), preferred_site="A")
    controller = DesktopController(settings, user_store, keyring_reason=None)
    try:
        assert shown_with == [True]
    finally:
        controller.shutdown()
        for window in (controller.login_window, controller.main_window):
            window.close()
            window.deleteLater()


def inside(widget: QWidget, window: QWidget) -> bool:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return window.rect().contains(top_left) and window.rect().contains(
        top_left + QPoint(widget.width() - 1, widget.height() - 1))


@pytest.fixture(params=["en", "fr"])
def language(request, qapp):
    """The windows built in English, then in French (longer words: they must fit as well)."""
    assert translations.install(qapp, request.param) == request.param
    yield request.param
    translations.install(qapp, "en")


def test_at_its_minimum_size_the_window_shows_every_control_of_a_call(qtbot, language):
    """The busiest moment: a failover banner, an offer ringing and a call in hand, a status line;
    then the call on hold with the transfer picker open, then while a consultation goes on."""
    main = MainWindow()
    qtbot.addWidget(main)
    main.set_reasons({"break": "Break", "lunch": "Lunch"})
    main.interactions.set_dispositions([("Resolved", "resolved"), ("Follow-up needed", "follow_up")])
    call = p.Interaction(interaction_id="c1", media="voice", queue="sales", created_ms=0, subject="Invoice question",
                         customer={"name": "Dana Ortiz", "account": "88-1203"})
    held = (ev.HeldInfo(call, 1_000, "Wants the invoice re-sent.", "A", 3, False),)
    status = ev.AgentStatus("ready", None, 0, 3, "A")
    main.interactions.render_held(held, "", 65_000)
    main.offer_toast.render_offer(ev.OfferInfo(call, 60_000, 90_000, "A", 3), 65_000)
    main.render_state(ip.handling_state(status, (), held, {}, 65_000), True, "Agent 1001 on site A")
    banner = pr.FailoverBanner(visible=True, phase="logging_in", from_endpoint="A", to_endpoint="B")
    banner.pending = {"r1": pr.PendingAction("Ready", "pending")}
    main.banner.render(banner, 0.0)
    main.statusBar().showMessage("Interaction c0 completed (Resolved)")
    main.show()
    main.resize(*MAIN_MINIMUM)
    qtbot.waitUntil(lambda: (main.width(), main.height()) == MAIN_MINIMUM)
    assert (main.minimumWidth(), main.minimumHeight()) == MAIN_MINIMUM
    toast, panel = main.offer_toast, main.interactions
    controls = [main.state_label, main.time_label, main.ready_button, main.reason_combo, main.not_ready_button,
                main.acw_button, main.logout_button, main.banner.dismiss_button, toast.title_label,
                toast.countdown_label, toast.accept_button, toast.reject_button, panel.title_label,
                panel.customer_label, panel.notes_edit, panel.disposition_combo, panel.done_button]
    for widget in controls:
        hint = widget.minimumSizeHint()
        name = widget.accessibleName()
        assert widget.isVisible(), name
        assert inside(widget, main), f"{name} is outside the window at {widget.geometry()}"
        assert widget.width() >= hint.width() and widget.height() >= hint.height(), \
            f"{name} squashed to {widget.size()} (needs {hint})"
    assert_nothing_squashed(main)
    main.interactions.render_held((ev.HeldInfo(call, 1_000, "", "A", 3, False, 60_000),), "", 65_000)
    panel.controls.transfer_button.click()
    picker = panel.controls.picker
    qtbot.waitUntil(picker.target_edit.hasFocus)
    for widget in (panel.controls.hold_button, panel.controls.hold_label, panel.controls.transfer_button,
                   picker.target_combo, picker.target_edit, *picker.kind_radios.values(), picker.go_button,
                   picker.close_button, panel.disposition_combo, panel.done_button):
        assert widget.isVisible() and inside(widget, main), widget.accessibleName()
    assert_nothing_squashed(main)
    consulting = ev.TransferInfo("accepted", "1002", None)
    main.interactions.render_held((ev.HeldInfo(call, 1_000, "", "A", 3, False, 60_000, consulting),), "", 65_000)
    for widget in (panel.controls.consult_label, panel.controls.complete_button, panel.controls.take_back_button,
                   panel.notes_edit, panel.disposition_combo, panel.done_button):
        assert widget.isVisible() and inside(widget, main), widget.accessibleName()
    assert_nothing_squashed(main)


def assert_nothing_squashed(main: MainWindow) -> None:
    squashed = [w.accessibleName() or type(w).__name__ for w in main.findChildren(QWidget)
                if w.isVisible() and w.window() is main and not w.objectName().startswith("qt_")
                and w.minimumSizeHint().isValid() and w.width() < w.minimumSizeHint().width()]
    assert not squashed, f"narrower than their minimum size hint: {squashed}"


def test_the_demo_hint_wraps_instead_of_being_cut(qtbot):
    settings = DesktopSettings(sites=(Site("A", "ws://127.0.0.1:9"),), preferred_site="A")
    window = LoginWindow(settings, None)
    qtbot.addWidget(window)
    window.status_label.setText("Demo: sites A and B run locally (ws://127.0.0.1:38701, ws://127.0.0.1:38702); "
                                "agent 1001 / password demo is filled in.")
    window.show()
    window.resize(window.minimumSize())
    qtbot.waitUntil(lambda: window.size() == window.minimumSize())
    label = window.status_label
    assert label.wordWrap() and inside(label, window)
    assert label.height() >= label.heightForWidth(label.width()), "the hint's last line is cut"


def test_an_offer_alerts_the_window_and_a_missed_one_stays_on_screen(make_pair, make_desktop, qtbot, tmp_path,
                                                                     monkeypatch):
    config = tmp_path / "site.toml"
    config.write_text('[[queue]]\nname = "sales"\naccept_timeout = 1\n')
    a, b = make_pair(["--config", str(config)])
    alerted: list[QWidget] = []
    monkeypatch.setattr(QApplication, "alert", staticmethod(lambda widget, duration=0: alerted.append(widget)))
    watcher = ReportingWatcher(a.url)
    try:
        desktop = make_desktop([a, b])
        main = desktop.main_window
        logged_in_ready(qtbot, desktop, "1003")
        submit(qtbot, watcher, "missed-1", customer={"name": "Dana Ortiz"})
        qtbot.waitUntil(main.offer_toast.isVisible, timeout=WAIT)
        assert alerted == [main]  # the taskbar entry flashes (or the window rises) for the offer
        # Not answered within the queue's one second: the line stays in the window, not only in the log.
        qtbot.waitUntil(main.missed_label.isVisible, timeout=WAIT)
        assert re.fullmatch(r"Missed at \d\d:\d\d:\d\d: Voice call – sales – Dana Ortiz – not answered in time\. "
                            r"It went back to its queue\.", main.missed_label.text()), main.missed_label.text()
        # It went back to its queue and, the agent being the only one, rings again; the line stays
        # until the agent answers.
        qtbot.waitUntil(lambda: main.offer_toast.isVisible() and len(alerted) >= 2, timeout=WAIT)
        assert main.missed_label.isVisible()
        qtbot.mouseClick(main.offer_toast.accept_button, Qt.MouseButton.LeftButton)
        assert not main.missed_label.isVisible()
    finally:
        watcher.close()
