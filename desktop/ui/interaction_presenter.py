"""Words and numbers for the interaction widgets: offer countdown, media labels, customer data,
After Call Work timer, event log rows. Qt-free and clock-free (callers pass ``wall_ms``), so every
text the agent reads is unit-tested without a window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..core import events as ev
from .i18n import QT_TRANSLATE_NOOP, in_english, translate
from .presenter import LogRow, format_duration, state_icon, state_text, time_in_state

MEDIA_LABELS = {"voice": QT_TRANSLATE_NOOP("Interactions", "Voice call"),
                "chat": QT_TRANSLATE_NOOP("Interactions", "Chat"),
                "email": QT_TRANSLATE_NOOP("Interactions", "Email")}
ENDED_REASONS = {
    "abandoned": QT_TRANSLATE_NOOP("Interactions", "the customer hung up"),
    "taken_elsewhere": QT_TRANSLATE_NOOP("Interactions", "another agent took it"),
    "withdrawn": QT_TRANSLATE_NOOP("Interactions", "the server withdrew it"),
    "not_adopted": QT_TRANSLATE_NOOP("Interactions", "the new server did not take it over"),
    "unknown_interaction": QT_TRANSLATE_NOOP("Interactions", "the server does not know it"),
    "logged_out": QT_TRANSLATE_NOOP("Interactions", "you were logged out"),
    "transferred": QT_TRANSLATE_NOOP("Interactions", "you transferred it"),
}
REVOKED_REASONS = {
    "timeout": QT_TRANSLATE_NOOP("Interactions", "not answered in time"),
    "abandoned": QT_TRANSLATE_NOOP("Interactions", "the customer hung up"),
    "taken_elsewhere": QT_TRANSLATE_NOOP("Interactions", "another agent took it"),
    "withdrawn": QT_TRANSLATE_NOOP("Interactions", "the server withdrew it"),
    "primary_lost": QT_TRANSLATE_NOOP("Interactions", "its server was lost"),
    "logged_out": QT_TRANSLATE_NOOP("Interactions", "you were logged out"),
}
CHOOSE_DISPOSITION = QT_TRANSLATE_NOOP("Interactions", "Choose…")
DISPOSITION_REQUIRED = QT_TRANSLATE_NOOP(
    "Interactions", "Choose a disposition for this interaction first (Alt+P), then Done.")  # Alt+<the label's mnemonic>
NOTES_DEBOUNCE_MS = 500  # notes are saved this long after typing stops (and on Done)


def media_label(media: str) -> str:
    return _tr(MEDIA_LABELS.get(media, "")) or media.capitalize() or translate("Interactions", "Interaction")


def _tr(text: str) -> str:
    """``text`` (a literal marked with QT_TRANSLATE_NOOP("Interactions", ...)) in the user's language."""
    return translate("Interactions", text)


NEW_OFFER_TITLES = {"voice": QT_TRANSLATE_NOOP("Interactions", "New voice call"),
                    "chat": QT_TRANSLATE_NOOP("Interactions", "New chat"),
                    "email": QT_TRANSLATE_NOOP("Interactions", "New email")}


def new_offer_title(media: str) -> str:
    """The notification's title for an offer: "New voice call"."""
    if media in NEW_OFFER_TITLES:
        return _tr(NEW_OFFER_TITLES[media])
    return translate("Interactions", "New {0}").format(media_label(media).lower())


def media_icon(media: str) -> str:
    """Icon name under resources/icons (``media-voice``...); unknown media get the chat bubble."""
    return f"media-{media}" if media in MEDIA_LABELS else "media-chat"


