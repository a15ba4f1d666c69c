"""What the session core says, as typed values: commands for the I/O driver and events for the UI.

Every input of ``AgentSession`` returns a list of these, in the order they must be executed.
``Command`` subclasses are for the driver (open/close a link, send a message, set/cancel a timer);
``Event`` subclasses are for the UI (and logs, benchmarks, scripted agents). The core never waits
for a command to complete: the driver reports back through the session's inputs.

A *link* is an ``int`` naming one connection attempt; a reconnect to the same endpoint gets a new
one, so anything about an old connection can never be mistaken for the new one.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from server_stub import protocol as p

Link = int
LinkRole = Literal["down", "connecting", "registered", "primary", "secondary", "reconnecting"]
Phase = Literal["idle", "detecting", "logging_in", "restored"]
InteractionAction = Literal["accept", "reject", "notes", "complete", "hold", "resume", "transfer",
                            "complete_transfer", "cancel_transfer"]
TRANSFER_ACTIONS = ("hold", "resume", "transfer", "complete_transfer", "cancel_transfer")
MAX_NOTES = 8000  # the protocol's limit on notes
_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
SessionStatus = Literal["idle", "logging_in", "logged_in", "failing_over", "logging_out", "ended"]


@dataclass(frozen=True)
class StateIntent:
    """An agent state the user asks for (also the optional initial state of a login)."""

    state: p.AgentStateName
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.state not in ("ready", "not_ready", "after_call_work"):
            raise ValueError(f"unknown agent state {self.state!r}")
        if self.reason is not None and self.state != "not_ready":
            raise ValueError("only not_ready carries a reason")


@dataclass(frozen=True)
class InteractionIntent:
    """Something the agent does with an interaction: take or decline an offer, save notes (the
    whole text; the last write wins), finish it with a disposition code."""

    action: InteractionAction
    interaction_id: str
    notes: str | None = None
    disposition: str | None = None
    # transfer: how and to whom (exactly one of ``to_agent`` and ``to_queue``)
    kind: p.TransferKind | None = None
    to_agent: str | None = None
    to_queue: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ("accept", "reject", "notes", "complete", *TRANSFER_ACTIONS):
            raise ValueError(f"unknown interaction action {self.action!r}")
        if self.action == "transfer" and (self.kind not in ("blind", "consult")
                                          or (self.to_agent is None) == (self.to_queue is None)
                                          or not (self.to_agent or self.to_queue)):
            raise ValueError("a transfer needs a kind (blind or consult) and exactly one target: an agent or a queue")
        if not isinstance(self.interaction_id, str) or not _ID.fullmatch(self.interaction_id):
            raise ValueError(f"interaction id must be 1-64 of A-Za-z0-9_.:@-, got {self.interaction_id!r}")
        if self.action == "notes" and self.notes is None:
            raise ValueError("notes need a text (possibly empty)")
        if self.notes is not None and len(self.notes) > MAX_NOTES:
            raise ValueError(f"notes are limited to {MAX_NOTES} characters, got {len(self.notes)}")
        if self.action == "complete" and not (self.disposition and len(self.disposition) <= 64):
            raise ValueError("completing an interaction needs a disposition code (1-64 characters)")


@dataclass(frozen=True)
class AgentStatus:
    """The agent's state as last confirmed by its primary."""

    state: p.AgentStateName
    reason: str | None
    since_ms: int
    epoch: int
    endpoint: str
    forced_by: str | None = None
    until_ms: int | None = None  # a timed After Call Work ends then
    extends_left: int = 0  # "Extend wrap-up" may still be asked this many times (the server says)


class Output:
    """Base of everything an input returns."""


class Command(Output):
    """For the I/O driver."""


class Event(Output):
    """For the UI."""


# --------------------------------------------------------------------------- driver commands


@dataclass(frozen=True)
class OpenLink(Command):
    """Connect to ``url``; report ``link_opened`` or ``link_closed`` for ``link``."""

    link: Link
    endpoint: str
    url: str


@dataclass(frozen=True)
class CloseLink(Command):
    """Close ``link`` for good (or abandon the attempt). The core has forgotten it: reporting its
    close back is allowed but not needed."""

    link: Link
    code: int
    reason: str


@dataclass(frozen=True)
class Send(Command):
    """Send ``message`` (encode with ``server_stub.protocol.encode``) on ``link``. Sends to one link
    must go out in order, and before a later ``CloseLink`` of that link."""

    link: Link
    message: p.Message


@dataclass(frozen=True)
class SetTimer(Command):
    """Call ``timer_fired(key)`` at monotonic time ``at``; replaces any timer with the same key.
    Keys are opaque hashable values."""

    key: Hashable
    at: float


@dataclass(frozen=True)
class CancelTimer(Command):
    key: Hashable


# --------------------------------------------------------------------------- UI events


@dataclass(frozen=True)
class LinkRoleChanged(Event):
    """A link's role: connecting (opening/registering), registered, primary, secondary,
    reconnecting (waiting to retry; ``link`` is None), down (session over)."""

    link: Link | None
    endpoint: str
    role: LinkRole
    last_heard_ms: int | None


