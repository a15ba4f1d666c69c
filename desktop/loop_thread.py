"""An asyncio event loop on its own thread: where the applications' network runs, off the GUI thread.

The Qt thread renders and takes the user's clicks; a modal dialog, a keyring prompt, a slow paint
or a long Python call can block it for seconds. Heartbeats, liveness timers and the reading of
frames must not wait for it (a blocked GUI thread once logged the agent out and failed it over), so
the session core, its links and the supervisor's reporting links live on this thread's loop
(docs/architecture.md, "Threads" and pitfalls). Other threads talk to it only through ``call``
(``loop.call_soon_threadsafe``) and ``submit`` (``asyncio.run_coroutine_threadsafe``). No Qt here:
what goes back to the GUI thread goes through a queued Qt signal (``desktop.gui_calls``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger("desktop.loop")

T = TypeVar("T")

DRAIN_S = 1.0  # closing links get this long to finish their close handshake at stop()


class LoopThread:
    """One daemon thread running one asyncio loop until ``stop``."""

    def __init__(self, name: str):
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> LoopThread:
        """Start the thread and return once its loop runs (idempotent)."""
        if self._thread is not None:
            return self
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        self._started.wait()
        return self

    def _run(self) -> None:
        loop = self.loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        loop.call_soon(self._started.set)
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    def in_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop's thread, soon, in the order of calls. Dropped once stopped."""
        loop = self.loop
        if loop is None or loop.is_closed():
            log.debug("%s: stopped; dropped a call to %r", self.name, fn)
            return
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed between the check and the call
            log.debug("%s: stopped; dropped a call to %r", self.name, fn)

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coroutine`` on the loop; its result (or exception) in a thread-safe future."""
        loop = self.loop
        if loop is None or loop.is_closed():
            coroutine.close()
            failed: concurrent.futures.Future[T] = concurrent.futures.Future()
            failed.set_exception(RuntimeError(f"{self.name} is not running"))
            return failed
        return asyncio.run_coroutine_threadsafe(coroutine, loop)

    def stop(self, before: Callable[[], Any] | None = None, timeout: float = 3.0) -> None:
        """Run ``before()`` on the loop (e.g. close the links), give the tasks it leaves ``DRAIN_S``
        to finish (then cancel them: a coroutine left pending would be torn down by the garbage
        collector later, on whatever thread), stop the loop and join the thread."""
        thread, loop = self._thread, self.loop
        if thread is None or loop is None or not thread.is_alive():
            return

        async def drain() -> None:
            if before is not None:
                try:
                    before()
                except Exception:  # the links still get closed below
                    log.exception("%s: closing failed", self.name)
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
            if pending:
                _, late = await asyncio.wait(pending, timeout=DRAIN_S)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late, timeout=DRAIN_S)

        done = self.submit(drain())
        try:
            done.result(timeout)
        except Exception as exc:  # a hung close must not keep the application from quitting
            log.warning("%s: closing did not finish cleanly (%r)", self.name, exc)
        self.call(loop.stop)
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s: the network thread did not end within %.1f s", self.name, timeout)
