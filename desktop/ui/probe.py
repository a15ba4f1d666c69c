"""Start-up and memory probe for ``bench/desktop_start.py`` (``AGENT_DESKTOP_PROBE``).

``shown``: print ``probe shown <epoch seconds>`` when the login window first paints, then quit.
``login``: also log in with the filled-in fields and, once the standby is announced, print
``probe logged_in <epoch seconds> rss_kb=<resident KiB>`` and quit. Off unless the variable is set.
"""

from __future__ import annotations

import os
import time

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

PROBE_ENV = "AGENT_DESKTOP_PROBE"
PASSWORD_ENV = "AGENT_DESKTOP_BENCH_PASSWORD"


def resident_kb() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class _FirstPaint(QObject):
    def __init__(self, controller, mode: str):
        super().__init__(controller)
        self.controller, self.mode, self.done = controller, mode, False

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and not self.done:
            self.done = True
            print(f"probe shown {time.time():.6f}", flush=True)
            if self.mode == "login":
                QTimer.singleShot(0, self.controller.login_window.login_button.click)
                self.controller.bridge.event.connect(self._check, Qt.ConnectionType.QueuedConnection)
            else:
                QTimer.singleShot(0, QApplication.quit)
        return False

    def _check(self, _event) -> None:
        snapshot = self.controller.bridge.snapshot()
        if snapshot and snapshot.primary and all(link.role in ("primary", "secondary") for link in snapshot.links):
            self.controller.bridge.event.disconnect(self._check)
            print(f"probe logged_in {time.time():.6f} rss_kb={resident_kb()}", flush=True)
            self.controller.logout_and_quit()


def install(controller) -> None:
    mode = os.environ.get(PROBE_ENV)
    if mode == "login" and PASSWORD_ENV in os.environ:  # else what is filled in (--demo fills its agent)
        controller.login_window.password_edit.setText(os.environ[PASSWORD_ENV])
    if mode in ("shown", "login"):
        controller.login_window.installEventFilter(_FirstPaint(controller, mode))