@dataclass(frozen=True)
class FailoverPhase(Event):
    """Progress of moving the login. ``kind`` "failover" (the primary was lost: detecting -> logging_in
    -> restored) or "failback" (moving back to the preferred site: logging_in -> restored). "idle"
    means the move was abandoned (login refused, logout). ``elapsed`` counts from the loss/decision."""

    phase: Phase
    kind: Literal["failover", "failback"]
    from_endpoint: str | None
    to_endpoint: str | None
    elapsed: float


@dataclass(frozen=True)
class LoggedIn(Event):
    """The login is held on ``endpoint`` (now primary) at ``epoch``; ``resumed`` when by resume token."""

    agent_id: str
    epoch: int
    endpoint: str
    resumed: bool
    replaced: str | None = None  # the site whose older login of this agent the server ended (force-logout)


@dataclass(frozen=True)
class AgentStateChanged(Event):
    """The agent's state as its primary reports it (EventCurrentAgentStatus)."""

    state: p.AgentStateName
    reason: str | None
    since_ms: int
    epoch: int
    endpoint: str
    forced_by: str | None
    until_ms: int | None = None  # a timed After Call Work ends then


@dataclass(frozen=True)
class IntentPending(Event):
    """An intent was accepted; ``queued`` when it waits for a primary (failover in progress)."""

    request_id: str
    intent: StateIntent
    queued: bool


@dataclass(frozen=True)
class IntentApplied(Event):
    request_id: str
    intent: StateIntent
    endpoint: str
    epoch: int


@dataclass(frozen=True)
class IntentSuperseded(Event):
    """A queued intent was dropped unsent because a later one (``by``) replaces it."""

    request_id: str
    intent: StateIntent
    by: str


@dataclass(frozen=True)
class IntentFailed(Event):
    """Refused by the server (e.g. invalid_reason) or dropped by a logout (code "logged_out")."""

    request_id: str
    intent: StateIntent
    code: str
    message: str


@dataclass(frozen=True)
class LoginFailed(Event):
    """The login was refused for good (bad_credentials, token_expired, stale_epoch, ...). The session
    is idle again, links kept: call ``login`` with the password to try again."""

    code: str
    message: str
    endpoint: str


@dataclass(frozen=True)
class TransferTargetsListed(Event):
    """The primary's answer to ``request_transfer_targets``: the queues and the agents logged in
    anywhere in the center (``p.TransferTargets``), for the transfer picker."""

    targets: p.TransferTargets
    endpoint: str


@dataclass(frozen=True)
class ErrorEvent(Event):
    """A refusal or protocol problem worth showing or logging; the session handles it itself."""

    code: str
    message: str
    endpoint: str | None


@dataclass(frozen=True)
class LoggedOut(Event):
    """The session is over (links closed): "logout", or the server's reason (duplicate_login,
    forced, moved); ``by`` names who did it when the server says (a supervisor's id for "forced")."""

    reason: str
    by: str | None = None


@dataclass(frozen=True)
class StaleEventIgnored(Event):
    """A server event from an older login (epoch) or from a link that is not the primary."""

    endpoint: str
    message_type: str
    epoch: int
    current_epoch: int | None


@dataclass(frozen=True)
class OfferReceived(Event):
    """The primary offers an interaction: answer with ``accept`` or ``reject`` before ``expires_ms``."""

    interaction: p.Interaction
    offered_ms: int
    expires_ms: int
    endpoint: str
    epoch: int


@dataclass(frozen=True)
class OfferRevoked(Event):
    """The offer is gone: the server's reason (timeout, abandoned, taken_elsewhere, withdrawn), or
    "primary_lost" (the offering server was lost; it re-queues it, or the carrier re-submits it), or
    the code of a refused accept/reject, or "logged_out"."""

    interaction_id: str
    reason: str
    message: str
    endpoint: str | None


@dataclass(frozen=True)
class InteractionStarted(Event):
    """An accepted interaction is now in the agent's hands."""

    interaction: p.Interaction
    accepted_ms: int
    endpoint: str
    epoch: int


@dataclass(frozen=True)
class InteractionAdopted(Event):
    """After a failover the new primary took over the interaction in hand (notes included)."""

    interaction_id: str
    endpoint: str
    epoch: int
    notes: str


@dataclass(frozen=True)
class InteractionEnded(Event):
    """The interaction left the agent's hands: "completed" (with ``disposition``), or ended without
    the agent: the server's reason (abandoned, taken_elsewhere, withdrawn), "not_adopted" (the new
    primary did not take it over after a failover), "unknown_interaction" (the primary does not
    know it), "logged_out"."""

    interaction_id: str
    reason: str
    disposition: str | None
    message: str
    endpoint: str | None


@dataclass(frozen=True)
class HoldChanged(Event):
    """The call in hand went on hold (``hold_since_ms``) or came off it (None)."""

    interaction_id: str
    hold_since_ms: int | None
    endpoint: str


