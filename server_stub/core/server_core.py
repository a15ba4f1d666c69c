"""The interaction server's logic, without sockets, tasks or clocks.

Modelled on the client's ``AgentSession`` and on python-websockets' ``Protocol``: the transport
feeds inputs (a connection opened or closed, a frame received, a password checked, the peer link
up, down or speaking, time passing), each with the time ``now``, and carries out the outputs
(``io.Output``): frames to send, connections to close, passwords to check, frames for the peer.
All state lives here and changes only inside an input, so the transport needs no locks and a
simulated world can run two of these with a fake clock and try to break the invariants of
docs/architecture.md.

Concerns live in their own modules: logins and fencing (``fencing``), answers to retried
requests (``answers``), the reporting stream (``reporting``), replication to the peer
(``peering``) and routing (``routing``). This class holds the connections and turns requests
into calls on them.
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import msgspec

from .. import protocol as p
from ..config import ServerConfig
from ..directory import AgentRecord, Directory, below_guidance
from ..tokens import TokenError, issue_token, peer_proof, verify_token
from . import shared_config
from .answers import AnswerCache
from .center import CenterStream, Make
from .chat import ChatRefusal, ChatStore
from .fencing import EPOCH_LEAP, Fencing, Login
from .io import (
    CheckPassword,
    Close,
    ConnId,
    Now,
    Output,
    PeerClose,
    PeerRedial,
    PeerSend,
    Rehash,
    Send,
    StoreConfig,
)
from .peering import PeerReplication, Refused
from .pool import AgentPool, Sending
from .remote_actions import RemoteActions
from .reporting import ReportingStream
from .routing import (
    COMPLETED,
    HELD,
    MOVING,
    OFFERED,
    EngineRefusal,
    HandOver,
    HeldChanged,
    Offer,
    Remote,
    Report,
    Revoke,
    RoutingEngine,
    SetState,
)
from .rules import rules_version
from .throttle import Throttle
from .transfer_targets import transfer_targets
from .transfers import ConsultOffer, ToPeer, TransferNote, Transfers, queued_row
from .witness import FRESH_S, Witness

log = logging.getLogger("interaction_server")

CloseCode = p.CloseCode
PEER_SYNC_GRACE = 1.0  # seconds a restarted server waits for its peer before accepting logins anyway
# A gap this long between two inputs means this process was stopped (SIGSTOP, a VM pause, swap):
# the silence was ours, and agents may have moved meanwhile.
STALL_S = 1.0
STATISTICS_PERIOD_S = 1.0
MAX_CLIENT_HEARTBEAT_MS = 5_000  # the slowest heartbeat a client may ask for (a silence of 15 s)
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

# After a stall, requests that act for a login wait until the peer has been heard: it may hold
# the agent at a newer epoch now, and then they must be refused, not applied.
_LOGIN_REQUESTS = (p.RequestAgentReady, p.RequestAgentNotReady, p.RequestAgentAfterCallWork, p.RequestAgentLogout,
                   p.RequestAccept, p.RequestReject, p.RequestUpdateNotes, p.RequestCompleteInteraction,
                   p.RequestUpdateDraft, p.RequestSendChatMessage,  # a carrier's (the customer's line) too
                   p.RequestHold, p.RequestResume, p.RequestTransfer, p.RequestCompleteTransfer,
                   p.RequestCancelTransfer)
_PARKED_IN_STALL = (*_LOGIN_REQUESTS, p.RequestExtendAfterCallWork)
_CREDENTIALED = (p.RequestAgentLogin, p.RequestAgentAvailable, p.RequestSubscribeReporting)
_SOCKET_BINDING = (*_CREDENTIALED, p.RequestRegisterClient)
Credentialed = p.RequestAgentLogin | p.RequestAgentAvailable | p.RequestSubscribeReporting
After = tuple[p.Message | Callable[[], None], ...]  # what follows an answer: frames, or work to do
Answer = tuple[p.EventAck, After]


class Refusal(Exception):
    """Raised by a handler to answer its request with EventError and no effect."""

    def __init__(self, code: p.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: p.ErrorCode = code
        self.message = message


class _Silent(Exception):
    """The handler already answered (or closed); send nothing more."""


class _Deferred(Exception):
    """The handler's answer waits for the peer's confirmation of ``records``; ``finish(refused)``
    then gives the answer or raises Refusal."""

    def __init__(self, records: list[p.PeerInteractionRecord], finish: Callable[[Refused], Answer]) -> None:
        super().__init__("deferred")
        self.records = records
        self.finish = finish


class _DeferredMessage(_Deferred):
    """As _Deferred, for another message the peer acknowledges (``make(ack_id)``: a PeerChat)."""

    def __init__(self, make: Callable[[int], p.Message], finish: Callable[[Refused], Answer]) -> None:
        super().__init__([], finish)
        self.make = make


@dataclass
class _Verifying:
    """The one credentialed request of a socket being checked (a token at once, a password off
    the loop), then answered."""

    msg: Credentialed
    check: int = 0  # the password check's number, 0 until one is asked


@dataclass(eq=False)
class Conn:
    """One client socket (or a peer's inbound link) and what the server knows about it."""

    id: ConnId
    label: str  # "address:port" of the client
    opened: float
    hb_interval: float
    hb_timeout: float
    last_rx: float
    last_tx: float
    # A login's socket silent past hb_timeout is only suspect; the login ends after this much.
    client_timeout: float = 0.0
    registered: bool = False
    client_name: str = ""
    principal: AgentRecord | None = None
    kind: Literal["client", "peer"] = "client"
    login: Login | None = None
    standby_for: str | None = None
    reporting: bool = False
    closing: bool = False
    errors: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    answers: AnswerCache = field(default_factory=AnswerCache)
    # Request ids being processed (credentials checked, or the peer awaited) -> how many retry
    # copies arrived meanwhile: each copy gets the original answer when it is sent.
    inflight: dict[str, int] = field(default_factory=dict)
    verifying: _Verifying | None = None
    # (dialing server, our nonce, its nonce) after its PeerHello, until its PeerProof
    peer_challenge: tuple[str, str, str] | None = None
    peer_site: str | None = None  # a peer's inbound link: the site that dialed

    def __str__(self) -> str:
        who = self.principal.id if self.principal else "-"
        return f"conn#{self.id} {self.label} [{who}]"

    @property
    def source(self) -> str:
        return self.label.rsplit(":", 1)[0]


@dataclass(eq=False)
class _OutLink:
    """Our outbound link to one peer (keyed by the URL it dials)."""

    url: str
    nonce: str | None = None  # ours, in the PeerHello, until the peer's challenge is answered
    up_at: float = float("-inf")  # when it last came up
    name: str | None = None  # the peer's site name, once its challenge told it


class ServerCore:
    def __init__(self, config: ServerConfig, directory: Directory, now: Now, *, stream_id: str,
                 nonce: Callable[[], str] = lambda: os.urandom(16).hex(),
                 config_version: p.ConfigVersion | None = None) -> None:
        """``config_version``: the shared configuration's version stored when this site last ran
        (None: never stored; the files are generation 0)."""
        self.config = config.validate()
        self._nonce = nonce  # fresh peer-link challenges (a simulated world passes a seeded one)
        # Our outbound links: the pair's one peer, or every other site of a mesh (docs/multisite.md).
        self.links: dict[str, _OutLink] = {url: _OutLink(url) for url in config.peer_urls}
        self.directory = directory
        self.name = config.name
        self.reasons = {r.code for r in config.reasons}
        self.dispositions = {d.code for d in config.dispositions}
        self.engine = RoutingEngine(config.queues, max_offer_timeouts=config.max_offer_timeouts,
                                    offer_timeout_reason=config.offer_timeout_reason,
                                    orphan_timeout_ms=config.orphan_timeout_ms,
                                    max_waiting_per_queue=config.max_waiting_per_queue,
                                    max_waiting=config.max_waiting, max_live_bytes=config.max_interaction_bytes)
        self._queue_members: defaultdict[str, dict[str, int]] = defaultdict(dict)  # agent -> queue -> penalty
        for queue in config.queues:
            for agent_id, penalty in queue.members:
                self._queue_members[agent_id][queue.name] = penalty
        self.sessions: dict[str, Login] = {}  # agent id -> login here
        self.standby: defaultdict[str, set[ConnId]] = defaultdict(set)
        self.fencing = Fencing(lost_ack_window_ms=config.token_ttl_ms)
        self.agent_answers: defaultdict[str, AnswerCache] = defaultdict(AnswerCache)
        # Password guessing: a few failures are free, then each costs a doubling wait, per account
        # (known or not) and, more leniently, per address (many agents may share one: a locked
        # address still gets a few checks a second, and its agents of the last week none of its
        # lock, so one infected PC cannot lock out its floor).
        self.account_throttle = Throttle(free=5, base_ms=1_000, max_ms=15 * 60_000, forget_after_ms=15 * 60_000)
        self.source_throttle = Throttle(free=100, base_ms=1_000, max_ms=5 * 60_000, forget_after_ms=10 * 60_000,
                                        ration_per_s=2.0, ration_burst=4, trust_ms=7 * 24 * 3_600_000)
        self.reporting = ReportingStream(self.name, config.replay_buffer, stream_id)
        self.center: CenterStream | None = None  # scope "center" (center.py): from its first subscriber on
        self.peer = PeerReplication(self.name, config.peer_ack_timeout_ms / 1000)
        self.peer_name: str | None = None  # the peer's site name, once it has told us its epochs
        self.conns: dict[ConnId, Conn] = {}
        self.peer_inbound: set[ConnId] = set()
        self._now = now
        self._out: list[Output] = []
        self._checks = 0
        self._last_input = now.mono  # a stall shows as a gap between inputs (the transport ticks often)
        # Published again only when they change; the snapshot carries the initial zeros.
        self._last_statistics: list[p.QueueStatistics] | None = self.engine.statistics(now.wall_ms)
        # agent id -> its queues' figures last sent, for the logins that asked (queue_statistics)
        self._agent_queues_sent: dict[str, list[p.QueueStatistics]] = {}
        self._statistics_at = now.mono
        # A restarted server has forgotten every epoch. Logins wait (briefly) until the peer has
        # told us what it holds and has seen, so we never reuse an epoch or split the brain.
        self.synced = not config.peer_urls and not config.bus_url  # on a bus: the sites heard in the grace
        self._heard_full: set[str] = set()  # peers whose fresh full state we read (since start or a stall)
        self._sync_deadline = now.mono + PEER_SYNC_GRACE
        self._awaiting_sync: list[ConnId] = []  # sockets whose login waits for the peer's epochs
        # After a stall: requests acting for logins, held until the peer is heard (or proven gone).
        self.stalled_until: float | None = None
        # When the last stall was seen, and when our outbound peer link last came up: only what a
        # link opened since the stall carries was sent after it (a stopped process's sockets keep
        # whatever arrived while it was stopped, the peer's state of that time included).
        self._stalled_at = float("-inf")
        self._parked: list[tuple[ConnId, p.Request]] = []
        self._parked_answers: list[Callable[[], None]] = []  # the peer's answers to requests from before
        # One agent pool across sites (pool.py, docs/multisite.md): presence told and heard, and
        # interactions handed over to the site of their best member.
        self.pool = AgentPool(self.name, stream_id, now.wall_ms * 1000)
        # The version of our routing rules (rules.py), and the version each peer last told.
        self.rules_version = rules_version(self.config, directory)
        self.peer_rules: dict[str, str] = {}
        self.engine.remote = self._remote_member
        self.engine.on_agent_change = self.pool.changed
        self._reclaim_at: dict[str, float] = {}  # site -> when what we handed to it (unreachable) comes back
        self.chat = ChatStore()  # transcripts and drafts of chats held here or at a peer (chat.py)
        # One configuration across sites (shared_config.py): our version, each peer's, parts arriving.
        self.config_version = self._initial_config_version(config_version)
        self.peer_configs: dict[str, p.ConfigVersion] = {}
        self._config_parts = shared_config.Assembler()
        self._config_pushed: dict[str, tuple[p.ConfigVersion, float]] = {}  # site -> what we sent, on which link
        self._config_published = (self.config_version, self._config_differs())  # what reporting last heard
        # Supervisor actions on agents of other sites, relayed to the agent's site (remote_actions.py).
        self.remote_actions = RemoteActions()
        self.transfers = Transfers(self.engine, self.name)  # hold and transfers (transfers.py)
        self.witness = Witness()  # RequestPrimaryCheck: our peers asked whether a desktop's primary lives

    # ------------------------------------------------------------------ inputs

    def connected(self, conn_id: ConnId, label: str, now: Now) -> list[Output]:
        self._input(now)
        self.conns[conn_id] = Conn(id=conn_id, label=label, opened=now.mono,
                                   hb_interval=self.config.heartbeat_interval_ms / 1000,
                                   hb_timeout=self.config.register_timeout_ms / 1000,
                                   last_rx=now.mono, last_tx=now.mono)
        log.info("%s connected", self.conns[conn_id])
        return self._flush()

    def received(self, conn_id: ConnId, frame: str | bytes, now: Now) -> list[Output]:
        """A frame from a socket (a client's, or the peer's inbound link)."""
        self._input(now)
        conn = self.conns.get(conn_id)
        if conn is None or conn.closing:
            return self._flush()
        conn.last_rx = now.mono
        if conn.login is not None and not conn.login.reachable:
            self._set_reachable(conn.login, True, 0.0)
        try:
            self._dispatch(conn, frame)
        except Exception:  # a bug must cost one request, never the process
            log.exception("%s: internal error", conn)
            self._send(conn, p.EventError(code="internal", message="internal server error; the request had no effect"))
        return self._flush()

    def heard(self, conn_id: ConnId, now: Now) -> None:
        """A frame the transport dropped (rate limit): the socket is alive all the same (a suspect
        login is cleared at the next tick)."""
        conn = self.conns.get(conn_id)
        if conn is not None:
            conn.last_rx = now.mono

    def disconnected(self, conn_id: ConnId, now: Now) -> list[Output]:
        self._input(now)
        conn = self.conns.get(conn_id)
        if conn is not None:
            self._forget(conn)
        return self._flush()

    def password_checked(self, conn_id: ConnId, check: int, ok: bool, now: Now) -> list[Output]:
        self._input(now)
        conn = self.conns.get(conn_id)
        if conn is None or conn.closing or conn.verifying is None or conn.verifying.check != check:
            return self._flush()  # the socket closed meanwhile, or a check it no longer waits for
        msg = conn.verifying.msg
        user_id = _user_id(msg)
        record = self.directory.get(user_id)
        if not ok or record is None:
            self.account_throttle.failed(user_id, self.wall_ms)
            self.source_throttle.failed(conn.source, self.wall_ms)
            self._end_verification(conn)
            self._protocol_error(conn, "bad_credentials", "unknown user or wrong password", msg.request_id)
        else:
            self.account_throttle.succeeded(user_id)
            self.source_throttle.vouch(conn.source, user_id, self.wall_ms)
            if msg.password is not None and below_guidance(record.password_hash):
                self._out.append(Rehash(record.id, msg.password))
            self._run_credentialed(conn, (record, None, None))
        return self._flush()

    def _link(self, peer: str | None) -> _OutLink:
        """The outbound link ``peer`` (a URL given at start; None: the first, as the pair has one)."""
        if peer is None:
            peer = next(iter(self.links), "")
        link = self.links.get(peer)
        if link is None:
            link = self.links[peer] = _OutLink(peer)
        return link

    def peer_link_up(self, now: Now, peer: str | None = None) -> list[Output]:
        """Our outbound link to ``peer`` is open: introduce ourselves with a fresh nonce. The link
        carries nothing else until the peer has proved the secret over it (PeerChallenge)."""
        self._input(now)
        link = self._link(peer)
        link.up_at = now.mono
        link.nonce = self._nonce()
        self._out.append(PeerSend(p.encode(p.PeerHello(server=self.name, nonce=link.nonce)), to=link.url))
        return self._flush()

    def peer_link_message(self, message: p.Message, now: Now, peer: str | None = None) -> list[Output]:
        """What ``peer`` answers on our outbound link (it tells its own news on its own link)."""
        self._input(now)
        link = self._link(peer)
        if isinstance(message, p.PeerChallenge):
            self._peer_challenged(message, link)
        elif link.url not in self.peer.up:
            return self._flush()  # nothing counts before the peer proved itself
        elif isinstance(message, p.PeerAgentEpochs):
            self._peer_epochs_received(message, fresh=link.up_at >= self._stalled_at)
        elif isinstance(message, p.PeerInteractions):
            self._peer_interactions_received(message, reply_to=None)
        elif isinstance(message, p.PeerInteractionsAck):
            self.peer.answered(message.ack_id, frozenset(message.refused), link.url)
        elif isinstance(message, p.PeerPresence):
            self._peer_presence(message)
        elif isinstance(message, p.PeerHandoverAck):
            self._handed_over(message)
        elif isinstance(message, p.PeerChat):
            self._peer_chat(message, reply_to=None)
        elif isinstance(message, p.PeerConfig):
            self._peer_config(message)
        elif isinstance(message, p.PeerForceAck):
            self._forced_there(message)
        elif isinstance(message, p.PeerWitnessAck):
            self._witness_answered(message)
        return self._flush()

    def peer_link_down(self, now: Now, peer: str | None = None) -> list[Output]:
        self._input(now)
        link = self._link(peer)
        if link.url in self.peer.up:
            log.info("peer link to %s lost", link.url)
        self.peer.link_lost(link.url)
        if link.name is not None:
            self._config_pushed.pop(link.name, None)
            self._witness_lost(link.name)
            self._peer_unreachable(link.name)
        return self._flush()

    def tick(self, now: Now) -> list[Output]:
        """Time passes: heartbeats, silent sockets, timers of offers and tokens, statistics."""
        self._input(now)
        mono = now.mono
        self._apply(self.engine.tick(now.wall_ms))
        self._apply(self.transfers.tick(now.wall_ms))
        if mono - self._statistics_at >= STATISTICS_PERIOD_S:
            self._statistics_at = mono
            self._publish_statistics()
        if not self.synced and mono >= self._sync_deadline:
            self._peer_synced()
        if self.stalled_until is not None and mono >= self.stalled_until:
            log.warning("the peer was not heard since the stall; going ahead without it")
            self._end_stall()
        self._hand_over_again(mono)
        for site, at in list(self._reclaim_at.items()):
            if mono >= at:
                del self._reclaim_at[site]
                if not self._site_linked(site):
                    self._apply(self.engine.reclaim(site, now.wall_ms))
        self._judge_parked_checks()
        for asked in self.witness.expired(mono):
            # Slow, not dead: a primary whose peer link still carries its heartbeats runs, and is
            # only too loaded to answer in time; moving its logins would load the pair more. The
            # desktop keeps it one more round (a real hang stops the peer link too: "no" then).
            slow = self._link_to(asked.site) is not None and self._peer_silent_for(asked.site) <= FRESH_S
            self._primary_checked(asked.conn, asked.request_id, slow, f"{asked.site} did not answer in time, "
                                  + ("but its peer link is alive" if slow else "and its peer link is silent"))
        late = self.peer.expire(mono)
        if late:
            log.warning("the peer did not confirm %d request(s) in time; going ahead", late)
        self._refresh_tokens(mono)
        self._relays_expire(mono)
        heartbeat: str | None = None
        for conn in list(self.conns.values()):
            if conn.closing:
                continue
            # Heartbeats do not stand in for registering: the open timeout runs from the open.
            unregistered = not conn.registered and mono - conn.opened > conn.hb_timeout
            silence = mono - conn.last_rx
            login = conn.login
            # Asymmetric liveness (docs/failover.md): a login's desktop silent past the heartbeat
            # timeout is suspect (offered nothing, reported unreachable); it is logged out only
            # after the client timeout. A paused desktop that is heard again simply goes on.
            if login is not None and (silence > conn.hb_timeout) == login.reachable \
                    and silence <= conn.client_timeout:
                self._set_reachable(login, not login.reachable, silence)
            # A standby is kept as long (nothing is reported about it): a paused desktop then finds
            # both its links as it left them, and an overloaded site is spared the reconnects.
            agent = login is not None or conn.standby_for is not None
            if silence > (conn.client_timeout if agent else conn.hb_timeout) or unregistered:
                what = "did not register" if not conn.registered else "silent"
                since = conn.opened if unregistered else conn.last_rx
                log.info("%s: %s for %.1f s, closing", conn, what, mono - since)
                self._close(conn, CloseCode.HEARTBEAT, "heartbeat timeout")
                # A hung client (or peer server) never answers the close: handle the disconnect
                # now (logout reported, peer's logins forgotten), not when the handshake gives up.
                self._forget(conn)
            elif conn.registered and mono - conn.last_tx >= (
                    conn.hb_interval if conn.standby_for is None else p.STANDBY_HEARTBEAT_MS / 1000):
                heartbeat = heartbeat or p.encode(p.Heartbeat())
                self._send_frame(conn, heartbeat)
        return self._flush()

    def reload(self, config: ServerConfig, directory: Directory, now: Now) -> list[Output]:
        """The site's files were read again (SIGHUP; e.g. after ``interaction-server add-agent``):
        the new rules apply from now on, without a restart, and the other sites hear the new rules
        version with a full presence snapshot (docs/multisite.md, "One configuration")."""
        self._input(now)
        config = config.validate()
        changed = shared_config.digest(config, directory)
        if changed == self.config_version.digest:
            if self._own(config) == self.config:
                log.info("site files read again: no change to the shared configuration (version %s)",
                         _version_text(self.config_version))
            else:  # only this site's own settings changed: applied here, nothing to tell the others
                log.info("site files read again: this site's settings changed, the shared configuration did not "
                         "(version %s)", _version_text(self.config_version))
                self._apply_rules(config, directory)
            return self._flush()
        generation = max([self.config_version.generation, *(v.generation for v in self.peer_configs.values())]) + 1
        self.config_version = p.ConfigVersion(generation=generation, origin=self.name, digest=changed)
        log.info("shared configuration changed here: version %s, sent to every linked site",
                 _version_text(self.config_version))
        self._out.append(StoreConfig(config, directory, self.config_version, files=False))
        self._apply_rules(config, directory, push=True)
        self._config_status()
        return self._flush()

    def _apply_rules(self, config: ServerConfig, directory: Directory, push: bool = False) -> None:
        """New shared rules from now on (read from the files, or taken from another site)."""
        self.config = self._own(config)
        self.directory = directory
        self.reasons = {r.code for r in config.reasons}
        self.dispositions = {d.code for d in config.dispositions}
        self._queue_members = defaultdict(dict)
        for queue in config.queues:
            for agent_id, penalty in queue.members:
                self._queue_members[agent_id][queue.name] = penalty
        penalties = {agent_id: self._penalties(directory.get(agent_id) or session.agent)
                     for agent_id, session in self.sessions.items()}
        self._apply(self.engine.reconfigure(config.queues, penalties, self.wall_ms))
        differed = set(self.rules_differ)
        before, self.rules_version = self.rules_version, rules_version(self.config, directory)
        log.info("rules reloaded: version %s (was %s)", self.rules_version, before)
        for site in self.peer_rules:
            self._say_rules(site, site in differed)
        self._apply(self.engine.route(self.wall_ms))  # to agents of sites that agree now
        for link in self.links.values():
            if push and link.name is not None:
                self._push_config(link)
            self._peer_send_to(link, self.presence_snapshot())

    def _own(self, config: ServerConfig) -> ServerConfig:
        """``config`` as this server runs it: what this server is (name, address, peers, secret,
        TLS) stays; the rules change."""
        return replace(config, name=self.config.name, host=self.config.host, port=self.config.port,
                       peer_url=self.config.peer_url, more_peers=self.config.more_peers, bus_url=self.config.bus_url,
                       secret=self.config.secret, tls_cert=self.config.tls_cert, tls_key=self.config.tls_key,
                       ca_file=self.config.ca_file)

    def _set_reachable(self, session: Login, reachable: bool, silence: float) -> None:
        """A login's desktop went silent past the heartbeat timeout, or was heard again: reported
        on the reporting stream (the state unchanged), and offered nothing meanwhile."""
        session.reachable = reachable
        agent_id = session.agent.id
        if reachable:
            log.info("agent %s heard again: offerable", agent_id)
        else:
            log.info("agent %s not heard for %.1f s: suspect, offered nothing (logged out after %.0f s)", agent_id,
                     silence, self.config.client_timeout_ms / 1000)
        self._publish(lambda seq: p.EventAgentStateChanged(
            server=self.name, seq=seq, agent_id=agent_id, epoch=session.epoch, state=session.state,
            since_ms=session.since_ms, reason=session.reason, reachable=reachable))
        self._apply(self.engine.set_reachable(agent_id, reachable, self.wall_ms))

    def shutdown(self, now: Now) -> list[Output]:
        """The server is stopping: end every login (reported), offer nothing more."""
        self._input(now)
        self.engine.hold(2**62)  # no offers to agents being logged out by the shutdown
        for session in list(self.sessions.values()):
            self._end_session(session, "server_shutdown", "server shutting down", close=False)
        return self._flush()

    # ------------------------------------------------------------------ plumbing

    def _input(self, now: Now) -> None:
        gap = now.mono - self._last_input
        self._now = now
        self._last_input = now.mono
        if gap > STALL_S:
            self._stalled(gap)

    def _flush(self) -> list[Output]:
        if self.pool.dirty:
            self._tell_presence()
        out, self._out = self._out, []
        return out

    @property
    def wall_ms(self) -> int:
        return self._now.wall_ms

    def _send(self, conn: Conn, message: p.Message) -> str:
        frame = p.encode(message)
        self._send_frame(conn, frame)
        return frame

    def _send_frame(self, conn: Conn, frame: str) -> None:
        if conn.closing:
            return
        conn.last_tx = self._now.mono
        self._out.append(Send(conn.id, frame))

    def _peer_send(self, message: p.Message) -> None:
        """Tell every linked peer."""
        if self.peer.link_up:
            self._out.append(PeerSend(p.encode(message)))

    def _peer_send_to(self, link: _OutLink, message: p.Message) -> None:
        if link.url in self.peer.up:
            self._out.append(PeerSend(p.encode(message), to=link.url))

    def _link_to(self, site: str) -> _OutLink | None:
        """Our outbound link to the site named ``site``, if it is up."""
        return next((link for link in self.links.values() if link.name == site and link.url in self.peer.up), None)

    def _site_linked(self, site: str) -> bool:
        """Does either direction of a link with ``site`` stand?"""
        return self._link_to(site) is not None or any(
            self.conns[c].peer_site == site for c in self.peer_inbound if c in self.conns)

    def _close(self, conn: Conn, code: CloseCode, reason: str) -> None:
        if conn.closing:
            return
        conn.closing = True
        conn.verifying = None  # a closing socket's queued password check would only cost others time
        self._out.append(Close(conn.id, code, reason))

    def _forget(self, conn: Conn) -> None:
        """The socket is gone (or given up): what it held ends."""
        if self.conns.pop(conn.id, None) is None:
            return
        conn.closing = True
        conn.verifying = None
        self.peer_inbound.discard(conn.id)
        self.reporting.subscribers.discard(conn.id)
        if self.center is not None:
            self.center.stream.subscribers.discard(conn.id)
        site = conn.peer_site
        if conn.kind == "peer" and site is not None and not any(
                self.conns[c].peer_site == site for c in self.peer_inbound if c in self.conns):
            self.fencing.peer_forget(site)  # that peer's logins are unknown now, not still valid
            self.pool.site_lost(site)
            if self.center is not None:
                self._center_events(self.center.site_lost(site))
            self.engine.peer_lost(self.wall_ms, site)
            self._peer_unreachable(site)
        if conn.standby_for is not None:
            self.standby[conn.standby_for].discard(conn.id)
        if conn.login is not None:
            self._end_session(conn.login, "disconnected", "link lost", close=False)

    def _protocol_error(self, conn: Conn, code: p.ErrorCode, message: str, request_id: str | None,
                        retry_after_ms: int | None = None) -> None:
        log.info("%s: %s: %s", conn, code, message)
        self._answered(conn, request_id, self._send(conn, p.EventError(code=code, message=message,
                                                                         request_id=request_id,
                                                                         retry_after_ms=retry_after_ms)))
        mono = self._now.mono
        conn.errors.append(mono)
        window = self.config.error_window_ms / 1000
        if sum(1 for t in conn.errors if mono - t <= window) > self.config.max_errors:
            self._close(conn, CloseCode.TOO_MANY_ERRORS, "too many protocol errors")

    def _answered(self, conn: Conn, request_id: str | None, frame: str) -> None:
        """The answer again for each retry copy that arrived while its request was in flight."""
        if request_id is None:
            return
        for _ in range(conn.inflight.pop(request_id, 0)):
            self._send_frame(conn, frame)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, conn: Conn, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self._protocol_error(conn, "bad_message", "binary frames are not accepted; send JSON text frames", None)
            return
        try:
            msg = p.decode_client(frame)
        except p.ProtocolError as exc:
            self._protocol_error(conn, exc.code, exc.message, exc.request_id)
            return
        if isinstance(msg, p.Heartbeat):
            return
        if isinstance(msg, p.PeerHello):
            self._peer_hello(conn, msg)
            return
        if isinstance(msg, p.PeerProof):
            self._peer_proof(conn, msg)
            return
        if isinstance(msg, p.PeerChallenge):
            self._protocol_error(conn, "forbidden", "PeerChallenge answers a PeerHello on a link this server dialed",
                                 None)
            return
        if isinstance(msg, (p.PeerWitness, p.PeerWitnessAck)):
            if conn.kind != "peer" or isinstance(msg, p.PeerWitnessAck):
                self._protocol_error(conn, "forbidden", f"{type(msg).__name__} belongs on a peer link: the witness "
                                     "asks on the link it dialed, the primary answers on the same link", None)
            else:
                self._send(conn, self._witness_asked(msg))
            return
        if isinstance(msg, (p.PeerAgentEpochs, p.PeerInteractions, p.PeerInteractionsAck, p.PeerPresence,
                            p.PeerHandover, p.PeerHandoverAck, p.PeerChat, p.PeerConfig, p.PeerForce,
                            p.PeerForceAck, p.PeerConsult, p.PeerConsultUpdate)):
            if conn.kind != "peer":
                self._protocol_error(conn, "forbidden", "peer messages need a peer link (PeerHello)", None)
            elif isinstance(msg, p.PeerChat):
                self._peer_chat(msg, reply_to=conn)
            elif isinstance(msg, p.PeerConfig):
                self._peer_config(msg)
            elif isinstance(msg, p.PeerForce):
                self._send(conn, self._forced_here(msg))
            elif isinstance(msg, (p.PeerConsult, p.PeerConsultUpdate)):
                self._peer_consult(msg)
            elif isinstance(msg, p.PeerPresence):
                self._peer_presence(msg)
            elif isinstance(msg, p.PeerHandover):
                self._send(conn, self._take_over(msg))
            elif isinstance(msg, p.PeerAgentEpochs):
                self._peer_epochs_received(msg, fresh=conn.opened >= self._stalled_at)
            elif isinstance(msg, p.PeerInteractions):
                self._peer_interactions_received(msg, reply_to=conn)
            return
        assert isinstance(msg, p.Request)
        self._request(conn, msg)

    def _request(self, conn: Conn, msg: p.Request) -> None:
        request_id = msg.request_id
        cached = conn.answers.get(request_id)
        if cached is None and conn.principal and not isinstance(msg, _SOCKET_BINDING):
            cached = self.agent_answers[conn.principal.id].get(request_id)
        if cached is not None:
            self._send_frame(conn, cached)  # a retry: the original answer, no second effect
            return
        if request_id in conn.inflight:  # a retry of a request still in flight: it gets the same answer
            conn.inflight[request_id] += 1
            return
        if not conn.registered and not isinstance(msg, p.RequestRegisterClient):
            self._protocol_error(conn, "not_registered", "send RequestRegisterClient first", request_id)
            return
        if isinstance(msg, _CREDENTIALED):
            self._credentialed(conn, msg)
            return
        if self.stalled_until is not None and isinstance(msg, _PARKED_IN_STALL) and (
                conn.login is not None or (isinstance(msg, p.RequestSendChatMessage) and conn.reporting)):
            # A customer's line too: the chat's agent may have moved with it meanwhile.
            conn.inflight[request_id] = 0
            self._parked.append((conn.id, msg))
            return
        self._answer(conn, msg, lambda: self._handle(conn, msg))

    def _handle(self, conn: Conn, msg: p.Request) -> Answer:
        if isinstance(msg, p.RequestRegisterClient):
            return self._register(conn, msg)
        if isinstance(msg, p.RequestAgentNotAvailable):
            return self._not_available(conn, msg)
        if isinstance(msg, p.RequestPrimaryCheck):
            return self._primary_check(conn, msg)
        if isinstance(msg, p.RequestAgentReady):
            return self._set_state(conn, msg, "ready")
        if isinstance(msg, p.RequestAgentNotReady):
            return self._set_state(conn, msg, "not_ready", msg.reason)
        if isinstance(msg, p.RequestAgentAfterCallWork):
            return self._set_state(conn, msg, "after_call_work")
        if isinstance(msg, p.RequestExtendAfterCallWork):
            return self._extend_acw(conn, msg)
        if isinstance(msg, p.RequestAgentLogout):
            return self._logout(conn, msg)
        if isinstance(msg, p.RequestForceNotReady):
            return self._force_not_ready(conn, msg)
        if isinstance(msg, p.RequestForceLogout):
            return self._force_logout(conn, msg)
        if isinstance(msg, p.RequestAccept):
            return self._accept(conn, msg)
        if isinstance(msg, p.RequestReject):
            return self._reject(conn, msg)
        if isinstance(msg, p.RequestUpdateNotes):
            return self._update_notes(conn, msg)
        if isinstance(msg, p.RequestCompleteInteraction):
            return self._complete(conn, msg)
        if isinstance(msg, p.RequestSubmitInteraction):
            return self._submit(conn, msg)
        if isinstance(msg, p.RequestSendChatMessage):
            return self._chat_line(conn, msg)
        if isinstance(msg, p.RequestUpdateDraft):
            return self._update_draft(conn, msg)
        if isinstance(msg, (p.RequestHold, p.RequestResume)):
            return self._hold(conn, msg)
        if isinstance(msg, p.RequestTransfer):
            return self._transfer(conn, msg)
        if isinstance(msg, (p.RequestCompleteTransfer, p.RequestCancelTransfer)):
            return self._end_transfer(conn, msg)
        if isinstance(msg, p.RequestTransferTargets):
            return self._transfer_targets(conn, msg)
        raise Refusal("unknown_type", f"{type(msg).__name__} is not handled by this server")

    def _answer(self, conn: Conn, msg: p.Request, handler: Callable[[], Answer]) -> None:
        try:
            ack, after = handler()
        except _Silent:
            return
        except _Deferred as deferred:
            self._defer(conn, msg, deferred)
            return
        except Refusal as refusal:
            self._protocol_error(conn, refusal.code, refusal.message, msg.request_id)
            return
        self._deliver(conn, msg, ack, after)

    def _defer(self, conn: Conn, msg: p.Request, deferred: _Deferred) -> None:
        """Answer once the peer confirmed (or did not answer in time: then it is taken as down)."""
        def on_answer(refused: Refused) -> None:
            if self.stalled_until is not None:  # we stopped meanwhile: the peer may have gone on
                self._parked_answers.append(lambda: on_answer(refused))
                return
            conn.inflight.pop(msg.request_id, None)
            try:
                ack, after = deferred.finish(refused)
            except Refusal as refusal:
                self._protocol_error(conn, refusal.code, refusal.message, msg.request_id)
                return
            except Exception:
                log.exception("%s: internal error", conn)
                self._answered(conn, msg.request_id, self._send(conn, p.EventError(
                    code="internal", message="internal server error; the request had no effect",
                    request_id=msg.request_id)))
                return
            self._deliver(conn, msg, ack, after)

        frame = (self.peer.frame_message(deferred.make, self._now.mono, on_answer)
                 if isinstance(deferred, _DeferredMessage) else self.peer.frame(deferred.records, self._now.mono,
                                                                                on_answer))
        if frame is None:  # no peer to wait for
            on_answer(frozenset())
            return
        conn.inflight.setdefault(msg.request_id, 0)
        self._out.append(PeerSend(frame))

    def _deliver(self, conn: Conn, msg: p.Request, ack: p.EventAck, after: After) -> None:
        frame = self._send(conn, ack)
        conn.answers.remember(msg.request_id, frame)
        self._answered(conn, msg.request_id, frame)
        if conn.principal and not isinstance(msg, _SOCKET_BINDING):
            self.agent_answers[conn.principal.id].remember(msg.request_id, frame)
        for event in after:
            if callable(event):  # work that must follow the answer (an offer after a login)
                event()
            else:
                self._send(conn, event)

    # ------------------------------------------------------------------ credentials

    def _credentialed(self, conn: Conn, msg: Credentialed) -> None:
        if (msg.password is None) == (msg.resume_token is None):
            self._protocol_error(conn, "bad_message", f"{type(msg).__name__} needs exactly one of password and "
                                                      f"resume_token", msg.request_id)
            return
        if conn.verifying is not None:
            self._protocol_error(conn, "login_in_progress", "another credentialed request on this socket is still "
                                 "being verified; wait for its answer", msg.request_id)
            return
        conn.inflight[msg.request_id] = 0
        conn.verifying = _Verifying(msg)
        if isinstance(msg, p.RequestAgentLogin) and not self.synced:
            self._awaiting_sync.append(conn.id)
            return
        self._authenticate(conn)

    def _authenticate(self, conn: Conn) -> None:
        assert conn.verifying is not None
        msg = conn.verifying.msg
        user_id = _user_id(msg)
        record = self.directory.get(user_id)
        if msg.resume_token is not None:
            try:
                claim = verify_token(self.config.secret, msg.resume_token, self.wall_ms)
                if claim.agent_id != user_id or record is None:
                    raise Refusal("invalid_token", "resume token belongs to another user")
                if not isinstance(msg, p.RequestSubscribeReporting) and self.fencing.voided(user_id, claim.site,
                                                                                            claim.epoch):
                    raise Refusal("invalid_token", f"the login of this token (epoch {claim.epoch}) was logged out; "
                                                   f"log in with the password")
            except (TokenError, Refusal) as exc:
                self._end_verification(conn)
                code: p.ErrorCode = "invalid_token" if exc.code == "invalid_token" else "token_expired"
                self._protocol_error(conn, code, str(exc), msg.request_id)
                return
            self._run_credentialed(conn, (record, claim.epoch, claim.site))
            return
        assert msg.password is not None
        # The account first: a locked account's attempts never spend its address's few checks.
        wait = (self.account_throttle.wait_ms(user_id, self.wall_ms)
                or self.source_throttle.admit(conn.source, self.wall_ms, user_id))
        if wait:  # refused at once, the same for known and unknown ids: no password check to time
            self._end_verification(conn)
            self._protocol_error(conn, "too_many_attempts", f"too many failed logins; try again in "
                                 f"{(wait + 999) // 1000} s", msg.request_id, retry_after_ms=wait)
            return
        self._checks += 1
        conn.verifying.check = self._checks
        hash_ = record.password_hash if record else _DUMMY_HASH  # same cost for unknown ids
        self._out.append(CheckPassword(conn.id, self._checks, msg.password, hash_, type(msg).__name__, conn.source))

    def _end_verification(self, conn: Conn) -> None:
        """The check is over; retry copies (``inflight``) get the answer that follows."""
        conn.verifying = None

    def _run_credentialed(self, conn: Conn, auth: tuple[AgentRecord, int | None, str | None]) -> None:
        assert conn.verifying is not None
        msg = conn.verifying.msg
        self._end_verification(conn)
        if isinstance(msg, p.RequestAgentLogin):
            self._answer(conn, msg, lambda: self._login(conn, msg, auth))
        elif isinstance(msg, p.RequestAgentAvailable):
            self._answer(conn, msg, lambda: self._available(conn, msg, auth[0]))
        else:
            self._answer(conn, msg, lambda: self._subscribe(conn, msg, auth[0]))

    def _peer_synced(self) -> None:
        self.synced = True
        waiting, self._awaiting_sync = self._awaiting_sync, []
        for conn_id in waiting:
            conn = self.conns.get(conn_id)
            if conn is not None and not conn.closing and conn.verifying is not None:
                self._authenticate(conn)

    # ------------------------------------------------------------------ stalls

    def _stalled(self, seconds: float) -> None:
        """This process was stopped: agents have probably moved meanwhile. Every socket gets a
        fresh timeout (the silence was ours); nothing is offered, and no request acting for a
        login is applied, until the peer has told us its epochs (which fences the logins that
        moved) or a heartbeat timeout has passed without hearing it."""
        for conn in self.conns.values():
            conn.last_rx = self._now.mono
        if self.stalled_until is not None:
            return
        log.warning("stalled for %.1f s: no offers until the peer is heard", seconds)
        timeout_ms = self.config.heartbeat_timeout_ms
        self.engine.hold(self.wall_ms + timeout_ms)
        if self.links:
            # Logins wait for the peers too: one may hold the agent at an epoch we never heard of.
            self.stalled_until = self._sync_deadline = self._now.mono + timeout_ms / 1000
            self._stalled_at = self._now.mono
            self.synced = False
            self._heard_full.clear()
            self._out.append(PeerRedial())

    def _end_stall(self) -> None:
        self.stalled_until = None
        self.engine.hold(0)
        answers, self._parked_answers = self._parked_answers, []
        for answer in answers:  # finished now that we heard what the peer did meanwhile
            answer()
        parked, self._parked = self._parked, []
        for conn_id, msg in parked:
            conn = self.conns.get(conn_id)
            if conn is None or conn.closing:
                continue  # the socket went meanwhile: its login ended with it
            self._answer(conn, msg, functools.partial(self._handle, conn, msg))

    # ------------------------------------------------------------------ session handlers

    def _register(self, conn: Conn, msg: p.RequestRegisterClient) -> Answer:
        if conn.registered:
            raise Refusal("already_registered", "this socket is already registered")
        if msg.protocol_version != p.PROTOCOL_VERSION:
            self._send(conn, p.EventError(code="unsupported_version", request_id=msg.request_id,
                                          message=f"this server speaks protocol version {p.PROTOCOL_VERSION}"))
            self._close(conn, CloseCode.UNSUPPORTED_VERSION, "unsupported protocol version")
            raise _Silent()
        conn.registered = True
        conn.client_name = msg.client_name
        # A client may slow its heartbeats (a metered link) but not past MAX_CLIENT_HEARTBEAT_MS: a
        # silence allowed longer than that is a stranded agent nobody notices.
        interval = min(msg.heartbeat_interval_ms or self.config.heartbeat_interval_ms, MAX_CLIENT_HEARTBEAT_MS)
        timeout = max(self.config.heartbeat_timeout_ms, 3 * interval)
        # Asymmetric terms: a client may beat rarer than we do (we keep beating at ``interval``, so
        # it still finds us dead after ``timeout``); its silence is judged by three of its beats.
        client_every = min(max(msg.client_heartbeat_interval_ms or interval, interval), MAX_CLIENT_HEARTBEAT_MS)
        suspect = max(timeout, 3 * client_every)
        keep = max(self.config.client_timeout_ms, suspect)  # a slow heartbeat never shortens it
        conn.hb_interval, conn.hb_timeout, conn.client_timeout = interval / 1000, suspect / 1000, keep / 1000
        log.info("%s registered as %r", conn, msg.client_name)
        return p.EventAck(
            request_id=msg.request_id, server=self.name, protocol_version=p.PROTOCOL_VERSION,
            heartbeat_interval_ms=interval, heartbeat_timeout_ms=timeout, client_timeout_ms=keep,
            suspect_timeout_ms=suspect,
            reasons=self.config.advertised_reasons(),
            dispositions=list(self.config.dispositions),
        ), ()

    def _may_take_work(self, record: AgentRecord) -> None:
        """Logins and standbys are for the people who answer interactions: agents and supervisors."""
        if record.role == "carrier":
            raise Refusal("forbidden", f"{record.id} is a carrier; carriers submit interactions, they do not log in "
                                       f"as agents")

    def _bind(self, conn: Conn, record: AgentRecord) -> None:
        if conn.principal is not None and conn.principal.id != record.id:
            raise Refusal("forbidden", f"this socket belongs to {conn.principal.id}; open another socket for "
                                       f"{record.id}")
        conn.principal = record

    def _login(self, conn: Conn, msg: p.RequestAgentLogin, auth: tuple[AgentRecord, int | None, str | None]) -> Answer:
        record, token_epoch, token_site = auth
        self._may_take_work(record)
        self._bind(conn, record)
        if conn.login is not None:
            raise Refusal("already_logged_in", f"this socket is already logged in at epoch {conn.login.epoch}")
        agent_id = record.id
        now = self.wall_ms
        fencing = self.fencing
        state: p.AgentStateName = "not_ready"
        reason, since = None, now
        if msg.state is not None:
            state, since = msg.state.state, min(msg.state.since_ms, now)
            reason = msg.state.reason if state == "not_ready" else None
            if reason is not None and reason not in self.reasons:
                raise Refusal("invalid_reason", f"unknown Not Ready reason {reason!r}; known: {sorted(self.reasons)}")
        here = self.sessions.get(agent_id)
        current = max(here.epoch if here else 0, fencing.peer_logged_in.get(agent_id, 0))
        # A newer login seen here or told by the peer makes the token stale even when that login
        # is gone (peer lost, logged out): epochs only go up.
        newest = max(current, fencing.known_epoch.get(agent_id, 0))
        if msg.epoch is not None and msg.epoch > max(newest, token_epoch or 0) + EPOCH_LEAP:
            raise Refusal("bad_message", f"epoch {msg.epoch} is more than {EPOCH_LEAP} above the newest epoch known "
                                         f"for agent {agent_id} ({newest}); ask for your last epoch + 1")
        retry = fencing.is_lost_ack_retry(agent_id, newest, token_epoch, msg.epoch, now)
        if token_epoch is not None and token_epoch < newest and not retry:
            raise Refusal("stale_epoch", f"the agent has logged in again since this token (epoch {newest}); "
                                         f"log in with the password")
        duplicate = (here is not None or agent_id in fencing.peer_logged_in) and token_epoch is None
        if duplicate and self.config.duplicate_policy == "deny":
            where = "here" if here else "at the peer site"
            raise Refusal("already_logged_in", f"agent {agent_id} is already logged in {where} "
                                               f"(duplicate policy: deny)")
        known = max(current, fencing.known_epoch.get(agent_id, 0), token_epoch or 0)
        epoch = max(msg.epoch or 1, known + 1)
        replaced = None
        if duplicate:  # force-logout: tell the new desktop whose login it ended
            replaced = (p.ReplacedLogin(server=self.name, epoch=here.epoch) if here is not None else
                        p.ReplacedLogin(server=fencing.peer_site(agent_id) or "peer",
                                        epoch=fencing.peer_logged_in[agent_id]))
        if here is not None:
            ended: p.LogoutReason = "duplicate_login" if duplicate else "moved"  # not `reason`: the new state's
            self._end_session(here, ended, f"logged in again elsewhere (epoch {epoch})", close=True)
        if conn.standby_for is not None:
            self.standby[conn.standby_for].discard(conn.id)
            conn.standby_for = None
        session = Login(agent=record, epoch=epoch, state=state, reason=reason, since_ms=since, login_ms=now,
                        conn=conn.id, place=msg.place,
                        made_from=(token_site, token_epoch) if token_site is not None and token_epoch is not None
                        else None)
        self.sessions[agent_id] = session
        fencing.logged_in(agent_id, epoch, token_epoch, now)
        conn.login = session
        token, expires = self._issue_token(session)
        # Adopt what a failover login brings before anything can be offered to the agent.
        adopted, effects = self.engine.login(agent_id, self._penalties(record), state, now, msg.interactions,
                                             msg.state.until_ms if msg.state is not None else None)
        effects += self.transfers.restore_holds(agent_id, msg.interactions, adopted)
        self._publish(lambda seq: p.EventAgentLogin(server=self.name, seq=seq, agent=self._report(session)))
        # A password login while the peer holds the agent is a second desktop, not a move.
        self._peer_send(p.PeerAgentEpochs(server=self.name, epochs={agent_id: epoch},
                                          duplicates=[agent_id] if duplicate else [],
                                          resumed={agent_id: token_epoch} if token_epoch is not None else {}))
        log.info("%s: agent %s logged in at epoch %d (%s%s)%s", conn, agent_id, epoch,
                 "resume token" if token_epoch is not None else "password", ", duplicate" if duplicate else "",
                 f", adopted {adopted}" if adopted else "")
        if adopted:
            self._replicate([self._peer_row(self.engine.interactions[i], "held", "adopt") for i in adopted])
        return p.EventAck(request_id=msg.request_id, server=self.name, role="primary", epoch=epoch,
                          resume_token=token, token_expires_ms=expires, replaced=replaced), \
            (self._status(session), *self._chat_adopted(msg.interactions, adopted), lambda: self._apply(effects),
             lambda: self._watch_queues(session, msg))

    def _issue_token(self, session: Login) -> tuple[str, int]:
        expires = self.wall_ms + self.config.token_ttl_ms
        token = issue_token(self.config.secret, session.agent.id, session.epoch, expires, site=self.name)
        session.refresh_at = self._now.mono + self.config.token_ttl_ms / 2000
        return token, expires

    def _refresh_tokens(self, mono: float) -> None:
        for session in list(self.sessions.values()):
            conn = self.conns.get(session.conn)
            if session.refresh_at <= mono and conn is not None:
                token, expires = self._issue_token(session)
                self._send(conn, p.EventResumeToken(epoch=session.epoch, resume_token=token, token_expires_ms=expires))

    def _available(self, conn: Conn, msg: p.RequestAgentAvailable, record: AgentRecord) -> Answer:
        self._may_take_work(record)
        self._bind(conn, record)
        if conn.login is not None:
            raise Refusal("invalid_state", "this socket holds the login; it cannot also be the standby")
        conn.standby_for = record.id
        self.standby[record.id].add(conn.id)
        log.info("%s: agent %s available (secondary)", conn, record.id)
        return p.EventAck(request_id=msg.request_id, server=self.name, role="secondary"), ()

    def _not_available(self, conn: Conn, msg: p.RequestAgentNotAvailable) -> Answer:
        if conn.standby_for is None:
            raise Refusal("invalid_state", "this socket is not a standby (send RequestAgentAvailable first)")
        log.info("%s: agent %s not available (standby withdrawn)", conn, conn.standby_for)
        self.standby[conn.standby_for].discard(conn.id)
        conn.standby_for = None
        return p.EventAck(request_id=msg.request_id, server=self.name), ()

    def _own_login(self, conn: Conn, epoch: int) -> Login:
        if conn.principal is None:
            raise Refusal("not_authenticated", "log in first (RequestAgentLogin)")
        session = conn.login
        if session is None:
            raise Refusal("not_logged_in", "this socket has no login; send RequestAgentLogin first")
        if epoch != session.epoch:
            raise Refusal("stale_epoch", f"request for epoch {epoch}, but the login here is at epoch {session.epoch}")
        self.fencing.acknowledged(session.agent.id, epoch)
        return session

    def _set_state(self, conn: Conn, msg: p.RequestAgentReady | p.RequestAgentNotReady | p.RequestAgentAfterCallWork,
                   state: p.AgentStateName, reason: str | None = None) -> Answer:
        session = self._own_login(conn, msg.epoch)
        if reason is not None and reason not in self.reasons:
            raise Refusal("invalid_reason", f"unknown Not Ready reason {reason!r}; known: {sorted(self.reasons)}")
        if reason is not None and reason in self.config.server_only_reasons():
            raise Refusal("server_only_reason", f"Not Ready reason {reason!r} is set by the server only (missed "
                                                f"offers); choose one of the reasons without server_only")
        self._change_state(session, state, reason)
        effects = self.engine.set_state(session.agent.id, state, self.wall_ms)
        return (p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch),
                (self._status(session), lambda: self._apply(effects)))

    def _extend_acw(self, conn: Conn, msg: p.RequestExtendAfterCallWork) -> Answer:
        """"Extend wrap-up": the server moves the deadline (the desktop only shows it)."""
        session = self._own_login(conn, msg.epoch)
        agent_id = session.agent.id
        if self.engine.extend_acw(agent_id, self.wall_ms) is None:
            raise Refusal("acw_not_extendable", f"agent {agent_id} is not in an After Call Work its queue lets extend "
                                                f"(after_call_work_extend), or has used every extension")
        log.info("%s: agent %s extended After Call Work to %d", conn, agent_id, self.engine.acw_until(agent_id))
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), (self._status(session),)

    def _watch_queues(self, session: Login, msg: p.RequestAgentLogin) -> None:
        """A login that asked for its queues' figures (``queue_statistics``) gets them now and on change."""
        self._agent_queues_sent.pop(session.agent.id, None)
        if msg.queue_statistics:
            self._send_agent_queues(session)

    def _send_agent_queues(self, session: Login, stats: list[p.QueueStatistics] | None = None) -> None:
        """EventAgentQueues on the agent's login socket, when its queues' figures differ from the last sent."""
        if stats is not None and session.agent.id not in self._agent_queues_sent:
            return  # this login did not ask (RequestAgentLogin.queue_statistics)
        conn = self.conns.get(session.conn)
        agent = self.engine.agents.get(session.agent.id)
        if conn is None or agent is None or not agent.penalties:
            return
        every = stats if stats is not None else self.engine.statistics(self.wall_ms)
        mine = [q for q in every if q.queue in agent.penalties]
        if stats is not None and self._agent_queues_sent.get(session.agent.id) == mine:
            return
        self._agent_queues_sent[session.agent.id] = mine
        self._send(conn, p.EventAgentQueues(server=self.name, at_ms=self.wall_ms, queues=mine))

    def _change_state(self, session: Login, state: p.AgentStateName, reason: str | None, forced_by: str | None = None,
                      since_ms: int | None = None) -> bool:
        """Record and report a state change (the routing engine is told by the caller)."""
        if (session.state, session.reason) == (state, reason):
            return False
        session.state, session.reason = state, reason
        session.since_ms = since_ms if since_ms is not None else self.wall_ms
        self.pool.changed(session.agent.id)
        self._publish(lambda seq: p.EventAgentStateChanged(
            server=self.name, seq=seq, agent_id=session.agent.id, epoch=session.epoch, state=state,
            since_ms=session.since_ms, reason=reason, forced_by=forced_by, reachable=session.reachable))
        return True

    def _logout(self, conn: Conn, msg: p.RequestAgentLogout) -> Answer:
        session = self._own_login(conn, msg.epoch)
        self._end_session(session, "logout", "logged out", close=False, void_tokens=not msg.handover)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _end_session(self, session: Login, reason: p.LogoutReason, message: str, *, close: bool,
                     by: str | None = None, void_tokens: bool = False) -> None:
        agent_id = session.agent.id
        if self.sessions.get(agent_id) is not session:
            return
        del self.sessions[agent_id]
        conn = self.conns.get(session.conn)
        if conn is not None:
            conn.login = None
        self._publish(lambda seq: p.EventAgentLogout(
            server=self.name, seq=seq, agent_id=agent_id, epoch=session.epoch, reason=reason))
        self._apply(self.engine.logout(agent_id, self.wall_ms))
        self._apply(self.transfers.agent_gone(agent_id, self.wall_ms))
        voided: dict[str, int] = {}
        if void_tokens:  # this login's own tokens, and the token it was made from
            voided = {self.name: session.epoch}
            if session.made_from is not None:
                site, epoch = session.made_from
                voided[site] = max(epoch, voided.get(site, 0))
            for site, epoch in voided.items():
                self.fencing.void(agent_id, site, epoch)
        self._peer_send(p.PeerAgentEpochs(server=self.name, epochs={}, logged_out=[agent_id],
                                          logged_out_epochs={agent_id: voided} if voided else {}))
        log.info("%s: agent %s logged out at epoch %d (%s)", conn or f"conn#{session.conn}", agent_id, session.epoch,
                 reason)
        if close and conn is not None:
            self._send(conn, p.EventForcedLogout(agent_id=agent_id, epoch=session.epoch, reason=reason,
                                                 message=message, by=by))
            self._close(conn, CloseCode.SUPERSEDED, reason)

    # ------------------------------------------------------------------ reporting and supervisors

    def _publish(self, make: Callable[[int], p.Message]) -> None:
        self._publish_to(self.reporting, make)
        if self.center is not None:
            self._publish_to(self.center.stream, make)

    def _publish_to(self, stream: ReportingStream, make: Make) -> None:
        frame = stream.publish(make)
        for conn_id in stream.subscribers:
            conn = self.conns.get(conn_id)
            if conn is not None:
                self._send_frame(conn, frame)

    def _center_events(self, events: list[Make]) -> None:
        for make in events:
            assert self.center is not None
            self._publish_to(self.center.stream, make)

    def _center_stream(self) -> CenterStream:
        if self.center is None:
            self.center = CenterStream(self.name, self.config.replay_buffer, self.reporting.stream_id)
            for agent_id, seen in sorted(self.pool.remote.items()):
                if seen.presence.logged_in and agent_id not in self.sessions:
                    self.center.shown[agent_id] = self.center.report(seen.site, seen.presence, self._name_of(agent_id))
        return self.center

    def _name_of(self, agent_id: str) -> str:
        record = self.directory.get(agent_id)
        return record.name if record is not None else agent_id

    def _local_epoch(self, agent_id: str) -> int | None:
        session = self.sessions.get(agent_id)
        return session.epoch if session is not None else None

    def _publish_statistics(self) -> None:
        if not self.engine.queues:
            return
        stats = self.engine.statistics(self.wall_ms)
        if stats == self._last_statistics:
            return
        self._last_statistics = stats
        self._publish(lambda seq: p.EventQueueStatistics(server=self.name, seq=seq, at_ms=self.wall_ms, queues=stats))
        for session in self.sessions.values():  # each agent's share: its own queues (EventAgentQueues)
            self._send_agent_queues(session, stats)

    def _status(self, session: Login, forced_by: str | None = None) -> p.EventCurrentAgentStatus:
        return p.EventCurrentAgentStatus(
            agent_id=session.agent.id, epoch=session.epoch, server=self.name, state=session.state,
            since_ms=session.since_ms, reason=session.reason, place=session.place, forced_by=forced_by,
            interaction_ids=self.engine.held_by(session.agent.id), until_ms=self.engine.acw_until(session.agent.id),
            extends_left=self.engine.acw_extends_left(session.agent.id) or None)

    def _report(self, session: Login) -> p.AgentReport:
        held = self.engine.held_by(session.agent.id)
        return session.report(held[0] if held else None)

    def _subscribe(self, conn: Conn, msg: p.RequestSubscribeReporting, record: AgentRecord) -> Answer:
        if record.role not in ("supervisor", "carrier"):
            raise Refusal("forbidden", f"{record.id} is not a supervisor; the reporting stream needs the supervisor "
                                       f"(or carrier) role")
        self._bind(conn, record)
        stream = self.reporting if msg.scope == "site" else self._center_stream().stream
        replay = None
        if msg.resume is not None and msg.resume.stream_id == stream.stream_id:
            replay = stream.replay_from(msg.resume.seq)
            # A replay the socket's outbound queue cannot hold would close it (4008) on every retry:
            # a snapshot says the same in one frame.
            if replay is not None and len(replay) >= self.config.outbound_queue // 2:
                replay = None
        expires = self.wall_ms + self.config.token_ttl_ms
        token = issue_token(self.config.secret, record.id, 1, expires, site=self.name)
        ack = p.EventAck(request_id=msg.request_id, server=self.name, stream_id=stream.stream_id,
                         resume_token=token, token_expires_ms=expires)
        conn.reporting = True
        stream.subscribers.add(conn.id)
        log.info("%s: supervisor %s subscribed (%s)", conn, record.id, "replay" if replay is not None else "snapshot")
        if replay is not None:
            frames = replay

            def send_replay() -> None:  # the stored frames, as they were, after the ack
                for frame in frames:
                    self._send_frame(conn, frame)
            return ack, (send_replay,)
        agents = [self._report(s) for s in self.sessions.values()]
        if self.center is not None and stream is self.center.stream:
            agents += [self.center.shown[a] for a in sorted(self.center.shown) if a not in self.sessions]
        snapshot = p.EventReportingSnapshot(server=self.name, stream_id=stream.stream_id, seq=stream.seq,
                                            agents=agents,
                                            queues=self.engine.statistics(self.wall_ms),
                                            config_version=self.config_version, config_differs=self._config_differs())
        return ack, (snapshot,)

    def _supervised(self, conn: Conn, agent_id: str) -> tuple[Login, str]:
        """The session a supervisor action targets, and the supervisor; only on a subscribed supervisor socket."""
        if conn.principal is None or not conn.reporting:
            raise Refusal("not_authenticated", "subscribe to reporting as a supervisor first "
                                               "(RequestSubscribeReporting)")
        if conn.principal.role != "supervisor":
            raise Refusal("forbidden", f"{conn.principal.id} is not a supervisor")
        session = self.sessions.get(agent_id)
        if session is None:
            raise Refusal("not_logged_in", f"agent {agent_id} is not logged in at {self.name}; ask the server that "
                                           f"reports it")
        return session, conn.principal.id

    def _force_not_ready(self, conn: Conn, msg: p.RequestForceNotReady) -> Answer:
        self._relay_if_remote(conn, msg, "not_ready", msg.reason)
        session, by = self._supervised(conn, msg.agent_id)
        if msg.reason not in self.reasons:
            raise Refusal("invalid_reason", f"unknown Not Ready reason {msg.reason!r}; known: {sorted(self.reasons)}")
        self._change_state(session, "not_ready", msg.reason, forced_by=by)
        self._apply(self.engine.set_state(session.agent.id, "not_ready", self.wall_ms))
        agent_conn = self.conns.get(session.conn)
        if agent_conn is not None:
            self._send(agent_conn, self._status(session, forced_by=by))
        log.info("%s: supervisor %s set agent %s Not Ready (%s)", conn, by, msg.agent_id, msg.reason)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _force_logout(self, conn: Conn, msg: p.RequestForceLogout) -> Answer:
        self._relay_if_remote(conn, msg, "logout", None)
        session, by = self._supervised(conn, msg.agent_id)
        self._end_session(session, "forced", f"logged out by supervisor {by}", close=True, by=by, void_tokens=True)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    # ------------------------------------------------------------------ interactions

    def _penalties(self, record: AgentRecord) -> dict[str, int]:
        """Queue -> penalty: the directory's memberships, overridden by the site's queue members."""
        return {**record.queue_penalties(), **self._queue_members.get(record.id, {})}

    def _engine(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args)
        except EngineRefusal as refusal:
            raise Refusal(refusal.code, refusal.message) from None

    def _apply(self, effects: Iterable[object], quiet: str | None = None) -> None:
        """Carry out what the routing engine decided: offers, revocations, reports, state changes.
        ``quiet``: an agent whose status is sent by the caller after its answer, not now."""
        now = self.wall_ms
        for effect in effects:
            if self._stale_offer(effect):  # neither sent nor reported, so not counted as offered
                continue
            if isinstance(effect, HandOver):
                self._hand_over(effect)
                continue
            if isinstance(effect, Report):
                self._report_interaction(effect, now)
                continue
            if isinstance(effect, (ConsultOffer, TransferNote, ToPeer)):
                self._transfer_effect(effect)
                continue
            found = self._login_socket(getattr(effect, "agent_id", None))
            if found is None:
                continue
            session, conn = found
            if isinstance(effect, Offer):
                self._send(conn, p.EventInvite(agent_id=effect.agent_id, epoch=session.epoch,
                                               interaction=effect.interaction, offered_ms=effect.offered_ms,
                                               expires_ms=effect.expires_ms))
            elif isinstance(effect, Revoke):
                self._send(conn, p.EventInviteRevoked(agent_id=effect.agent_id, epoch=session.epoch,
                                                      interaction_id=effect.interaction_id,
                                                      reason=effect.reason, message=effect.message))
            elif isinstance(effect, SetState):
                self._change_state(session, effect.state, effect.reason, since_ms=effect.at_ms)
                if effect.agent_id != quiet:
                    self._send(conn, self._status(session))
            elif isinstance(effect, HeldChanged) and effect.agent_id != quiet:
                self._send(conn, self._status(session))

    def _stale_offer(self, effect: object) -> bool:
        """An offer decided earlier (with a completion that waited for the peer) that the engine has
        since taken back (the agent left meanwhile): neither sent nor reported."""
        if isinstance(effect, Offer):
            iid, agent_id = effect.interaction.interaction_id, effect.agent_id
        elif isinstance(effect, Report) and effect.event == "offered" and effect.agent_id is not None:
            iid, agent_id = effect.interaction.interaction_id, effect.agent_id
        else:
            return False
        item = self.engine.interactions.get(iid)
        return item is None or item.status != OFFERED or item.agent_id != agent_id

    def _report_interaction(self, effect: Report, now: int) -> None:
        i = effect.interaction
        if effect.event == "offered":  # counted as it is published: the queue's figures follow the stream
            self.engine.offer_reported(i.queue)
        session = self.sessions.get(effect.agent_id) if effect.agent_id else None
        self._publish(lambda seq: p.EventInteraction(
            server=self.name, seq=seq, interaction_id=i.interaction_id, event=effect.event,
            at_ms=now, queue=i.queue, media=i.media, agent_id=effect.agent_id,
            epoch=session.epoch if session else None, disposition=effect.disposition,
            reason=effect.reason[:256] if effect.reason else None,
            transfers=i.transfers if effect.event in ("completed", "transferred") else [],
            notes=i.notes if effect.event == "transferred" and i.notes else None))
        if effect.event in ("completed", "abandoned"):
            self._chat_ended(i.interaction_id)
        if effect.event == "abandoned":  # so that a re-submission to the peer is a duplicate
            self._replicate([p.PeerInteractionRecord(interaction_id=i.interaction_id, status="ended", queue=i.queue,
                                                     media=i.media, agent_id=effect.agent_id)])

    def _accept(self, conn: Conn, msg: p.RequestAccept) -> Answer:
        session = self._own_login(conn, msg.epoch)
        iid = msg.interaction_id
        if (consult := self.transfers.consult_for(session.agent.id, iid)) is not None:
            return self._answer_consult(session, msg, consult, True)
        effects = self._engine(self.engine.accept, session.agent.id, iid, self.wall_ms)
        ack = p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch)
        if not effects:  # already in this agent's hands: a repeat
            return self._accept_ack(ack, iid), (self._status(session),)

        def finish(refused: Refused) -> Answer:
            if iid in refused:  # an agent at the peer site has it: the first taker keeps it
                self._apply(self.engine.accept_refused(session.agent.id, iid, self.wall_ms,
                                                       "taken by an agent at the peer site"))
                raise Refusal("unknown_interaction", f"{iid} was taken by an agent at the peer site")
            self.engine.confirm(iid)
            self._apply(effects, quiet=session.agent.id)
            return self._accept_ack(ack, iid), (self._status(session),)

        raise _Deferred([self._peer_row(self.engine.interactions[iid], "held", "accept")], finish)

    def _accept_ack(self, ack: p.EventAck, iid: str) -> p.EventAck:
        """The accept's answer tells when the server took the interaction into the agent's hands."""
        item = self.engine.interactions.get(iid)
        accepted = item.accepted_ms if item is not None else None
        return p.EventAck(request_id=ack.request_id, server=ack.server, epoch=ack.epoch, accepted_ms=accepted)

    def _reject(self, conn: Conn, msg: p.RequestReject) -> Answer:
        session = self._own_login(conn, msg.epoch)
        if (consult := self.transfers.consult_for(session.agent.id, msg.interaction_id)) is not None:
            return self._answer_consult(session, msg, consult, False)
        effects = self._engine(self.engine.reject, session.agent.id, msg.interaction_id, self.wall_ms)
        return (p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch),
                (lambda: self._apply(effects),))

    def _update_notes(self, conn: Conn, msg: p.RequestUpdateNotes) -> Answer:
        session = self._own_login(conn, msg.epoch)
        self._engine(self.engine.update_notes, session.agent.id, msg.interaction_id, msg.notes)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _complete(self, conn: Conn, msg: p.RequestCompleteInteraction) -> Answer:
        session = self._own_login(conn, msg.epoch)
        agent_id = session.agent.id
        if msg.disposition not in self.dispositions:
            raise Refusal("invalid_disposition", f"unknown disposition {msg.disposition!r}; known: "
                                                 f"{sorted(self.dispositions)}")
        iid = msg.interaction_id
        effects = self._engine(self.engine.complete, agent_id, iid, msg.disposition, msg.notes, self.wall_ms,
                               self.peer.link_up or bool(self.peer_inbound))
        ack = p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch)
        if not effects:  # completed already (here, or at the peer before a failover): a repeat
            return ack, (self._status(session),)
        item = self.engine.interactions.get(iid)
        if item is None or item.status != COMPLETED:  # completed at the peer, which is gone and had not
            # reported it: reported here (a copy here, if any, had ended)
            self._apply(effects, quiet=agent_id)
            self._replicate([self._peer_row_for(iid, effects, "reported")])
            return ack, (self._status(session),)

        def finish(refused: Refused) -> Answer:
            # Reported only once the peer knows: if this server dies now, the survivor answers a
            # re-sent completion as a repeat instead of counting it a second time. Then the peer
            # is told it was reported (until then it would report a re-sent completion itself).
            # The answer comes first, then the status, then the next offer for the agent.
            if iid in refused or self.engine.reported_at_peer(iid):  # it counts at the peer
                # Not reported here; the next offers its completion freed an agent for are (their
                # "offered" reports were once dropped with it, so queue figures ran ahead of events).
                self._apply([e for e in effects if not isinstance(e, Offer)
                             and not (isinstance(e, Report) and e.event == "completed")], quiet=agent_id)
                self._apply(self.engine.complete_refused(iid))
            else:
                self._apply([e for e in effects if not isinstance(e, Offer)], quiet=agent_id)
                self.engine.mark_reported(iid)
                self._replicate([self._peer_row(item, "completed", "reported")])
            return ack, (self._status(session), lambda: self._apply([e for e in effects if isinstance(e, Offer)]))

        raise _Deferred([self._peer_row(item, "completed", "complete")], finish)

    def _submit(self, conn: Conn, msg: p.RequestSubmitInteraction) -> Answer:
        principal = conn.principal
        if principal is not None and principal.role == "agent":
            raise Refusal("forbidden", f"{principal.id} is an agent; interactions are submitted by a carrier or a "
                                       f"supervisor")
        if principal is None or not conn.reporting:
            raise Refusal("not_authenticated", "subscribe as a carrier or supervisor first (RequestSubscribeReporting)")
        effects = self._engine(self.engine.submit, msg.interaction, self.wall_ms)
        return p.EventAck(request_id=msg.request_id, server=self.name), (lambda: self._apply(effects),)

    def _peer_row(self, item: Any, status: p.PeerRecordStatus, claim: p.PeerClaim) -> p.PeerInteractionRecord:
        i = item.interaction
        return p.PeerInteractionRecord(interaction_id=i.interaction_id, status=status, queue=i.queue,
                                       media=i.media, agent_id=item.agent_id, claim=claim,
                                       epoch=self._holder_epoch(status, item.agent_id))

    def _holder_epoch(self, status: p.PeerRecordStatus, agent_id: str | None) -> int | None:
        """For a "held" record: the epoch of its holder's login here (None: not logged in here)."""
        return self._local_epoch(agent_id) if status == "held" and agent_id is not None else None

    def _stale_holder(self, row: p.PeerInteractionRecord) -> bool:
        """A peer's "held" record naming an agent logged in here at a newer epoch than the record's
        (or whose login there has ended): the agent moved here since and brought what it held in its
        login; what it did with the interaction here since (a transfer, a completion) stands."""
        here = self._holder_epoch(row.status, row.agent_id)
        return here is not None and (row.epoch is None or row.epoch < here)

    def _peer_row_for(self, iid: str, effects: list[object], claim: p.PeerClaim) -> p.PeerInteractionRecord:
        report = next(e for e in effects if isinstance(e, Report))
        return p.PeerInteractionRecord(interaction_id=iid, status="completed", queue=report.interaction.queue,
                                       media=report.interaction.media, agent_id=report.agent_id,
                                       claim=claim)

    def _replicate(self, rows: list[p.PeerInteractionRecord]) -> None:
        """Tell the peer what we hold or completed, not waiting for its answer."""
        if rows:
            frame = self.peer.frame(rows, self._now.mono, lambda refused: None)
            if frame is not None:
                self._out.append(PeerSend(frame))

    # ------------------------------------------------------------------ chat (chat.py)

    def _chat_line(self, conn: Conn, msg: p.RequestSendChatMessage) -> Answer:
        """A chat line from the agent holding the chat or from the customer (a carrier's socket).
        Answered (and delivered to the other side) once every linked peer has it."""
        principal, iid = conn.principal, msg.interaction_id
        epoch: int | None = None
        sender: p.ChatSender
        if principal is None:
            raise Refusal("not_authenticated", "log in as the agent holding the chat, or subscribe as a carrier "
                                               "(RequestSubscribeReporting), first")
        if msg.epoch is not None or principal.role == "agent":  # an agent's line (a supervisor may take chats)
            if msg.epoch is None:
                raise Refusal("bad_message", "an agent's RequestSendChatMessage carries its login's epoch")
            session = self._own_login(conn, msg.epoch)
            if iid not in self.engine.held_by(session.agent.id):
                raise Refusal("unknown_interaction", f"{iid} is not in the hands of agent {session.agent.id} here")
            sender, epoch = "agent", session.epoch
        elif principal.role == "carrier" and conn.reporting:  # the customer's line
            held = self.engine.interactions.get(iid)
            if held is None or held.status != HELD or held.agent_id not in self.sessions:
                raise Refusal("unknown_interaction", f"{iid} is not in an agent's hands at {self.name}: send the line "
                                                     f"where it is, or again shortly (a failover may be moving it)")
            sender = "customer"
        else:
            raise Refusal("forbidden", f"{principal.id} is a {principal.role}: chat lines come from the agent holding "
                                       f"the chat (with its epoch) or from the customer's carrier")
        item = self.engine.interactions[iid]
        if item.interaction.media != "chat":
            raise Refusal("not_a_chat", f"{iid} is a {item.interaction.media} interaction, not a chat")
        try:
            line, new = self.chat.append(iid, msg.line_id, sender, msg.text, self.wall_ms)
        except ChatRefusal as refusal:
            raise Refusal(refusal.code, refusal.message) from None
        ack = p.EventAck(request_id=msg.request_id, server=self.name, epoch=epoch, line_seq=line.seq)
        chat = self.chat.get(iid)
        if not new and chat is not None and line.line_id in chat.committed:
            return ack, ()  # a line sent again (a retry, or re-sent after a failover): known already

        holder = self.engine.interactions[iid].agent_id
        holder_login = self.sessions.get(holder) if holder is not None else None
        held_at = holder_login.epoch if holder_login is not None else 0

        def finish(refused: Refused) -> Answer:
            chat = self.chat.get(iid)
            known = chat.by_id.get(line.line_id) if chat is not None else None
            if chat is not None and known is not None and known.line_id in chat.committed:
                # Another copy of the line (a retry) was committed and answered meanwhile: it
                # stays, whatever this copy's peer said; this copy gets the same answer.
                return msgspec.structs.replace(ack, line_seq=known.seq), ()
            moved = not self._chat_still_held(iid, holder, held_at) or known is None
            if iid in refused or moved:
                # The agent is back with the chat at a peer, which numbers its lines now; or the
                # chat moved (or ended) while the answer waited (a stall: nobody could refuse it).
                self.chat.discard(iid, line.line_id)
                now_login = self.sessions.get(holder) if holder is not None else None
                if epoch is not None and (now_login is None or now_login.epoch != epoch):
                    # The login ended here (it moved): the desktop's journal keeps the line for its next primary.
                    raise Refusal("stale_epoch", f"the login at epoch {epoch} ended here while the line waited: send "
                                                 f"it where the agent is logged in now")
                raise Refusal("unknown_interaction", f"{iid} has moved to another site with its agent: send the line "
                                                     f"there")
            assert chat is not None and known is not None  # (not moved)
            chat.committed.add(known.line_id)
            self._chat_deliver(iid, known)
            return msgspec.structs.replace(ack, line_seq=known.seq), ()

        raise _DeferredMessage(lambda ack_id: p.PeerChat(server=self.name, interaction_id=iid, lines=[line],
                                                         ack_id=ack_id), finish)

    def _chat_still_held(self, iid: str, agent_id: str | None, epoch: int) -> bool:
        """Is the chat still here, in the hands of the agent that held it (at ``epoch``) when a line
        was numbered? A line's answer may wait (for the peer, or for the end of a stall): if a peer
        has logged the agent in at a newer epoch meanwhile (the agent moved with the chat; a
        stalled server learns it from the peer's state), the line must not be answered here. (A
        login that merely ended here, its socket gone, leaves the chat here for the agent's return.)"""
        item = self.engine.interactions.get(iid)
        return (item is not None and item.status == HELD and agent_id is not None and item.agent_id == agent_id
                and self.chat.get(iid) is not None and self.fencing.peer_logged_in.get(agent_id, 0) <= epoch)

    def _chat_deliver(self, iid: str, line: p.ChatLine) -> None:
        """A committed line to the other side: a customer's to the agent holding the chat, an agent's
        to the carriers."""
        item = self.engine.interactions.get(iid)
        agent_id = item.agent_id if item is not None and item.status == HELD else None
        event = p.EventChatMessage(interaction_id=iid, line=line, agent_id=agent_id)
        if line.sender == "customer":
            found = self._login_socket(agent_id)
            if found is not None:
                self._send(found[1], event)
        else:
            for carrier in self._carrier_conns():
                self._send(carrier, event)

    def _carrier_conns(self) -> list[Conn]:
        return [c for c in self.conns.values()
                if c.reporting and c.principal is not None and c.principal.role == "carrier" and not c.closing]

    def _update_draft(self, conn: Conn, msg: p.RequestUpdateDraft) -> Answer:
        session = self._own_login(conn, msg.epoch)
        if msg.interaction_id not in self.engine.held_by(session.agent.id):
            raise Refusal("unknown_interaction", f"{msg.interaction_id} is not in the hands of agent "
                                                 f"{session.agent.id} here")
        self.chat.set_draft(msg.interaction_id, msg.draft)
        self._peer_send(p.PeerChat(server=self.name, interaction_id=msg.interaction_id, draft=msg.draft))
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _chat_adopted(self, carried: list[p.HeldInteraction], adopted: Iterable[str]) -> list[p.Message]:
        """A failover login adopted chats or emails: merge the desktop's copy with ours, tell the
        peers the whole of it, and give the desktop the whole transcript (the lines it missed)."""
        out: list[p.Message] = []
        taken = set(adopted)
        for held in carried:
            iid = held.interaction.interaction_id
            if iid not in taken or (held.interaction.media != "chat" and not held.draft and self.chat.get(iid) is None):
                continue
            chat = self.chat.adopt(iid, held.transcript, held.draft)
            chat.committed.update(chat.by_id)
            full = p.PeerChat(server=self.name, interaction_id=iid, lines=list(chat.lines), draft=chat.draft, full=True)
            self._peer_send(full)
            out.append(p.EventChatTranscript(interaction_id=iid, lines=list(chat.lines), draft=chat.draft))
        return out

    def _chat_ended(self, iid: str) -> None:
        """The chat was completed (or abandoned) here: the carriers get the final transcript."""
        chat = self.chat.drop(iid)
        if chat is not None and chat.lines:
            final = p.EventChatTranscript(interaction_id=iid, lines=chat.lines, final=True)
            for carrier in self._carrier_conns():
                self._send(carrier, final)

    def _chat_sync(self) -> list[p.PeerChat]:
        """The transcripts of the chats in our agents' hands, for a peer link that just came up."""
        out = []
        for iid, item in self.engine.interactions.items():
            chat = self.chat.get(iid) if item.status == HELD else None
            if chat is not None:
                out.append(p.PeerChat(server=self.name, interaction_id=iid, lines=list(chat.lines), draft=chat.draft,
                                      full=True))
        return out

    def _peer_chat(self, msg: p.PeerChat, reply_to: Conn | None) -> None:
        """A peer's chat lines: kept as its copy, unless an agent logged in here holds the chat (it
        moved here: this server numbers its lines now, and refuses the ones the peer numbered late;
        their senders send them again here)."""
        iid = msg.interaction_id
        item = self.engine.interactions.get(iid)
        here = item is not None and item.status == HELD and item.agent_id in self.sessions
        chat = self.chat.get(iid)
        late = here and any(chat is None or line.line_id not in chat.by_id for line in msg.lines)
        if not here:
            self.chat.replicated(iid, msg.lines, msg.draft, msg.full)
        if msg.ack_id is not None and reply_to is not None:
            self._send(reply_to, p.PeerInteractionsAck(server=self.name, ack_id=msg.ack_id,
                                                       refused=[iid] if late else []))

    # ------------------------------------------------------------------ hold and transfers (transfers.py)

    def _hold(self, conn: Conn, msg: p.RequestHold | p.RequestResume) -> Answer:
        session = self._own_login(conn, msg.epoch)
        agent_id, iid = session.agent.id, msg.interaction_id
        since = None
        if isinstance(msg, p.RequestHold):
            since, effects = self._engine(self.transfers.hold, agent_id, iid, self.wall_ms)
        else:
            effects = self._engine(self.transfers.resume, agent_id, iid)
        self._apply(effects)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch, hold_since_ms=since), ()

    def _transfer(self, conn: Conn, msg: p.RequestTransfer) -> Answer:
        session = self._own_login(conn, msg.epoch)
        agent_id, iid = session.agent.id, msg.interaction_id
        remote = None
        if msg.to_agent is not None and msg.to_agent not in self.sessions:
            remote = self._remote_target(msg.to_agent)
        elif msg.kind == "consult" and msg.to_queue in self.engine.queues:
            remote = self._remote_member(msg.to_queue, None)  # used when no member is available here
        effects = self._engine(self.transfers.transfer, agent_id, iid, msg.kind, msg.to_agent, msg.to_queue,
                               msg.notes, self.wall_ms, remote)
        ack = p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch)
        item = self.engine.interactions[iid]
        log.info("%s: agent %s: %s transfer of %s to %s", conn, agent_id, msg.kind, iid,
                 f"agent {msg.to_agent}" if msg.to_agent else f"queue {msg.to_queue}")
        if msg.kind == "consult":
            self._apply(effects)
            return ack, ()
        # Reported at once, a round trip before the agent lets go (below): a carrier that hears it
        # before the agent's answer is sent knows the interaction waits again should both sites die.
        first = [e for e in effects if isinstance(e, Report) and e.event == "transferred"]
        self._apply(first)

        def finish(refused: Refused) -> Answer:  # the peer knows it waits here, whole: then the agent
            self._apply([e for e in effects if e not in first], quiet=agent_id)
            return ack, (self._status(session),)

        raise _Deferred([queued_row(item)], finish)

    def _remote_target(self, agent_id: str) -> Remote:
        """Where a blind transfer's target agent, not logged in here, is logged in and available."""
        seen = self.pool.remote.get(agent_id)
        linked = self._linked_sites()
        if seen is None or not seen.presence.logged_in or seen.site not in linked:
            raise Refusal("target_unavailable", f"agent {agent_id} is not logged in here or at a linked site")
        if not seen.presence.available or agent_id in self.pool.reserved:
            raise Refusal("target_unavailable", f"agent {agent_id} (at {seen.site}) is not available now")
        return Remote(seen.site, agent_id, seen.presence.epoch, 0)

    def _linked_sites(self) -> set[str | None]:
        """The other sites this one can hand interactions to now: linked, with the same routing rules."""
        return {link.name for link in self.links.values() if link.url in self.peer.up} - set(self.rules_differ)

    def _transfer_targets(self, conn: Conn, msg: p.RequestTransferTargets) -> Answer:
        """The queues and the agents logged in anywhere, each available or not as a transfer would
        find it (transfer_targets.py); changes nothing."""
        session = self._own_login(conn, msg.epoch)
        local = []
        for agent_id, login in self.sessions.items():
            routed = self.engine.agents.get(agent_id)
            local.append((agent_id, self.name, login.state, routed is not None and routed.available))
        linked = self._linked_sites()
        remote = [(agent_id, seen.site, seen.presence.state,
                   seen.presence.available and agent_id not in self.pool.reserved)
                  for agent_id, seen in self.pool.remote.items()
                  if seen.presence.logged_in and seen.site in linked]

        def name_of(agent_id: str) -> str | None:
            record = self.directory.get(agent_id)
            return record.name if record is not None and record.name else None

        targets = transfer_targets(session.agent.id, self.engine.queues, local, remote, name_of)
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch,
                          transfer_targets=targets), ()

    def _end_transfer(self, conn: Conn, msg: p.RequestCompleteTransfer | p.RequestCancelTransfer) -> Answer:
        session = self._own_login(conn, msg.epoch)
        agent_id, iid = session.agent.id, msg.interaction_id
        ack = p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch)
        if isinstance(msg, p.RequestCancelTransfer):
            self._apply(self._engine(self.transfers.cancel, agent_id, iid, self.wall_ms))
            return ack, ()
        effects = self._engine(self.transfers.complete, agent_id, iid, self.wall_ms)
        item = self.engine.interactions[iid]
        if item.status != HELD:  # handed to the consulted agent's site, which tells who holds it now
            self._apply(effects, quiet=agent_id)
            return ack, (self._status(session),)

        def finish(refused: Refused) -> Answer:  # the peer knows who holds it now: then both agents
            self.engine.confirm(iid)  # answered, in step with the "accepted" event published now
            self._apply(effects, quiet=agent_id)
            return ack, (self._status(session),)

        # "adopt": never refused, the consulted agent has the customer now
        raise _Deferred([self._peer_row(item, "held", "adopt")], finish)

    def _peer_consult(self, msg: p.PeerConsult | p.PeerConsultUpdate) -> None:
        """A cross-site consultation (transfers.py): asked of one of our agents, or moving on."""
        now = self.wall_ms
        if isinstance(msg, p.PeerConsult):
            session = self.sessions.get(msg.to_agent)
            self._apply(self.transfers.visit(msg, session is not None and session.epoch == msg.epoch, now))
            return
        taken, effects = self.transfers.peer_update(msg, now)
        self._apply(effects)
        if taken is not None:  # our agent holds it now: every peer learns it (the first site ends its custody)
            self._replicate([self._peer_row(taken, "held", "adopt")])

    def _answer_consult(self, session: Login, msg: p.RequestAccept | p.RequestReject, consult: Any,
                        accepted: bool) -> Answer:
        self._apply(self.transfers.answer(consult, accepted, self.wall_ms))
        return p.EventAck(request_id=msg.request_id, server=self.name, epoch=session.epoch), ()

    def _login_socket(self, agent_id: str | None) -> tuple[Login, Conn] | None:
        """The agent's login here and the socket it is on, if both still exist."""
        session = self.sessions.get(agent_id) if agent_id else None
        conn = self.conns.get(session.conn) if session is not None else None
        return None if session is None or conn is None else (session, conn)

    def _transfer_effect(self, effect: ConsultOffer | TransferNote | ToPeer) -> None:
        if isinstance(effect, ToPeer):
            link = self._link_to(effect.site)
            if link is not None:  # else the consultation ends when the site counts as unreachable
                self._peer_send_to(link, effect.message)
            return
        found = self._login_socket(effect.agent_id)
        if found is None:
            return
        session, conn = found
        if isinstance(effect, ConsultOffer):
            self._send(conn, p.EventInvite(agent_id=effect.agent_id, epoch=session.epoch,
                                           interaction=effect.interaction, offered_ms=effect.offered_ms,
                                           expires_ms=effect.expires_ms, consult_from=effect.from_agent))
        else:
            self._send(conn, p.EventTransfer(agent_id=effect.agent_id, epoch=session.epoch,
                                             interaction_id=effect.interaction_id, kind=effect.kind,
                                             status=effect.status, at_ms=effect.at_ms, from_agent=effect.from_agent,
                                             to_agent=effect.to_agent, to_queue=effect.to_queue,
                                             message=effect.message[:256], notes=effect.notes))

    # ------------------------------------------------------------------ peer

    def _peer_unreachable(self, site: str) -> None:
        """With neither link to ``site`` up, report what it completed and we owe it to report; what
        we handed to it and nobody took there comes back after ``orphan_timeout_ms``."""
        if not self._site_linked(site):
            self._apply(self.engine.report_owed(self.wall_ms, site))
            self._apply(self.transfers.requeue_lost(site, self.wall_ms))
            self._apply(self.transfers.site_lost(site, self.wall_ms))
            self._reclaim_at.setdefault(site, self._now.mono + self.config.orphan_timeout_ms / 1000)

    def _peer_hello(self, conn: Conn, msg: p.PeerHello) -> None:
        """A server dialed us: prove the secret over its nonce, and challenge it with ours. The same
        hello again on the same socket (a frame delivered twice) gets the same challenge."""
        if conn.kind == "peer":
            return
        if conn.peer_challenge is not None and conn.peer_challenge[2] == msg.nonce:
            nonce = conn.peer_challenge[1]
        else:
            nonce = self._nonce()
        conn.peer_challenge = (msg.server, nonce, msg.nonce)
        proof = peer_proof(self.config.secret, "accept", self.name, msg.server, msg.nonce)
        self._send(conn, p.PeerChallenge(server=self.name, nonce=nonce, proof=proof))

    def _peer_challenged(self, msg: p.PeerChallenge, link: _OutLink) -> None:
        """The dialed server's answer on our outbound link: check its proof, then prove ours."""
        secret, ours = self.config.secret, link.nonce
        if ours is None and link.url in self.peer.up:
            return  # the challenge we answered, delivered again
        if ours is None or not hmac.compare_digest(peer_proof(secret, "accept", msg.server, self.name, ours).encode(),
                                                   msg.proof.encode()):
            log.warning("peer %r at %s failed authentication", msg.server, link.url)
            self._out.append(PeerClose(CloseCode.PEER_AUTH, "peer authentication failed", to=link.url))
            return
        link.nonce = None
        link.name = msg.server
        self.peer.up.add(link.url)
        self._peer_send_to(link, p.PeerProof(proof=peer_proof(secret, "dial", self.name, msg.server, msg.nonce)))
        for frame in self.peer_interaction_sync():  # before the epochs: see _peer_proof
            self._peer_send_to(link, frame)
        for chat in self._chat_sync():
            self._peer_send_to(link, chat)
        self._peer_send_to(link, self.peer_state())
        self._peer_send_to(link, self.presence_snapshot())
        self._reclaim_at.pop(msg.server, None)
        self._hand_over_again(None)
        log.info("peer link to %s up", link.url)

    def _peer_proof(self, conn: Conn, msg: p.PeerProof) -> None:
        if conn.kind == "peer":
            return  # the proof that made this socket a peer link, delivered again
        challenge = conn.peer_challenge
        conn.peer_challenge = None
        expected = peer_proof(self.config.secret, "dial", challenge[0], self.name, challenge[1]) if challenge else ""
        if challenge is None or not hmac.compare_digest(expected.encode(), msg.proof.encode()):
            who = challenge[0] if challenge else "?"
            log.warning("%s: peer %r failed authentication", conn, who)
            self._close(conn, CloseCode.PEER_AUTH, "peer authentication failed")
            return
        server = challenge[0]
        conn.kind = "peer"
        conn.peer_site = server
        conn.registered = True
        conn.hb_timeout = self.config.heartbeat_timeout_ms / 1000
        self.peer_inbound.add(conn.id)
        # Answer on the same link with what we hold and know: the dialling server may have just
        # restarted (or stalled) and is waiting for this before it accepts logins.
        # Interactions first: the full epochs end a stalled server's hold on offers, and by then it
        # must know what our agents hold.
        for frame in self.peer_interaction_sync():
            self._send(conn, frame)
        for chat in self._chat_sync():
            self._send(conn, chat)
        self._send(conn, self.peer_state())
        self._send(conn, self.presence_snapshot())
        self._reclaim_at.pop(server, None)
        log.info("%s: peer link from %s", conn, server)

    def peer_state(self) -> p.PeerAgentEpochs:
        held = {agent_id: s.epoch for agent_id, s in self.sessions.items()}
        fencing = self.fencing
        return p.PeerAgentEpochs(server=self.name, epochs=held, known=dict(fencing.known_epoch), full=True,
                                 resumed=fencing.peer_resumed(held, self.wall_ms),
                                 logged_out_epochs={a: dict(sites) for a, sites in fencing.logged_out_epoch.items()})

    def _peer_epochs_received(self, msg: p.PeerAgentEpochs, fresh: bool) -> None:
        """``fresh``: it came on a link opened since our last stall, so it was sent after it."""
        self.peer_name = msg.server
        fencing = self.fencing
        if msg.full:
            fencing.peer_forget(msg.server)
            for agent_id, epoch in msg.known.items():
                fencing.saw(agent_id, epoch)
        for agent_id in msg.logged_out:
            fencing.peer_logout(msg.server, agent_id)
        for agent_id, sites in msg.logged_out_epochs.items():
            for site, epoch in sites.items():
                fencing.void(agent_id, site, epoch)
        if msg.full:  # markers of logins that ended there unacknowledged (fencing.peer_resumed)
            for agent_id, token_epoch in msg.resumed.items():
                if agent_id not in msg.epochs and agent_id in msg.known:
                    fencing.peer_lost_ack(agent_id, msg.known[agent_id], token_epoch, self.wall_ms)
        for agent_id, epoch in msg.epochs.items():
            fencing.peer_login(agent_id, epoch, msg.resumed.get(agent_id), self.wall_ms, msg.server)
            here = self.sessions.get(agent_id)
            # Equal epochs (two logins during a partition) are settled the same way on both
            # sides: the server with the smaller name keeps the login.
            if here is not None and (here.epoch < epoch or (here.epoch == epoch and msg.server < self.name)):
                reason: p.LogoutReason = "duplicate_login" if agent_id in msg.duplicates else "moved"
                self._end_session(here, reason, f"logged in at {msg.server} at epoch {epoch}", close=True,
                                  by=msg.server)
        if msg.full and (fresh or self.stalled_until is None):
            self._heard_full.add(msg.server)
        if msg.full and (fresh or self.stalled_until is None) and len(self._heard_full) >= len(self.links):
            # Fresh news from every peer: logins may go ahead, a stalled server may act again. (A
            # full state read after a stall but sent before it does not end the stall.)
            if not self.synced:
                self._peer_synced()
            if self.stalled_until is not None:
                log.info("heard the peer since the stall; going ahead")
                self._end_stall()
            else:
                self.engine.hold(0)
        if msg.full:
            self._judge_parked_checks()  # primary checks that waited to know what the peer holds

    def peer_interaction_sync(self) -> list[p.PeerInteractions]:
        """Every interaction held or completed here, in frames small enough for the peer's limit."""
        rows = [p.PeerInteractionRecord(interaction_id=iid, status=status, queue=queue, media=media,
                                        agent_id=agent, claim=claim, epoch=self._holder_epoch(status, agent))
                for iid, status, agent, queue, media, claim in self.engine.peer_records()]
        rows += self.transfers.waiting_rows()
        return [p.PeerInteractions(server=self.name, records=rows[i:i + 100]) for i in range(0, len(rows), 100)]

    def _peer_interactions_received(self, msg: p.PeerInteractions, reply_to: Conn | None) -> None:
        refused = []
        now = self.wall_ms
        for row in msg.records:
            if row.status == "queued":
                self.transfers.peer_queued(row, msg.server)
                continue
            if self._stale_holder(row):
                refused.append(row.interaction_id)
                log.info("peer %s: refused %s claim on %s (agent %s is logged in here at a newer epoch)", msg.server,
                         row.claim, row.interaction_id, row.agent_id)
                continue
            agreed, effects = self.engine.peer_record(row.interaction_id, row.status, row.agent_id, row.queue,
                                                      row.media, row.claim, now, peer_wins_ties=msg.server < self.name,
                                                      site=msg.server)
            if row.status in ("completed", "ended"):
                self.chat.drop(row.interaction_id)  # our copy of its chat (chat.py) is done with
            if not agreed:
                refused.append(row.interaction_id)
                log.info("peer %s: refused %s claim on %s (held or completed here)", msg.server, row.claim,
                         row.interaction_id)
            self._apply(effects)
        if msg.ack_id is not None and reply_to is not None:
            self._send(reply_to, p.PeerInteractionsAck(server=self.name, ack_id=msg.ack_id, refused=refused))

    # ------------------------------------------------------------------ the agent pool (pool.py)

    def _presence(self, agent_id: str) -> p.AgentPresence | None:
        """What we tell the other sites of a local agent (None: never told, nothing to say)."""
        session = self.sessions.get(agent_id)
        seq = self.pool.next_seq()
        if session is None:
            epoch = self.pool.told_epoch.pop(agent_id, None)
            return None if epoch is None else p.AgentPresence(agent_id=agent_id, epoch=epoch, seq=seq, logged_in=False)
        routed = self.engine.agents.get(agent_id)
        self.pool.told_epoch[agent_id] = session.epoch
        return p.AgentPresence(agent_id=agent_id, epoch=session.epoch, seq=seq, state=session.state,
                               reason=session.reason, since_ms=session.since_ms,
                               available=routed is not None and routed.available,
                               idle_since_ms=routed.idle_since if routed is not None else session.since_ms,
                               queues=dict(routed.penalties) if routed is not None else {})

    def _tell_presence(self) -> None:
        dirty, self.pool.dirty = self.pool.dirty, set()
        if not self.peer.link_up:
            return  # nobody to tell: the full snapshot at the next link-up says it all
        agents = [a for a in (self._presence(agent_id) for agent_id in sorted(dirty)) if a is not None]
        if agents:
            self._peer_send(p.PeerPresence(server=self.name, incarnation=self.pool.incarnation, seq=self.pool.seq,
                                           agents=agents))

    def presence_snapshot(self) -> p.PeerPresence:
        self.pool.dirty.clear()
        agents = [a for a in (self._presence(agent_id) for agent_id in sorted(self.sessions)) if a is not None]
        return p.PeerPresence(server=self.name, incarnation=self.pool.incarnation, seq=self.pool.next_seq(),
                              agents=agents, full=True, rules_version=self.rules_version,
                              config=self.config_version)

    def _peer_presence(self, msg: p.PeerPresence) -> None:
        if msg.server == self.name:
            return
        if msg.full and msg.config is not None:
            self._config_told(msg.server, msg.config)
        if msg.full and msg.rules_version is not None and self.peer_rules.get(msg.server) != msg.rules_version:
            differed = msg.server in self.rules_differ
            self.peer_rules[msg.server] = msg.rules_version
            self._say_rules(msg.server, differed)
        restarted = self.pool.apply(msg)
        if self.center is not None:
            taken = [a for a in msg.agents if (seen := self.pool.remote.get(a.agent_id)) is not None
                     and seen.site == msg.server and seen.presence is a]
            self._center_events(self.center.told(msg.server, taken, msg.full, self._name_of, self._local_epoch))
        if restarted:
            log.info("peer %s restarted: taking back what it had not given to an agent", msg.server)
            self._apply(self.engine.reclaim(msg.server, self.wall_ms, unanswered=False))
        self._apply(self.engine.route(self.wall_ms))

    @property
    def rules_differ(self) -> dict[str, str]:
        """Peers whose routing rules differ from ours: site -> the version it told."""
        return {site: version for site, version in self.peer_rules.items() if version != self.rules_version}

    def _say_rules(self, site: str, differed: bool) -> None:
        theirs = self.peer_configs.get(site)
        if site in self.rules_differ and theirs is not None and (
                shared_config.newer(theirs, self.config_version) or shared_config.newer(self.config_version, theirs)):
            # One of us has a newer configuration and is passing it on (or has just taken it).
            log.info("site %s routes on other rules until the newer configuration reaches it or us (version %s, "
                     "ours %s); no interaction goes between it and us meanwhile", site, self.peer_rules[site],
                     self.rules_version)
        elif site in self.rules_differ:
            log.warning("site %s routes on other rules (version %s, ours %s: queues, members, penalties, reasons "
                        "or dispositions differ): no interaction goes between it and us until they agree", site,
                        self.peer_rules[site], self.rules_version)
        elif differed:
            log.info("site %s routes on our rules again (version %s)", site, self.rules_version)

    def _remote_member(self, queue: str, local: tuple[int, int] | None) -> Remote | None:
        """The engine asks: a better member of ``queue`` at another site? Only with a link to it."""
        if not self.peer.link_up or self.stalled_until is not None:
            return None
        linked = {link.name for link in self.links.values() if link.url in self.peer.up} - set(self.rules_differ)
        return self.pool.best(queue, local, lambda agent_id: agent_id in self.sessions
                              or self.pool.remote[agent_id].site not in linked)

    def _hand_over(self, effect: HandOver) -> None:
        iid = effect.interaction.interaction_id
        self.pool.reserved[effect.agent_id] = iid
        self.pool.sent[iid] = Sending(effect.site, effect.agent_id, effect.epoch, self._now.mono)
        log.info("handing %s over to agent %s at %s (move %d)", iid, effect.agent_id, effect.site, effect.moves)
        link = self._link_to(effect.site)
        if link is not None:
            self._peer_send_to(link, p.PeerHandover(
                server=self.name, interaction=effect.interaction, agent_id=effect.agent_id, epoch=effect.epoch,
                moves=effect.moves, arrived_ms=effect.arrived_ms))

    def _hand_over_again(self, mono: float | None) -> None:
        """Hand-overs not answered in time (or sent before the link dropped) go again: the receiver
        answers a repeat as it answered the first. One that ended otherwise (the receiver's agent
        claimed the interaction before its answer came) frees its agent's reservation."""
        timeout = self.config.peer_ack_timeout_ms / 1000
        for iid, sending in list(self.pool.sent.items()):
            item = self.engine.interactions.get(iid)
            if item is None or item.status != MOVING or item.agent_id != sending.agent_id:
                del self.pool.sent[iid]
                self.pool.release(sending.agent_id, iid)
                continue
            link = self._link_to(sending.site)
            if link is None or (mono is not None and mono - sending.at < timeout):
                continue
            sending.at = self._now.mono
            seen = self.pool.remote.get(sending.agent_id)
            if seen is not None and seen.site == sending.site and seen.presence.logged_in:
                sending.epoch = seen.presence.epoch  # the agent logged in there again meanwhile
            self._peer_send_to(link, p.PeerHandover(
                server=self.name, interaction=item.interaction, agent_id=sending.agent_id, epoch=sending.epoch,
                moves=item.moves, arrived_ms=item.arrived_ms))

    def _take_over(self, msg: p.PeerHandover) -> p.PeerHandoverAck:
        """Another site hands us an interaction for one of our agents."""
        iid = msg.interaction.interaction_id
        if msg.server in self.rules_differ:
            differ = (f"routing rules differ: ours are version {self.rules_version}, "
                      f"{msg.server}'s {self.rules_differ[msg.server]}")
            log.warning("peer %s handed %s over: refused (%s)", msg.server, iid, differ)
            return p.PeerHandoverAck(server=self.name, interaction_id=iid, moves=msg.moves, accepted=False,
                                     reason=differ[:256])
        session = self.sessions.get(msg.agent_id)
        here = session is not None and session.epoch == msg.epoch
        accepted, reason, effects = self.engine.take_over(msg.interaction, msg.agent_id, msg.moves, msg.arrived_ms,
                                                          self.wall_ms, sender=msg.server, here=here,
                                                          wins_cross=self.name > msg.server,
                                                          penalty=self._named_penalty(msg.agent_id,
                                                                                      msg.interaction.queue))
        self._apply(effects)
        iid = msg.interaction.interaction_id
        item = self.engine.interactions.get(iid)
        # Offered to another member (the named agent could not take it): say who, so the sender
        # knows that agent is busy too before its presence says so.
        offered_to = (item.agent_id if accepted and item is not None and item.status == OFFERED
                      and item.agent_id != msg.agent_id else None)
        log.info("peer %s handed %s over for agent %s: %s", msg.server, iid, msg.agent_id,
                 f"taken, offered to agent {offered_to}" if offered_to else
                 "taken" if accepted else f"refused ({reason})")
        return p.PeerHandoverAck(server=self.name, interaction_id=iid, moves=msg.moves, accepted=accepted,
                                 reason=reason[:256] if reason else None, offered_to=offered_to)

    def _named_penalty(self, agent_id: str, queue: str) -> int | None:
        """The penalty of ``agent_id`` for ``queue`` under this site's rules (which a hand-over's
        sender shares: rules that differ are refused before), None if it is no member: the most a
        member here may have to take a hand-over in its place."""
        routed = self.engine.agents.get(agent_id)
        if routed is not None:
            return routed.penalties.get(queue)
        record = self.directory.get(agent_id)
        return None if record is None else self._penalties(record).get(queue)

    def _handed_over(self, msg: p.PeerHandoverAck) -> None:
        iid = msg.interaction_id
        item = self.engine.interactions.get(iid)
        if item is None or item.status != MOVING or item.moves != msg.moves:
            return  # an answer to an attempt that is over
        agent_id = item.agent_id
        sending = self.pool.sent.pop(iid, None)
        if agent_id is not None:
            seen = self.pool.remote.get(agent_id)
            # Offered it (busy now), or refused it: not again until its site says more. A refusal
            # for an older login of the agent says nothing of the newer one we know of.
            if msg.accepted or sending is None or seen is None or seen.presence.epoch <= sending.epoch:
                self.pool.unusable(agent_id)
            self.pool.release(agent_id, iid)
        # A stand-in that took it (``offered_to``) is not marked unusable here: its presence says it
        # is busy, and on the mesh that comes on another socket than this answer, so a mark made now
        # could land after a newer "available again" and hide it from this site until it changes.
        if not msg.accepted:
            log.info("peer %s refused %s (%s); routing it again", msg.server, iid, msg.reason)
        self._apply(self.engine.handed_over(iid, msg.moves, msg.accepted, self.wall_ms, msg.reason,
                                            msg.offered_to if msg.accepted else None))

    # ------------------------------------------------------------------ one configuration (shared_config.py)

    def _initial_config_version(self, stored: p.ConfigVersion | None) -> p.ConfigVersion:
        """Our version at start: the stored one if the files still hold it; the next generation
        (a change made here) if they were changed while the server was down; else generation 0."""
        current = shared_config.digest(self.config, self.directory)
        if stored is None:
            return p.ConfigVersion(generation=0, origin=self.name, digest=current)
        if stored.digest == current:
            return stored
        version = p.ConfigVersion(generation=stored.generation + 1, origin=self.name, digest=current)
        log.info("site files changed while the server was down: shared configuration version %s",
                 _version_text(version))
        self._out.append(StoreConfig(self.config, self.directory, version, files=False))
        return version

    def _config_told(self, site: str, version: p.ConfigVersion) -> None:
        """A site's full presence told its configuration version: send ours if it is older."""
        before = self.peer_configs.get(site)
        self.peer_configs[site] = version
        ours = self.config_version
        if version.digest != ours.digest and version != before:
            which = ("ours is newer: sending it" if shared_config.newer(ours, version) else
                     "theirs is newer: taking it when it arrives" if shared_config.newer(version, ours) else
                     "neither was changed since its site started: change one site's files and reload it")
            log.warning("site %s has shared configuration version %s, ours is %s (%s)", site, _version_text(version),
                        _version_text(ours), which)
        elif version.digest == ours.digest and before is not None and before.digest != ours.digest:
            log.info("site %s has our shared configuration again (version %s)", site, _version_text(version))
        link = self._link_to(site)
        if link is not None and shared_config.newer(ours, version):
            self._push_config(link)
        self._config_status()

    def _config_differs(self) -> dict[str, p.ConfigVersion]:
        return {site: v for site, v in sorted(self.peer_configs.items()) if v.digest != self.config_version.digest}

    def _config_status(self) -> None:
        """Tell reporting subscribers when our version or the sites that differ from it change."""
        status = (self.config_version, self._config_differs())
        if status != self._config_published:
            self._config_published = status
            self._publish(lambda seq: p.EventConfigVersion(server=self.name, seq=seq, version=status[0],
                                                           differs=status[1]))

    def _push_config(self, link: _OutLink) -> None:
        """Our configuration to one site, once per version and link."""
        assert link.name is not None
        if link.url not in self.peer.up or self._config_pushed.get(link.name) == (self.config_version, link.up_at):
            return
        self._config_pushed[link.name] = (self.config_version, link.up_at)
        for frame in shared_config.frames(self.name, self.config_version, self.config, self.directory):
            self._peer_send_to(link, frame)

    def _peer_config(self, msg: p.PeerConfig) -> None:
        parts = self._config_parts.add(msg)
        if parts is None or not shared_config.newer(msg.version, self.config_version):
            return
        try:
            config, directory = shared_config.adopt(parts, self.config)
        except ValueError as exc:
            log.error("shared configuration version %s from %s refused, ours (%s) stays: %s",
                      _version_text(msg.version), msg.server, _version_text(self.config_version), exc)
            return
        if shared_config.digest(config, directory) != msg.version.digest:
            log.error("shared configuration version %s from %s does not match its digest; ignored",
                      _version_text(msg.version), msg.server)
            return
        log.warning("taking shared configuration version %s from %s (ours was %s): %d queue(s), %d agent(s)",
                    _version_text(msg.version), msg.server, _version_text(self.config_version),
                    len(config.queues), len(directory.agents))
        self.config_version = msg.version
        self._out.append(StoreConfig(config, directory, msg.version, files=True))
        self._apply_rules(config, directory)
        self._config_status()

    # ------------------------------------------------------------------ supervisor actions on other sites' agents

    def _relay_if_remote(self, conn: Conn, msg: p.RequestForceNotReady | p.RequestForceLogout,
                         action: Literal["not_ready", "logout"], reason: str | None) -> None:
        """An agent logged in at another site: the action goes to that site (the agent's only
        authority), and the supervisor is answered when it answers (raises _Silent meanwhile)."""
        if msg.agent_id in self.sessions or conn.principal is None or not conn.reporting \
                or conn.principal.role != "supervisor":
            return  # here, or not allowed: the local checks say why
        seen = self.pool.remote.get(msg.agent_id)
        if seen is None or not seen.presence.logged_in:
            return
        site = seen.site
        link = self._link_to(site)
        if link is None:
            raise Refusal("site_unreachable", f"agent {msg.agent_id} is logged in at {site}, which {self.name} "
                                              f"cannot reach now; try again later or ask {site}")
        if action == "not_ready" and reason not in self.reasons:
            raise Refusal("invalid_reason", f"unknown Not Ready reason {reason!r}; known: {sorted(self.reasons)}")
        by = conn.principal.id
        key = f"{self.name}/{by}/{msg.request_id}"
        conn.inflight[msg.request_id] = 0
        self.remote_actions.relayed(key, conn.id, msg, site, self._now.mono)
        log.info("%s: supervisor %s: %s of agent %s relayed to %s", conn, by, type(msg).__name__, msg.agent_id, site)
        self._peer_send_to(link, p.PeerForce(server=self.name, key=key, agent_id=msg.agent_id, action=action, by=by,
                                             reason=reason))
        raise _Silent

    def _forced_here(self, msg: p.PeerForce) -> p.PeerForceAck:
        """Another site relays a supervisor's action on one of our agents: applied once per key."""
        cached = self.remote_actions.answer(msg.key)
        if cached is not None:
            return cached
        session = self.sessions.get(msg.agent_id)
        by = f"{msg.by}@{msg.server}"
        if session is None:
            answer = p.PeerForceAck(server=self.name, key=msg.key, ok=False, code="not_logged_in",
                                    message=f"agent {msg.agent_id} is not logged in at {self.name} any more")
        elif msg.action == "not_ready" and msg.reason not in self.reasons:
            answer = p.PeerForceAck(server=self.name, key=msg.key, ok=False, code="invalid_reason",
                                    message=f"unknown Not Ready reason {msg.reason!r} at {self.name}")
        else:
            epoch = session.epoch
            if msg.action == "not_ready":
                self._change_state(session, "not_ready", msg.reason, forced_by=by)
                self._apply(self.engine.set_state(session.agent.id, "not_ready", self.wall_ms))
                agent_conn = self.conns.get(session.conn)
                if agent_conn is not None:
                    self._send(agent_conn, self._status(session, forced_by=by))
            else:
                self._end_session(session, "forced", f"logged out by supervisor {by}", close=True, by=by,
                                  void_tokens=True)
            log.info("supervisor %s (relayed by %s): agent %s %s", msg.by, msg.server, msg.agent_id,
                     f"set Not Ready ({msg.reason})" if msg.action == "not_ready" else "logged out")
            answer = p.PeerForceAck(server=self.name, key=msg.key, ok=True, epoch=epoch)
        self.remote_actions.remember(msg.key, answer)
        return answer

    def _forced_there(self, msg: p.PeerForceAck) -> None:
        relay = self.remote_actions.answered(msg.key)
        if relay is None:
            return  # answered already (a timeout), or a repeat
        conn = self.conns.get(relay.conn)
        if conn is None or conn.closing:
            return
        if msg.ok:
            ack = p.EventAck(request_id=relay.msg.request_id, server=self.name, epoch=msg.epoch)
            self._deliver(conn, relay.msg, ack, ())
        else:
            self._protocol_error(conn, msg.code or "internal", f"{relay.site}: {msg.message or 'refused'}",
                                 relay.msg.request_id)

    def _relays_expire(self, mono: float) -> None:
        for relay in self.remote_actions.expired(mono, lambda site: self._link_to(site) is not None):
            conn = self.conns.get(relay.conn)
            if conn is None or conn.closing:
                continue
            why = "the link to it was lost" if self._link_to(relay.site) is None else "it did not answer in time"
            self._protocol_error(conn, "site_unreachable", f"agent {relay.msg.agent_id} is at {relay.site}, and {why}; "
                                 f"retry with the same request_id (applied at most once)", relay.msg.request_id)

    # ------------------------------------------------------------------ the witness (witness.py)

    def _primary_check(self, conn: Conn, msg: p.RequestPrimaryCheck, may_wait: bool = True) -> Answer:
        """A standby's desktop finds its primary silent: is it alive and hearing the desktop? "No" at
        once when the peer that holds the login is not linked or not heard within FRESH_S (a dead
        or hung primary fails over as fast as before); otherwise the primary is asked. Just started
        or stalled, before a linked peer's full state is read, the question waits for it (at most
        the witness' ask timeout): an empty table is not "no peer holds the login"."""
        agent_id = conn.standby_for
        if agent_id is None:
            raise Refusal("invalid_state", "this socket is not a standby (send RequestAgentAvailable first)")
        if may_wait and self._peers_unheard():  # restarted or stalled: we may not know who holds it yet
            self.witness.park(conn.id, msg, self._now.mono)
            conn.inflight.setdefault(msg.request_id, 0)
            raise _Silent()
        site = self.fencing.peer_site(agent_id)
        held = self.fencing.peer_sites.get(site, {}).get(agent_id) if site is not None else None
        link = self._link_to(site) if site is not None else None
        mono = self._now.mono
        silent = self._peer_silent_for(site) if site is not None else 0.0
        why = ("no peer holds the login" if site is None or held != msg.epoch else
               f"no link to {site}" if link is None else
               f"{site} not heard for {silent:.2f} s" if silent > FRESH_S else None)
        if why is not None:
            log.info("%s: primary check for %s at epoch %d: not alive (%s)", conn, agent_id, msg.epoch, why)
            return p.EventAck(request_id=msg.request_id, server=self.name, primary_alive=False), ()
        assert site is not None and link is not None
        ask_id = self.witness.ask(conn.id, msg.request_id, site, mono)
        conn.inflight.setdefault(msg.request_id, 0)
        self._peer_send_to(link, p.PeerWitness(server=self.name, agent_id=agent_id, epoch=msg.epoch, ask_id=ask_id,
                                               release=msg.release))
        raise _Silent()

    def _peer_silent_for(self, site: str) -> float:
        """How long ``site``'s own link to us has been silent (its heartbeats every 0.5 s). Not (yet)
        back, as after our restart until it dials again: 0, since our link to it is up but its
        heartbeats on that one are the transport's; it is asked rather than taken for dead."""
        inbound = [self.conns[c].last_rx for c in self.peer_inbound
                   if c in self.conns and self.conns[c].peer_site == site]
        return self._now.mono - max(inbound) if inbound else 0.0

    def _peers_unheard(self) -> bool:
        """Not yet told by every linked peer what it holds: just started (the sync grace), or a
        peer linked whose full state has not been read since the start or the last stall."""
        return not self.synced or any(link.url in self.peer.up and link.name not in self._heard_full
                                      for link in self.links.values())

    def _judge_parked_checks(self) -> None:
        """The primary checks that waited for the peers' state: judged now if it is known, or past
        their wait on what is known then."""
        for parked in self.witness.unpark(self._now.mono, not self._peers_unheard()):
            conn = self.conns.get(parked.conn)
            if conn is None or conn.closing:
                continue
            msg = parked.msg
            self._answer(conn, msg, functools.partial(self._primary_check, conn, msg, False))

    def _primary_checked(self, conn_id: ConnId, request_id: str, alive: bool, why: str) -> None:
        conn = self.conns.get(conn_id)
        if conn is None:
            return
        log.info("%s: primary check: %s (%s)", conn, "alive" if alive else "not alive", why)
        frame = self._send(conn, p.EventAck(request_id=request_id, server=self.name, primary_alive=alive))
        conn.answers.remember(request_id, frame)
        self._answered(conn, request_id, frame)

    def _witness_answered(self, msg: p.PeerWitnessAck) -> None:
        asked = self.witness.answered(msg.ask_id)
        if asked is not None:
            self._primary_checked(asked.conn, asked.request_id, msg.alive, f"{msg.server} says so")

    def _witness_lost(self, site: str) -> None:
        for asked in self.witness.site_lost(site):
            self._primary_checked(asked.conn, asked.request_id, False, f"the link to {site} is lost")

    def _witness_asked(self, msg: p.PeerWitness) -> p.PeerWitnessAck:
        """The standby asks whether we hold the agent's login and hear its desktop: we do if the login
        is at that epoch and counted reachable (heard within the heartbeat timeout). Its desktop gets
        a heartbeat at once: if our frames get through, it hears us again."""
        session = self.sessions.get(msg.agent_id)
        conn = self.conns.get(session.conn) if session is not None else None
        # Heard within the socket's heartbeat timeout, plus what a rarer beat of the desktop adds
        # (asymmetric terms: its last beat may be one of its intervals old, not one of ours), not
        # within its whole suspect threshold: a desktop that asks beats its primary first, so a
        # primary that can hear it has, and one cut off from it is not vouched for 4.5 s.
        heard_within = 0.0 if conn is None else (max(self.config.heartbeat_timeout_ms / 1000, 3 * conn.hb_interval)
                                                 + max(0.0, conn.hb_timeout / 3 - conn.hb_interval))
        alive = session is not None and conn is not None and session.epoch == msg.epoch and session.reachable \
            and not conn.closing and self._now.mono - conn.last_rx <= heard_within and not msg.release
        log.info("peer %s asks whether agent %s at epoch %d hears us: %s", msg.server, msg.agent_id, msg.epoch,
                 "yes" if alive else "no")
        if alive:
            assert conn is not None
            self._send(conn, p.Heartbeat())
        elif session is not None and session.epoch == msg.epoch:
            # Its desktop, which we have not heard for the heartbeat timeout (or which cannot hear us
            # and moves whatever we say: ``release``), is moving the login to
            # the asking site: end it now, before the new login is made and reported there, rather
            # than when the desktop's close reaches us (late, on a starved machine): no double login.
            self._end_session(session, "disconnected", f"not heard within the heartbeat timeout, and its desktop "
                                                       f"asked {msg.server} to take the login", close=True)
        return p.PeerWitnessAck(server=self.name, ask_id=msg.ask_id, alive=alive)


def _version_text(version: p.ConfigVersion) -> str:
    return f"{version.generation}@{version.origin} ({version.digest})"


def _user_id(msg: Credentialed) -> str:
    return msg.user_id if isinstance(msg, p.RequestSubscribeReporting) else msg.agent_id
