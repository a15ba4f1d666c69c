"""Wire protocol: every message the interaction server sends or accepts.

The models are the single source of truth: the server validates with them, the client core
builds with them, and ``docs/protocol.schema.json`` is generated from them (a test keeps the two
equal). msgspec is used because it validates while it decodes, at several times the speed of the
alternatives, which matters when a server re-logs thousands of agents in a failover storm, and it
emits JSON Schema for the models directly.

Conventions (see docs/protocol.md): every message is one JSON object in one WebSocket text frame,
tagged by ``type``. Requests carry a client ``request_id`` echoed in the answer. Reporting events
carry a per-stream ``seq``. Unknown *fields* are ignored for forward compatibility; unknown
*types* are an error. Times are integers in milliseconds since the Unix epoch (``*_ms``).
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal

import msgspec

PROTOCOL_VERSION = 1
# How long at least after a resume-token login its lost-ack retry (the same token) is let through,
# by either server of the pair (they keep it as long as their token lifetime, when longer); a
# desktop waits as long for a site that takes it before it asks for the password, and longer while
# such a site is heard but too slow to answer.
LOST_ACK_WINDOW_MS = 30_000
# A standby socket (after RequestAgentAvailable's ack, until a login or RequestAgentNotAvailable)
# needs no fast heartbeats: the server keeps it for its client timeout, and a dead backup only has
# to be noticed eventually. Both ends heartbeat it this rarely when quiet (docs/protocol.md,
# "Heartbeats"), which halves the heartbeat frames of a pair carrying thousands of agents.
STANDBY_HEARTBEAT_MS = 5_000

# --------------------------------------------------------------------------- field types

RequestId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="Client-chosen id, echoed in the answer; a retry with the same id gets the original answer.",
    ),
]
AgentId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")]
Epoch = Annotated[int, msgspec.Meta(ge=1, le=2**53, description="Login generation of the agent; only ever goes up.")]
Seq = Annotated[int, msgspec.Meta(ge=0, description="Position of the event in the server's reporting stream.")]
TimeMs = Annotated[int, msgspec.Meta(ge=0, description="Milliseconds since the Unix epoch.")]
Secret = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
ShortText = Annotated[str, msgspec.Meta(max_length=256)]
ReasonCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
InteractionId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="Chosen by whoever submits the interaction; "
        "the same id submitted to both sites is one interaction.",
    ),
]
Notes = Annotated[str, msgspec.Meta(max_length=8000)]
# Chat: the bounds a server enforces (with their own error codes) are in server_stub/core/chat.py
# and docs/protocol.md, "Limits"; the schema only says what a line is.
ChatText = Annotated[str, msgspec.Meta(min_length=1, description="One chat line's text; at most "
                                       "MAX_CHAT_LINE_CHARS characters (chat_line_too_long).")]
LineId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@/-]+$",
                                     description="Chosen by the sender; the same id sent again is the same line.")]
LineSeq = Annotated[int, msgspec.Meta(ge=1, description="The line's place in its interaction's transcript, from 1.")]
EmailBody = Annotated[str, msgspec.Meta(max_length=20_000)]
ChatSender = Literal["agent", "customer"]

AgentStateName = Literal["ready", "not_ready", "after_call_work"]
Role = Literal["agent", "supervisor", "carrier"]
Media = Literal["voice", "chat", "email"]
InteractionEventKind = Literal[
    "queued",  # accepted into a queue (submitted, or put back after a reject/timeout)
    "offered",  # EventInvite sent to ``agent_id``
    "rejected",  # the agent rejected the offer; back to the head of its queue
    "offer_timeout",  # the agent let the offer time out; back to the head of its queue
    "accepted",  # in the agent's hands
    "adopted",  # an agent brought it here in a failover login; in the agent's hands
    "completed",  # the agent finished it (``disposition``); counted once, on one server
    "abandoned",  # the customer gave up while it waited (``reason``)
    "withdrawn",  # this server dropped its copy: the interaction is handled elsewhere (``reason``)
    "on_hold",  # the agent put the voice interaction on hold (``at_ms`` starts the hold time)
    "resumed",  # the agent took it off hold
    "transferred",  # it left ``agent_id`` by a transfer (``reason`` names the target; ``transfers``)
    "consult_offered",  # offered to ``agent_id`` for a consultative transfer (still in its first agent's hands)
    "consult_ended",  # that consultation ended without a hand-over (``reason``: refused, timeout, cancelled, lost)
]
TransferKind = Literal["blind", "consult"]
# EventTransfer.status: where a consultative transfer stands (blind ones are only ever "completed")
TransferStatus = Literal["offered", "accepted", "refused", "timeout", "cancelled", "completed", "lost"]
RevokeReason = Literal["timeout", "abandoned", "taken_elsewhere", "withdrawn"]
PeerRecordStatus = Literal["held", "completed", "ended", "queued"]  # PeerInteractionRecord.status
PeerClaim = Literal["accept", "adopt", "complete", "reported", "sync", "transfer"]  # PeerInteractionRecord.claim
LinkRole = Literal["primary", "secondary"]
LogoutReason = Literal[
    "logout",  # the agent asked (RequestAgentLogout)
    "disconnected",  # the agent's link closed or went silent while logged in
    "moved",  # the agent logged in on the peer server at a newer epoch (fenced)
    "duplicate_login",  # a newer login of the same agent took over (force-logout policy)
    "forced",  # a supervisor logged the agent out
    "server_shutdown",  # this server is stopping
]

ErrorCode = Literal[
    "bad_json",  # the frame is not valid UTF-8 JSON
    "bad_message",  # valid JSON, but not an object or missing/mistyped fields
    "unknown_type",  # ``type`` names no message of this protocol
    "not_a_request",  # a server-to-client message was sent to the server
    "unsupported_version",  # RequestRegisterClient asked for a protocol version we do not speak
    "not_registered",  # anything but register/heartbeat before RequestRegisterClient
    "already_registered",
    "not_authenticated",  # a request that needs a login/available/subscribe first
    "forbidden",  # authenticated, but the role does not allow it
    "bad_credentials",  # unknown agent or wrong password (deliberately not told apart)
    "invalid_token",  # resume token forged, malformed or for another agent
    "token_expired",
    "already_logged_in",  # duplicate login refused (policy ``deny``) or same socket
    "login_in_progress",  # another credentialed request on this socket is still being verified
    "not_logged_in",  # state change or logout without a login on this socket
    "stale_epoch",  # the request carries an older epoch than the agent's current login
    "invalid_reason",  # Not Ready reason code not configured on this server
    "server_only_reason",  # RequestAgentNotReady with a reason only the server sets (ReasonInfo.server_only)
    "invalid_state",  # the transition is not allowed now
    "acw_not_extendable",  # RequestExtendAfterCallWork: no extendable After Call Work now, or no extension left
    "unknown_queue",  # RequestSubmitInteraction names a queue this server does not have
    "queue_full",  # RequestSubmitInteraction: the queue or the server holds as many interactions as it may
    "duplicate_interaction",  # the id is already known here (queued, in hand or completed)
    "unknown_interaction",  # accept/reject/notes/complete for an interaction not offered to or held by this agent
    "invalid_disposition",  # disposition code not configured on this server
    "chat_line_too_long",  # RequestSendChatMessage: the text is over MAX_CHAT_LINE_CHARS characters
    "transcript_full",  # RequestSendChatMessage: the transcript is at its line or character limit
    "not_a_chat",  # RequestSendChatMessage for an interaction whose media is not chat
    "target_unavailable",  # RequestTransfer: the target agent is not logged in anywhere, or cannot take it now
    "rate_limited",  # too many messages per second on this socket
    "too_many_attempts",  # too many failed password logins for this account or from this address (retry_after_ms)
    "site_unreachable",  # a supervisor action for an agent of another site that could not be relayed or answered there
    "internal",  # a bug on the server; the request had no effect
]


class CloseCode(enum.IntEnum):
    """WebSocket close codes of this protocol (docs/protocol.md, "WebSocket close codes")."""

    NORMAL = 1000  # the client is done (after logout, or quitting)
    GOING_AWAY = 1001  # the server is shutting down (or a client quitting)
    ABNORMAL = 1006  # never sent: what a side sees when the connection ended without a close frame
    INVALID_DATA = 1007  # a text frame was not valid UTF-8 (the WebSocket layer closes)
    MESSAGE_TOO_BIG = 1009  # a frame over max_message_bytes
    INTERNAL_ERROR = 1011  # an unexpected error on the connection
    HEARTBEAT = 4000  # silent for heartbeat_timeout_ms, or not registered within register_timeout_ms
    TOO_MANY_ERRORS = 4001  # more than 20 EventError in 10 s
    UNSUPPORTED_VERSION = 4002  # after EventError{unsupported_version}
    PEER_AUTH = 4003  # a wrong peer-link proof (PeerProof, PeerChallenge)
    RATE_LIMITED = 4008  # flooding past the rate limit, or reading too slowly
    SUPERSEDED = 4009  # the login on this socket ended: the agent logged in again (EventForcedLogout first)


# --------------------------------------------------------------------------- configuration shared by both sides


class Site(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One interaction server as clients are configured with it (``[[site]]`` in sites.toml, the
    desktop's settings): ``name`` as shown to people, ``url`` as dialled (``ws://`` or ``wss://``).

    Not a wire message: it lives here because servers and clients both read it and this module is
    the one both may import. Checked when built and when decoded (a bad one raises ValueError, or
    msgspec.ValidationError from a decoder)."""

    name: Annotated[str, msgspec.Meta(min_length=1)]  # decoders check these; __post_init__ checks built ones
    url: Annotated[str, msgspec.Meta(pattern=r"^wss?://")]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a site needs a name")
        if not isinstance(self.url, str) or not self.url.startswith(("ws://", "wss://")):
            raise ValueError(f"site {self.name!r} needs a ws:// or wss:// url, got {self.url!r}")


