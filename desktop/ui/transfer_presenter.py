"""Words for hold and transfers: the hold timer, where a consultation stands (for the agent who
asks and for the consulted agent), the offer of a transferred interaction, event log rows. Qt-free
and clock-free (callers pass ``wall_ms``), like interaction_presenter."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import events as ev
from .i18n import QT_TRANSLATE_NOOP, in_english, translate
from .presenter import LogRow, format_duration

# Marked for translation: shown through translate("Transfers", ...) (``_tr``) where they are used.
HOLD, RESUME = QT_TRANSLATE_NOOP("Transfers", "&Hold"), QT_TRANSLATE_NOOP("Transfers", "Res&ume")
KINDS = ((QT_TRANSLATE_NOOP("Transfers", "Blind"), "blind"),
         (QT_TRANSLATE_NOOP("Transfers", "Consult first"), "consult"))
KIND_MNEMONICS = {"blind": QT_TRANSLATE_NOOP("Transfers", "&Blind"),
                  "consult": QT_TRANSLATE_NOOP("Transfers", "C&onsult first")}
TARGETS = ((QT_TRANSLATE_NOOP("Transfers", "Queue"), "queue"), (QT_TRANSLATE_NOOP("Transfers", "Agent"), "agent"))
STATUS_WORDS = {
    "offered": QT_TRANSLATE_NOOP("Transfers", "waiting for an answer"),
    "accepted": QT_TRANSLATE_NOOP("Transfers", "accepted: complete the transfer or take it back"),
    "refused": QT_TRANSLATE_NOOP("Transfers", "declined; the interaction stays with you"),
    "timeout": QT_TRANSLATE_NOOP("Transfers", "not answered in time; the interaction stays with you"),
    "cancelled": QT_TRANSLATE_NOOP("Transfers", "taken back"),
    "completed": QT_TRANSLATE_NOOP("Transfers", "transfer completed"),
    "lost": QT_TRANSLATE_NOOP("Transfers", "ended; the interaction stays with you"),
}


def _tr(text: str) -> str:
    return translate("Transfers", text)


def status_words(status: str) -> str:
    return _tr(STATUS_WORDS[status]) if status in STATUS_WORDS else status


def hold_text(held: ev.HeldInfo | None, wall_ms: int) -> str:
    """"On hold 0:12" while the call is on hold, else ""."""
    if held is None or held.hold_since_ms is None:
        return ""
    return translate("Transfers", "On hold {0}").format(format_duration(max(0, wall_ms - held.hold_since_ms) / 1000))


def target_words(to_agent: str | None, to_queue: str | None) -> str:
    if to_agent and to_queue:
        return translate("Transfers", "agent {0} (queue {1})").format(to_agent, to_queue)
    if to_agent:
        return translate("Transfers", "agent {0}").format(to_agent)
    return translate("Transfers", "queue {0}").format(to_queue)


@dataclass(frozen=True)
class TargetItem:
    """One entry of the transfer picker's list: its words, what choosing it fills in, and whether it
    can be chosen (an agent not available now cannot: a transfer to it would be refused)."""

    text: str
    target_kind: str  # "queue" or "agent"
    target: str
    available: bool


def target_items(listed: ev.TransferTargetsListed) -> list[TargetItem]:
    """The queues, then the agents of the whole center: available ones first, each with its site."""
    targets = listed.targets
    items = [TargetItem(translate("Transfers", "Queue {0}").format(queue), "queue", queue, True)
             for queue in targets.queues]
    for agent in sorted(targets.agents, key=lambda a: (not a.available, a.agent_id)):
        who = f"{agent.agent_id} {agent.name}" if agent.name and agent.name != agent.agent_id else agent.agent_id
        words = (translate("Transfers", "{0} · site {1} · available") if agent.available
                 else translate("Transfers", "{0} · site {1} · not available"))
        items.append(TargetItem(words.format(who, agent.site), "agent", agent.agent_id, agent.available))
    return items


def consult_text(transfer: ev.TransferInfo | None) -> str:
    """The first agent's line while a consultation goes on."""
    if transfer is None:
        return ""
    return translate("Transfers", "Consulting {0}: {1}").format(target_words(transfer.to_agent, transfer.to_queue),
                                                                status_words(transfer.status))


def offer_notes(offer: ev.OfferInfo) -> str:
    """What a transferred (or consulted) interaction's offer adds: who hands it on, and the notes."""
    interaction = offer.interaction
    lines = []
    if offer.consult_from:
        lines.append(translate("Transfers", "Agent {0} asks you to take this over").format(offer.consult_from))
    elif interaction.transfers:
        last = interaction.transfers[-1]
        lines.append(translate("Transfers", "Transferred by agent {0}").format(last.from_agent))
    if interaction.notes:
        lines.append(translate("Transfers", "Notes: {0}").format(interaction.notes))
    return "\n".join(lines)


def offer_text(customer: str, offer: ev.OfferInfo) -> str:
    """The offer's customer data, then who hands it on and the notes, if it was transferred."""
    notes = offer_notes(offer)
    return f"{customer}\n{notes}" if notes else customer


def consulting_text(offer: ev.OfferInfo) -> str:
    """The consulted agent's line once it accepted: it waits for the hand-over."""
    return translate("Transfers", "Accepted: waiting for agent {0} to hand it over").format(offer.consult_from)


def transfer_event_text(event: ev.TransferChanged) -> str:
    text = translate("Transfers", "Transfer of {0} to {1}: {2}").format(
        event.interaction_id, target_words(event.to_agent, event.to_queue), status_words(event.status))
    return f"{text} ({event.message})" if event.message and event.status not in ("offered", "accepted") else text


FAILED_WORDS = {"hold": QT_TRANSLATE_NOOP("Transfers", "Hold refused: {0}"),
                "resume": QT_TRANSLATE_NOOP("Transfers", "Resume refused: {0}"),
                "transfer": QT_TRANSLATE_NOOP("Transfers", "Transfer refused: {0}"),
                "complete_transfer": QT_TRANSLATE_NOOP("Transfers", "Complete transfer refused: {0}"),
                "cancel_transfer": QT_TRANSLATE_NOOP("Transfers", "Take back refused: {0}")}


def failed_text(event: ev.InteractionFailed) -> str:
    """"Transfer refused: agent 1002 is not available now; …" (the server's words, not its code)."""
    why = event.message or event.code
    if event.intent.action in FAILED_WORDS:
        return _tr(FAILED_WORDS[event.intent.action]).format(why)
    return translate("Transfers", "{0} refused: {1}").format(event.intent.action, why)


def log_row(event: ev.Event, wall_ms: int) -> LogRow | None:
    """Event log rows, in English as every row (kept for support: README)."""
    with in_english():
        return _log_row(event, wall_ms)


def _log_row(event: ev.Event, wall_ms: int) -> LogRow | None:
    if isinstance(event, ev.TransferChanged):
        return LogRow(wall_ms, "interaction", transfer_event_text(event))
    if isinstance(event, ev.HoldChanged):
        state = "on hold" if event.hold_since_ms is not None else "off hold"
        return LogRow(wall_ms, "interaction", f"Call {event.interaction_id} {state}")
    return None
