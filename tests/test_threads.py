"""The two thread helpers the Qt applications are built on (docs/architecture.md, "Threads"): the
network thread's loop (``desktop.loop_thread``) and the crossings to and from the GUI thread
(``desktop.gui_calls``)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from desktop.gui_calls import Chores, GuiCalls
from desktop.loop_thread import LoopThread


@pytest.fixture
def net():
    thread = LoopThread("test-network").start()
    yield thread
    thread.stop()


def test_calls_run_on_the_loop_thread_in_order_and_coroutines_answer_across(net):
    seen: list[tuple[int, str]] = []
    for i in range(100):
        net.call(lambda i=i: seen.append((i, threading.current_thread().name)))

    async def answer() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert net.submit(answer()).result(5) == "test-network"  # after the calls queued before it
    assert seen == [(i, "test-network") for i in range(100)]


def test_stop_closes_then_lets_pending_tasks_finish_and_joins(net):
    closed: list[str] = []
    finished = threading.Event()
    answered = asyncio.Event()  # the peer's answer to the close; used on the loop thread only

    async def closing_handshake() -> None:
        await answered.wait()  # a close handshake in flight when the application quits
        finished.set()

    def close() -> None:
        closed.append(threading.current_thread().name)
        answered.set()  # the peer answers only once the close is sent: the task is still pending here

    net.call(lambda: asyncio.get_running_loop().create_task(closing_handshake()))
    net.stop(before=close)
    assert closed == ["test-network"]
    assert finished.is_set()
    assert not net.running
    net.call(lambda: closed.append("late"))  # dropped, not an error, once stopped
    with pytest.raises(RuntimeError):
        net.submit(asyncio.sleep(0)).result(1)
    assert closed == ["test-network"]


def test_stop_cancels_a_task_that_would_never_end():
    thread = LoopThread("test-hung").start()
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    thread.call(lambda: asyncio.get_running_loop().create_task(forever()))
    thread.stop()
    assert cancelled.is_set() and not thread.running


def test_chores_run_off_the_gui_thread_in_order_and_answer_on_it(qapp, qtbot):
    gui = GuiCalls()
    chores = Chores(gui, name="test-chores")
    ran: list[str] = []
    answers: list[tuple[int, str]] = []

    def chore(i: int) -> int:
        ran.append(threading.current_thread().name)
        return i

    for i in range(5):
        chores.run(chore, i, then=lambda i: answers.append((i, threading.current_thread().name)))
    qtbot.waitUntil(lambda: len(answers) == 5, timeout=5000)
    assert ran == ["test-chores"] * 5
    assert answers == [(i, threading.main_thread().name) for i in range(5)]
    assert chores.close()


def test_a_chore_that_hangs_does_not_hold_the_application(qapp):
    chores = Chores(GuiCalls(), name="test-hung-chore")
    release = threading.Event()
    chores.run(release.wait)  # a keyring prompt nobody answers
    assert chores.close(timeout=0.2) is False
    release.set()
