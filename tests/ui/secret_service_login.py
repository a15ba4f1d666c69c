"""Run inside ``dbus-run-session`` by test_secret_service.py: the desktop's own "remember me" path
against a real Secret Service (gnome-keyring-daemon) and real servers ($SITE_A_URL, $SITE_B_URL).

Nothing here picks a keyring backend: keyring chooses, as it does for an agent. Prints one line
per step; exits non-zero (an assertion) on the first thing that is wrong.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

# Unlock (creating it if needed) the login keyring with a password on stdin; the daemon then owns
# org.freedesktop.secrets on this private session bus.
daemon = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"],
                        input=b"keyring-test-password", capture_output=True, timeout=30)
assert daemon.returncode == 0, daemon.stderr

import keyring  # noqa: E402
import qasync  # noqa: E402
import secretstorage  # noqa: E402
from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop import credentials  # noqa: E402
from desktop.ui.controller import DesktopController  # noqa: E402
from desktop.ui.settings import DesktopSettings, Site  # noqa: E402
from tests.support.servers import async_wait_until  # noqa: E402

AGENT, PASSWORD = "1001", "demo"


def desktop(store: QSettings) -> DesktopController:
    settings = DesktopSettings(sites=(Site("A", os.environ["SITE_A_URL"]), Site("B", os.environ["SITE_B_URL"])),
                               preferred_site="A")
    controller = DesktopController(settings, store, keyring_reason=credentials.keyring_unavailable_reason())
    controller.quit_app = lambda: None
    controller.show()
    return controller


def secret_service_items() -> list[bytes]:
    """The secret read straight from the Secret Service collection, not through keyring."""
    connection = secretstorage.dbus_init()
    items = secretstorage.get_default_collection(connection).search_items(
        {"service": credentials.SERVICE, "username": AGENT})
    return [item.get_secret() for item in items]


async def scenario(store: QSettings) -> None:
    print("backend", type(keyring.get_keyring()).__module__, flush=True)
    first = desktop(store)
    login, main = first.login_window, first.main_window
    assert login.remember_check.isEnabled(), login.remember_reason.text()
    QTest.keyClicks(login.agent_edit, AGENT)
    QTest.keyClicks(login.password_edit, PASSWORD)
    QTest.mouseClick(login.remember_check, Qt.MouseButton.LeftButton)
    assert login.remember_check.isChecked()
    QTest.mouseClick(login.login_button, Qt.MouseButton.LeftButton)
    await async_wait_until(lambda: main.isVisible() and main.connections.role_of("B") == "secondary, standby",
                           timeout=15, message="the login")
    # Stored by the keyring thread, shortly after the login (never on the GUI thread).
    await async_wait_until(lambda: secret_service_items() == [PASSWORD.encode()], timeout=15,
                           message="the password stored in the Secret Service")
    assert login.password_edit.text() == ""
    print("stored in the Secret Service", flush=True)
    QTest.mouseClick(main.logout_button, Qt.MouseButton.LeftButton)
    await async_wait_until(lambda: login.isVisible() and first.bridge.snapshot() is None, timeout=15,
                           message="the logout")
    first.shutdown()

    again = desktop(store)  # the next start of the app
    assert again.login_window.agent_edit.text() == AGENT
    assert again.login_window.remember_check.isChecked()
    await async_wait_until(lambda: again.login_window.password_edit.text() == PASSWORD, timeout=15,
                           message="the password filled in from the keyring (read off the GUI thread)")
    print("next start fills in the password", flush=True)
    again.shutdown()
    current = asyncio.current_task()
    await async_wait_until(lambda: all(t.done() for t in asyncio.all_tasks() if t is not current), timeout=15,
                           message="links to close")


def main() -> int:
    app = QApplication(sys.argv[:1])
    store = QSettings(os.environ["DESKTOP_STORE"], QSettings.Format.IniFormat)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with loop:
        loop.run_until_complete(scenario(store))
    print("remember me round trip done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
