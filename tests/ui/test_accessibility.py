"""Every control has an accessible name and is reachable by keyboard; light/dark palettes; geometry."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QByteArray, QEvent, QPoint, QRect, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QMenuBar,
    QScrollBar,
    QTabBar,
    QWidget,
)

from desktop.ui import presenter as pr
from desktop.ui.controller import DesktopController
from desktop.ui.settings import DesktopSettings, Site
from desktop.ui.settings_window import SettingsWindow
from desktop.ui.widgets import ErrorLabel

CONTROLS = (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox, QAbstractItemView)
SETTINGS = DesktopSettings(sites=(Site("A", "ws://127.0.0.1:9"), Site("B", "ws://127.0.0.1:10")), preferred_site="A")


@pytest.fixture
def desktop(qloop, user_store):
    controller = DesktopController(SETTINGS, user_store, keyring_reason=None)
    yield controller
    controller.shutdown()
    for window in (controller.login_window, controller.main_window):
        window.close()
        window.deleteLater()


def controls(window: QWidget) -> list[QWidget]:
    found = [w for w in window.findChildren(QWidget) if isinstance(w, CONTROLS)]
    # Qt's internal pieces (scroll bar buttons, table corner button, tab scrollers) are not ours.
    return [
        w
        for w in found
        if w.window() is window
        and not w.objectName().startswith("qt_")
        and type(w).__name__ not in ("QTabBar",)
        and w.parent() is not None
        and not isinstance(w, QHeaderView)
        and not isinstance(w.parent(), (QTabBar, QScrollBar, QLineEdit, QMenuBar))
    ]


def test_every_control_has_an_accessible_name_and_takes_keyboard_focus(desktop, user_store, qtbot):
    settings_window = SettingsWindow(user_store)
    qtbot.addWidget(settings_window)
    for window in (desktop.login_window, desktop.main_window, settings_window):
        found = controls(window)
        assert len(found) >= 4, window
        unnamed = [repr(w) for w in found if not w.accessibleName()]
        assert not unnamed, f"controls without an accessible name in {window.objectName()}: {unnamed}"
        unreachable = [w.accessibleName() for w in found if not (w.focusPolicy() & Qt.FocusPolicy.TabFocus)]
        assert not unreachable, f"not reachable with Tab in {window.objectName()}: {unreachable}"


def test_log_in_window_is_usable_with_the_keyboard_alone(desktop, qtbot):
    window = desktop.login_window
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    window.agent_edit.setFocus()
    seen = []
    for _ in range(8):
        seen.append(QApplication.focusWidget())
        qtbot.keyClick(QApplication.focusWidget() or window, Qt.Key.Key_Tab)
    for control in (window.agent_edit, window.password_edit, window.place_edit, window.site_combo,
                    window.remember_check, window.login_button):
        assert control in seen, control.accessibleName()
    # Enter in the password field submits.
    requests = []
    window.login_requested.connect(lambda *args: requests.append(args))
    qtbot.keyClicks(window.agent_edit, "1001")
    qtbot.keyClicks(window.password_edit, "pw")
    qtbot.keyClick(window.password_edit, Qt.Key.Key_Return)
    assert requests == [("1001", "pw", "", "A", False)]


def test_error_text_stays_readable_in_a_dark_palette(qtbot):
    label = ErrorLabel("Login error")
    qtbot.addWidget(label)
    light = label.palette().color(QPalette.ColorRole.WindowText).name()
    original = QApplication.palette()
    dark = QPalette(original)
    dark.setColor(QPalette.ColorRole.Window, QColor("#202124"))
    dark.setColor(QPalette.ColorRole.WindowText, QColor("#e8eaed"))
    try:
        QApplication.setPalette(dark)
        qtbot.waitUntil(lambda: label.palette().color(QPalette.ColorRole.WindowText).name() != light, timeout=2000)
        assert label.palette().color(QPalette.ColorRole.WindowText).lightness() > 128
    finally:
        QApplication.setPalette(original)


def test_window_geometry_is_remembered(desktop, user_store, qloop):
    desktop.main_window.setGeometry(QRect(30, 40, 620, 430))
    desktop.save_geometry()
    assert isinstance(user_store.value("geometry/main"), QByteArray)
    again = DesktopController(SETTINGS, user_store, keyring_reason=None)
    try:
        assert again.main_window.geometry().size() == desktop.main_window.geometry().size()
    finally:
        again.shutdown()
        again.login_window.deleteLater()
        again.main_window.deleteLater()


def tab_cycle(qtbot, window: QWidget, start: QWidget, limit: int = 60) -> list[QWidget]:
    """Press Tab from ``start`` until focus comes back to it: the controls a keyboard user reaches."""
    with qtbot.waitActive(window):
        window.show()
        window.activateWindow()
    start.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is start, timeout=2000)
    seen = [start]
    for _ in range(limit):
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        if QApplication.focusWidget() is start:
            return seen
        seen.append(QApplication.focusWidget())
    raise AssertionError(f"Tab never came back to {start.accessibleName()}: stuck at "
                         f"{[w.accessibleName() or type(w).__name__ for w in seen[-5:]]}")


def usable(window: QWidget) -> list[QWidget]:
    return [w for w in controls(window) if w.isVisible() and w.isEnabled()]


def test_tab_walks_every_control_of_each_main_window_tab(desktop, qtbot):
    main = desktop.main_window
    main.set_reasons({"lunch": "Lunch", "break": "Break"})
    # Full panels, as after a day's work: Tab must leave a read-only table, not walk all its cells.
    for second in range(40):
        main.event_log.add(pr.LogRow(1_700_000_000_000 + second * 1000, "connection", f"event {second}"))
    main.connections.render([pr.LinkRow("A", "ws://a", "primary", "primary, logged in", "0.2 s ago"),
                             pr.LinkRow("B", "ws://b", "secondary", "secondary, standby", "0.3 s ago")])
    reached_anywhere = set()
    for index in range(main.tabs.count()):
        main.tabs.setCurrentIndex(index)
        seen = tab_cycle(qtbot, main, main.ready_button)
        missing = [w.accessibleName() for w in usable(main) if w not in seen]
        assert not missing, f"tab {main.tabs.tabText(index)!r}: Tab never reaches {missing}"
        assert all(w.window() is main for w in seen)
        reached_anywhere |= {w.accessibleName() for w in seen}
    assert {"Ready", "Not Ready reason", "Not Ready", "After Call Work", "Log out", "Connections", "Event log",
            "Filter events", "Copy for support"} <= reached_anywhere


def test_tab_walks_every_control_of_the_settings_window(user_store, qtbot):
    window = SettingsWindow(user_store)
    qtbot.addWidget(window)
    window.load(SETTINGS)
    seen = tab_cycle(qtbot, window, window.sites_table)
    missing = [w.accessibleName() for w in usable(window) if w not in seen]
    assert not missing, f"Tab never reaches {missing}"
    assert {"Sites", "Add site", "Remove site", "Preferred site", "Heartbeat timeout", "Failback policy",
            "Save settings", "Close settings"} <= {w.accessibleName() for w in seen}


def test_esc_closes_the_settings_window(user_store, qtbot):
    window = SettingsWindow(user_store)
    qtbot.addWidget(window)
    window.load(SETTINGS)
    window.show()
    with qtbot.waitActive(window):
        window.activateWindow()
    window.timeout_spin.setFocus()
    qtbot.keyClick(window.timeout_spin, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isVisible())


def test_a_focus_outline_follows_the_keyboard_focus(desktop, qtbot):
    main = desktop.main_window
    main.set_reasons({"lunch": "Lunch"})
    main.show()
    with qtbot.waitActive(main):
        main.activateWindow()
    outline = main.focus_outline.frame
    main.ready_button.setFocus()
    qtbot.waitUntil(lambda: outline.widget() is main.ready_button and outline.isVisible())
    qtbot.keyClick(main.ready_button, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: outline.widget() is main.reason_combo)
    # Drawn around the control, outside it: nothing of the control is covered.
    combo = main.reason_combo
    assert outline.geometry().contains(QRect(combo.mapTo(outline.parentWidget(), QPoint(0, 0)), combo.size()))
    main.hide()


def test_the_focus_outline_of_a_closed_question_stops_listening(desktop, qtbot):
    import shiboken6

    from desktop.ui.dialogs import Question

    main = desktop.main_window
    main.show()
    answers: list[str] = []
    question = Question(main, "Title", "Text", "Info", [("cancel", "Cancel", "Cancel"), ("ok", "OK", "OK")],
                        default="cancel")
    question.answered.connect(answers.append)
    question.open()
    qtbot.waitUntil(question.isVisible)
    qtbot.mouseClick(question.buttons["ok"], Qt.MouseButton.LeftButton)
    assert answers == ["ok"]
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # WA_DeleteOnClose: its deleteLater
    assert not shiboken6.isValid(question)
    with qtbot.waitActive(main):
        main.activateWindow()
    for widget in (main.ready_button, main.reason_combo, main.ready_button):  # focus moves: nothing raises
        widget.setFocus()
        qtbot.waitUntil(widget.hasFocus)
    main.hide()
