"""The real agent desktop, driven headless for ``bench/stall.py``: it logs in, then blocks its GUI
thread on command.

Runs ``agent-desktop`` itself (``desktop.app.main``, its threading whatever it is) with the IT
settings file given, and takes over the one hook the app offers benchmarks: ``probe.install``,
called with the controller once the login window exists (see desktop/ui/probe.py). Through it this
script fills the login window and clicks "Log in", prints every core event the session bridge
emits as a JSON line (as agent-cli does, with ``t`` on the monotonic clock shared by the machine's
processes), and reads commands on stdin:

- ``block N``: a slot on the GUI thread sleeps N seconds (the window frozen, as by a modal keyring
  prompt or a slow paint); prints ``BlockStarted`` and ``BlockEnded``.
- ``report``: prints ``Report`` with what the window shows: which window is visible and the
  failover banner's model (visible, kind, phase, summary).
- ``quit``: logs out and quits, as closing the window does.

    AGENT_PASSWORD=... python bench/desktop_block.py --settings SITES.toml --agent ID
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def install_driver(agent_id: str, password: str) -> None:
    """Replace the app's benchmark hook with this driver (before the app starts)."""
    from PySide6.QtCore import QObject, QTimer, Signal, Slot

    from desktop.agent_cli import event_line, json_line
    from desktop.ui import probe

    class Driver(QObject):
        block = Signal(float)
        report = Signal()
        quit = Signal()

        def __init__(self, controller):
            super().__init__(controller)  # lives on the GUI thread: queued slots run there
            self.controller = controller
            self.block.connect(self.on_block)
            self.report.connect(self.on_report)
            self.quit.connect(controller.logout_and_quit)

        @Slot(float)
        def on_block(self, seconds: float) -> None:
            say(json_line("BlockStarted", seconds=seconds))
            time.sleep(seconds)  # the point: the GUI thread does nothing else meanwhile
            say(json_line("BlockEnded", seconds=seconds))

        @Slot()
        def on_report(self) -> None:
            c = self.controller
            banner = getattr(c, "banner", None)
            say(json_line(
                "Report",
                main_visible=c.main_window.isVisible(), login_visible=c.login_window.isVisible(),
                banner=None if banner is None else {k: getattr(banner, k, None)
                                                    for k in ("visible", "kind", "phase", "summary")}))

    def read_commands(driver: Driver) -> None:
        for line in sys.stdin:
            word, _, rest = line.strip().partition(" ")
            if word == "block":
                driver.block.emit(float(rest))
            elif word == "report":
                driver.report.emit()
            elif word == "quit":
                driver.quit.emit()
                return
        driver.quit.emit()  # stdin closed: the bench is gone

    def install(controller) -> None:
        driver = Driver(controller)
        bridge = getattr(controller, "bridge", None)
        event_signal = getattr(bridge, "event", None)
        if event_signal is not None:  # the session's events, for the bench's log (not needed to block)
            event_signal.connect(lambda event: say(event_line(event)))
        controller.fill_login(agent_id, password, "bench")
        QTimer.singleShot(0, controller.login_window.login_button.click)
        threading.Thread(target=read_commands, args=(driver,), daemon=True).start()
        say(json_line("DriverInstalled"))

    probe.install = install


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", required=True, help="IT settings TOML with the sites ([[site]] name/url)")
    parser.add_argument("--agent", required=True)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    install_driver(args.agent, os.environ.get("AGENT_PASSWORD", "demo"))
    from desktop.app import main as desktop_main

    return desktop_main(["--settings", args.settings])


if __name__ == "__main__":
    sys.exit(main())
