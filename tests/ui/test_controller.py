"""Routing of core events in the controller, fed directly (no servers): the cases real servers
only produce rarely."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from desktop.core import events as ev
from desktop.ui.controller import DesktopController
from desktop.ui.settings import DesktopSettings, Site

SETTINGS = DesktopSettings(sites=(Site("A", "ws://127.0.0.1:9"), Site("B", "ws://127.0.0.1:10")), preferred_site="A")


@pytest.fixture
def desktop(user_store):
    controller = DesktopController(SETTINGS, user_store, keyring_reason=None)
    yield controller
    controller.shutdown()
    for window in (controller.login_window, controller.main_window):
        window.close()
        window.deleteLater()


def test_a_login_refused_during_failover_returns_to_an_empty_focused_password(desktop, qtbot):
    login = desktop.login_window
    login.password_edit.setText("typed-at-login")
    desktop.login_presenter.started("1001", 0.0)
    desktop.on_event(ev.LoggedIn("1001", 1, "A", False))
    assert desktop.main_window.isVisible() and not login.isVisible()
    assert login.password_edit.text() == "", "the password stayed in the hidden login window"
    desktop.on_event(ev.FailoverPhase("detecting", "failover", "A", None, 0.0))
    assert desktop.main_window.banner.isVisible()
    login.password_edit.setText("stale")  # whatever the field held, the refusal must not keep it
    desktop.on_event(ev.LoginFailed("token_expired", "resume token expired", "B"))
    assert login.isVisible() and not desktop.main_window.isVisible()
    assert login.error_label.text() == "Your earlier session has expired. Enter your password and log in again."
    assert login.password_edit.text() == ""
    qtbot.waitUntil(lambda: QApplication.focusWidget() is login.password_edit, timeout=2000)


def test_a_refused_first_login_keeps_the_password_for_a_retry(desktop):
    login = desktop.login_window
    login.password_edit.setText("almost-right")
    desktop.login_presenter.started("1001", 0.0)
    desktop.on_event(ev.LoginFailed("bad_credentials", "wrong password", "A"))
    assert login.password_edit.text() == "almost-right"


def test_notifications_go_to_the_tray_model_when_no_tray_exists(desktop):
    assert desktop.tray.icon is None  # offscreen has no system tray: no QSystemTrayIcon, no warning
    desktop.on_event(ev.AgentStateChanged("not_ready", "system", 0, 1, "A", "sup1"))
    assert [n.title for n in desktop.tray.shown] == ["State changed by the server"]
