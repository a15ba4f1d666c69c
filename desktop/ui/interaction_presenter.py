"""Words and numbers for the interaction widgets: offer countdown, media labels, customer data,
After Call Work timer, event log rows. Qt-free and clock-free (callers pass ``wall_ms``), so every
text the agent reads is unit-tested without a window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..core import events as ev
from .presenter import LogRow, format_duration, state_icon, state_text, time_in_state

MEDIA_LABELS = {"voice": "Voice call", "chat": "Chat", "email": "Email"}
ENDED_REASONS = {
    "abandoned": "the customer hung up",
    "taken_elsewhere": "another agent took it",
    "withdrawn": "the server withdrew it",
    "not_adopted": "the new server did not take it over",
    "unknown_interaction": "the server does not know it",
    "logged_out": "you were logged out",
    "transferred": "you transferred it",
}
REVOKED_REASONS = {
    "timeout": "not answered in time",
    "abandoned": "the customer hung up",
    "taken_elsewhere": "another agent took it",
    "withdrawn": "the server withdrew it",
    "primary_lost": "its server was lost",
    "logged_out": "you were logged out",
}
CHOOSE_DISPOSITION = "Choose…"
DISPOSITION_REQUIRED = "Choose a disposition for this interaction first (Alt+S), then Done."
NOTES_DEBOUNCE_MS = 500  # notes are saved this long after typing stops (and on Done)


def media_label(media: str) -> str:
    return MEDIA_LABELS.get(media, media.capitalize() or "Interaction")


def media_icon(media: str) -> str:
    """Icon name under resources/icons (``media-voice``...); unknown media get the chat bubble."""
    return f"media-{media}" if media in MEDIA_LABELS else "media-chat"


def countdown_seconds(expires_ms: int, wall_ms: int) -> int:
    """Whole seconds left to answer, rounded up (shows 1 until the last millisecond), never below 0."""
    return max(0, -(-(expires_ms - wall_ms) // 1000))


def countdown_text(expires_ms: int, wall_ms: int) -> str:
    left = countdown_seconds(expires_ms, wall_ms)
    return f"Answer within {format_duration(left)}" if left else "Time is up"


def customer_name(interaction) -> str:
    customer = interaction.customer or {}
    return customer.get("name") or customer.get("Name") or ""


def offer_title(interaction) -> str:
    """"Voice call – sales", then the customer's name when known."""
    title = f"{media_label(interaction.media)} – {interaction.queue}"
    name = customer_name(interaction)
    return f"{title} – {name}" if name else title


def customer_lines(interaction) -> list[tuple[str, str]]:
    """Label/value pairs for the customer panel: subject first, then the customer fields as sent."""
    lines = []
    if interaction.subject:
        lines.append(("Subject", interaction.subject))
    for key, value in (interaction.customer or {}).items():
        lines.append((key.replace("_", " ").capitalize(), value))
    return lines


def customer_text(interaction) -> str:
    lines = customer_lines(interaction)
    return "\n".join(f"{label}: {value}" for label, value in lines) if lines else "No customer data"


def held_row_text(held: ev.HeldInfo, wall_ms: int) -> str:
    """One line in the list of active interactions: media, customer, time since accepted."""
    who = customer_name(held.interaction) or held.interaction.interaction_id
    elapsed = format_duration(max(0, wall_ms - held.accepted_ms) / 1000)
    status = ", completing…" if held.completing else (", moving…" if held.epoch is None else "")
    return f"{media_label(held.interaction.media)} · {who} · {elapsed}{status}"


def acw_text(status: ev.AgentStatus | None, wall_ms: int) -> str:
    """"After Call Work 0:07", with "– 0:03 left" when the server times it (``until_ms``); "" outside ACW."""
    if status is None or status.state != "after_call_work":
        return ""
    text = f"After Call Work {format_duration(max(0, wall_ms - status.since_ms) / 1000)}"
    if status.until_ms is not None:
        text += f" – {format_duration(max(0, status.until_ms - wall_ms) / 1000)} left"
    return text


# --------------------------------------------------------------------------- handling state


@dataclass(frozen=True)
class Handling:
    """What the agent is doing, as the state line shows it: the work in hand wins over the state the
    agent chose (which the server keeps, and returns to after the work)."""

    kind: str  # logged_out, ringing, busy, after_call_work, ready, not_ready
    text: str  # "Talking – Voice call", "Ringing – Chat", "After Call Work", "Not Ready – Lunch"
    clock: str  # talk time, ACW countdown ("00:07 left") or time in state
    icon: str  # resources/icons/<icon>.svg
    chosen: str = ""  # the agent's own state while work overrides it ("" when it does not)


def _held_text(held: tuple[ev.HeldInfo, ...]) -> str:
    if len(held) > 1:
        return f"Busy – {len(held)} interactions"
    media = held[0].interaction.media
    return f"Talking – {media_label(media)}" if media == "voice" else f"Busy – {media_label(media)}"


