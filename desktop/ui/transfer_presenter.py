"""Words for hold and transfers: the hold timer, where a consultation stands (for the agent who
asks and for the consulted agent), the offer of a transferred interaction, event log rows. Qt-free
and clock-free (callers pass ``wall_ms``), like interaction_presenter."""

from __future__ import annotations

from ..core import events as ev
from .presenter import LogRow, format_duration

HOLD, RESUME = "&Hold", "Res&ume"
KINDS = (("Blind", "blind"), ("Consult first", "consult"))
KIND_MNEMONICS = {"blind": "&Blind", "consult": "C&onsult first"}
TARGETS = (("Queue", "queue"), ("Agent", "agent"))
STATUS_WORDS = {
    "offered": "waiting for an answer",
    "accepted": "accepted: complete the transfer or take it back",
    "refused": "declined; the interaction stays with you",
    "timeout": "not answered in time; the interaction stays with you",
    "cancelled": "taken back",
    "completed": "transfer completed",
    "lost": "ended; the interaction stays with you",
}


def hold_text(held: ev.HeldInfo | None, wall_ms: int) -> str:
    """"On hold 0:12" while the call is on hold, else ""."""
    if held is None or held.hold_since_ms is None:
        return ""
    return f"On hold {format_duration(max(0, wall_ms - held.hold_since_ms) / 1000)}"


def target_words(to_agent: str | None, to_queue: str | None) -> str:
    if to_agent and to_queue:
        return f"agent {to_agent} (queue {to_queue})"
    return f"agent {to_agent}" if to_agent else f"queue {to_queue}"


def consult_text(transfer: ev.TransferInfo | None) -> str:
    """The first agent's line while a consultation goes on."""
    if transfer is None:
        return ""
    return f"Consulting {target_words(transfer.to_agent, transfer.to_queue)}: " \
           f"{STATUS_WORDS.get(transfer.status, transfer.status)}"


def offer_notes(offer: ev.OfferInfo) -> str:
    """What a transferred (or consulted) interaction's offer adds: who hands it on, and the notes."""
    interaction = offer.interaction
    lines = []
    if offer.consult_from:
        lines.append(f"Agent {offer.consult_from} asks you to take this over")
    elif interaction.transfers:
        last = interaction.transfers[-1]
        lines.append(f"Transferred by agent {last.from_agent}")
    if interaction.notes:
        lines.append(f"Notes: {interaction.notes}")
    return "\n".join(lines)


def offer_text(customer: str, offer: ev.OfferInfo) -> str:
    """The offer's customer data, then who hands it on and the notes, if it was transferred."""
    notes = offer_notes(offer)
    return f"{customer}\n{notes}" if notes else customer


def consulting_text(offer: ev.OfferInfo) -> str:
    """The consulted agent's line once it accepted: it waits for the hand-over."""
    return f"Accepted: waiting for agent {offer.consult_from} to hand it over"


def transfer_event_text(event: ev.TransferChanged) -> str:
    what = f"Transfer of {event.interaction_id} to {target_words(event.to_agent, event.to_queue)}"
    text = f"{what}: {STATUS_WORDS.get(event.status, event.status)}"
    return f"{text} ({event.message})" if event.message and event.status not in ("offered", "accepted") else text


FAILED_WORDS = {"hold": "Hold", "resume": "Resume", "transfer": "Transfer", "complete_transfer": "Complete transfer",
                "cancel_transfer": "Take back"}


def failed_text(event: ev.InteractionFailed) -> str:
    """"Transfer refused: agent 1002 is not available now; …" (the server's words, not its code)."""
    return f"{FAILED_WORDS.get(event.intent.action, event.intent.action)} refused: {event.message or event.code}"


def log_row(event: ev.Event, wall_ms: int) -> LogRow | None:
    if isinstance(event, ev.TransferChanged):
        return LogRow(wall_ms, "interaction", transfer_event_text(event))
    if isinstance(event, ev.HoldChanged):
        state = "on hold" if event.hold_since_ms is not None else "off hold"
        return LogRow(wall_ms, "interaction", f"Call {event.interaction_id} {state}")
    return None
