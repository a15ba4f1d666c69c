"""Python's cycle collector runs in whichever thread happens to allocate when a threshold is crossed.
Our Qt objects (windows, timers, qasync's socket notifiers) end up in reference cycles, and a
collection that frees one in a background thread (the demo's output pump, a test's reporting
watcher) makes Qt delete it off the GUI thread: a segfault, at a random moment. So the GUI thread
owns collection while the application runs: automatic collection is off and a timer on the GUI
thread collects when the interpreter's thresholds say so."""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

CHECK_INTERVAL_MS = 200  # often enough that memory behaves as with automatic collection


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_INTERVAL_MS):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._was_enabled = gc.isenabled()

    def start(self) -> GuiThreadCollector:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()
        return self

    def stop(self) -> None:
        """Collect everything left on this thread, then hand collection back to the interpreter."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()

    def collect_due(self) -> None:
        """As automatic collection picks: once the youngest generation is over its threshold, the
        oldest generation over its own (CPython's extra brake on full collections of a large heap
        is not visible from Python; this timer's pace bounds them instead)."""
        thresholds, counts = gc.get_threshold(), gc.get_count()
        if thresholds[0] and counts[0] > thresholds[0]:  # a threshold of 0 turns collection off
            gc.collect(max(gen for gen in range(3) if counts[gen] > thresholds[gen]))