# --------------------------------------------------------------------------- shared structs


class _Struct(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    pass


class StateSnapshot(_Struct):
    """An agent's state as carried across a failover: Not Ready keeps its reason and its start."""

    state: AgentStateName
    since_ms: TimeMs
    reason: ReasonCode | None = None
    until_ms: TimeMs | None = None  # a timed After Call Work ends then, into Ready, wherever it is


class AgentReport(_Struct):
    """One logged-in agent as a reporting consumer sees it."""

    agent_id: AgentId
    name: ShortText
    epoch: Epoch
    state: AgentStateName
    since_ms: TimeMs
    login_ms: TimeMs
    reason: ReasonCode | None = None
    place: ShortText | None = None
    interaction_id: InteractionId | None = None  # the interaction in the agent's hands, if any
    # False while the server has not heard the agent's desktop for the heartbeat timeout (it offers
    # the agent nothing then) and has not yet ended the login (client timeout). Omitted when true.
    reachable: bool = True
    # Center scope only (RequestSubscribeReporting ``scope: "center"``): the site where the agent
    # is logged in, when that is not the server sending the report.
    server: ShortText | None = None


class ReplacedLogin(_Struct):
    """The older login a password login ended (policy ``force-logout``), so the new desktop can say so."""

    server: ShortText  # the site whose session was ended (this server, or its peer)
    epoch: Epoch  # that session's epoch


class TransferStep(_Struct):
    """One transfer in an interaction's history: who handed it on, when, how, and to whom."""

    kind: TransferKind
    from_agent: AgentId
    at_ms: TimeMs
    to_agent: AgentId | None = None
    to_queue: ShortText | None = None
    site: ShortText | None = None  # the server where it was decided


class TransferTargetAgent(_Struct):
    """An agent logged in somewhere in the center, as the answering server knows it now."""

    agent_id: AgentId
    site: ShortText  # where it is logged in
    state: AgentStateName
    available: bool  # it can take a transfer now: Ready, nothing in hand, no offer pending
    name: ShortText | None = None  # the directory's name


class TransferTargets(_Struct):
    """``EventAck.transfer_targets``: the queues (configured here: the same at every site) and the
    agents logged in anywhere but the asking agent, by id."""

    queues: list[ShortText]
    agents: list[TransferTargetAgent]


class Interaction(_Struct):
    """What an agent is offered: enough to greet the customer without another lookup."""

    interaction_id: InteractionId
    media: Media
    queue: ShortText
    created_ms: TimeMs
    customer: dict[ShortText, ShortText] = {}
    subject: ShortText | None = None
    body: EmailBody | None = None  # an email's text, as the customer wrote it
    # A transferred interaction: the notes its earlier agents wrote, and the transfers so far.
    notes: Notes = ""
    transfers: Annotated[list[TransferStep], msgspec.Meta(max_length=32)] = []


class ChatLine(_Struct):
    """One line of a chat's transcript. ``seq`` is given by the server that holds the interaction
    when the line is committed (replicated to the peer); a line is delivered once per ``seq``."""

    seq: LineSeq
    line_id: LineId
    sender: ChatSender
    text: ChatText
    at_ms: TimeMs


class HeldInteraction(_Struct):
    """An interaction in the agent's hands, carried in a failover login so the new primary adopts it."""

    interaction: Interaction
    accepted_ms: TimeMs
    notes: Notes = ""
    transcript: list[ChatLine] = []  # a chat: the lines the desktop has, merged by the adopting server
    draft: Notes = ""  # an email: the reply being written (RequestUpdateDraft)
    hold_since_ms: TimeMs | None = None  # a voice interaction on hold since then (kept across failover)


class QueueStatistics(_Struct):
    """One queue's figures since the server started. ``service_level``: the fraction of answered +
    abandoned interactions answered within ``service_level_target_ms`` (None before any)."""

    queue: ShortText
    waiting: int
    longest_wait_ms: int
    offered: int
    answered: int
    abandoned: int
    service_level: float | None
    service_level_target_ms: int


class ResumePoint(_Struct):
    """Where a reporting consumer left a stream: replay from ``seq + 1`` if the server still can."""

    stream_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    seq: Seq


class ReasonInfo(_Struct):
    code: ReasonCode
    label: ShortText
    # Only the server sets it (e.g. ``offer_timeout_reason``): a desktop does not offer it, and an
    # agent's RequestAgentNotReady with it is refused ``server_only_reason``. Omitted when false.
    server_only: bool = False


# --------------------------------------------------------------------------- message base


class Message(_Struct, tag_field="type"):
    """Base of every message; ``type`` is the tag."""


class Request(Message):
    request_id: RequestId


# --------------------------------------------------------------------------- client -> server


class RequestRegisterClient(Request, tag="RequestRegisterClient"):
    """First message on every socket; answers with the server's identity and heartbeat terms."""

    protocol_version: Annotated[int, msgspec.Meta(ge=1)]
    client_name: ShortText
    heartbeat_interval_ms: Annotated[int, msgspec.Meta(ge=100, le=60_000)] | None = None
    # Asymmetric terms (docs/protocol.md, "Heartbeats"): how often this client heartbeats a quiet
    # socket, when rarer than the server's beats; the server judges its silence by three of them.
    client_heartbeat_interval_ms: Annotated[int, msgspec.Meta(ge=100, le=60_000)] | None = None


class RequestAgentLogin(Request, tag="RequestAgentLogin"):
    """Log the agent in on this server, which becomes its primary.

    Exactly one of ``password`` and ``resume_token``. ``epoch`` is the least epoch the client
    wants (its last epoch + 1 on failover); ``state`` restores the agent's state on failover.
    """

    agent_id: AgentId
    password: Secret | None = None
    resume_token: Secret | None = None
    place: ShortText | None = None
    epoch: Epoch | None = None
    state: StateSnapshot | None = None
    interactions: list[HeldInteraction] = []  # failover: what the agent holds, for the server to adopt
    queue_statistics: bool = False  # send EventAgentQueues (the agent's own queues' figures) on this socket


class RequestAgentLogout(Request, tag="RequestAgentLogout"):
    """End the login. Its resume tokens end with it, unless the login is being handed over to the
    other site (a failback), whose login then needs the token."""

    epoch: Epoch
    handover: bool = False


class RequestAgentAvailable(Request, tag="RequestAgentAvailable"):
    """Announce the agent as available on this server without logging in: it becomes secondary."""

    agent_id: AgentId
    password: Secret | None = None
    resume_token: Secret | None = None


class RequestAgentNotAvailable(Request, tag="RequestAgentNotAvailable"):
    """Withdraw a RequestAgentAvailable (sent to secondaries after a logout)."""


class RequestPrimaryCheck(Request, tag="RequestPrimaryCheck"):
    """Sent on a standby link when the primary has been silent past the heartbeat timeout: is the
    primary alive, and does it still hear this desktop? The standby's server asks its peer (the
    witness, docs/failover.md) and answers ``EventAck.primary_alive``: true when the peer holds the
    agent at ``epoch`` and heard its desktop recently (the desktop keeps its primary), false when
    the peer link is closed or silent, or the peer does not hold that login (fail over now).
    ``release``: the desktop moves its login whatever the answer (it asked ``witness_rounds`` times
    already); the primary ends that login first, so the new one is never reported beside it."""

    epoch: Epoch
    release: bool = False


class RequestAgentReady(Request, tag="RequestAgentReady"):
    epoch: Epoch


class RequestAgentNotReady(Request, tag="RequestAgentNotReady"):
    epoch: Epoch
    reason: ReasonCode


class RequestAgentAfterCallWork(Request, tag="RequestAgentAfterCallWork"):
    epoch: Epoch


class RequestExtendAfterCallWork(Request, tag="RequestExtendAfterCallWork"):
    """"Extend wrap-up": push the end of the agent's timed After Call Work out by its queue's
    ``after_call_work_extend`` (at most ``after_call_work_max_extends`` times); the server keeps the deadline."""

    epoch: Epoch


class RequestAccept(Request, tag="RequestAccept"):
    """Take the interaction of an EventInvite into the agent's hands."""

    epoch: Epoch
    interaction_id: InteractionId


class RequestReject(Request, tag="RequestReject"):
    """Decline an EventInvite; the interaction goes back to the head of its queue."""

    epoch: Epoch
    interaction_id: InteractionId


class RequestUpdateNotes(Request, tag="RequestUpdateNotes"):
    """Save the agent's notes on an interaction in hand (the whole text, last write wins)."""

    epoch: Epoch
    interaction_id: InteractionId
    notes: Notes


class RequestCompleteInteraction(Request, tag="RequestCompleteInteraction"):
    """Finish an interaction in hand; the agent enters After Call Work if its queue says so."""

    epoch: Epoch
    interaction_id: InteractionId
    disposition: ReasonCode
    notes: Notes = ""


class RequestSendChatMessage(Request, tag="RequestSendChatMessage"):
    """Add a line to a chat's transcript: from the agent holding it (with ``epoch``), or from the
    customer (a carrier's socket, no ``epoch``), at the server where the interaction is in hand.
    A ``line_id`` sent again is answered with the line's ``line_seq`` and not added twice."""

    interaction_id: InteractionId
    line_id: LineId
    text: ChatText
    epoch: Epoch | None = None


class RequestUpdateDraft(Request, tag="RequestUpdateDraft"):
    """Save the agent's reply draft of an interaction in hand (the whole text, last write wins)."""

    epoch: Epoch
    interaction_id: InteractionId
    draft: Notes


class RequestHold(Request, tag="RequestHold"):
    """Put the voice interaction in hand on hold (the hold time counts from the answer's ``hold_since_ms``)."""

    epoch: Epoch
    interaction_id: InteractionId


class RequestResume(Request, tag="RequestResume"):
    """Take the voice interaction in hand off hold."""

    epoch: Epoch
    interaction_id: InteractionId


class RequestTransfer(Request, tag="RequestTransfer"):
    """Transfer the interaction in hand to a queue or to a named agent (exactly one of them).

    ``blind``: it leaves the agent at once. ``consult``: it is offered to the target agent (or the
    best available member of the queue) with its notes, and stays with this agent until
    RequestCompleteTransfer (or RequestCancelTransfer, a refusal or a timeout)."""

    epoch: Epoch
    interaction_id: InteractionId
    kind: TransferKind
    to_agent: AgentId | None = None
    to_queue: ShortText | None = None
    notes: Notes | None = None  # the notes to hand on (None: those saved so far)


class RequestTransferTargets(Request, tag="RequestTransferTargets"):
    """Who the interaction in hand could be transferred to: the queues, and every agent logged in
    anywhere in the center (this site's and, through the agent pool, the other sites'), answered in
    ``EventAck.transfer_targets``. Changes nothing; a repeat gets the list as it is then."""

    epoch: Epoch


class RequestCompleteTransfer(Request, tag="RequestCompleteTransfer"):
    """Hand a consulted interaction over to the agent who accepted the consultation."""

    epoch: Epoch
    interaction_id: InteractionId


class RequestCancelTransfer(Request, tag="RequestCancelTransfer"):
    """Take a consultative transfer back: the interaction stays with this agent."""

    epoch: Epoch
    interaction_id: InteractionId


class RequestSubmitInteraction(Request, tag="RequestSubmitInteraction"):
    """Carrier (or supervisor) on a subscribed reporting socket: put an interaction in a queue."""

    interaction: Interaction


class RequestSubscribeReporting(Request, tag="RequestSubscribeReporting"):
    """Authenticate as a supervisor and subscribe to this server's reporting stream."""

    user_id: AgentId
    password: Secret | None = None
    resume_token: Secret | None = None
    resume: ResumePoint | None = None
    # "site" (default): this server's agents. "center": also the agents logged in at every other
    # site, as this server's agent pool knows them (docs/protocol.md, The reporting stream).
    scope: Literal["site", "center"] = "site"


class RequestForceNotReady(Request, tag="RequestForceNotReady"):
    """Supervisor action: set an agent logged in at this server to Not Ready with ``reason``."""

    agent_id: AgentId
    reason: ReasonCode


class RequestForceLogout(Request, tag="RequestForceLogout"):
    """Supervisor action: end the login of an agent logged in at this server."""

    agent_id: AgentId


class Heartbeat(Message, tag="Heartbeat"):
    """Sent by both ends of every link when it has sent nothing else for one interval."""


# --------------------------------------------------------------------------- server -> client


class EventAck(Message, tag="EventAck"):
    """Success answer to a request. Which optional fields are set depends on the request."""

    request_id: RequestId
    server: ShortText
    protocol_version: int | None = None
    heartbeat_interval_ms: int | None = None
    heartbeat_timeout_ms: int | None = None
    client_timeout_ms: int | None = None  # register: how long the server keeps a silent login
    suspect_timeout_ms: int | None = None  # register: the client's silence the server tolerates (suspect after)
    role: LinkRole | None = None
    epoch: Epoch | None = None
    resume_token: Secret | None = None
    token_expires_ms: TimeMs | None = None
    reasons: list[ReasonInfo] | None = None
    stream_id: str | None = None
    dispositions: list[ReasonInfo] | None = None  # register: the disposition codes for RequestCompleteInteraction
    replaced: ReplacedLogin | None = None  # login: the other login of this agent that this one ended
    accepted_ms: TimeMs | None = None  # accept: when the server took the interaction into the agent's hands
    line_seq: LineSeq | None = None  # RequestSendChatMessage: the line's place in the transcript
    hold_since_ms: TimeMs | None = None  # hold: when the hold began (a repeat answers the same time)
    primary_alive: bool | None = None  # RequestPrimaryCheck: the peer holds the login and hears the desktop
    transfer_targets: TransferTargets | None = None  # RequestTransferTargets: the queues and agents


class EventError(Message, tag="EventError"):
    """A refusal. ``request_id`` is set when the offending frame had a readable one."""

    code: ErrorCode
    message: str
    request_id: str | None = None
    retry_after_ms: int | None = None  # too_many_attempts: how long to wait before trying again


class EventCurrentAgentStatus(Message, tag="EventCurrentAgentStatus"):
    """The agent's authoritative state on its primary; sent after login and after every change."""

    agent_id: AgentId
    epoch: Epoch
    server: ShortText
    state: AgentStateName
    since_ms: TimeMs
    reason: ReasonCode | None = None
    place: ShortText | None = None
    forced_by: ShortText | None = None
    interaction_ids: list[InteractionId] = []  # interactions in the agent's hands on this server
    until_ms: TimeMs | None = None  # a timed After Call Work ends then (the desktop counts down)
    extends_left: int | None = None  # RequestExtendAfterCallWork may still be sent this many times (omitted: 0)


class EventInvite(Message, tag="EventInvite"):
    """An offer to the agent: answer RequestAccept or RequestReject before ``expires_ms``."""

    agent_id: AgentId
    epoch: Epoch
    interaction: Interaction
    offered_ms: TimeMs
    expires_ms: TimeMs
    # A consultative transfer: the agent asking. Accepting agrees to take it; it reaches this
    # agent's hands when that agent completes the transfer (EventTransfer{status: "completed"}).
    consult_from: AgentId | None = None


class EventTransfer(Message, tag="EventTransfer"):
    """A step of a transfer, told to the agent who transfers and to the consulted agent."""

    agent_id: AgentId
    epoch: Epoch
    interaction_id: InteractionId
    kind: TransferKind
    status: TransferStatus
    at_ms: TimeMs  # when this step happened ("completed": the consulted agent's handling time starts)
    from_agent: AgentId | None = None
    to_agent: AgentId | None = None
    to_queue: ShortText | None = None
    message: str = ""
    notes: Notes | None = None  # "completed", to the consulted agent: the notes handed on with it


class EventInviteRevoked(Message, tag="EventInviteRevoked"):
    """An offer (or an interaction in hand, for ``taken_elsewhere``/``abandoned``) is gone."""

    agent_id: AgentId
    epoch: Epoch
    interaction_id: InteractionId
    reason: RevokeReason
    message: str = ""


class EventResumeToken(Message, tag="EventResumeToken"):
    """A fresh resume token, pushed by the primary before the previous one expires."""

    epoch: Epoch
    resume_token: Secret
    token_expires_ms: TimeMs


class EventForcedLogout(Message, tag="EventForcedLogout"):
    """The server ends this socket's login; the socket is closed right after (code 4009)."""

    agent_id: AgentId
    epoch: Epoch
    reason: LogoutReason
    message: str
    by: ShortText | None = None


class EventChatMessage(Message, tag="EventChatMessage"):
    """A committed chat line for the other side: a customer's line to the agent holding the chat,
    an agent's line to the carrier's sockets. Deliver (show) it once per ``line.seq``."""

    interaction_id: InteractionId
    line: ChatLine
    agent_id: AgentId | None = None


class EventChatTranscript(Message, tag="EventChatTranscript"):
    """A whole transcript: to the agent after a failover login adopted the chat (merge by ``seq``:
    the lines missed meanwhile are there), and to the carrier's sockets when the chat ended
    (``final``)."""

    interaction_id: InteractionId
    lines: list[ChatLine]
    draft: Notes = ""
    final: bool = False


# --------------------------------------------------------------------------- reporting stream


class EventReportingSnapshot(Message, tag="EventReportingSnapshot"):
    """Every agent logged in at this server as of ``seq``; live events follow from ``seq + 1``."""

    server: ShortText
    stream_id: str
    seq: Seq
    agents: list[AgentReport]
    queues: list[QueueStatistics] = []
    # This server's shared configuration version, and the linked sites whose version differs
    # (as each last told it): they route on other rules until they agree (EventConfigVersion).
    config_version: ConfigVersion | None = None
    config_differs: dict[ShortText, ConfigVersion] = {}


class EventConfigVersion(Message, tag="EventConfigVersion"):
    """On the reporting stream when this server's shared configuration version, or the set of
    linked sites whose version differs from it, changes (docs/multisite.md, "One configuration")."""

    server: ShortText
    seq: Seq
    version: ConfigVersion
    differs: dict[ShortText, ConfigVersion] = {}


class EventAgentLogin(Message, tag="EventAgentLogin"):
    server: ShortText
    seq: Seq
    agent: AgentReport


class EventAgentLogout(Message, tag="EventAgentLogout"):
    server: ShortText
    seq: Seq
    agent_id: AgentId
    epoch: Epoch
    reason: LogoutReason


class EventAgentStateChanged(Message, tag="EventAgentStateChanged"):
    server: ShortText
    seq: Seq
    agent_id: AgentId
    epoch: Epoch
    state: AgentStateName
    since_ms: TimeMs
    reason: ReasonCode | None = None
    forced_by: ShortText | None = None
    reachable: bool = True  # as in AgentReport; a change of it alone is sent with the state unchanged


class EventInteraction(Message, tag="EventInteraction"):
    """A step in an interaction's life at this server (see InteractionEventKind)."""

    server: ShortText
    seq: Seq
    interaction_id: InteractionId
    event: InteractionEventKind
    at_ms: TimeMs
    queue: ShortText
    media: Media
    agent_id: AgentId | None = None
    epoch: Epoch | None = None
    disposition: ReasonCode | None = None
    reason: ShortText | None = None
    transfers: list[TransferStep] = []  # completed and transferred: the interaction's transfer history
    # transferred: the notes handed on, so that a carrier re-submitting it (both sites lost while it
    # waited for its next agent) brings them back with the history
    notes: Notes | None = None


class EventAgentQueues(Message, tag="EventAgentQueues"):
    """The figures of the agent's own queues, on a login socket whose RequestAgentLogin asked for them
    (``queue_statistics``): after the login, then whenever they change (at most once a second).
    Agents may not subscribe to reporting; this is their share."""

    server: ShortText
    at_ms: TimeMs
    queues: list[QueueStatistics]


class EventQueueStatistics(Message, tag="EventQueueStatistics"):
    """Every queue's figures, sent on each reporting stream about once a second while they change."""

    server: ShortText
    seq: Seq
    at_ms: TimeMs
    queues: list[QueueStatistics]


# --------------------------------------------------------------------------- server <-> server


Nonce = Annotated[
    str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$", description="16 random bytes, lowercase hex; new on every peer link.")
]


class PeerHello(Message, tag="PeerHello"):
    """Opens a peer link: the dialing server's name and a fresh nonce, for the challenge."""

    server: ShortText
    nonce: Nonce


class PeerChallenge(Message, tag="PeerChallenge"):
    """The dialed server's answer to PeerHello: its proof of the secret over the dialer's nonce,
    and a fresh nonce of its own that the dialer must prove the secret over (PeerProof)."""

    server: ShortText
    nonce: Nonce
    proof: Secret


class PeerProof(Message, tag="PeerProof"):
    """The dialing server's proof of the secret over the dialed server's nonce; then the link is up."""

    proof: Secret


class PeerAgentEpochs(Message, tag="PeerAgentEpochs"):
    """Which agents the sender holds logged in, at which epoch (full set when ``full``).

    A full message also carries ``known``: the highest epoch the sender has seen per agent, so a
    restarted server never hands out an epoch its peer has already used. ``duplicates`` names the
    agents in ``epochs`` whose new login came from a second desktop (a password login while the
    receiver held the agent), so the receiver ends its login as ``duplicate_login``, not ``moved``.
    ``resumed`` gives, for logins made with a resume token, that token's epoch.
    """

    server: ShortText
    epochs: dict[AgentId, Epoch]
    logged_out: list[AgentId] = []
    full: bool = False
    known: dict[AgentId, Epoch] = {}
    duplicates: list[AgentId] = []
    # Logins in ``epochs`` made with a resume token: that token's epoch. The receiver then takes the
    # lost-ack retry of such a login too, so it succeeds even if the sender died meanwhile.
    resumed: dict[AgentId, Epoch] = {}
    # Agent -> site that issued the login -> epoch of a login there ended for good (a logout that
    # is no handover, or a supervisor's): that site's resume tokens up to that epoch are void at
    # the receiver too. Deltas: the one just ended; full sets: everything the sender knows.
    logged_out_epochs: dict[AgentId, dict[ShortText, Epoch]] = {}


class PeerInteractionRecord(_Struct):
    """One interaction as told to the peer: in an agent's hands here, completed here, or ended here."""

    interaction_id: InteractionId
    status: PeerRecordStatus
    queue: ShortText
    media: Media
    agent_id: AgentId | None = None
    claim: PeerClaim = "sync"
    # status "queued" (claim "transfer"): a transferred interaction waiting at the sender, whole, so
    # that the receiver can route it if the sender is lost before an agent takes it.
    interaction: Interaction | None = None
    # status "held": the epoch of the holder's login at the sender (None: not logged in there, a copy
    # left waiting for its agent). A receiver where that agent is logged in at a newer epoch knows
    # the claim is older than the agent's move.
    epoch: Epoch | None = None


class PeerInteractions(Message, tag="PeerInteractions"):
    """Interaction ownership, told to the peer so that an id is held and completed at one site only.

    With ``ack_id`` the receiver answers ``PeerInteractionsAck`` on the same socket; the sender
    waits for it before acknowledging the agent's accept or completion.
    """

    server: ShortText
    records: list[PeerInteractionRecord]
    ack_id: Annotated[int, msgspec.Meta(ge=1)] | None = None


class PeerInteractionsAck(Message, tag="PeerInteractionsAck"):
    """The receiver applied ``PeerInteractions{ack_id}``; ``refused``: accept claims it turned down
    (an agent there already holds or completed the interaction)."""

    server: ShortText
    ack_id: Annotated[int, msgspec.Meta(ge=1)]
    refused: list[InteractionId] = []


class AgentPresence(_Struct):
    """One agent's presence at the site that holds its login, as told to the other sites."""

    agent_id: AgentId
    epoch: Epoch
    seq: Annotated[int, msgspec.Meta(ge=0)]
    logged_in: bool = True
    state: AgentStateName = "not_ready"
    reason: ShortText | None = None
    since_ms: TimeMs = 0
    available: bool = False
    idle_since_ms: TimeMs = 0
    queues: dict[ShortText, Annotated[int, msgspec.Meta(ge=0)]] = {}


class PeerPresence(Message, tag="PeerPresence"):
    """Agent presence at the sender: a full snapshot at (re)connect, then deltas.

    ``seq`` numbers the sender's presence changes (it starts at the sender's start time in ms x
    1000, so a restarted site's numbers are above its previous life's); each record carries the
    ``seq`` of its own change. ``incarnation`` names the sender's life (its reporting stream id).
    """

    server: ShortText
    incarnation: ShortText
    seq: Annotated[int, msgspec.Meta(ge=0)]
    agents: list[AgentPresence]
    full: bool = False
    # Full snapshots: the version of the sender's routing rules (queues, members, penalties,
    # reasons, dispositions, the directory's memberships). Sites whose versions differ do not
    # route to each other's agents, and say so.
    rules_version: ShortText | None = None
    # Full snapshots: the version of the sender's shared configuration (PeerConfig); an older one
    # is sent the newer configuration (docs/multisite.md, "One configuration").
    config: ConfigVersion | None = None


class ConfigVersion(_Struct):
    """A shared configuration's version: ``generation`` goes up by one with each change, made at
    site ``origin``; ``digest`` is of the configuration itself. (generation, origin) orders two
    versions: the higher generation wins, then the origin whose name sorts last."""

    generation: Annotated[int, msgspec.Meta(ge=0, le=2**53)]
    origin: ShortText
    digest: ShortText


PenaltyValue = Annotated[int, msgspec.Meta(ge=0, le=1000)]


class SharedQueue(_Struct):
    """One queue of the shared configuration (times in ms, as ServerConfig holds them)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    accept_timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=3_600_000)]
    service_level_target_ms: Annotated[int, msgspec.Meta(ge=1, le=3_600_000)]
    acw_ms: Annotated[int, msgspec.Meta(ge=1, le=3_600_000)] | None = None
    abandon_after_ms: Annotated[int, msgspec.Meta(ge=1, le=86_400_000)] | None = None
    members: dict[AgentId, PenaltyValue] = {}
    acw_extend_ms: Annotated[int, msgspec.Meta(ge=1, le=3_600_000)] | None = None  # "Extend wrap-up"
    acw_max_extends: Annotated[int, msgspec.Meta(ge=1, le=10)] = 1


class SharedAgent(_Struct):
    """One directory entry of the shared configuration, password hash included (peer links only)."""

    id: AgentId
    name: ShortText
    password_hash: Secret
    role: Role = "agent"
    queues: dict[Annotated[str, msgspec.Meta(min_length=1, max_length=256)], PenaltyValue] = {}
    skills: list[ShortText] = []


class PeerConfig(Message, tag="PeerConfig"):
    """The sender's shared configuration (queues, Not Ready reasons, dispositions, agents) at
    ``version``, in ``parts`` frames numbered by ``part`` (queues, reasons and dispositions in part
    0, agents 200 a frame). Sent to a site that told an older version; a receiver takes it once it
    has every part and only if the version is newer than its own."""

    server: ShortText
    version: ConfigVersion
    part: Annotated[int, msgspec.Meta(ge=0)]
    parts: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    queues: list[SharedQueue] = []
    reasons: list[ReasonInfo] = []
    dispositions: list[ReasonInfo] = []
    agents: list[SharedAgent] = []


class PeerForce(Message, tag="PeerForce"):
    """A supervisor action relayed to the site where the agent is logged in (its only authority):
    ``action`` "not_ready" (with ``reason``) or "logout". ``key`` names the request (the relaying
    site, the supervisor and the supervisor's request_id): the receiver applies a key once and
    answers a repeat as it answered the first."""

    server: ShortText
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=400)]
    agent_id: AgentId
    action: Literal["not_ready", "logout"]
    by: AgentId
    reason: ReasonCode | None = None


class PeerForceAck(Message, tag="PeerForceAck"):
    """The answer to PeerForce: done (``epoch`` of the login acted on), or refused with an EventError
    ``code`` and ``message`` for the supervisor."""

    server: ShortText
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=400)]
    ok: bool
    epoch: Epoch | None = None
    code: ErrorCode | None = None
    message: ShortText | None = None


class PeerHandover(Message, tag="PeerHandover"):
    """The sender moves a waiting interaction to the receiver, for ``agent_id`` logged in there.

    ``moves`` counts the hand-overs of this interaction (each attempt a new number): the receiver
    answers a repeat as it answered the first time, and a stale attempt changes nothing."""

    server: ShortText
    interaction: Interaction
    agent_id: AgentId
    epoch: Epoch
    moves: Annotated[int, msgspec.Meta(ge=1)]
    arrived_ms: TimeMs


class PeerHandoverAck(Message, tag="PeerHandoverAck"):
    """The receiver's answer to PeerHandover: ``accepted`` (it has the interaction now, or it ended
    there: the sender drops its copy) or not (``reason``; the sender routes it again).
    ``offered_to``: accepted, but offered to that agent of the receiver instead of the one named
    (who could not take it; a member of the queue at a penalty no higher than the named agent's)."""

    server: ShortText
    interaction_id: InteractionId
    moves: Annotated[int, msgspec.Meta(ge=1)]
    accepted: bool
    reason: ShortText | None = None
    offered_to: AgentId | None = None


class PeerChat(Message, tag="PeerChat"):
    """Chat lines (and the reply draft) of an interaction held at the sender, for the receiver to
    keep beside its record of that interaction: ``lines`` new since the last PeerChat, or the whole
    transcript when ``full``. With ``ack_id`` the receiver answers ``PeerInteractionsAck``; the
    sender commits the lines (answers and delivers them) once every linked peer has them."""

    server: ShortText
    interaction_id: InteractionId
    lines: list[ChatLine] = []
    draft: Notes | None = None
    full: bool = False
    ack_id: Annotated[int, msgspec.Meta(ge=1)] | None = None


class PeerConsult(Message, tag="PeerConsult"):
    """A consultative transfer across sites: the sender's agent ``from_agent`` holds
    ``interaction`` (its notes and history included) and asks the receiver's agent ``to_agent``
    (logged in there at ``epoch``) to take it over. The receiver offers it to that agent
    (EventInvite with ``consult_from``) or answers PeerConsultUpdate{refused}."""

    server: ShortText
    interaction: Interaction
    from_agent: AgentId
    to_agent: AgentId
    epoch: Epoch
    expires_ms: TimeMs
    to_queue: ShortText | None = None


class PeerConsultUpdate(Message, tag="PeerConsultUpdate"):
    """A cross-site consultation moved on. From the consulted agent's site: ``accepted``,
    ``refused``, ``timeout``, ``lost``. From the first agent's site: ``cancelled``, ``lost``, or
    ``completed`` with ``interaction`` (final notes and history): the consulted agent holds it now."""

    server: ShortText
    interaction_id: InteractionId
    status: TransferStatus
    interaction: Interaction | None = None
    message: ShortText = ""


class PeerWitness(Message, tag="PeerWitness"):
    """A desktop of ``agent_id`` asked the sender (its standby) whether its primary, the receiver,
    is alive (RequestPrimaryCheck). The receiver answers PeerWitnessAck on the same link and, when
    it holds that login, sends the desktop a heartbeat at once."""

    server: ShortText
    agent_id: AgentId
    epoch: Epoch
    ask_id: Annotated[int, msgspec.Meta(ge=1)]
    release: bool = False  # the desktop moves its login whatever the answer: end it (RequestPrimaryCheck)


class PeerWitnessAck(Message, tag="PeerWitnessAck"):
    """``alive``: the receiver of PeerWitness holds the agent at that epoch and heard its desktop
    within its heartbeat timeout (it counts it reachable)."""

    server: ShortText
    ask_id: Annotated[int, msgspec.Meta(ge=1)]
    alive: bool


# --------------------------------------------------------------------------- unions & codecs

ClientMessage = (
    RequestRegisterClient
    | RequestAgentLogin
    | RequestAgentLogout
    | RequestAgentAvailable
    | RequestAgentNotAvailable
    | RequestPrimaryCheck
    | RequestAgentReady
    | RequestAgentNotReady
    | RequestAgentAfterCallWork
    | RequestExtendAfterCallWork
    | RequestSubscribeReporting
    | RequestForceNotReady
    | RequestForceLogout
    | RequestAccept
    | RequestReject
    | RequestUpdateNotes
    | RequestCompleteInteraction
    | RequestHold
    | RequestResume
    | RequestTransfer
    | RequestTransferTargets
    | RequestCompleteTransfer
    | RequestCancelTransfer
    | RequestSubmitInteraction
    | RequestSendChatMessage
    | RequestUpdateDraft
    | Heartbeat
    | PeerHello
    | PeerChallenge
    | PeerProof
    | PeerAgentEpochs
    | PeerInteractions
    | PeerInteractionsAck
    | PeerPresence
    | PeerHandover
    | PeerHandoverAck
    | PeerChat
    | PeerConfig
    | PeerForce
    | PeerForceAck
    | PeerConsult
    | PeerConsultUpdate
    | PeerWitness
    | PeerWitnessAck
)

ServerMessage = (
    EventAck
    | EventError
    | EventCurrentAgentStatus
    | EventResumeToken
    | EventForcedLogout
    | EventReportingSnapshot
    | EventAgentLogin
    | EventAgentLogout
    | EventAgentStateChanged
    | EventInvite
    | EventInviteRevoked
    | EventTransfer
    | EventInteraction
    | EventQueueStatistics
    | EventAgentQueues
    | EventChatMessage
    | EventChatTranscript
    | EventConfigVersion
    | Heartbeat
)

ReportingEvent = (EventReportingSnapshot | EventAgentLogin | EventAgentLogout | EventAgentStateChanged
                  | EventInteraction | EventQueueStatistics | EventConfigVersion)

CLIENT_TYPES = {cls.__struct_config__.tag: cls for cls in ClientMessage.__args__}
SERVER_TYPES = {cls.__struct_config__.tag: cls for cls in ServerMessage.__args__}

_client_decoder = msgspec.json.Decoder(ClientMessage)
_server_decoder = msgspec.json.Decoder(ServerMessage)
_encoder = msgspec.json.Encoder()


def encode(message: Message) -> str:
    """One message as the text of a WebSocket frame."""
    return _encoder.encode(message).decode()


class ProtocolError(Exception):
    """A frame that is not a valid message; ``code`` is the EventError code to answer with."""

    def __init__(self, code: ErrorCode, message: str, request_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def _classify(data: str | bytes, types: dict[str, type], error: Exception) -> ProtocolError:
    """Turn a failed typed decode into a precise error, reading the frame loosely once."""
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        return ProtocolError("bad_json", f"frame is not valid JSON: {exc}")
    if not isinstance(raw, dict):
        return ProtocolError("bad_message", f"a message is a JSON object, got {type(raw).__name__}")
    request_id = raw.get("request_id")
    request_id = request_id if isinstance(request_id, str) and 0 < len(request_id) <= 64 else None
    kind = raw.get("type")
    if not isinstance(kind, str):
        return ProtocolError("bad_message", "message has no string field `type`", request_id)
    if kind not in types:
        other = SERVER_TYPES if types is CLIENT_TYPES else CLIENT_TYPES
        if kind in other:
            return ProtocolError("not_a_request", f"{kind} is not sent in this direction", request_id)
        return ProtocolError("unknown_type", f"unknown message type {kind[:64]!r}", request_id)
    return ProtocolError("bad_message", f"{kind}: {error}", request_id)


# No message of this protocol nests deeper than this; a frame that does is refused before it is
# decoded (a decoder walking 100,000 levels would exhaust the stack).
MAX_NESTING = 32


def _too_deep(data: str | bytes) -> bool:
    """Does the JSON in ``data`` nest objects and arrays more than MAX_NESTING deep? Cheap for
    ordinary frames: only one with that many brackets at all is walked."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return False
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _decode(decoder: msgspec.json.Decoder[Any], data: str | bytes, types: dict[str, type]) -> Any:
    try:
        return decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _classify(data, types, exc) from None
    except RecursionError:  # belt and braces: _too_deep should have caught it
        raise ProtocolError("bad_json", "frame nests objects or arrays too deeply") from None


def decode_client(data: str | bytes) -> ClientMessage:
    """Decode a frame received by a server. Raises ProtocolError with the code to answer."""
    if _too_deep(data):  # a server checks what anyone may send; a client trusts its server's nesting
        raise ProtocolError("bad_json", f"frame nests objects or arrays more than {MAX_NESTING} levels deep")
    return _decode(_client_decoder, data, CLIENT_TYPES)  # type: ignore[no-any-return]


def decode_server(data: str | bytes) -> ServerMessage:
    """Decode a frame received by a client. Raises ProtocolError on anything invalid."""
    return _decode(_server_decoder, data, SERVER_TYPES)  # type: ignore[no-any-return]


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of both directions, as committed in docs/protocol.schema.json."""
    (client_ref, server_ref), components = msgspec.json.schema_components(
        [ClientMessage, ServerMessage], ref_template="#/$defs/{name}"
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.invalid/agent-desktop/protocol.schema.json",
        "title": f"Agent desktop interaction protocol, version {PROTOCOL_VERSION}",
        "description": "One JSON object per WebSocket text frame. See docs/protocol.md.",
        # anyOf, not oneOf: Heartbeat travels in both directions and must match both.
        "anyOf": [
            {"title": "ClientToServer", **client_ref},
            {"title": "ServerToClient", **server_ref},
        ],
        "$defs": components,
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
