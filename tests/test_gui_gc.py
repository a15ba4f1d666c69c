"""Garbage holding Qt objects is freed on the GUI thread, even while another thread allocates."""

from __future__ import annotations

import gc
import threading

import pytest

from desktop.gui_gc import GuiThreadCollector


@pytest.fixture(autouse=True)
def automatic_collection():
    """Each test starts from the interpreter's default (the suite's own collector may be running)."""
    was_enabled = gc.isenabled()
    gc.collect()  # on this thread: what earlier Qt tests left must not be freed by this file's worker
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


class Finalized:
    """One half of a reference cycle; records the thread that freed it."""

    def __init__(self, freed_on: list[str]):
        self.freed_on = freed_on
        self.partner: Finalized | None = None

    def __del__(self):
        self.freed_on.append(threading.current_thread().name)


def drop_cycle(freed_on: list[str]) -> None:
    a, b = Finalized(freed_on), Finalized(freed_on)
    a.partner, b.partner = b, a


def allocate_in_a_thread() -> list:
    """Live container allocations (what makes the interpreter collect), kept past the thread's end."""
    kept: list = []
    worker = threading.Thread(target=lambda: kept.extend([] for _ in range(50_000)), name="worker")
    worker.start()
    worker.join()
    return kept


def test_cycles_are_freed_on_the_gui_thread_while_another_thread_allocates(qapp, qtbot):
    collector = GuiThreadCollector(interval_ms=20).start()
    try:
        assert not gc.isenabled()
        freed_on: list[str] = []
        drop_cycle(freed_on)
        kept = allocate_in_a_thread()
        assert freed_on == [], "collected in the worker thread"
        # The worker pushed the counts past the thresholds: the GUI thread's timer collects.
        qtbot.waitUntil(lambda: len(freed_on) == 2, timeout=5000)
        assert set(freed_on) == {threading.main_thread().name}
        del kept
    finally:
        collector.stop()
    assert gc.isenabled()


def test_without_it_the_other_thread_frees_them():
    """The failure the collector exists for (this one needs no Qt to happen)."""
    freed_on: list[str] = []
    drop_cycle(freed_on)
    allocate_in_a_thread()
    assert "worker" in freed_on


def test_stop_frees_what_is_left_and_restores_automatic_collection(qapp):
    collector = GuiThreadCollector(interval_ms=60_000).start()
    freed_on: list[str] = []
    drop_cycle(freed_on)
    collector.stop()
    assert freed_on and gc.isenabled()
