"""Runs the session core on the network thread and hands its events to Qt as a signal.

Threads (docs/architecture.md, "Threads"): the AgentSession, its SessionRunner, the websockets
links and the liveness timers live on the network thread's own asyncio loop
(``desktop.loop_thread``), so a blocked GUI thread (a modal dialog, a keyring prompt, a slow paint)
delays no heartbeat. The Qt thread never calls the core: an intent is a call queued to the network
thread; what the core says comes back, per input it was fed, as (its events, its snapshot after
that input), queued to the GUI thread, where ``event`` is emitted for each event, in order, and
``snapshot()`` returns the snapshot that came with them. A blocked GUI thread catches up when it is
free: everything the core said meanwhile is delivered in order.

The bridge owns one AgentSession + SessionRunner per login attempt chain: a refused login keeps
the session (its links stay open, the user retries); a logged-out session is over, so the next
login builds a fresh one. Widgets never see sockets or protocol messages, only core events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal

from ..core import events as ev
from ..core.config import SessionConfig
from ..core.session import AgentSession
from ..gui_calls import GuiCalls
from ..loop_thread import LoopThread
from ..net.runner import SessionRunner

# What one input to the core produced: the generation (login chain) it belongs to, its events, and
# the core's snapshot once it was handled.
Delivery = Callable[[int, tuple[Any, ...], ev.SessionSnapshot], None]


class _ThreadRunner(SessionRunner):
    """A SessionRunner on the network thread that hands the events of each batch of core outputs it
    executes (one per input fed to the core), with the snapshot after them, to ``deliver`` (which
    queues them for the GUI thread). Lives and dies on the network thread."""

    def __init__(self, session: AgentSession, generation: int, deliver: Delivery, ca_file: str | None):
        self._said: list[Any] = []
        super().__init__(session, on_event=self._said.append, ca_file=ca_file)
        self.generation = generation
        self.deliver: Delivery | None = deliver

    def execute(self, outputs) -> None:
        try:
            super().execute(outputs)
        finally:
            said, self._said[:] = tuple(self._said), []
            if self.deliver is not None:
                self.deliver(self.generation, said, self.session.snapshot())


class _NetSide:
    """What the network thread holds: the runner of the current generation (only touched there)."""

    def __init__(self, deliver: Delivery, ca_file: str | None):
        self.deliver = deliver
        self.ca_file = ca_file
        self.runner: _ThreadRunner | None = None

    def begin(self, generation: int, session: AgentSession) -> None:
        self.end()
        self.runner = _ThreadRunner(session, generation, self.deliver, self.ca_file)

    def feed(self, generation: int, name: str, args: tuple, kwargs: dict) -> None:
        runner = self.runner
        if runner is not None and runner.generation == generation:
            runner.feed(getattr(runner.session, name), *args, **kwargs)

    def end(self, generation: int | None = None) -> None:
        """Close every link and timer without a logout. Frames already on the wire are still fed to
        the core afterwards; nothing the core says about an abandoned session reaches the windows."""
        runner = self.runner
        if runner is None or (generation is not None and runner.generation != generation):
            return
        self.runner = None
        runner.deliver = None
        runner.shutdown()


class SessionBridge(QObject):
    """Qt face of the core: methods for the agent's intents, ``event`` for everything the core says.

    ``event`` is emitted on the GUI thread (queued from the network thread), never from inside an
    intent method: an intent returns at once and its effects arrive as events."""

    # Shadows QObject.event(QEvent) for Python callers only: Qt's event dispatch never calls a signal
    # (checked), and tests/ connect to this name, so it stays until they can follow a rename.
    event = Signal(object)  # type: ignore[assignment]

    def __init__(self, parent: QObject | None = None, ca_file: str | None = None):
        super().__init__(parent)
        self.ca_file = ca_file
        self.session: AgentSession | None = None  # the current one (created here, driven on the network thread)
        self.config: SessionConfig | None = None
        self._generation = 0
        self._snapshot: ev.SessionSnapshot | None = None
        self._gui = GuiCalls(self)
        self._net: LoopThread | None = None  # started at the first login: a cold start does not wait for it
        self._side = _NetSide(self._queue_delivery, ca_file)

    # ------------------------------------------------------------------ threads

    def _network(self) -> LoopThread:
        if self._net is None:
            self._net = LoopThread("desktop-network").start()
        return self._net

    def _queue_delivery(self, generation: int, said: tuple[Any, ...], snapshot: ev.SessionSnapshot) -> None:
        """On the network thread: hand what the core said to the GUI thread."""
        self._gui.post(self._deliver, generation, said, snapshot)

    def _deliver(self, generation: int, said: tuple[Any, ...], snapshot: ev.SessionSnapshot) -> None:
        """On the GUI thread, in the order the core said it."""
        if generation != self._generation:
            return  # a session given up since (shut down, or replaced by a new login)
        self._snapshot = snapshot
        for event in said:
            self.event.emit(event)
            if generation != self._generation:
                return  # a slot shut the session down (e.g. on LoggedOut): the rest is moot

    # ------------------------------------------------------------------ intents

    def login(self, config: SessionConfig, agent_id: str, password: str, place: str | None = None,
              initial_state: ev.StateIntent | None = None) -> None:
        """Log in. Reuses an idle session with the same settings."""
        snapshot = self._snapshot
        if self.session is None or self.config != config or snapshot is None or snapshot.status != "idle":
            self.shutdown()
            self.config = config
            self.session = AgentSession(config, rng=random.Random())
            self._network().call(self._side.begin, self._generation, self.session)
        self._feed("login", agent_id, password, place=place, initial_state=initial_state)

    def _feed(self, name: str, *args, **kwargs) -> None:
        if self.session is not None and self._net is not None:
            self._net.call(self._side.feed, self._generation, name, args, kwargs)

    def set_ready(self) -> None:
        self._feed("set_ready")

    def set_not_ready(self, reason: str) -> None:
        self._feed("set_not_ready", reason)

    def set_after_call_work(self) -> None:
        self._feed("set_after_call_work")

    def extend_after_call_work(self) -> None:
        self._feed("extend_after_call_work")

    def logout(self) -> None:
        self._feed("logout")

    def accept(self, interaction_id: str) -> None:
        self._feed("accept", interaction_id)

    def reject(self, interaction_id: str) -> None:
        self._feed("reject", interaction_id)

    def update_notes(self, interaction_id: str, notes: str) -> None:
        self._feed("update_notes", interaction_id, notes)

    def complete(self, interaction_id: str, disposition: str, notes: str | None = None) -> None:
        self._feed("complete", interaction_id, disposition, notes=notes)

    def send_chat(self, interaction_id: str, text: str) -> None:
        self._feed("send_chat", interaction_id, text)

    def update_draft(self, interaction_id: str, draft: str) -> None:
        self._feed("update_draft", interaction_id, draft)
    def hold(self, interaction_id: str, on_hold: bool) -> None:
        self._feed("hold", interaction_id, on_hold)

    def transfer(self, interaction_id: str, kind: str, target_kind: str, target: str) -> None:
        """``target_kind``: "queue" or "agent"."""
        where = {"to_queue": target} if target_kind == "queue" else {"to_agent": target}
        self._feed("transfer", interaction_id, kind, **where)

    def end_transfer(self, interaction_id: str, complete: bool) -> None:
        self._feed("end_transfer", interaction_id, complete)

    def request_transfer_targets(self) -> None:
        """Answered by a ``TransferTargetsListed`` event (the transfer picker's list)."""
        self._feed("request_transfer_targets")

    @property
    def runner(self) -> SessionRunner | None:
        """The current session's runner, for diagnostics only: it lives on the network thread, so
        the GUI thread may look at it but must never call it (use the intent methods)."""
        return self._side.runner

    def snapshot(self) -> ev.SessionSnapshot | None:
        """The core's snapshot as of the events delivered so far (None without a session, or
        before the core has said anything)."""
        return self._snapshot if self.session is not None else None

    # ------------------------------------------------------------------ ending

    def shutdown(self) -> None:
        """Close every link and timer without a logout (the user logged out, or starts over)."""
        if self.session is not None and self._net is not None:
            self._net.call(self._side.end, self._generation)
        self._generation += 1
        self.session = self.config = None
        self._snapshot = None

    def close(self) -> None:
        """The application quits: end the session as ``shutdown`` does, let the links finish
        closing, and join the network thread."""
        self.shutdown()
        if self._net is not None:
            net, self._net = self._net, None
            net.stop(before=self._side.end)
