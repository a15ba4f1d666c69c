"""The two ways work crosses to and from the GUI thread.

``GuiCalls``: a call made on any thread (the network thread, a worker) runs on the GUI thread, in
order, through a queued Qt signal: the only Qt call another thread makes is that signal's emit,
which Qt makes thread-safe. While the GUI thread is blocked the calls wait in Qt's queue and run
when it is free again, in the order they were made.

``Chores``: blocking calls that must never run on the GUI thread (the keyring, which can wait on
the user to unlock a collection, or on D-Bus; file I/O) run one at a time on a worker thread, in
the order they were asked for; ``then(result)`` runs on the GUI thread. A daemon thread, so a
keyring prompt nobody answers cannot keep the application from quitting.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

log = logging.getLogger("desktop.gui_calls")


class GuiCalls(QObject):
    """Calls from any thread, run on the thread this object lives in (create it on the GUI thread)."""

    _posted = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._posted.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def post(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` for the GUI thread (from any thread, the GUI thread included)."""
        self._posted.emit((fn, args))

    def _run(self, call: tuple[Callable[..., Any], tuple[Any, ...]]) -> None:
        fn, args = call
        fn(*args)


_STOP = object()


class Chores:
    """One worker thread for blocking calls; results handed back on the GUI thread."""

    def __init__(self, gui: GuiCalls, name: str = "desktop-chores"):
        self.gui = gui
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[..., Any], *args: Any, then: Callable[[Any], Any] | None = None) -> None:
        """``fn(*args)`` on the worker thread; ``then(result)`` on the GUI thread if given. An
        exception is logged and ``then`` is not called (wrap ``fn`` to report it to the user)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
        self._queue.put((fn, args, then))

    def _work(self) -> None:
        while (job := self._queue.get()) is not _STOP:
            fn, args, then = job
            del job
            try:
                result = fn(*args)
            except Exception:
                log.exception("%s: %r failed", self.name, fn)
            else:
                if then is not None:
                    self.gui.post(then, result)
            del fn, args, then  # the GUI thread keeps what it needs: nothing is freed here last

    def close(self, timeout: float = 2.0) -> bool:
        """Let the chores already asked for finish (up to ``timeout``); True when they did."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s: a blocking call (a keyring prompt?) is still running; not waiting for it", self.name)
            return False
        return True