def countdown_seconds(expires_ms: int, wall_ms: int) -> int:
    """Whole seconds left to answer, rounded up (shows 1 until the last millisecond), never below 0."""
    return max(0, -(-(expires_ms - wall_ms) // 1000))


def countdown_text(expires_ms: int, wall_ms: int) -> str:
    left = countdown_seconds(expires_ms, wall_ms)
    if not left:
        return translate("Interactions", "Time is up")
    return translate("Interactions", "Answer within {0}").format(format_duration(left))


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
        lines.append((translate("Interactions", "Subject"), interaction.subject))
    for key, value in (interaction.customer or {}).items():
        lines.append((key.replace("_", " ").capitalize(), value))
    return lines


def customer_text(interaction) -> str:
    lines = customer_lines(interaction)
    if not lines:
        return translate("Interactions", "No customer data")
    return "\n".join(translate("Interactions", "{0}: {1}").format(label, value) for label, value in lines)


def held_row_text(held: ev.HeldInfo, wall_ms: int) -> str:
    """One line in the list of active interactions: media, customer, time since accepted."""
    who = customer_name(held.interaction) or held.interaction.interaction_id
    elapsed = format_duration(max(0, wall_ms - held.accepted_ms) / 1000)
    status = translate("Interactions", ", completing…") if held.completing else \
        translate("Interactions", ", moving…") if held.epoch is None else ""
    return f"{media_label(held.interaction.media)} · {who} · {elapsed}{status}"


def acw_text(status: ev.AgentStatus | None, wall_ms: int) -> str:
    """"After Call Work 0:07", with "– 0:03 left" when the server times it (``until_ms``); "" outside ACW."""
    if status is None or status.state != "after_call_work":
        return ""
    elapsed = format_duration(max(0, wall_ms - status.since_ms) / 1000)
    if status.until_ms is None:
        return translate("Interactions", "After Call Work {0}").format(elapsed)
    left = format_duration(max(0, status.until_ms - wall_ms) / 1000)
    return translate("Interactions", "After Call Work {0} – {1} left").format(elapsed, left)


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
        return translate("Interactions", "Busy – {0} interactions").format(len(held))
    media = held[0].interaction.media
    if media == "voice":
        return translate("Interactions", "Talking – {0}").format(media_label(media))
    return translate("Interactions", "Busy – {0}").format(media_label(media))


def handling_state(status: ev.AgentStatus | None, offers: tuple[ev.OfferInfo, ...], held: tuple[ev.HeldInfo, ...],
                   labels: Mapping[str, str] | None, wall_ms: int) -> Handling:
    """Ringing while an offer waits, Talking/Busy with the talk time while an interaction is in
    hand, After Call Work with its countdown, else the state the agent chose with its time."""
    if status is None:
        return Handling("logged_out", translate("Presenter", "Logged out"), "", "offline")
    chosen = state_text(status.state, status.reason, labels)
    on_hold = [h.hold_since_ms for h in held if h.hold_since_ms is not None]
    if held and len(on_hold) == len(held):  # every call in hand on hold: the hold time shows
        return Handling("on_hold",
                        translate("Interactions", "On hold – {0}").format(media_label(held[0].interaction.media)),
                        format_duration((wall_ms - min(on_hold)) / 1000), media_icon(held[0].interaction.media),
                        chosen)
    if held:
        since = min(h.accepted_ms for h in held)
        return Handling("busy", _held_text(held), format_duration((wall_ms - since) / 1000),
                        media_icon(held[0].interaction.media), chosen)
    if offers:
        offer = offers[0]
        if offer.consulting:  # a consultation accepted: waiting for its agent to hand the call over
            return Handling("ringing", translate("Interactions", "Consulting – agent {0}").format(offer.consult_from),
                            format_duration((wall_ms - offer.offered_ms) / 1000), media_icon(offer.interaction.media),
                            chosen)
        return Handling("ringing",
                        translate("Interactions", "Ringing – {0}").format(media_label(offer.interaction.media)),
                        format_duration((wall_ms - offer.offered_ms) / 1000), media_icon(offer.interaction.media),
                        chosen)
    if status.state == "after_call_work":
        if status.until_ms is not None:
            return Handling("after_call_work", chosen,
                            translate("Interactions", "{0} left").format(
                                format_duration((status.until_ms - wall_ms) / 1000)),
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
        return translate("Interactions", "Interaction {0} completed ({1})").format(event.interaction_id, label) \
            if label else \
            translate("Interactions", "Interaction {0} completed").format(event.interaction_id)
    why = _tr(ENDED_REASONS[event.reason]) if event.reason in ENDED_REASONS else event.message or event.reason
    return translate("Interactions", "Interaction {0} ended: {1}").format(event.interaction_id, why)


def revoked_text(event: ev.OfferRevoked) -> str:
    why = _tr(REVOKED_REASONS[event.reason]) if event.reason in REVOKED_REASONS else event.message or event.reason
    return translate("Interactions", "Offer {0} withdrawn: {1}").format(event.interaction_id, why)


def missed_text(event: ev.OfferRevoked, offer: ev.OfferInfo | None, clock: str) -> str | None:
    """The main window's line for an offer the agent let time out, shown until the agent answers an
    offer again (None for any other end of an offer: those are not the agent's to catch up on)."""
    if event.reason != "timeout":
        return None
    what = offer_title(offer.interaction) if offer is not None and \
        offer.interaction.interaction_id == event.interaction_id else event.interaction_id
    return translate("Interactions", "Missed at {0}: {1} – not answered in time. It went back to its queue.").format(
        clock, what)


INTENT_WORDS = {"accept": QT_TRANSLATE_NOOP("Interactions", "Accept {0}"),
                "reject": QT_TRANSLATE_NOOP("Interactions", "Reject {0}"),
                "notes": QT_TRANSLATE_NOOP("Interactions", "Save notes {0}"),
                "complete": QT_TRANSLATE_NOOP("Interactions", "Done {0}"),
                "hold": QT_TRANSLATE_NOOP("Interactions", "Hold {0}"),
                "resume": QT_TRANSLATE_NOOP("Interactions", "Resume {0}"),
                "transfer": QT_TRANSLATE_NOOP("Interactions", "Transfer {0}"),
                "complete_transfer": QT_TRANSLATE_NOOP("Interactions", "Complete transfer of {0}"),
                "cancel_transfer": QT_TRANSLATE_NOOP("Interactions", "Take back {0}")}


def intent_text(intent: ev.InteractionIntent) -> str:
    if intent.action in INTENT_WORDS:
        return _tr(INTENT_WORDS[intent.action]).format(intent.interaction_id)
    return f"{intent.action} {intent.interaction_id}"


def failed_text(event: ev.InteractionFailed) -> str:
    return translate("Interactions", "{0}: failed ({1}: {2})").format(intent_text(event.intent), event.code,
                                                             event.message)


@dataclass(frozen=True)
class NotesState:
    """What the notes box last sent, so the desktop sends only a changed text (the last write wins)."""

    interaction_id: str
    sent: str

    def needs_send(self, text: str) -> bool:
        return text != self.sent


def log_row(event: ev.Event, wall_ms: int, labels: Mapping[str, str] | None = None) -> LogRow | None:
    """Event log rows, in English as every row (kept for support: README)."""
    with in_english():
        return _log_row(event, wall_ms, labels)


def _log_row(event: ev.Event, wall_ms: int, labels: Mapping[str, str] | None = None) -> LogRow | None:
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
