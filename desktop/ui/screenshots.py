"""Render the README screenshots from the real app, as a newcomer to ``--demo`` sees it: the login
window, an offer toast, the main window with a call in hand and on hold, the transfer picker, the
consulted agent's offer with the first agent's notes, a chat with its transcript and reply box, the
supervisor view (thresholds colouring long times; the per-queue view) and the failover banner. The
states are shown in the light and the dark theme (``NAME.png`` and ``NAME-dark.png``).

Run by ``.ci/screenshots`` under Xvfb: ``python -m desktop.ui.screenshots OUTDIR``. It starts the
demo site pair, logs the demo agent (1001) in through the window at site A and a second desktop
(1002) at site B, a few headless agents (``agent-cli``: Not Ready, After Call Work, Ready) and the
supervisor view with thresholds of seconds (``--thresholds``, so the picture needs no 15-minute
wait). The demo agent goes Ready, takes a test call (the demo action), types notes, holds and
resumes it, transfers it to 1002 consulting first, hands it over once 1002 accepted, takes a test
chat and answers the customer; site A is killed last. Each stage is captured once the app shows it
(waits are on conditions, with deadlines).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import qasync
from PySide6.QtCore import QPoint, QSettings, Qt
from PySide6.QtGui import QPainter
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QToolBar, QWidget

from .. import credentials
from ..demo import DEMO_PASSWORD, DemoServers
from ..gui_gc import GuiThreadCollector
from .controller import DesktopController
from .looks import apply_look
from .settings import DesktopSettings

# The supervisor's thresholds for the picture (seconds): the shipped ones are minutes.
THRESHOLDS = "not_ready=20,after_call_work=20,busy=15"
# Headless agents for the supervisor's table: (agent, preferred site, initial state).
EXTRA_AGENTS = (("1003", "A", "not_ready:lunch"), ("1004", "B", "acw"), ("1008", "A", "ready"))
SUPERVISOR_SIZE = (1280, 540)


async def _until(predicate, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"screenshots: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _save(widget: QWidget, path: Path, popup: QWidget | None = None) -> None:
    """The widget as rendered; with ``popup`` (an open drop-down list, a window of its own) drawn
    over it where it shows on the screen."""
    picture = widget.grab()
    if popup is not None and popup.isVisible():
        painter = QPainter(picture)
        painter.drawPixmap(popup.mapToGlobal(QPoint(0, 0)) - widget.mapToGlobal(QPoint(0, 0)), popup.grab())
        painter.end()
    if not picture.save(str(path), "PNG", 0):  # quality 0: the most zlib compression
        raise OSError(f"could not write {path}")
    print(f"wrote {path}", flush=True)


def _dark(widget: QWidget) -> bool:
    return widget.palette().window().color().lightness() < 128


async def _both_looks(widget: QWidget, out: Path, name: str, popup: QWidget | None = None) -> None:
    """NAME.png in the system's (light) look, then NAME-dark.png (Settings → Theme), then light again."""
    _save(widget, out / f"{name}.png", popup)
    apply_look("dark", 0)
    await _until(lambda: _dark(widget) and (popup is None or _dark(popup)), "the dark theme")
    _save(widget, out / f"{name}-dark.png", popup)
    apply_look("system", 0)
    await _until(lambda: not _dark(widget), "the system's theme again")