def handling_state(status: ev.AgentStatus | None, offers: tuple[ev.OfferInfo, ...], held: tuple[ev.HeldInfo, ...],
                   labels: Mapping[str, str] | None, wall_ms: int) -> Handling:
    """Ringing while an offer waits, Talking/Busy with the talk time while an interaction is in
    hand, After Call Work with its countdown, else the state the agent chose with its time."""
    if status is None:
        return Handling("logged_out", "Logged out", "", "offline")
    chosen = state_text(status.state, status.reason, labels)
    on_hold = [h.hold_since_ms for h in held if h.hold_since_ms is not None]
    if held and len(on_hold) == len(held):  # every call in hand on hold: the hold time shows
        return Handling("on_hold", f"On hold – {media_label(held[0].interaction.media)}",
                        format_duration((wall_ms - min(on_hold)) / 1000), media_icon(held[0].interaction.media),
                        chosen)
    if held:
        since = min(h.accepted_ms for h in held)
        return Handling("busy", _held_text(held), format_duration((wall_ms - since) / 1000),
                        media_icon(held[0].interaction.media), chosen)
    if offers:
        offer = offers[0]
        if offer.consulting:  # a consultation accepted: waiting for its agent to hand the call over
            return Handling("ringing", f"Consulting – agent {offer.consult_from}",
                            format_duration((wall_ms - offer.offered_ms) / 1000), media_icon(offer.interaction.media),
                            chosen)
        return Handling("ringing", f"Ringing – {media_label(offer.interaction.media)}",
                        format_duration((wall_ms - offer.offered_ms) / 1000), media_icon(offer.interaction.media),
                        chosen)
    if status.state == "after_call_work":
        if status.until_ms is not None:
            return Handling("after_call_work", chosen, f"{format_duration((status.until_ms - wall_ms) / 1000)} left",
                            "acw")
        return Handling("after_call_work", chosen, time_in_state(status.since_ms, wall_ms), "acw")
    return Handling(status.state, chosen, time_in_state(status.since_ms, wall_ms), state_icon(status.state))


def disposition_items(dispositions) -> list[tuple[str, str]]:
    """(label, code) pairs for the disposition combo, in the server's order."""
    return [(d.label or d.code, d.code) for d in dispositions]


def ended_text(event: ev.InteractionEnded, labels: Mapping[str, str] | None = None) -> str:
    if event.reason == "completed":
        code = event.disposition or ""
        label = (labels or {}).get(code, code)
        return f"Interaction {event.interaction_id} completed ({label})" if label else \
            f"Interaction {event.interaction_id} completed"
    why = ENDED_REASONS.get(event.reason, event.message or event.reason)
    return f"Interaction {event.interaction_id} ended: {why}"


def revoked_text(event: ev.OfferRevoked) -> str:
    why = REVOKED_REASONS.get(event.reason, event.message or event.reason)
    return f"Offer {event.interaction_id} withdrawn: {why}"


def missed_text(event: ev.OfferRevoked, offer: ev.OfferInfo | None, clock: str) -> str | None:
    """The main window's line for an offer the agent let time out, shown until the agent answers an
    offer again (None for any other end of an offer: those are not the agent's to catch up on)."""
    if event.reason != "timeout":
        return None
    what = offer_title(offer.interaction) if offer is not None and \
        offer.interaction.interaction_id == event.interaction_id else event.interaction_id
    return f"Missed at {clock}: {what} – not answered in time. It went back to its queue."


def intent_text(intent: ev.InteractionIntent) -> str:
    words = {"accept": "Accept", "reject": "Reject", "notes": "Save notes", "complete": "Done", "hold": "Hold",
             "resume": "Resume", "transfer": "Transfer", "complete_transfer": "Complete transfer of",
             "cancel_transfer": "Take back"}
    return f"{words.get(intent.action, intent.action)} {intent.interaction_id}"


def failed_text(event: ev.InteractionFailed) -> str:
    return f"{intent_text(event.intent)}: failed ({event.code}: {event.message})"


@dataclass(frozen=True)
class NotesState:
    """What the notes box last sent, so the desktop sends only a changed text (the last write wins)."""

    interaction_id: str
    sent: str

    def needs_send(self, text: str) -> bool:
        return text != self.sent


def log_row(event: ev.Event, wall_ms: int, labels: Mapping[str, str] | None = None) -> LogRow | None:
    """Event log rows for the interaction events (category "interaction")."""
    if isinstance(event, ev.OfferReceived):
        return LogRow(wall_ms, "interaction", f"Offered {event.interaction.interaction_id}: "
                                              f"{offer_title(event.interaction)} (site {event.endpoint})")
    if isinstance(event, ev.OfferRevoked):
        return LogRow(wall_ms, "interaction", revoked_text(event))
    if isinstance(event, ev.InteractionStarted):
        return LogRow(wall_ms, "interaction", f"Accepted {event.interaction.interaction_id} on site {event.endpoint}")
    if isinstance(event, ev.InteractionAdopted):
        return LogRow(wall_ms, "interaction", f"Site {event.endpoint} took over {event.interaction_id} "
                                              f"with its notes")
    if isinstance(event, ev.InteractionEnded):
        return LogRow(wall_ms, "interaction", ended_text(event, labels))
    if isinstance(event, ev.InteractionPending) and event.intent.action != "notes":
        queued = ", queued until a server holds the login" if event.queued else ""
        return LogRow(wall_ms, "interaction", f"{intent_text(event.intent)}: pending{queued}")
    if isinstance(event, ev.InteractionApplied) and event.intent.action != "notes":
        return LogRow(wall_ms, "interaction", f"{intent_text(event.intent)}: applied on site {event.endpoint}")
    if isinstance(event, ev.InteractionFailed):
        return LogRow(wall_ms, "interaction", failed_text(event))
    return None
