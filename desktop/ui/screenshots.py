"""Render the README screenshots from the real app, as a newcomer to ``--demo`` sees it: the login
window, an offer toast, the main window with a call in hand (also in the dark theme), and the
failover banner.

Run by ``.ci/screenshots`` under Xvfb: ``python -m desktop.ui.screenshots OUTDIR``. It starts the
demo site pair, logs the demo agent in through the window, goes Ready, sends a test call (the demo
action), accepts it and types notes, kills site A and captures each stage once the app shows it
(waits are on conditions, with deadlines).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import qasync
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from .. import credentials
from ..demo import DemoServers
from ..gui_gc import GuiThreadCollector
from .controller import DesktopController
from .looks import apply_look
from .settings import DesktopSettings


async def _until(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _save(widget, path: Path) -> None:
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    print(f"wrote {path}", flush=True)


async def _scenario(controller: DesktopController, servers: DemoServers, out: Path) -> None:
    login, main = controller.login_window, controller.main_window
    toast, panel = main.offer_toast, main.interactions
    send, demo_menu = main.demo_send_action, main.demo_menu
    assert send is not None and demo_menu is not None  # main() attached the demo servers first
    await _until(login.isVisible, "the login window")
    _save(login, out / "login.png")
    QTest.mouseClick(login.login_button, Qt.MouseButton.LeftButton)
    await _until(lambda: main.connections.role_of("B") == "secondary, standby", "login on A with B standby")
    QTest.mouseClick(main.ready_button, Qt.MouseButton.LeftButton)
    await _until(lambda: main.state_label.text() == "Ready", "Ready")
    send.trigger()  # what a newcomer clicks: a call from the shipped carrier
    await _until(lambda: toast.isVisible() and toast.countdown_label.text().startswith("Answer within"),
                 "the offer toast")
    _save(main, out / "offer.png")
    QTest.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    await _until(lambda: panel.detail.isVisible() and panel.disposition_combo.count() > 0, "the call in hand")
    QTest.keyClicks(panel.notes_edit, "Asked about the last invoice; wants a copy by email.")
    await _until(lambda: main.time_label.text() >= "00:03", "three seconds on the call")
    _save(main, out / "main.png")
    apply_look("dark", 0)  # the same call in the dark theme (Settings → Theme)
    await _until(lambda: main.palette().window().color().lightness() < 128, "the dark theme")
    _save(main, out / "main-dark.png")
    apply_look("system", 0)
    await _until(lambda: main.palette().window().color().lightness() >= 128, "the system's theme again")
    next(a for a in demo_menu.actions() if a.text() == "Simulate site A failure").trigger()
    await _until(lambda: main.banner.headline.text().startswith("Moved to site B")
                 and main.connections.role_of("B") == "primary, logged in"
                 and main.connections.role_of("A") in ("reconnecting", "down, retrying"), "the failover to site B")
    main.tabs.setCurrentWidget(main.connections)  # B is now primary, A is being retried
    _save(main, out / "failover.png")
    controller.bridge.logout()
    await _until(lambda: controller.bridge.snapshot() is None, "the logout")
    current = asyncio.current_task()
    await _until(lambda: all(t.done() for t in asyncio.all_tasks() if t is not current), "links to close")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0] if argv else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    GuiThreadCollector(app).start()  # the demo's output pumps run Python in other threads
    app.setOrganizationName("AgentDesktopScreenshots")
    app.setApplicationName("agent-desktop")
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    servers = DemoServers()
    servers.start()
    controller = None
    try:
        store = QSettings()
        store.clear()  # no remembered geometry or agent: the first-run look
        controller = DesktopController(servers.desktop_settings(DesktopSettings(sites=())), store,
                                       keyring_reason=credentials.keyring_unavailable_reason())
        servers.attach(controller)
        controller.login_window.status_label.setText("")
        controller.show()
        with loop:
            loop.run_until_complete(_scenario(controller, servers, out))
        return 0
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        if controller is not None:
            controller.shutdown()
        servers.stop()


if __name__ == "__main__":
    sys.exit(main())