def _extra_agent(servers: DemoServers, agent: str, site: str, state: str) -> subprocess.Popen:
    urls = ",".join(servers.sites[name].url for name in sorted(servers.sites, key=lambda n: n != site))
    return subprocess.Popen([sys.executable, "-m", "desktop.agent_cli", "--agent", agent, "--servers", urls,
                             "--password-source", "env", "--state", state],
                            env={**os.environ, credentials.PASSWORD_ENV: DEMO_PASSWORD},
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _ready(main) -> None:
    QTest.mouseClick(main.ready_button, Qt.MouseButton.LeftButton)
    await _until(lambda: main.state_label.text() == "Ready", "Ready")


async def _transfer(first, target: str, out: Path) -> None:
    """Transfer… → in the picker's list of the center, agent ``target`` (at site B) with the keyboard,
    consult first (the picker captured as filled in), Transfer now. The list comes from site A's
    agent pool: until it has heard that the agent is available, the picker is closed and opened
    again, as an agent would."""
    controls = first.interactions.controls
    picker = controls.picker
    wanted = f"{target} Bruno Keller · site B · available"
    for _ in range(40):
        controls.error_label.hide()
        picker.items = []
        QTest.mouseClick(controls.transfer_button, Qt.MouseButton.LeftButton)
        await _until(lambda: picker.isVisible() and bool(picker.items), "the transfer picker's list")
        rows = [picker.target_list.itemText(i) for i in range(picker.target_list.count())]
        if wanted not in rows:
            QTest.mouseClick(picker.close_button, Qt.MouseButton.LeftButton)
            await asyncio.sleep(0.2)  # a retry, as an agent would, while the pool catches up
            continue
        picker.target_list.setFocus()
        while picker.target_list.currentIndex() < rows.index(wanted):
            QTest.keyClick(picker.target_list, Qt.Key.Key_Down)
        radio = picker.kind_radios["consult"]
        QTest.mouseClick(radio, Qt.MouseButton.LeftButton, pos=QPoint(6, radio.height() // 2))
        if not (out / "transfer.png").exists():
            picker.target_list.showPopup()  # the list as the agent sees it open
            popup = picker.target_list.view().window()
            await _until(popup.isVisible, "the picker's list open")
            await _both_looks(first, out, "transfer", popup)
            picker.target_list.hidePopup()
        QTest.mouseClick(picker.go_button, Qt.MouseButton.LeftButton)
        await _until(lambda: controls.consult_row.isVisible() or controls.error_label.isVisible(),
                     "the transfer's answer")
        if controls.consult_row.isVisible():
            return
    raise TimeoutError(f"screenshots: agent {target} was never listed available for a transfer")


def _over_threshold(supervisor) -> set[str]:
    """Agents whose time the supervisor's table colours (what the supervisor sees)."""
    from desktop.supervisor.model import COL_TIME, OVER_THRESHOLD_BRUSH, AgentIdRole

    model = supervisor.model
    return {model.data(model.index(r, 0), AgentIdRole) for r in range(model.rowCount())
            if model.data(model.index(r, COL_TIME), Qt.ItemDataRole.BackgroundRole) == OVER_THRESHOLD_BRUSH}


async def _scenario(controller: DesktopController, second: DesktopController, servers: DemoServers,
                    supervisor_view, out: Path) -> None:
    login, main = controller.login_window, controller.main_window
    toast, panel = main.offer_toast, main.interactions
    controls = panel.controls
    send, demo_menu = main.demo_send_action, main.demo_menu
    assert send is not None and demo_menu is not None  # main() attached the demo servers first
    await _until(login.isVisible, "the login window")
    _save(login, out / "login.png")
    QTest.mouseClick(login.login_button, Qt.MouseButton.LeftButton)
    await _until(lambda: main.connections.role_of("B") == "secondary, standby", "login on A with B standby")
    other = second.main_window
    QTest.mouseClick(second.login_window.login_button, Qt.MouseButton.LeftButton)
    await _until(lambda: other.connections.role_of("B") == "primary, logged in", "the second agent's login on B")
    await _ready(main)
    send.trigger()  # what a newcomer clicks: a call from the shipped carrier
    await _until(lambda: toast.isVisible() and toast.countdown_label.text().startswith("Answer within"),
                 "the offer toast")
    _save(main, out / "offer.png")
    QTest.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    await _until(lambda: panel.detail.isVisible() and panel.disposition_combo.count() > 0, "the call in hand")
    QTest.keyClicks(panel.notes_edit, "Asked about the last invoice; wants a copy by email.")
    await _until(lambda: main.time_label.text() >= "00:03", "three seconds on the call")
    await _both_looks(main, out, "main")

    QTest.mouseClick(controls.hold_button, Qt.MouseButton.LeftButton)
    await _until(lambda: main.state_label.text() == "On hold – Voice call"
                 and controls.hold_label.text() >= "On hold 00:02", "two seconds on hold")
    await _both_looks(main, out, "hold")
    QTest.mouseClick(controls.hold_button, Qt.MouseButton.LeftButton)
    await _until(lambda: main.state_label.text() == "Talking – Voice call", "the call resumed")

    QTest.keyClicks(panel.notes_edit, " Account verified; needs a refund approved.")
    await _ready(other)
    for stale in ("transfer.png", "transfer-dark.png"):
        (out / stale).unlink(missing_ok=True)
    await _transfer(main, "1002", out)
    offer = other.offer_toast
    await _until(lambda: offer.isVisible() and "Notes:" in offer.customer_label.text(), "the consulted agent's offer")
    await _both_looks(other, out, "consult")
    QTest.mouseClick(offer.accept_button, Qt.MouseButton.LeftButton)
    await _until(controls.complete_button.isEnabled, "the consultation accepted")
    QTest.mouseClick(controls.complete_button, Qt.MouseButton.LeftButton)
    await _until(lambda: other.interactions.detail.isVisible() and not panel.detail.isVisible(),
                 "the call handed over to agent 1002")

    await _until(lambda: main.state_label.text() == "Ready", "the first agent Ready again", timeout=30)
    # The chat a few seconds after the hand-over, so the supervisor sees two talk times apart.
    await _until(lambda: other.time_label.text() >= "00:05", "five seconds of agent 1002 on the call")
    bar = main.findChild(QToolBar, "demoToolbar")
    assert bar is not None  # the demo actions are attached
    chat_action = next(a for a in bar.actions() if a.text() == "Send a test chat")
    chat_action.trigger()
    await _until(lambda: toast.isVisible() and toast.accept_button.isEnabled(), "the chat's offer")
    QTest.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    chat = panel.conversation
    await _until(lambda: chat.isVisible() and chat.transcript.count() >= 1, "the customer's first line")
    QTest.keyClicks(chat.reply, "Hello! I can see your order; let me check the delivery date.")
    QTest.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    await _until(lambda: chat.transcript.count() >= 3, "the customer's answer", timeout=20)
    await _both_looks(main, out, "chat")

    servers.send_test_interaction(queue="billing")  # nobody of billing is logged in: it waits
    window = supervisor_view.window
    await _until(lambda: {"1002", "1003", "1004"} <= _over_threshold(window),
                 "long Not Ready, After Call Work and talk times", timeout=40)
    await _until(lambda: any(window.queue_view.item(r, 0) is not None and window.queue_view.item(r, 0).text()
                             == "billing" for r in range(window.queue_view.rowCount())), "the billing queue")
    window.table.clearSelection()
    await _both_looks(window, out, "supervisor")
    window.views.setCurrentWidget(window.queue_view)
    await _both_looks(window, out, "queues")

    next(a for a in demo_menu.actions() if a.text() == "Simulate site A failure").trigger()
    await _until(lambda: main.banner.headline.text().startswith("Moved to site B")
                 and main.connections.role_of("B") == "primary, logged in"
                 and main.connections.role_of("A") in ("reconnecting", "down, retrying"), "the failover to site B")
    main.tabs.setCurrentWidget(main.connections)  # B is now primary, A is being retried
    _save(main, out / "failover.png")
    for desktop in (controller, second):
        desktop.bridge.logout()
    await _until(lambda: controller.bridge.snapshot() is None and second.bridge.snapshot() is None, "the logouts")
    await supervisor_view.stop()
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
    controller = second = None
    agents: list[subprocess.Popen] = []
    try:
        from ..supervisor_app import SupervisorView, parse_thresholds

        store = QSettings()
        store.clear()  # no remembered geometry or agent: the first-run look
        reason = credentials.keyring_unavailable_reason()
        controller = DesktopController(servers.desktop_settings(DesktopSettings(sites=())), store,
                                       keyring_reason=reason)
        servers.attach(controller)
        controller.login_window.status_label.setText("")
        second = DesktopController(servers.desktop_settings(DesktopSettings(sites=()), preferred="B"), store,
                                   keyring_reason=reason)
        second.fill_login("1002", DEMO_PASSWORD, "ext-2002")
        agents = [_extra_agent(servers, *extra) for extra in EXTRA_AGENTS]
        supervisor = SupervisorView(servers.endpoints(), "sup1", DEMO_PASSWORD,
                                    thresholds_ms=parse_thresholds(THRESHOLDS))
        supervisor.window.resize(*SUPERVISOR_SIZE)
        controller.show()
        second.login_window.show()
        supervisor.window.show()
        supervisor.start()
        with loop:
            loop.run_until_complete(_scenario(controller, second, servers, supervisor, out))
        return 0
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(10)
        for desktop in (controller, second):
            if desktop is not None:
                desktop.shutdown()
        servers.stop()


if __name__ == "__main__":
    sys.exit(main())
