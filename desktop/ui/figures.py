"""The agent's own figures, computed without Qt: handled today, average handle time, time per
handling state today, and the waiting count and longest wait of the agent's queues.

The desktop counts the first three itself, from what its session core says (every Done the
server confirmed, and the handling state at each 4 Hz refresh), so a failover changes nothing in
them: the session, and this object, carry on. They start at the login and start again at the next
login and at local midnight. The queue figures are the server's (``EventAgentQueues``, asked for at
every login): after a failover they are the new primary's own, which count since that server
started and for that server only (docs/protocol.md), and while no server holds the login the last
ones stay, marked as such.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core import events as ev
from .i18n import QT_TRANSLATE_NOOP, translate
from .presenter import format_duration

# Handling states (interaction_presenter.Handling.kind) in the order the panel lists them.
STATE_ORDER = ("ready", "ringing", "busy", "after_call_work", "not_ready")
STATE_WORDS = {
    "ready": QT_TRANSLATE_NOOP("Figures", "Ready"),
    "ringing": QT_TRANSLATE_NOOP("Figures", "Ringing"),
    "busy": QT_TRANSLATE_NOOP("Figures", "Talking / busy"),
    "after_call_work": QT_TRANSLATE_NOOP("Figures", "After Call Work"),
    "not_ready": QT_TRANSLATE_NOOP("Figures", "Not Ready"),
}
MAX_STEP_MS = 5 * 60_000  # a longer gap between two refreshes (a suspended laptop) is not counted


def _t(text: str) -> str:
    return translate("Figures", text)


@dataclass
class AgentFigures:
    """Counts for one login; ``day`` is the local date they belong to (the caller passes it)."""

    day: str = ""
    handled: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # handling state -> seconds today
    _kind: str | None = None
    _at_ms: int | None = None

    def start(self, day: str) -> None:
        """A new login, or a new day: everything from zero."""
        self.day, self.handled, self.seconds = day, 0, {}
        self._kind = self._at_ms = None

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.InteractionEnded) and event.reason == "completed":
            self.handled += 1

    def tick(self, kind: str, wall_ms: int, day: str) -> None:
        """The handling state at ``wall_ms`` (each refresh): the time since the last tick counts
        for the state shown then. A new ``day`` starts the figures again."""
        if day != self.day:
            self.start(day)
        if self._kind is not None and self._at_ms is not None and self._kind != "logged_out":
            step = wall_ms - self._at_ms
            if 0 < step <= MAX_STEP_MS:
                self.seconds[self._kind] = self.seconds.get(self._kind, 0.0) + step / 1000
        self._kind, self._at_ms = kind, wall_ms

    def average_handle_seconds(self) -> float | None:
        """Talk (in hand) plus After Call Work time, per interaction handled; None before the first."""
        if not self.handled:
            return None
        return (self.seconds.get("busy", 0.0) + self.seconds.get("after_call_work", 0.0)) / self.handled

    # ------------------------------------------------------------------ words

    def handled_text(self) -> str:
        return str(self.handled)

    def average_text(self) -> str:
        average = self.average_handle_seconds()
        return format_duration(average) if average is not None else "–"

    def state_rows(self) -> list[tuple[str, str]]:
        """(state, time today) for every state the agent was in today, in STATE_ORDER."""
        return [(_t(STATE_WORDS[kind]), format_duration(self.seconds[kind]))
                for kind in STATE_ORDER if self.seconds.get(kind, 0.0) >= 1]


@dataclass(frozen=True)
class QueueRow:
    queue: str
    waiting: str
    longest: str
    busy: bool  # someone waits: shown in bold


def queue_rows(queues: Iterable) -> list[QueueRow]:
    """One row per queue of the agent (QueueStatistics): waiting now and the longest wait."""
    return [QueueRow(q.queue, str(q.waiting), format_duration(q.longest_wait_ms / 1000) if q.waiting else "–",
                     q.waiting > 0) for q in queues]


def queues_note(snapshot: ev.SessionSnapshot | None) -> str:
    """Under the queue table: whose figures they are, or why none are shown."""
    if snapshot is None or not snapshot.queues_from:
        return translate("Figures", "No queue figures yet.")
    source = snapshot.queues_from
    if snapshot.primary is None:
        return translate("Figures", "Last figures from site {0}; no server holds your login right now.").format(source)
    if snapshot.primary != source:
        return translate("Figures", "Figures from site {0}; waiting for site {1}'s.").format(source, snapshot.primary)
    return translate("Figures", "Figures from site {0}, counted since that server started.").format(source)
