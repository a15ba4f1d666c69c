"""One agent's session over an ordered list of interaction servers, as a sans-I/O state machine.

Modelled on the ``websockets`` Protocol: the driver feeds inputs (user intents, link opened/closed,
message received, timer fired), each with the monotonic time ``now`` (seconds) and the wall clock
``wall_ms``, and executes the returned outputs (``events``). No sockets, no clock reads, and
randomness only from the injected ``random.Random``, so a test can replay any schedule exactly.

How it holds together:

- Level-triggered: inputs only record facts (a link registered, a login was acknowledged, a link
  died). After every input ``_reconcile`` compares what is wanted with what is held and acts: send
  the login if one is wanted and none is held or in flight, announce the agent as available on
  registered links, flush the intent journal, start a failback. A sequence of faults therefore
  cannot leave the session waiting for an edge that already passed.
- Invariant 1 (never logged in on two servers at once, from the client's view): a
  ``RequestAgentLogin`` is sent only when no link is primary and no other login is in flight. A
  primary stops being one only when its link is gone (server closed it, reset, or silent past
  ``heartbeat_timeout``, after which we close it and never reuse it) or when its login was given up
  (failback: ``RequestAgentLogout`` acknowledged). A login in flight on a link that dies is given up
  with the link; any login the server made there ends with that connection.
- Intent journal: a state intent is sent as a request at most once (``<intent id>/1``), on the
  primary of the moment. Intents waiting for a primary collapse to the last one (the others are
  reported superseded). An intent still unanswered when its primary is lost may have been applied
  there, so it is never sent again as a request: the next login carries it as the state to restore
  (``RequestAgentLogin.state``), with the time the agent entered that state (its click, or the
  start of the same state before it), and its ``EventAck`` applies it. The intent thus takes effect
  once on the agent's effective state and a duplicate can never restart time in state.
- The password is kept only until the first login succeeds or is refused; after that the session
  holds the resume token the servers issue (and refresh).
- A token login refused as ``stale_epoch`` is not the end when another endpoint has not refused
  that token: a failover login whose ``EventAck`` was lost made a newer epoch at some site, and
  only that site (and its peer, once told) accepts the same token again. The login moves on to the
  endpoints that have not refused it (waiting for them to reconnect, ``token_retry_wait``) and
  fails once every endpoint has refused it, or once that wait ends with those endpoints unreachable
  all along. One that was heard meanwhile (its links open but die before its answer: overload,
  not a dead site), that refused a handshake with 503 (busy), or that was too slow to finish one
  within ``open_timeout`` while the token lives, earns another round, with the refusing endpoints
  asked again: timing alone never asks the agent for the password.
- The witness: a primary silent past ``heartbeat_timeout`` while a standby is registered is kept
  while the standby's server is asked whether it lives and still hears us
  (``RequestPrimaryCheck``); "yes" keeps the login (at most ``witness_rounds`` times in a row),
  "no", no answer in time or a refusal lose it as before. No login is sent meanwhile.
- Interactions: offers come from the current primary at the current epoch only, and die with it
  (its server re-queues them). What the agent holds (interaction, accept time, latest notes) is the
  session's own record: every login carries it (``RequestAgentLogin.interactions``) so the new
  primary adopts it, notes typed meanwhile included. Interaction intents have a journal of their
  own with the same per-send wire ids; notes and completions are sent only to a primary that holds
  the interaction at the current epoch (accepted or adopted there), so a completion clicked during
  a failover goes out once, after the adoption, and one in flight on a lost primary is sent again
  on the next (servers answer an already completed id with an ack and report nothing twice). An
  accept unanswered when its primary is lost may have been applied: the interaction is kept in hand
  and carried; the new primary's first status (``interaction_ids``) says whether it took it over.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import msgspec

from server_stub import protocol as p

from . import events as ev
from .chat import MAX_LINE_CHARS, ChatBook, OutLine
from .config import SessionConfig

_EPS = 1e-3  # timers may fire this early (loop clock resolution) and still count as due

# Login refusals that retrying cannot cure: the user has to act (or another desktop holds the agent).
_FATAL_LOGIN = frozenset({
    "bad_credentials", "invalid_token", "token_expired", "stale_epoch", "already_logged_in",
    "forbidden", "bad_message", "unknown_type", "not_a_request", "too_many_attempts",
})
# Answers meaning "this socket holds no login (at our epoch)": our primary is not one any more.
_LOGIN_GONE = frozenset({"not_logged_in", "stale_epoch", "not_authenticated"})
# Forced-logout reasons that end the session: someone else now holds the agent.
_SESSION_ENDING = frozenset({"duplicate_login", "forced", "moved"})
_TOKEN_REFUSALS = frozenset({"stale_epoch", "invalid_token", "token_expired"})


@dataclass(eq=False)
class _Endpoint:
    index: int
    name: str
    url: str
    link: ev.Link | None = None
    role: ev.LinkRole = "down"
    opened: bool = False
    registered: bool = False
    reachable: bool | None = None  # None until the first attempt ends; then: did it register
    failures: int = 0  # attempts failed in a row
    started: float = 0.0  # when the current attempt began
    last_rx: float = 0.0
    last_tx: float = 0.0
    last_heard_ms: int | None = None
    # Set when a link timer fired late and found the link silent: the link is only suspected until
    # then (frames may be waiting unread because this process was held up); see _link_timer.
    confirm_until: float | None = None
    watch_from: float = 0.0  # silence is counted from here at the earliest (a standby put to use)
    # The witness (docs/failover.md, "Overload"): a silent primary's standby was asked whether the
    # primary lives (request id of the RequestPrimaryCheck, and until when its answer is awaited),
    # and how many times in a row it said so while this link stayed silent.
    checking: str | None = None
    check_until: float = 0.0
    vouched: int = 0
    slow_at: float = float("-inf")  # when an attempt last ran past open_timeout (slow, not refused)
    slow_attempts: int = 0  # attempts in a row that ran past their open timeout (each gets twice as long)
    # How often we heartbeat this registered link when quiet: ``client_heartbeat_interval`` if its
    # server told the silence it tolerates from us (``suspect_timeout_ms``), else heartbeat_interval.
    beat_every: float | None = None
    pending: dict[str, tuple[str, Any]] = field(default_factory=dict)  # request id -> (kind, data)
    standby_token: str | None = None  # token of the RequestAgentAvailable sent on this link
    reasons: tuple[p.ReasonInfo, ...] = ()
    dispositions: tuple[p.ReasonInfo, ...] = ()


@dataclass(eq=False)
class _Offer:
    interaction: p.Interaction
    offered_ms: int
    expires_ms: int
    endpoint: str
    epoch: int
    consult_from: str | None = None  # a consultation (EventInvite.consult_from)
    consulting: bool = False  # accepted: it reaches our hands when that agent completes the transfer


@dataclass(eq=False)
class _Held:
    """An interaction in the agent's hands; ``epoch`` is the login at which the primary holds it
    (None while unknown: an accept unanswered when its primary was lost)."""

    interaction: p.Interaction
    accepted_ms: int
    notes: str = ""
    notes_by: str | None = None  # request id of the intent that set ``notes``
    notes_seq: int = 0  # and its place in the journal's order (``_IxEntry.seq``)
    endpoint: str | None = None
    epoch: int | None = None
    hold_since_ms: int | None = None  # a call on hold since then (carried across failover)
    transfer: ev.TransferInfo | None = None  # a consultation going on


@dataclass(eq=False)
class _IxEntry:
    """One interaction intent in its journal."""

    request_id: str
    intent: ev.InteractionIntent
    seq: int = 0  # creation order
    attempts: int = 0
    wire_id: str | None = None
    sent_on: ev.Link | None = None
    interaction: p.Interaction | None = None  # accept: the offered interaction
    accepted_ms: int | None = None  # accept: when it was sent
    uncertain: bool = False  # accept in flight when its primary was lost


@dataclass(eq=False)
class _Entry:
    """One intent in the journal; ``since_ms`` is when the agent entered that state if it takes effect."""

    request_id: str
    intent: ev.StateIntent
    since_ms: int
    attempts: int = 0
    wire_id: str | None = None  # request id of the latest send
    sent_on: ev.Link | None = None


@dataclass(eq=False)
class _Move:
    """A failover or failback in progress."""

    kind: Literal["failover", "failback"]
    source: str
    started: float
    target: str | None = None


class AgentSession:
    """The session core. Every input returns the outputs to execute, in order."""

    def __init__(self, config: SessionConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._prefix = f"{rng.getrandbits(40):010x}"  # request ids stay unique across restarts
        self._ids = 0
        self._link_ids = 0
        self._eps = [_Endpoint(i, e.name, e.url) for i, e in enumerate(config.endpoints)]
        self._by_link: dict[ev.Link, _Endpoint] = {}
        self._timers: dict[Hashable, float] = {}
        self._out: list[ev.Output] = []
        self._now = 0.0
        self._wall = 0
        self._started = False
        self._ended = False
        self._agent_id: str | None = None
        self._password: str | None = None
        self._place: str | None = None
        self._initial: ev.StateIntent | None = None
        self._wants_login = False
        self._logout_requested = False
        self._token: str | None = None
        self._token_expires_ms: int | None = None
        self._epoch: int | None = None
        self._status: ev.AgentStatus | None = None  # last state a primary confirmed
        self._primary: _Endpoint | None = None
        self._login_ep: _Endpoint | None = None  # login request in flight there
        self._releasing = False  # failback: RequestAgentLogout in flight on the primary
        self._move: _Move | None = None
        self._phase: ev.Phase = "idle"
        self._journal: list[_Entry] = []
        self._token_refused: set[str] = set()  # endpoints that refused the current resume token as stale
        self._token_wait_from = 0.0  # when the current wait for a site that takes the token began
        self._requested_epoch = 0  # asked for by the latest login request
        self._unconfirmed: list[_Entry] = []  # intents asked for since a server last said the state
        self._login_failures = 0
        self._retry_login_at: float | None = None
        self._backup_at: float | None = None
        self._failback_at: float | None = None
        self._has_interaction = False  # set_has_interaction (before the core tracked interactions)
        self._offers: dict[str, _Offer] = {}
        self._held: dict[str, _Held] = {}
        self._ix_journal: list[_IxEntry] = []
        self._queues: tuple[p.QueueStatistics, ...] = ()  # EventAgentQueues, from _queues_from
        self._queues_from: str | None = None
        self._adoption_check: tuple[int, frozenset[str]] | None = None  # (epoch, ids carried by that login)
        self._chats = ChatBook()  # transcripts, unsent lines and drafts of the chats and emails in hand

    # ------------------------------------------------------------------ user inputs

    def start(self, now: float, wall_ms: int) -> list[ev.Output]:
        """Open a link to every endpoint (once)."""
        self._tick(now, wall_ms)
        self._start()
        return self._done()

    def login(self, agent_id: str, password: str, now: float, wall_ms: int, place: str | None = None,
              initial_state: ev.StateIntent | None = None) -> list[ev.Output]:
        """Log in with the password on the preferred reachable endpoint (starts the session if needed)."""
        self._tick(now, wall_ms)
        if self._ended or self._wants_login or self._logout_requested:
            self._emit(ev.ErrorEvent("invalid_state", "the session has ended" if self._ended
                                     else "already logged in or logging in", None))
            return self._done()
        if agent_id != self._agent_id:
            self._token = self._epoch = self._status = None
        self._agent_id, self._password, self._place, self._initial = agent_id, password, place, initial_state
        self._wants_login = True
        self._token_refused.clear()
        self._login_failures = 0
        self._retry_login_at = self._backup_at = None
        self._start()
        return self._done()

    def set_ready(self, now: float, wall_ms: int) -> list[ev.Output]:
        return self._intent(ev.StateIntent("ready"), now, wall_ms)

    def set_not_ready(self, reason: str, now: float, wall_ms: int) -> list[ev.Output]:
        if not reason:
            raise ValueError("Not Ready needs a reason code")
        return self._intent(ev.StateIntent("not_ready", reason), now, wall_ms)

    def set_after_call_work(self, now: float, wall_ms: int) -> list[ev.Output]:
        return self._intent(ev.StateIntent("after_call_work"), now, wall_ms)

    def logout(self, now: float, wall_ms: int) -> list[ev.Output]:
        """Log out on the primary, withdraw the standbys, close every link (LoggedOut "logout")."""
        self._tick(now, wall_ms)
        if not self._ended and not self._logout_requested:
            self._logout_requested = True
            self._wants_login = False
            self._fail([e for e in self._journal if not self._in_flight(e)], "logged_out", "logged out first")
            for entry in [e for e in self._ix_journal if not self._ix_in_flight(e) and not e.uncertain]:
                self._ix_fail(entry, "logged_out", "logged out first")
            if self._primary is not None and not self._releasing:
                self._send_logout()
            # Otherwise: a release or login in flight finishes first; with neither, _reconcile ends.
        return self._done()

    def set_has_interaction(self, value: bool, now: float, wall_ms: int) -> list[ev.Output]:
        """Kept for drivers written before the core tracked interactions: an interaction in hand
        outside the protocol (blocks a "when-idle" failback like one the core holds)."""
        self._tick(now, wall_ms)
        self._has_interaction = bool(value)
        return self._done()

    @property
    def has_interaction(self) -> bool:
        return bool(self._held) or self._has_interaction

    def accept(self, interaction_id: str, now: float, wall_ms: int) -> list[ev.Output]:
        """Take the offered interaction."""
        return self._ix_intent(ev.InteractionIntent("accept", interaction_id), now, wall_ms)

    def reject(self, interaction_id: str, now: float, wall_ms: int) -> list[ev.Output]:
        """Decline the offer (the server puts it back at the head of its queue)."""
        return self._ix_intent(ev.InteractionIntent("reject", interaction_id), now, wall_ms)

    def update_notes(self, interaction_id: str, notes: str, now: float, wall_ms: int) -> list[ev.Output]:
        """Save the whole notes text of an interaction in hand; the last write wins."""
        return self._ix_intent(ev.InteractionIntent("notes", interaction_id, notes=notes), now, wall_ms)

    def complete(self, interaction_id: str, disposition: str, notes: str | None = None, *, now: float,
                 wall_ms: int) -> list[ev.Output]:
        """Finish an interaction in hand; ``notes`` None keeps the notes saved so far."""
        return self._ix_intent(ev.InteractionIntent("complete", interaction_id, notes=notes,
                                                    disposition=disposition), now, wall_ms)

    def extend_after_call_work(self, now: float, wall_ms: int) -> list[ev.Output]:
        """"Extend wrap-up": ask the primary to push the After Call Work's end out. Not journalled: the
        server keeps the deadline, and one asked during a failover is refused at once (the new
        primary could not extend it anyway, docs/protocol.md); a refusal is an ErrorEvent."""
        self._tick(now, wall_ms)
        status = self._status
        if self._primary is None or self._releasing or status is None or not status.extends_left:
            self._emit(ev.ErrorEvent("acw_not_extendable", "no After Call Work to extend now", None))
        else:
            self._request(self._primary, p.RequestExtendAfterCallWork(request_id=self._new_id(),
                                                                       epoch=self._held_epoch()), "extend")
        return self._done()

    def request_transfer_targets(self, now: float, wall_ms: int) -> list[ev.Output]:
        """Ask the primary whom the interaction in hand could go to (``TransferTargetsListed``). Not
        journalled: a read; asked while there is no primary, it is not sent (the picker still takes a
        typed target), and a refusal is an ErrorEvent."""
        self._tick(now, wall_ms)
        if self._primary is not None and not self._releasing and self._status is not None:
            self._request(self._primary, p.RequestTransferTargets(request_id=self._new_id(),
                                                                  epoch=self._held_epoch()), "targets")
        return self._done()

    def send_chat(self, interaction_id: str, text: str, now: float, wall_ms: int) -> list[ev.Output]:
        """Send a chat line to the customer: journalled until a server commits it, sent once per
        primary, in order, and again after a failover (the server knows it by its line id)."""
        self._tick(now, wall_ms)
        line_id = self._new_id()
        held = self._held.get(interaction_id)
        refusal = None
        if self._ended or self._logout_requested:
            refusal = ("logged_out", "the session is logging out or over")
        elif held is None:
            refusal = ("unknown_interaction", "no such interaction in hand")
        elif held.interaction.media != "chat":
            refusal = ("not_a_chat", f"{interaction_id} is a {held.interaction.media} interaction, not a chat")
        elif not text.strip():
            refusal = ("bad_message", "an empty line is not sent")
        elif len(text) > MAX_LINE_CHARS:
            refusal = ("chat_line_too_long", f"a chat line is at most {MAX_LINE_CHARS} characters; this one has "
                                             f"{len(text)}")
        if refusal is not None:
            self._emit(ev.ChatLineFailed(interaction_id, line_id, text, *refusal))
            return self._done()
        self._chats.chat(interaction_id).outbox.append(OutLine(line_id, text))
        self._emit(ev.ChatLinePending(interaction_id, line_id, text, queued=not self._chat_sendable(interaction_id)))
        return self._done()

    def update_draft(self, interaction_id: str, draft: str, now: float, wall_ms: int) -> list[ev.Output]:
        """Save the whole reply draft of an interaction in hand (last write wins; carried across a
        failover like the notes)."""
        self._tick(now, wall_ms)
        if interaction_id in self._held and len(draft) <= ev.MAX_NOTES:
            self._chats.chat(interaction_id).draft = draft
        else:
            self._emit(ev.ErrorEvent("unknown_interaction" if interaction_id not in self._held else "bad_message",
                                     f"draft of {interaction_id} not saved: not in hand, or over {ev.MAX_NOTES} "
                                     f"characters", None))
        return self._done()
    def hold(self, interaction_id: str, on_hold: bool, now: float, wall_ms: int) -> list[ev.Output]:
        """Put the call in hand on hold (True) or take it off hold (False)."""
        return self._ix_intent(ev.InteractionIntent("hold" if on_hold else "resume", interaction_id), now, wall_ms)

    def transfer(self, interaction_id: str, kind: p.TransferKind, *, to_agent: str | None = None,
                 to_queue: str | None = None, notes: str | None = None, now: float,
                 wall_ms: int) -> list[ev.Output]:
        """Transfer the interaction in hand (blind, or start a consultation); ``notes`` None hands on
        the notes saved so far."""
        return self._ix_intent(ev.InteractionIntent("transfer", interaction_id, notes=notes, kind=kind,
                                                    to_agent=to_agent, to_queue=to_queue), now, wall_ms)

    def end_transfer(self, interaction_id: str, complete: bool, now: float, wall_ms: int) -> list[ev.Output]:
        """Hand a consulted interaction over (``complete``) or take the consultation back."""
        action: ev.InteractionAction = "complete_transfer" if complete else "cancel_transfer"
        return self._ix_intent(ev.InteractionIntent(action, interaction_id), now, wall_ms)

    # ------------------------------------------------------------------ link and timer inputs

    def link_opened(self, link: ev.Link, now: float, wall_ms: int) -> list[ev.Output]:
        self._tick(now, wall_ms)
        ep = self._by_link.get(link)
        if ep is not None and not ep.opened:
            ep.opened = True
            ep.last_rx = ep.last_tx = now
            ep.last_heard_ms = wall_ms
            self._request(ep, p.RequestRegisterClient(
                request_id=self._new_id(), protocol_version=p.PROTOCOL_VERSION, client_name=self.config.client_name,
                heartbeat_interval_ms=round(self.config.heartbeat_interval * 1000),
                client_heartbeat_interval_ms=round(self.config.client_heartbeat_interval * 1000)), "register")
        return self._done()

    def link_closed(self, link: ev.Link, now: float, wall_ms: int, code: int | None = None,
                    busy: bool = False) -> list[ev.Output]:
        """The connection attempt failed or the open link closed (clean close or reset). ``busy``: the
        server refused the handshake at its connection limits (HTTP 503): alive, so it counts as heard
        (a refused token waits for it another round rather than asking for the password)."""
        self._tick(now, wall_ms)
        ep = self._by_link.get(link)
        if ep is not None:
            if busy:
                ep.last_rx = now
            self._lose(ep, None)
        return self._done()

    def message_received(self, link: ev.Link, message: p.Message | str | bytes, now: float,
                         wall_ms: int) -> list[ev.Output]:
        """A decoded server message (or the raw frame text) arrived on ``link``."""
        self._tick(now, wall_ms)
        ep = self._by_link.get(link)
        if ep is None or not ep.opened:
            return self._done()  # a frame from a link we already gave up
        ep.last_rx, ep.last_heard_ms, ep.confirm_until = now, wall_ms, None
        ep.checking, ep.vouched = None, 0
        if isinstance(message, (str, bytes)):
            try:
                message = p.decode_server(message)
            except p.ProtocolError as exc:
                self._emit(ev.ErrorEvent(exc.code, f"undecodable frame: {exc.message}", ep.name))
                return self._done()
        handler = _HANDLERS.get(type(message))
        if handler is not None:
            handler(self, ep, message)
        return self._done()

    def timer_fired(self, key: Hashable, now: float, wall_ms: int) -> list[ev.Output]:
        self._tick(now, wall_ms)
        due = self._timers.pop(key, None)
        if due is not None:
            key = cast(tuple[Any, ...], key)  # every key this core sets is a tuple, its kind first
            kind = key[0]
            if kind == "link":
                ep = self._by_link.get(key[1])
                if ep is not None:
                    self._link_timer(ep, lateness=now - due)
            elif kind == "retry":
                ep = next(e for e in self._eps if e.name == key[1])
                if ep.link is None:
                    self._open(ep)
            elif kind == "token_wait" and self._token_refused and self._primary is None:
                refused = sorted(self._token_refused)
                if self._token_wait_again(refused):
                    return self._done()
                self._login_failed("stale_epoch", f"the resume token was refused as stale by {', '.join(refused)}, and "
                                                  f"no other site took it within {self.config.token_retry_wait:g} s",
                                   refused[-1])
            # "login" and "failback" only wake _reconcile up.
        return self._done()

    def _token_wait_again(self, refused: list[str]) -> bool:
        """The wait for a site that would take the refused token ended. If such a site was heard
        during it (its links open but die before its answer: this machine or that site is
        starved, not gone), the login is not given up by timing alone: wait another round, and
        ask the refusing sites again meanwhile (told by their peer since, they may now take the
        lost-ack retry). Only when those sites stayed unreachable the whole wait is the agent asked
        for the password."""
        since = self._token_wait_from
        # An attempt that ran past open_timeout met a slow site (or a blackholed one): timing, not a
        # refusal. It earns another round while the token may still be taken (then it has expired).
        live = self._token_expires_ms is None or self._wall < self._token_expires_ms
        heard = [e.name for e in self._eps if e.name not in self._token_refused
                 and (e.last_rx > since or (live and e.slow_at > since))]
        if not heard:
            return False
        self._emit(ev.ErrorEvent("stale_epoch", f"the resume token was refused as stale by {', '.join(refused)}; "
                                                f"{', '.join(heard)} answered too slowly to take it: still trying",
                                 refused[-1]))
        self._token_refused.clear()
        self._token_wait_from = self._now
        self._set_timer(("token_wait",), self._now + self.config.token_retry_wait)
        return True

    # ------------------------------------------------------------------ read-only view

    def snapshot(self) -> ev.SessionSnapshot:
        status: ev.SessionStatus
        if self._ended:
            status = "ended"
        elif self._logout_requested:
            status = "logging_out"
        elif self._primary is not None and not self._releasing:
            status = "logged_in"
        elif self._move is not None:
            status = "failing_over"
        else:
            status = "logging_in" if self._wants_login else "idle"
        shown = self._primary or next((e for e in self._eps if e.reasons or e.dispositions), None)
        return ev.SessionSnapshot(
            status=status, agent_id=self._agent_id, epoch=self._epoch,
            primary=self._primary.name if self._primary else None, phase=self._phase, agent=self._status,
            links=tuple(ev.LinkInfo(e.name, e.url, e.link, e.role, e.last_heard_ms, e.failures) for e in self._eps),
            pending=tuple((e.request_id, e.intent) for e in self._journal),
            reasons=shown.reasons if shown else (), has_interaction=self.has_interaction,
            held=tuple(ev.HeldInfo(h.interaction, h.accepted_ms, h.notes, h.endpoint, h.epoch,
                                   any(e.intent.action == "complete" for e in self._entries_for(iid)),
                                   h.hold_since_ms, h.transfer)
                       for iid, h in self._held.items()),
            offers=tuple(ev.OfferInfo(o.interaction, o.offered_ms, o.expires_ms, o.endpoint, o.epoch,
                                      o.consult_from, o.consulting)
                         for o in self._offers.values()),
            dispositions=shown.dispositions if shown else (),
            interaction_pending=tuple((e.request_id, e.intent) for e in self._ix_journal),
            queues=self._queues, queues_from=self._queues_from,
            chats=self._chats.info(),
        )

    # ------------------------------------------------------------------ plumbing

    def _tick(self, now: float, wall_ms: int) -> None:
        self._now, self._wall = now, wall_ms

    def _emit(self, output: ev.Output) -> None:
        self._out.append(output)

    def _done(self) -> list[ev.Output]:
        if not self._ended:
            self._reconcile()
        out, self._out = self._out, []
        return out

    def _new_id(self) -> str:
        self._ids += 1
        return f"{self._prefix}-{self._ids}"

    def _set_timer(self, key: Hashable, at: float) -> None:
        if self._timers.get(key) != at:
            self._timers[key] = at
            self._emit(ev.SetTimer(key, at))

    def _cancel_timer(self, key: Hashable) -> None:
        if self._timers.pop(key, None) is not None:
            self._emit(ev.CancelTimer(key))

    def _held_primary(self) -> _Endpoint:
        """The primary, where the caller has checked there is one."""
        assert self._primary is not None, "no primary"
        return self._primary

    def _held_epoch(self) -> int:
        """The login's epoch, where the caller has checked there is a login."""
        assert self._epoch is not None, "no login epoch"
        return self._epoch

    def _send(self, ep: _Endpoint, message: p.Message) -> None:
        assert ep.link is not None, "a message for an endpoint with no link"
        self._emit(ev.Send(ep.link, message))
        ep.last_tx = self._now

    def _request(self, ep: _Endpoint, message: p.Request, kind: str, data: Any = None) -> None:
        ep.pending[message.request_id] = (kind, data)
        self._send(ep, message)

    def _set_role(self, ep: _Endpoint, role: ev.LinkRole) -> None:
        if ep.role != role:
            ep.role = role
            self._emit(ev.LinkRoleChanged(ep.link, ep.name, role, ep.last_heard_ms))

    def _set_phase(self, phase: ev.Phase, target: str | None = None) -> None:
        move = self._move
        assert move is not None, "a failover phase with no move in progress"
        move.target = target if target is not None else move.target
        self._phase = phase
        self._emit(ev.FailoverPhase(phase, move.kind, move.source, move.target, self._now - move.started))
        if phase in ("restored", "idle"):
            self._move = None

    # ------------------------------------------------------------------ links

    def _start(self) -> None:
        if not self._started and not self._ended:
            self._started = True
            for ep in self._eps:
                self._open(ep)

    def _open(self, ep: _Endpoint) -> None:
        self._link_ids += 1
        ep.link, ep.opened, ep.registered, ep.started = self._link_ids, False, False, self._now
        ep.confirm_until = None
        self._by_link[ep.link] = ep
        self._emit(ev.OpenLink(ep.link, ep.name, ep.url))
        self._set_role(ep, "connecting")
        self._arm_link(ep)

    def _beat_terms(self, ep: _Endpoint) -> tuple[float, float, float]:
        """(heartbeat interval, silence timeout, start of the silence) of a registered link. A quiet
        standby (secondary, no login sent on it) is heartbeated every ``standby_heartbeat_interval``
        both ways and lost after three of them; once a login goes on it, the fast terms apply
        again, counted from that moment (its server's last heartbeat may be seconds old)."""
        cfg = self.config
        heard = max(ep.last_rx, ep.watch_from)
        if ep.role == "secondary" and ep is not self._login_ep:
            return cfg.standby_heartbeat_interval, 3 * cfg.standby_heartbeat_interval, heard
        if ep is self._login_ep:  # its server may be busy with a storm of logins: slow is not hung
            return ep.beat_every or cfg.heartbeat_interval, max(cfg.heartbeat_timeout, cfg.login_timeout), heard
        if ep is self._primary and not any(e is not ep and e.registered for e in self._eps):
            # The last site standing (no other registered to move to, none to ask): giving it up
            # would only add a login to its load, the one left after a site died under thousands.
            return ep.beat_every or cfg.heartbeat_interval, max(cfg.heartbeat_timeout, cfg.last_site_timeout), heard
        return ep.beat_every or cfg.heartbeat_interval, cfg.heartbeat_timeout, heard

    def _arm_link(self, ep: _Endpoint) -> None:
        interval, timeout, heard = self._beat_terms(ep)
        if not ep.registered:  # the attempt (connect + register) is bounded by open_timeout
            at = ep.started + self._open_timeout(ep)
        else:
            at = min(ep.last_tx + interval, heard + timeout)
        if ep.confirm_until is not None:  # suspected: judged again at the end of the confirm window
            at = min(ep.confirm_until, ep.last_tx + interval) if ep.registered else ep.confirm_until
        if ep.checking is not None:  # the witness is asked: judged again when its answer is overdue
            at = min(ep.check_until, ep.last_tx + interval)
        self._set_timer(("link", ep.link), at)

    def _open_timeout(self, ep: _Endpoint) -> float:
        """``open_timeout``, doubled for each attempt in a row that ran past its own (at most 4 times
        as long). A site too busy to finish handshakes in time (a morning of thousands of logins on a
        starved pair) is not helped by attempts abandoned and made again: its half-done work is
        wasted and the load it drowns in grows. Reset when an attempt registers."""
        return self.config.open_timeout * (1 << min(ep.slow_attempts, 2))

    def _link_timer(self, ep: _Endpoint, lateness: float) -> None:
        """One lazy timer per link: open timeout, silence timeout, or time to send a Heartbeat.

        Suspect, then confirm: a timer that fired late (by more than ``late_timer``: this process
        was held up, so frames may be waiting unread) does not condemn a silent link at once; it
        gives it a confirm window of one heartbeat interval, during which any frame clears the
        suspicion. The window's own timer opens another only if it too fired a heartbeat interval
        late (stopped again), not merely slow under load: a silent server is lost after
        ``heartbeat_timeout``, or about one interval more when this process is late."""
        cfg, now = self.config, self._now
        interval, timeout, heard = self._beat_terms(ep)
        if not ep.registered:
            expired, why = now >= ep.started + self._open_timeout(ep) - _EPS, "open timeout"
            if expired:
                ep.slow_at = now
                ep.slow_attempts += 1
        else:
            expired, why = now >= heard + timeout - _EPS, "heartbeat timeout"
        if expired and (ep.confirm_until is None or now >= ep.confirm_until - _EPS):
            paused = cfg.late_timer if ep.confirm_until is None else cfg.heartbeat_interval
            if lateness <= paused:
                if not self._ask_witness(ep):
                    self._lose(ep, (p.CloseCode.HEARTBEAT, why))
                    return
                if ep.registered and now >= ep.last_tx + interval - _EPS:
                    self._send(ep, p.Heartbeat())
                self._arm_link(ep)
                return
            ep.confirm_until = now + cfg.heartbeat_interval  # read what arrived before judging
            if ep.registered:  # and the server hears us at once, whatever our own beat
                self._send(ep, p.Heartbeat())
        elif not expired:
            ep.confirm_until = None
        if ep.registered and now >= ep.last_tx + interval - _EPS:
            self._send(ep, p.Heartbeat())
        self._arm_link(ep)

    def _ask_witness(self, ep: _Endpoint) -> bool:
        """The primary ``ep`` is silent past the heartbeat timeout: ask a registered standby's server
        whether the primary is alive and still hears us (``RequestPrimaryCheck``) before moving the
        login. True while its answer is awaited (bounded by ``heartbeat_timeout``); False: lose the
        primary now (no standby to ask, no answer in time, or asked ``witness_rounds`` times
        already while it stayed silent)."""
        if ep.checking is not None:
            if self._now < ep.check_until - _EPS:
                return True
            ep.checking = None
            return False
        standby = next((e for e in self._eps if e is not ep and e.role == "secondary" and e.registered
                        and e.link is not None), None)
        rounds = self.config.witness_rounds
        if ep is not self._primary or self._epoch is None or standby is None or rounds == 0 or ep.vouched > rounds:
            return False
        # Vouched for ``witness_rounds`` times and still silent: the login moves whatever the answer,
        # but the primary is asked to end it first (``release``), so it is never reported beside the new one.
        request_id = self._new_id()
        # The primary hears us now if it can: it answers the standby's question by whether it heard
        # us within its own heartbeat timeout, however rarely we beat it (client_heartbeat_interval).
        self._send(ep, p.Heartbeat())
        ep.checking, ep.check_until = request_id, self._now + self.config.heartbeat_timeout
        self._request(standby, p.RequestPrimaryCheck(request_id=request_id, epoch=self._epoch,
                                                     release=ep.vouched >= rounds), "check", ep)
        return True

    def _ack_check(self, standby: _Endpoint, msg: p.EventAck, primary: _Endpoint) -> None:
        """The witness answered: the primary is alive and hears us (keep it, judged again after
        another heartbeat timeout; it was sent a heartbeat meanwhile), or not (fail over now)."""
        if primary is not self._primary or primary.checking != msg.request_id:
            return  # heard from the primary meanwhile, or lost it: the question is moot
        primary.checking = None
        if msg.primary_alive and primary.vouched < self.config.witness_rounds:
            primary.vouched += 1
            primary.watch_from = self._now
            self._arm_link(primary)
        else:
            self._lose(primary, (p.CloseCode.HEARTBEAT, f"heartbeat timeout ({standby.name} cannot hear it either)"))

    def _refused_check(self, standby: _Endpoint, msg: p.EventError, primary: _Endpoint) -> None:
        """A server without the witness (or a standby withdrawn meanwhile): fail over as before."""
        if primary is self._primary and primary.checking == msg.request_id:
            primary.checking = None
            self._lose(primary, (p.CloseCode.HEARTBEAT, "heartbeat timeout"))

    def _lose(self, ep: _Endpoint, close: tuple[int, str] | None) -> None:
        """The link is gone (or we give it up: ``close``). Never reused; reconnect later."""
        link = ep.link
        assert link is not None, "losing an endpoint that has no link"
        if close is not None:
            self._emit(ev.CloseLink(link, *close))
        self._cancel_timer(("link", link))
        del self._by_link[link]
        was_primary = ep is self._primary
        if was_primary:
            self._offers_gone(ep, "primary_lost")
        if ep is self._login_ep:
            self._login_ep = None
        if was_primary:
            self._primary, self._releasing = None, False
        if not ep.registered:
            ep.failures += 1
        ep.link, ep.opened, ep.registered, ep.reachable, ep.standby_token = None, False, False, False, None
        ep.checking, ep.vouched = None, 0
        ep.pending.clear()
        self._set_timer(("retry", ep.name), self._now + self.config.reconnect_delay(ep.failures, self._rng))
        self._set_role(ep, "reconnecting")
        if was_primary and self._wants_login:
            self._move = _Move("failover", ep.name, self._now)
            self._set_phase("detecting")

    def _end(self, reason: str, by: str | None = None) -> None:
        """The session is over: withdraw standbys, close everything, forget the credentials."""
        for ep in self._eps:
            if ep.link is not None and ep.role == "secondary":
                self._send(ep, p.RequestAgentNotAvailable(request_id=self._new_id()))
        for ep in self._eps:
            if ep.link is not None:
                self._emit(ev.CloseLink(ep.link, p.CloseCode.NORMAL, reason))
                del self._by_link[ep.link]
            ep.link, ep.opened, ep.registered = None, False, False
            ep.pending.clear()
            self._set_role(ep, "down")
        for key in list(self._timers):
            self._cancel_timer(key)
        self._fail(list(self._journal), "logged_out", "the session ended before the intent was applied")
        self._offers_gone(None, "logged_out")
        for entry in list(self._ix_journal):
            self._ix_fail(entry, "logged_out", "the session ended before the intent was applied")
        for iid, held in list(self._held.items()):
            del self._held[iid]
            self._emit(ev.InteractionEnded(iid, "logged_out", None, f"the session ended ({reason})", held.endpoint))
        if self._move is not None:
            self._set_phase("idle")
        self._primary = self._login_ep = None
        self._releasing = self._wants_login = False
        self._token = self._password = None
        self._ended = True
        self._emit(ev.LoggedOut(reason, by))

    # ------------------------------------------------------------------ reconcile

    def _reconcile(self) -> None:
        if self._logout_requested and self._primary is None and self._login_ep is None:
            self._end("logout")
            return
        self._pursue_login()
        self._update_standbys()
        self._flush_journal()
        self._flush_interactions()
        self._flush_chats()
        self._maybe_failback()

    def _login_target(self) -> _Endpoint | None:
        """The first registered endpoint in preference order, skipping endpoints whose link failed;
        an endpoint still in its first attempt is waited for (the preferred site gets its chance)."""
        for ep in self._eps:
            if self._token and ep.name in self._token_refused:
                continue
            if ep.registered:
                return ep
            if ep.reachable is None:
                return None
        return None

    def _pursue_login(self) -> None:
        if not self._wants_login or self._primary is not None or self._login_ep is not None:
            return
        target = self._login_target()
        if target is None:
            return
        holds = [self._retry_login_at] if self._retry_login_at is not None else []
        if target.index > 0 and self.config.backup_delay > 0:
            if self._backup_at is None:
                self._backup_at = self._now + self.config.backup_delay
            holds.append(self._backup_at)
        if holds and self._now < max(holds) - _EPS:
            self._set_timer(("login",), max(holds))
            return
        self._cancel_timer(("login",))
        self._retry_login_at = None
        carried_intent = self._carried_intent()
        state = self._carried_state(carried_intent)
        # Each attempt asks for a higher epoch than the one before: a server can then tell the
        # retry of a lost-ack login from the original arriving late on the link given up.
        epoch = max(self._epoch + 1, self._requested_epoch + 1) if self._epoch is not None else None
        self._requested_epoch = epoch or 0
        credential = {"resume_token": self._token} if self._token else {"password": self._password}
        held = list(self._held.values())
        carried = [p.HeldInteraction(interaction=h.interaction, accepted_ms=h.accepted_ms, notes=h.notes,
                                     hold_since_ms=h.hold_since_ms) for h in held]
        carried = [self._chats.carry(h) for h in carried]  # a chat's transcript, a reply draft
        assert self._agent_id is not None, "a login with no agent"
        message = p.RequestAgentLogin(request_id=self._new_id(), agent_id=self._agent_id, place=self._place,
                                      epoch=epoch, state=state, interactions=carried,
                                      queue_statistics=self.config.queue_statistics, **credential)
        if target.role == "secondary":  # a quiet standby put to use: judged at the fast terms from now
            target.watch_from = self._now
        self._login_ep = target
        self._arm_link(target)
        self._request(target, message, "login", (state, self._token is not None,
                                                 tuple((h.interaction.interaction_id, h.notes, h.notes_by, h.notes_seq)
                                                       for h in held), carried_intent))
        if self._move is not None:
            self._set_phase("logging_in", target.name)

    def _carried_intent(self) -> _Entry | None:
        """The intent the login carries as its state: the last one in the journal (the others are
        superseded by it). None in flight can remain here: a login is sent only with no primary."""
        if not self._journal:
            return None
        last = self._journal[-1]
        self._supersede(self._journal[:-1], last)
        return last

    def _carried_state(self, intent: _Entry | None) -> p.StateSnapshot | None:
        """The state to restore with the login: the carried intent, else the last one a primary
        confirmed, else the initial."""
        if intent is not None:
            return p.StateSnapshot(state=intent.intent.state, since_ms=intent.since_ms, reason=intent.intent.reason)
        if self._status is not None:
            s = self._status
            return p.StateSnapshot(state=s.state, since_ms=s.since_ms, reason=s.reason, until_ms=s.until_ms)
        if self._initial is not None:
            return p.StateSnapshot(state=self._initial.state, since_ms=self._wall, reason=self._initial.reason)
        return None

    def _update_standbys(self) -> None:
        """Announce the agent on every other registered link while logged in; withdraw it when no
        login is wanted."""
        holding = self._primary is not None and not self._releasing and not self._logout_requested
        for ep in self._eps:
            if ep is self._primary or ep is self._login_ep or not ep.registered:
                continue
            if self._wants_login:
                if holding and ep.role == "registered" and ep.standby_token != self._token:
                    assert self._agent_id is not None, "a primary with no agent"
                    ep.standby_token = self._token
                    self._request(ep, p.RequestAgentAvailable(
                        request_id=self._new_id(), agent_id=self._agent_id, resume_token=self._token), "available")
            elif ep.role == "secondary" and not self._logout_requested:
                ep.standby_token = None
                self._request(ep, p.RequestAgentNotAvailable(request_id=self._new_id()), "not_available")
                self._set_role(ep, "registered")

    def _maybe_failback(self) -> None:
        """"when-idle": move the login back to the preferred endpoint once it has been a healthy
        secondary for ``failback_hold`` and the agent is idle. The login here is given up first
        (RequestAgentLogout); the login there follows its ack (invariant 1)."""
        preferred = self._eps[0]
        wanted = (self.config.failback == "when-idle" and self._can_send_intents()
                  and self._primary is not preferred and preferred.role == "secondary"
                  and not self.has_interaction and not self._journal and self._move is None
                  and not self._offers and not self._ix_journal)
        if not wanted:
            if self._failback_at is not None:
                self._failback_at = None
                self._cancel_timer(("failback",))
            return
        if self._failback_at is None:
            self._failback_at = self._now + self.config.failback_hold
            self._set_timer(("failback",), self._failback_at)
        if self._now < self._failback_at - _EPS:
            return
        self._failback_at = None
        self._cancel_timer(("failback",))
        self._releasing = True
        primary = self._held_primary()
        self._move = _Move("failback", primary.name, self._now)
        self._set_phase("logging_in", preferred.name)
        # A handover: the login there is made with this login's resume token, which must stay valid.
        self._request(primary, p.RequestAgentLogout(request_id=self._new_id(), epoch=self._held_epoch(), handover=True),
                      "release")

    def _send_logout(self) -> None:
        self._request(self._held_primary(), p.RequestAgentLogout(request_id=self._new_id(), epoch=self._held_epoch()),
                      "logout")

    # ------------------------------------------------------------------ intent journal

    def _can_send_intents(self) -> bool:
        return self._primary is not None and not self._releasing and not self._logout_requested

    def _in_flight(self, entry: _Entry) -> bool:
        ep = self._by_link.get(entry.sent_on) if entry.sent_on is not None else None
        return ep is not None and entry.wire_id in ep.pending

    def _intent(self, intent: ev.StateIntent, now: float, wall_ms: int) -> list[ev.Output]:
        self._tick(now, wall_ms)
        entry = _Entry(self._new_id(), intent, self._since_for(intent, self._unconfirmed, self._wall))
        if self._ended or self._logout_requested:
            self._emit(ev.IntentFailed(entry.request_id, intent, "logged_out", "the session is logging out or over"))
            return self._done()
        self._unconfirmed.append(entry)
        self._supersede([e for e in self._journal if not self._in_flight(e)], entry)
        self._journal.append(entry)
        self._emit(ev.IntentPending(entry.request_id, intent, queued=not self._can_send_intents()))
        return self._done()

    def _since_for(self, intent: ev.StateIntent, earlier: list[_Entry], otherwise: int) -> int:
        """When the agent entered ``intent``'s state if it takes effect: the earliest moment it was
        in it (as a server last said) or asked for it since then (``earlier``), else ``otherwise``.
        Which of those asks took effect is unknown during a failover, so this errs towards the
        earlier time: time in state may count from a moment the agent asked for the state, but a
        duplicate never restarts it."""
        status = self._status
        times = [e.since_ms for e in earlier if e.intent == intent]
        if status is not None and (status.state, status.reason) == (intent.state, intent.reason):
            times.append(status.since_ms)
        return min(times, default=otherwise)

    def _restart_pending_times(self) -> None:
        """A server said exactly when the current state began: pending intents that continue a state
        take their time from it (or from the pending ones before them), not from a guess."""
        for i, entry in enumerate(self._journal):
            entry.since_ms = self._since_for(entry.intent, self._journal[:i], entry.since_ms)

    def _flush_journal(self) -> None:
        """Send what waits (only the last waiting intent matters) on the current primary."""
        if not self._can_send_intents():
            return
        waiting = [e for e in self._journal if not self._in_flight(e)]
        if waiting:
            last = waiting[-1]
            self._supersede(waiting[:-1], last)
            last.attempts += 1
            primary = self._held_primary()
            last.wire_id, last.sent_on = f"{last.request_id}/{last.attempts}", primary.link
            kind, epoch = last.intent.state, self._held_epoch()
            message: p.Request
            if kind == "ready":
                message = p.RequestAgentReady(request_id=last.wire_id, epoch=epoch)
            elif kind == "not_ready":
                assert last.intent.reason is not None  # StateIntent checks it
                message = p.RequestAgentNotReady(request_id=last.wire_id, epoch=epoch, reason=last.intent.reason)
            else:
                message = p.RequestAgentAfterCallWork(request_id=last.wire_id, epoch=epoch)
            self._request(primary, message, "intent", last)

    def _supersede(self, entries: list[_Entry], by: _Entry) -> None:
        for entry in entries:
            self._journal.remove(entry)
            self._emit(ev.IntentSuperseded(entry.request_id, entry.intent, by.request_id))

    def _fail(self, entries: list[_Entry], code: str, message: str) -> None:
        for entry in entries:
            self._journal.remove(entry)
            self._emit(ev.IntentFailed(entry.request_id, entry.intent, code, message))

    # ------------------------------------------------------------------ interactions

    def _entries_for(self, interaction_id: str) -> list[_IxEntry]:
        return [e for e in self._ix_journal if e.intent.interaction_id == interaction_id]

    def _ix_in_flight(self, entry: _IxEntry) -> bool:
        ep = self._by_link.get(entry.sent_on) if entry.sent_on is not None else None
        return ep is not None and entry.wire_id in ep.pending

    def _ix_fail(self, entry: _IxEntry, code: str, message: str) -> None:
        if entry in self._ix_journal:
            self._ix_journal.remove(entry)
            self._emit(ev.InteractionFailed(entry.request_id, entry.intent, code, message))

    def _ix_intent(self, intent: ev.InteractionIntent, now: float, wall_ms: int) -> list[ev.Output]:
        self._tick(now, wall_ms)
        entry = _IxEntry(self._new_id(), intent, seq=self._ids)
        iid, action = intent.interaction_id, intent.action
        others = self._entries_for(iid)
        refusal = None
        if self._ended or self._logout_requested:
            refusal = ("logged_out", "the session is logging out or over")
        elif action in ("accept", "reject"):
            if iid not in self._offers:
                refusal = ("unknown_interaction", "no such offer (answered, expired, revoked or lost with its server)")
            elif any(e.intent.action in ("accept", "reject") for e in others):
                refusal = ("duplicate", "this offer is already being answered")
        elif iid not in self._held:
            refusal = ("unknown_interaction", "no such interaction in hand")
        elif any(e.intent.action == "complete" for e in others):
            refusal = ("duplicate", "this interaction is already being completed")
        if refusal is not None:
            self._emit(ev.InteractionFailed(entry.request_id, intent, *refusal))
            return self._done()
        if action in ("notes", "complete") or (action == "transfer" and intent.notes is not None):
            held = self._held[iid]
            if intent.notes is None:  # the completion carries the notes saved so far
                entry.intent = intent = replace(intent, notes=held.notes)
            held.notes, held.notes_by, held.notes_seq = intent.notes or "", entry.request_id, entry.seq
            for old in [e for e in others if e.intent.action == "notes" and not self._ix_in_flight(e)]:
                self._ix_journal.remove(old)
                self._emit(ev.InteractionSuperseded(old.request_id, old.intent, entry.request_id))
        self._ix_journal.append(entry)
        self._emit(ev.InteractionPending(entry.request_id, intent, queued=not self._ix_sendable(entry)))
        return self._done()

    def _ix_sendable(self, entry: _IxEntry) -> bool:
        """Offers are answered to the primary that made them; notes and completions go to a primary
        that holds the interaction at the current epoch (accepted or adopted there)."""
        if not self._can_send_intents():
            return False
        iid = entry.intent.interaction_id
        if entry.intent.action in ("accept", "reject"):
            return iid in self._offers and not entry.uncertain
        held = self._held.get(iid)
        if entry.intent.action == "complete" and self._chats.sending(iid):
            return False  # a chat ends after the agent's last lines (each is answered or refused first)
        return held is not None and held.epoch == self._epoch and held.endpoint == self._held_primary().name

    def _flush_interactions(self) -> None:
        for entry in list(self._ix_journal):
            if entry not in self._ix_journal or self._ix_in_flight(entry) or not self._ix_sendable(entry):
                continue
            if entry.intent.action == "notes":  # last write wins: only the newest waiting text goes out
                later = [e for e in self._entries_for(entry.intent.interaction_id) if e.seq > entry.seq
                         and e.intent.action in ("notes", "complete") and not self._ix_in_flight(e)]
                if later:
                    self._ix_journal.remove(entry)
                    self._emit(ev.InteractionSuperseded(entry.request_id, entry.intent, later[-1].request_id))
                    continue
            intent, epoch, iid = entry.intent, self._held_epoch(), entry.intent.interaction_id
            primary = self._held_primary()
            entry.attempts += 1
            entry.wire_id, entry.sent_on = f"{entry.request_id}/{entry.attempts}", primary.link
            message: p.Request
            if intent.action == "accept":
                entry.interaction, entry.accepted_ms = self._offers[iid].interaction, self._wall
                message = p.RequestAccept(request_id=entry.wire_id, epoch=epoch, interaction_id=iid)
            elif intent.action == "reject":
                message = p.RequestReject(request_id=entry.wire_id, epoch=epoch, interaction_id=iid)
            elif intent.action == "notes":
                message = p.RequestUpdateNotes(request_id=entry.wire_id, epoch=epoch, interaction_id=iid,
                                               notes=intent.notes or "")  # InteractionIntent: notes carry a text
            elif intent.action in ev.TRANSFER_ACTIONS:
                message = self._transfer_request(entry.wire_id, epoch, intent)
            else:
                assert intent.disposition is not None  # InteractionIntent checks a completion has one
                message = p.RequestCompleteInteraction(request_id=entry.wire_id, epoch=epoch, interaction_id=iid,
                                                       disposition=intent.disposition, notes=intent.notes or "")
            self._request(primary, message, "ix", entry)

    def _offers_gone(self, ep: _Endpoint | None, reason: str) -> None:
        """The login that received the offers is over: they are void (the server re-queues them).
        An accept in flight there may have been applied: keep that interaction in hand, unconfirmed,
        for the next login to carry."""
        for entry in [e for e in self._ix_journal if e.intent.action in ("accept", "reject")]:
            in_flight = ep is not None and entry.sent_on == ep.link and entry.wire_id in ep.pending
            consult = entry.intent.interaction_id in self._offers and \
                self._offers[entry.intent.interaction_id].consult_from is not None
            if entry.intent.action == "accept" and in_flight and reason == "primary_lost" and not consult:
                assert entry.interaction is not None and entry.accepted_ms is not None  # set when the accept went out
                entry.uncertain = True
                self._held[entry.intent.interaction_id] = _Held(entry.interaction, entry.accepted_ms,
                                                                notes=entry.interaction.notes)
            elif not entry.uncertain:
                self._ix_fail(entry, reason, "the offer was lost with its server")
        for iid, offer in list(self._offers.items()):
            del self._offers[iid]
            if iid not in self._held:
                self._emit(ev.OfferRevoked(iid, reason, "the offering login is over", offer.endpoint))
        for iid, held in self._held.items():  # a consultation ends with the server that held it
            if held.transfer is not None:
                held.transfer = None
                self._emit(ev.TransferChanged(iid, "lost", None, None, None, "the consultation was lost with its "
                                              "server; the interaction stays with you", None))

    def _adopted(self, ep: _Endpoint, epoch: int, carried: Any) -> None:
        """A login that carried interactions was acknowledged: the server holds them now."""
        for iid, notes, notes_by, notes_seq in carried:
            held = self._held.get(iid)
            if held is None:
                continue
            held.endpoint, held.epoch = ep.name, epoch
            accept = next((e for e in self._entries_for(iid) if e.uncertain), None)
            if accept is not None:
                self._ix_journal.remove(accept)
                self._emit(ev.InteractionApplied(accept.request_id, accept.intent, ep.name, epoch))
                self._emit(ev.InteractionStarted(held.interaction, held.accepted_ms, ep.name, epoch))
            else:
                self._emit(ev.InteractionAdopted(iid, ep.name, epoch, notes))
            # Notes up to the carried text arrived with the login; only later ones are still to send.
            for entry in self._entries_for(iid):
                if entry.intent.action != "notes" or entry.seq > notes_seq:
                    continue
                self._ix_journal.remove(entry)
                if entry.request_id == notes_by:
                    self._emit(ev.InteractionApplied(entry.request_id, entry.intent, ep.name, epoch))
                else:
                    self._emit(ev.InteractionSuperseded(entry.request_id, entry.intent, notes_by))
        if carried:
            self._adoption_check = (epoch, frozenset(iid for iid, *_ in carried))

    def _check_adoption(self, ep: _Endpoint, msg: p.EventCurrentAgentStatus) -> None:
        """The first status after a login that carried interactions lists those the server took over;
        one it did not (completed or held elsewhere meanwhile) leaves the agent's hands. A completion
        already in flight is left to its own answer."""
        if self._adoption_check is None or self._adoption_check[0] != msg.epoch:
            return
        carried, self._adoption_check = self._adoption_check[1], None
        listed = set(msg.interaction_ids)
        for iid in sorted(carried - listed):
            entries = self._entries_for(iid)
            if iid not in self._held or any(e.intent.action == "complete" and self._ix_in_flight(e) for e in entries):
                continue
            self._drop_held(iid, "not_adopted", f"{ep.name} did not take the interaction over", ep.name)

    def _drop_held(self, iid: str, reason: str, message: str, endpoint: str | None) -> None:
        self._held.pop(iid, None)
        for entry in self._entries_for(iid):
            self._ix_fail(entry, reason, message)
        self._emit(ev.InteractionEnded(iid, reason, None, message, endpoint))

    def _on_invite(self, ep: _Endpoint, msg: p.EventInvite) -> None:
        if self._current(ep, msg, msg.epoch):
            iid = msg.interaction.interaction_id
            self._offers[iid] = _Offer(msg.interaction, msg.offered_ms, msg.expires_ms, ep.name, msg.epoch,
                                       consult_from=msg.consult_from)
            self._emit(ev.OfferReceived(msg.interaction, msg.offered_ms, msg.expires_ms, ep.name, msg.epoch))

    def _on_revoked(self, ep: _Endpoint, msg: p.EventInviteRevoked) -> None:
        if not self._current(ep, msg, msg.epoch):
            return
        iid = msg.interaction_id
        if iid in self._offers:
            del self._offers[iid]
            for entry in self._entries_for(iid):
                self._ix_fail(entry, msg.reason, msg.message or f"offer {msg.reason}")
            self._emit(ev.OfferRevoked(iid, msg.reason, msg.message, ep.name))
        elif iid in self._held:
            self._drop_held(iid, msg.reason, msg.message, ep.name)

    def _ack_ix(self, ep: _Endpoint, msg: p.EventAck, entry: _IxEntry) -> None:
        if entry not in self._ix_journal:
            return
        self._ix_journal.remove(entry)
        intent, iid, epoch = entry.intent, entry.intent.interaction_id, self._held_epoch()
        self._emit(ev.InteractionApplied(entry.request_id, intent, ep.name, epoch))
        if intent.action in ev.TRANSFER_ACTIONS:
            self._transfer_applied(ep, msg, intent)
        elif intent.action == "accept" and self._consult_accepted(iid):
            pass  # a consultation: in our hands only when its agent completes the transfer
        elif intent.action == "accept" and iid in self._held and self._held[iid].epoch == epoch:
            pass  # a repeated accept of a consultation handed over to us meanwhile: in hand already
        elif intent.action == "accept":
            assert entry.interaction is not None and entry.accepted_ms is not None  # set when the accept went out
            self._offers.pop(iid, None)
            # The server's time of the accept when it says (the handling time counts from it).
            accepted = msg.accepted_ms if msg.accepted_ms is not None else entry.accepted_ms
            self._held[iid] = _Held(entry.interaction, accepted, notes=entry.interaction.notes, endpoint=ep.name,
                                    epoch=epoch)
            self._emit(ev.InteractionStarted(entry.interaction, accepted, ep.name, epoch))
        elif intent.action == "reject":
            self._offers.pop(iid, None)
        elif intent.action == "complete" and self._held.pop(iid, None) is not None:
            for other in self._entries_for(iid):
                self._ix_fail(other, "completed", "the interaction was completed")
            self._emit(ev.InteractionEnded(iid, "completed", intent.disposition, "", ep.name))

    # ------------------------------------------------------------------ hold and transfers

    @staticmethod
    def _transfer_request(wire_id: str, epoch: int, intent: ev.InteractionIntent) -> p.Request:
        iid = intent.interaction_id
        if intent.action == "hold":
            return p.RequestHold(request_id=wire_id, epoch=epoch, interaction_id=iid)
        if intent.action == "resume":
            return p.RequestResume(request_id=wire_id, epoch=epoch, interaction_id=iid)
        if intent.action == "complete_transfer":
            return p.RequestCompleteTransfer(request_id=wire_id, epoch=epoch, interaction_id=iid)
        if intent.action == "cancel_transfer":
            return p.RequestCancelTransfer(request_id=wire_id, epoch=epoch, interaction_id=iid)
        assert intent.kind is not None  # InteractionIntent checks a transfer has one
        return p.RequestTransfer(request_id=wire_id, epoch=epoch, interaction_id=iid, kind=intent.kind,
                                 to_agent=intent.to_agent, to_queue=intent.to_queue, notes=intent.notes)

    def _consult_accepted(self, iid: str) -> bool:
        """Our accept of a consultation was answered: we wait for its agent to hand it over."""
        offer = self._offers.get(iid)
        if offer is None or offer.consult_from is None:
            return False
        offer.consulting = True
        return True

    def _transfer_applied(self, ep: _Endpoint, msg: p.EventAck, intent: ev.InteractionIntent) -> None:
        iid, held = intent.interaction_id, self._held.get(intent.interaction_id)
        if held is None:
            return
        if intent.action in ("hold", "resume"):
            held.hold_since_ms = msg.hold_since_ms if intent.action == "hold" else None
            self._emit(ev.HoldChanged(iid, held.hold_since_ms, ep.name))
        elif intent.action == "cancel_transfer":
            held.transfer = None
        elif intent.action == "complete_transfer" or intent.kind == "blind":
            del self._held[iid]  # it left our hands
            for other in self._entries_for(iid):
                self._ix_fail(other, "transferred", "the interaction was transferred")
            where = intent.to_agent or intent.to_queue
            self._emit(ev.InteractionEnded(iid, "transferred", None, f"transferred to {where}" if where else "",
                                           ep.name))

    def _on_transfer(self, ep: _Endpoint, msg: p.EventTransfer) -> None:
        if not self._current(ep, msg, msg.epoch):
            return
        iid, status = msg.interaction_id, msg.status
        held, offer = self._held.get(iid), self._offers.get(iid)
        if held is not None and msg.from_agent == self._agent_id:
            held.transfer = ev.TransferInfo(status, msg.to_agent, msg.to_queue) \
                if status in ("offered", "accepted") else None
        elif offer is not None and offer.consult_from is not None and status == "completed":
            del self._offers[iid]  # handed over to us: in our hands now, with the notes as handed on
            interaction = offer.interaction if msg.notes is None else \
                msgspec.structs.replace(offer.interaction, notes=msg.notes)
            self._held[iid] = _Held(interaction, msg.at_ms, notes=interaction.notes, endpoint=ep.name,
                                    epoch=msg.epoch)
            self._emit(ev.InteractionStarted(interaction, msg.at_ms, ep.name, msg.epoch))
        self._emit(ev.TransferChanged(iid, status, msg.from_agent, msg.to_agent, msg.to_queue, msg.message, ep.name))

    def _refused_ix(self, ep: _Endpoint, msg: p.EventError, entry: _IxEntry) -> None:
        if msg.code in _LOGIN_GONE:
            self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))
            if ep is self._primary:
                self._lose(ep, (p.CloseCode.NORMAL, f"login lost ({msg.code})"))
            return
        if entry not in self._ix_journal:
            return
        self._ix_fail(entry, msg.code, msg.message)
        iid = entry.intent.interaction_id
        if msg.code == "unknown_interaction":
            if entry.intent.action in ("accept", "reject"):
                if self._offers.pop(iid, None) is not None:
                    self._emit(ev.OfferRevoked(iid, msg.code, msg.message, ep.name))
            elif iid in self._held:
                self._drop_held(iid, msg.code, msg.message, ep.name)

    # ------------------------------------------------------------------ answers

    def _on_ack(self, ep: _Endpoint, msg: p.EventAck) -> None:
        kind, data = ep.pending.pop(msg.request_id, (None, None))
        if kind is not None:
            getattr(self, f"_ack_{kind}")(ep, msg, data)

    def _on_error(self, ep: _Endpoint, msg: p.EventError) -> None:
        kind, data = ep.pending.pop(msg.request_id, (None, None)) if msg.request_id else (None, None)
        if kind is None:
            self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))
        else:
            getattr(self, f"_refused_{kind}")(ep, msg, data)

    def _ack_register(self, ep: _Endpoint, msg: p.EventAck, _: Any) -> None:
        ep.registered, ep.reachable, ep.failures, ep.slow_attempts = True, True, 0, 0
        cfg = self.config
        # Asymmetric terms (docs/protocol.md, "Heartbeats"): the server keeps beating at its interval
        # (we still find it dead after heartbeat_timeout) and judges our silence by three of our beats.
        ep.beat_every = min(cfg.client_heartbeat_interval, msg.suspect_timeout_ms / 3000) \
            if msg.suspect_timeout_ms else cfg.heartbeat_interval
        ep.beat_every = max(ep.beat_every, cfg.heartbeat_interval)
        ep.reasons = tuple(msg.reasons or ())
        ep.dispositions = tuple(msg.dispositions or ())
        self._set_role(ep, "registered")
        self._arm_link(ep)

    def _refused_register(self, ep: _Endpoint, msg: p.EventError, _: Any) -> None:
        self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))  # the server closes the link

    def _ack_login(self, ep: _Endpoint, msg: p.EventAck, data: Any) -> None:
        state, resumed, carried, carried_intent = data
        if msg.epoch is None:  # not a login's answer (docs/protocol.md: it carries the epoch)
            self._emit(ev.ErrorEvent("bad_message", "login acknowledged without an epoch", ep.name))
            self._lose(ep, (p.CloseCode.NORMAL, "login acknowledged without an epoch"))
            return
        assert self._agent_id is not None, "a login with no agent"
        self._token_refused.clear()
        self._cancel_timer(("token_wait",))
        self._login_ep = None
        self._primary = ep
        self._epoch, self._token, self._token_expires_ms = msg.epoch, msg.resume_token, msg.token_expires_ms
        self._password = None
        self._login_failures = 0
        self._retry_login_at = self._backup_at = None
        # What the server now holds, until its EventCurrentAgentStatus says it exactly.
        self._status = ev.AgentStatus(state.state if state else "not_ready", state.reason if state else None,
                                      min(state.since_ms, self._wall) if state else self._wall, msg.epoch, ep.name,
                                      until_ms=state.until_ms if state else None)
        ep.standby_token = None
        self._set_role(ep, "primary")
        self._emit(ev.LoggedIn(self._agent_id, msg.epoch, ep.name, resumed,
                               msg.replaced.server if msg.replaced is not None else None))
        if carried_intent in self._journal:
            self._journal.remove(carried_intent)
            self._emit(ev.IntentApplied(carried_intent.request_id, carried_intent.intent, ep.name, msg.epoch))
        self._adopted(ep, msg.epoch, carried)
        if self._move is not None:
            self._set_phase("restored", ep.name)
        if self._logout_requested:
            self._send_logout()

    def _refused_login(self, ep: _Endpoint, msg: p.EventError, data: Any) -> None:
        _, resumed, _, carried_intent = data
        self._login_ep = None
        if msg.code == "stale_epoch" and resumed:
            self._token_refused.add(ep.name)
            waiting = [e.name for e in self._eps if e.name not in self._token_refused]
            if waiting:  # a lost-ack login may be held there: that site takes this token again
                self._emit(ev.ErrorEvent(msg.code, f"{msg.message} (trying the resume token on {', '.join(waiting)}, "
                                                   "which may hold the login)", ep.name))
                if ("token_wait",) not in self._timers:  # ... if it answers in time
                    self._token_wait_from = self._now
                    self._set_timer(("token_wait",), self._now + self.config.token_retry_wait)
                return
        if msg.code == "invalid_reason":  # this site lacks the Not Ready reason: keep the login, drop it
            self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))
            if carried_intent is not None and carried_intent.intent.reason is not None:
                self._fail([carried_intent], msg.code, msg.message)  # the login is retried without it
                return
            if self._status is not None and self._status.reason is not None:
                self._status = replace(self._status, reason=None)
                return
            if self._initial is not None and self._initial.reason is not None:
                self._initial = ev.StateIntent("not_ready")
                return
        if msg.code in _FATAL_LOGIN or msg.code == "invalid_reason":
            self._login_failed(msg.code, msg.message, ep.name)
            return
        self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))  # transient (internal, rate_limited...)
        self._login_failures += 1
        self._retry_login_at = self._now + self.config.reconnect_delay(self._login_failures, self._rng)

    def _login_failed(self, code: str, message: str, endpoint: str) -> None:
        """The login cannot go on without the agent: say why and forget the credentials."""
        self._emit(ev.LoginFailed(code, message, endpoint))
        self._wants_login = False
        self._password = None
        self._cancel_timer(("token_wait",))
        if code in _TOKEN_REFUSALS:
            self._token = None
            self._token_refused.clear()
        if self._move is not None:
            self._set_phase("idle")

    def _ack_available(self, ep: _Endpoint, msg: p.EventAck, _: Any) -> None:
        if ep is not self._primary and ep is not self._login_ep and ep.role == "registered":
            self._set_role(ep, "secondary")

    def _refused_available(self, ep: _Endpoint, msg: p.EventError, _: Any) -> None:
        self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))  # retried with the next token

    def _ack_not_available(self, ep: _Endpoint, msg: p.EventAck, _: Any) -> None:
        pass

    _refused_not_available = _ack_not_available

    def _ack_intent(self, ep: _Endpoint, msg: p.EventAck, entry: _Entry) -> None:
        if entry not in self._journal:
            return
        self._journal.remove(entry)
        intent, status = entry.intent, self._status
        if status is not None and (status.state, status.reason) != (intent.state, intent.reason):
            # Until the server's status says exactly: never later than the server's own start.
            self._status = ev.AgentStatus(intent.state, intent.reason, entry.since_ms, self._held_epoch(), ep.name)
        self._emit(ev.IntentApplied(entry.request_id, intent, ep.name, self._held_epoch()))

    def _refused_intent(self, ep: _Endpoint, msg: p.EventError, entry: _Entry) -> None:
        if msg.code in _LOGIN_GONE:
            # Our login there is not what we believe: treat the primary as lost and log in again.
            # The intent stays in the journal and goes to the next primary.
            self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))
            if ep is self._primary:
                self._lose(ep, (p.CloseCode.NORMAL, f"login lost ({msg.code})"))
        elif entry in self._journal:
            self._fail([entry], msg.code, msg.message)

    def _ack_logout(self, ep: _Endpoint, msg: p.EventAck, _: Any) -> None:
        self._end("logout")

    def _refused_logout(self, ep: _Endpoint, msg: p.EventError, _: Any) -> None:
        self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))
        self._end("logout")

    def _ack_release(self, ep: _Endpoint, msg: p.EventAck, _: Any) -> None:
        self._offers_gone(ep, "released")
        self._primary, self._releasing = None, False
        self._set_role(ep, "registered")

    def _refused_release(self, ep: _Endpoint, msg: p.EventError, _: Any) -> None:
        self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))
        if msg.code in _LOGIN_GONE:
            self._lose(ep, (p.CloseCode.NORMAL, f"login lost ({msg.code})"))
        else:  # the login is still held here: stay, try again after failback_hold
            self._releasing = False
            self._set_phase("idle")
            if self._logout_requested:  # clicked while the release was in flight: it waited for this
                self._send_logout()

    # ------------------------------------------------------------------ chats and drafts (chat.py)

    def _chat_sendable(self, iid: str) -> bool:
        """Lines and drafts go to a primary that holds the interaction at the current epoch."""
        held = self._held.get(iid)
        return (self._can_send_intents() and held is not None and held.epoch == self._epoch
                and held.endpoint == self._held_primary().name)

    def _flush_chats(self) -> None:
        self._chats.forget_except(set(self._held))
        for iid, chat in self._chats.chats.items():
            if not self._chat_sendable(iid):
                continue
            primary, epoch = self._held_primary(), self._held_epoch()
            if chat.carried is not None:  # held at this epoch: the login that carried the draft was answered
                chat.draft_saved, chat.carried = chat.carried, None
            for out in chat.outbox:
                if out.sent_on == primary.link and out.wire_id in primary.pending:
                    continue  # in flight on this primary
                out.attempts += 1
                out.wire_id, out.sent_on = f"{out.line_id}/{out.attempts}", primary.link
                self._request(primary, p.RequestSendChatMessage(request_id=out.wire_id, epoch=epoch, interaction_id=iid,
                                                                line_id=out.line_id, text=out.text), "chat", (iid, out))
            in_flight = chat.draft_on == primary.link and chat.draft_wire in primary.pending
            if chat.draft != chat.draft_saved and not in_flight:
                chat.draft_wire, chat.draft_sent, chat.draft_on = self._new_id(), chat.draft, primary.link
                self._request(primary, p.RequestUpdateDraft(request_id=chat.draft_wire, epoch=epoch, interaction_id=iid,
                                                            draft=chat.draft), "draft", iid)

    def _chat_line(self, iid: str, line: p.ChatLine) -> None:
        if iid in self._held and self._chats.add(iid, line):
            self._emit(ev.ChatLineAdded(iid, line))

    def _ack_chat(self, ep: _Endpoint, msg: p.EventAck, data: Any) -> None:
        iid, out = data
        chat = self._chats.chats.get(iid)
        if chat is None or out not in chat.outbox or msg.line_seq is None:
            return
        self._chat_line(iid, p.ChatLine(seq=msg.line_seq, line_id=out.line_id, sender="agent", text=out.text,
                                        at_ms=self._wall))

    def _refused_chat(self, ep: _Endpoint, msg: p.EventError, data: Any) -> None:
        iid, out = data
        if msg.code in _LOGIN_GONE:
            self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))
            if ep is self._primary:
                self._lose(ep, (p.CloseCode.NORMAL, f"login lost ({msg.code})"))
            return
        chat = self._chats.chats.get(iid)
        if chat is not None and out in chat.outbox:
            chat.outbox.remove(out)
            self._emit(ev.ChatLineFailed(iid, out.line_id, out.text, msg.code, msg.message))

    def _ack_draft(self, ep: _Endpoint, msg: p.EventAck, iid: Any) -> None:
        chat = self._chats.chats.get(iid)
        if chat is not None:
            chat.draft_saved = chat.draft_sent
            self._emit(ev.DraftSaved(iid, ep.name))

    def _refused_draft(self, ep: _Endpoint, msg: p.EventError, iid: Any) -> None:
        self._emit(ev.ErrorEvent(msg.code, f"draft of {iid} not saved: {msg.message}", ep.name))
        if msg.code in _LOGIN_GONE and ep is self._primary:
            self._lose(ep, (p.CloseCode.NORMAL, f"login lost ({msg.code})"))

    def _on_chat_message(self, ep: _Endpoint, msg: p.EventChatMessage) -> None:
        self._chat_line(msg.interaction_id, msg.line)

    def _on_chat_transcript(self, ep: _Endpoint, msg: p.EventChatTranscript) -> None:
        """After a failover login: the whole transcript (the lines missed meanwhile; our lines that
        were committed before the old primary could answer). The login carried our draft."""
        iid = msg.interaction_id
        if iid not in self._held:
            return
        for line in msg.lines:
            self._chat_line(iid, line)
        chat = self._chats.chat(iid)
        if msg.draft == chat.draft:
            chat.draft_saved = chat.draft

    # ------------------------------------------------------------------ server events

    def _current(self, ep: _Endpoint, msg: p.Message, epoch: int) -> bool:
        """Is this event about our login on our primary? If not, report it ignored."""
        if ep is self._primary and epoch == self._epoch:
            return True
        self._emit(ev.StaleEventIgnored(ep.name, type(msg).__name__, epoch, self._epoch))
        return False

    def _on_status(self, ep: _Endpoint, msg: p.EventCurrentAgentStatus) -> None:
        if self._current(ep, msg, msg.epoch):
            self._status = ev.AgentStatus(msg.state, msg.reason, msg.since_ms, msg.epoch, ep.name, msg.forced_by,
                                          msg.until_ms, msg.extends_left or 0)
            self._unconfirmed = [e for e in self._unconfirmed if e in self._journal]
            self._restart_pending_times()
            self._emit(ev.AgentStateChanged(msg.state, msg.reason, msg.since_ms, msg.epoch, ep.name, msg.forced_by,
                                            msg.until_ms))
            self._check_adoption(ep, msg)

    def _ack_extend(self, ep: _Endpoint, msg: p.EventAck, _: Any) -> None:
        pass  # the EventCurrentAgentStatus that follows carries the new end

    def _refused_extend(self, ep: _Endpoint, msg: p.EventError, _: Any) -> None:
        self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))

    def _ack_targets(self, ep: _Endpoint, msg: p.EventAck, _: Any) -> None:
        if msg.transfer_targets is not None:
            self._emit(ev.TransferTargetsListed(msg.transfer_targets, ep.name))

    def _refused_targets(self, ep: _Endpoint, msg: p.EventError, _: Any) -> None:
        self._emit(ev.ErrorEvent(msg.code, msg.message, ep.name))

    def _on_agent_queues(self, ep: _Endpoint, msg: p.EventAgentQueues) -> None:
        if ep is self._primary:
            self._queues, self._queues_from = tuple(msg.queues), ep.name

    def _on_token(self, ep: _Endpoint, msg: p.EventResumeToken) -> None:
        if self._current(ep, msg, msg.epoch):
            self._token, self._token_expires_ms = msg.resume_token, msg.token_expires_ms
            self._token_refused.clear()

    def _on_forced_logout(self, ep: _Endpoint, msg: p.EventForcedLogout) -> None:
        if not self._current(ep, msg, msg.epoch):
            return
        if msg.reason in _SESSION_ENDING:
            self._end(msg.reason, msg.by)
        else:  # e.g. server_shutdown: the login is lost with this server, not taken by anyone
            self._emit(ev.ErrorEvent(msg.reason, msg.message, ep.name))
            self._lose(ep, (p.CloseCode.NORMAL, f"forced logout ({msg.reason})"))


_HANDLERS: dict[type[p.Message], Callable[[AgentSession, _Endpoint, Any], None]] = {
    p.EventAck: AgentSession._on_ack,
    p.EventError: AgentSession._on_error,
    p.EventCurrentAgentStatus: AgentSession._on_status,
    p.EventResumeToken: AgentSession._on_token,
    p.EventForcedLogout: AgentSession._on_forced_logout,
    p.EventInvite: AgentSession._on_invite,
    p.EventInviteRevoked: AgentSession._on_revoked,
    p.EventAgentQueues: AgentSession._on_agent_queues,
    p.EventChatMessage: AgentSession._on_chat_message,
    p.EventChatTranscript: AgentSession._on_chat_transcript,
    p.EventTransfer: AgentSession._on_transfer,
}