@dataclass(frozen=True)
class TransferChanged(Event):
    """A consultative transfer moved on (EventTransfer): for the agent who asked (the interaction
    in hand) or the consulted agent (its offer). ``status``: offered, accepted, refused, timeout,
    cancelled, completed, lost."""

    interaction_id: str
    status: str
    from_agent: str | None
    to_agent: str | None
    to_queue: str | None
    message: str
    endpoint: str | None


@dataclass(frozen=True)
class InteractionPending(Event):
    """An interaction intent was accepted; ``queued`` when it waits (failover, adoption)."""

    request_id: str
    intent: InteractionIntent
    queued: bool


@dataclass(frozen=True)
class InteractionApplied(Event):
    """The server applied the intent (for notes carried in a failover login: the adoption)."""

    request_id: str
    intent: InteractionIntent
    endpoint: str
    epoch: int


@dataclass(frozen=True)
class InteractionSuperseded(Event):
    """Notes dropped unsent because later notes (or the completion's) replace them (``by``)."""

    request_id: str
    intent: InteractionIntent
    by: str


@dataclass(frozen=True)
class InteractionFailed(Event):
    """Refused by the server (unknown_interaction, invalid_disposition, ...) or dropped:
    "primary_lost" (an accept/reject whose offer died with its server), "logged_out",
    "not_adopted", "duplicate" (the same accept/reject is already pending)."""

    request_id: str
    intent: InteractionIntent
    code: str
    message: str


@dataclass(frozen=True)
class ChatLineAdded(Event):
    """A chat line committed by the servers, shown once: a customer's, or one of the agent's
    (answered, or found in the transcript a failover login got back)."""

    interaction_id: str
    line: p.ChatLine


@dataclass(frozen=True)
class ChatLinePending(Event):
    """The agent sent a line; it is journalled until a server commits it (``queued``: no primary
    holding the chat right now, e.g. during a failover)."""

    interaction_id: str
    line_id: str
    text: str
    queued: bool


@dataclass(frozen=True)
class ChatLineFailed(Event):
    """The agent's line was refused (too long, transcript full, the chat is gone)."""

    interaction_id: str
    line_id: str
    text: str
    code: str
    message: str


@dataclass(frozen=True)
class DraftSaved(Event):
    """A primary holding the interaction has the reply draft as typed (or a login carried it)."""

    interaction_id: str
    endpoint: str


# --------------------------------------------------------------------------- read-only view


@dataclass(frozen=True)
class OfferInfo:
    interaction: p.Interaction
    offered_ms: int
    expires_ms: int
    endpoint: str
    epoch: int
    consult_from: str | None = None  # a consultation asked by this agent
    consulting: bool = False  # the consultation is accepted: waiting for that agent to hand it over


@dataclass(frozen=True)
class TransferInfo:
    """A consultation of the interaction in hand: whom, and where it stands (offered, accepted)."""

    status: str
    to_agent: str | None
    to_queue: str | None


@dataclass(frozen=True)
class HeldInfo:
    """An interaction in hand. ``epoch`` is the login at which the primary holds it; None while
    that is not known (an accept unanswered when its server was lost, until the failover login)."""

    interaction: p.Interaction
    accepted_ms: int
    notes: str
    endpoint: str | None
    epoch: int | None
    completing: bool
    hold_since_ms: int | None = None  # a call on hold since then
    transfer: TransferInfo | None = None  # a consultation going on


@dataclass(frozen=True)
class ChatInfo:
    """A chat or email in hand: the committed transcript in order, the agent's lines still being
    sent (line id, text), and the reply draft."""

    interaction_id: str
    lines: tuple[p.ChatLine, ...]
    sending: tuple[tuple[str, str], ...]
    draft: str


@dataclass(frozen=True)
class LinkInfo:
    endpoint: str
    url: str
    link: Link | None
    role: LinkRole
    last_heard_ms: int | None
    failures: int  # connection attempts failed in a row


@dataclass(frozen=True)
class SessionSnapshot:
    status: SessionStatus
    agent_id: str | None
    epoch: int | None
    primary: str | None
    phase: Phase
    agent: AgentStatus | None
    links: tuple[LinkInfo, ...]
    pending: tuple[tuple[str, StateIntent], ...]
    reasons: tuple[p.ReasonInfo, ...]
    has_interaction: bool
    held: tuple[HeldInfo, ...] = ()
    offers: tuple[OfferInfo, ...] = ()
    dispositions: tuple[p.ReasonInfo, ...] = ()
    interaction_pending: tuple[tuple[str, InteractionIntent], ...] = ()
    # The agent's own queues' figures (EventAgentQueues) from the primary that sent them last, and
    # its name; kept through a failover until the new primary sends its own.
    queues: tuple[p.QueueStatistics, ...] = ()
    queues_from: str | None = None
    chats: tuple[ChatInfo, ...] = ()
