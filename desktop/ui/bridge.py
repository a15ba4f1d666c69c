"""Runs the session core on the qasync loop and hands its events to Qt as a signal.

The bridge owns one AgentSession + SessionRunner per login attempt chain: a refused login keeps
the session (its links stay open, the user retries); a logged-out session is over, so the next
login builds a fresh one. Widgets never see sockets or protocol messages, only core events.
"""

from __future__ import annotations

import random

from PySide6.QtCore import QObject, Signal

from ..core import events as ev
from ..core.config import SessionConfig
from ..core.session import AgentSession
from ..net.runner import SessionRunner


class SessionBridge(QObject):
    """Qt face of the core: methods for the agent's intents, ``event`` for everything the core says."""

    # Shadows QObject.event(QEvent) for Python callers only: Qt's event dispatch never calls a signal
    # (checked), and tests/ connect to this name, so it stays until they can follow a rename.
    event = Signal(object)  # type: ignore[assignment]

    def __init__(self, parent: QObject | None = None, ca_file: str | None = None):
        super().__init__(parent)
        self.ca_file = ca_file
        self.session: AgentSession | None = None
        self.runner: SessionRunner | None = None
        self.config: SessionConfig | None = None

    def login(self, config: SessionConfig, agent_id: str, password: str, place: str | None = None,
              initial_state: ev.StateIntent | None = None) -> None:
        """Log in (needs the asyncio loop running). Reuses an idle session with the same settings."""
        session, runner = self.session, self.runner  # set and cleared together
        if session is None or runner is None or self.config != config or session.snapshot().status != "idle":
            self.shutdown()
            self.config = config
            session = self.session = AgentSession(config, rng=random.Random())
            runner = self.runner = SessionRunner(session, on_event=self.event.emit, ca_file=self.ca_file)
        runner.feed(session.login, agent_id, password, place=place, initial_state=initial_state)

    def _feed(self, name: str, *args, **kwargs) -> None:
        if self.session is not None and self.runner is not None:
            self.runner.feed(getattr(self.session, name), *args, **kwargs)

    def set_ready(self) -> None:
        self._feed("set_ready")

    def set_not_ready(self, reason: str) -> None:
        self._feed("set_not_ready", reason)

    def set_after_call_work(self) -> None:
        self._feed("set_after_call_work")

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

    def snapshot(self) -> ev.SessionSnapshot | None:
        return self.session.snapshot() if self.session is not None else None

    def shutdown(self) -> None:
        """Close every link and timer without a logout (the app is quitting or starting over)."""
        if self.runner is not None:
            # Frames already on the wire are still fed to the core after runner.shutdown(); nothing
            # the core says about a session we abandoned may reach the windows.
            self.runner.on_event = lambda event: None
            self.runner.shutdown()
        self.session = self.runner = None
