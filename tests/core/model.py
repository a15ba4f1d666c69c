"""A simulated world for the session core: a fake clock, fake links and one model server per site.

The model servers answer as docs/protocol.md (and server_stub/server.py) say, for a single
agent: register acks with reasons; login with password or resume token, epoch = max(requested,
known + 1), stale tokens refused, a newer login fencing the older one; available / not available;
state requests checked against the socket's login epoch; logout (voiding the login's tokens at both
sites unless it is a failback's handover); heartbeats both ways and closing
a client silent for 1.5 s; resume tokens refreshed; an answer cache per agent. Optional peer
fencing: a login on one site logs out (``moved``) a lower-epoch login on the other while both run.

Interactions: a model server offers an interaction (``offer``) to the agent's login, takes it into
the agent's hands on accept, keeps notes, completes it once (an id it or its peer knows as completed
is acknowledged again without a second completion), revokes offers and abandons interactions in
hand on request, keeps what an agent held when its login ends (to be re-attached), and adopts what
a login carries unless it knows the id as completed. The peer, while both run, learns every
completion (and on start-up sync the whole set).

Faults: a server closes or resets its links, crashes and reboots with fresh memory, hangs (stops
processing, answering and beating; what arrives meanwhile is processed when it resumes, as after
SIGSTOP/SIGCONT), or becomes slow (per-server latency; each direction of a link stays FIFO).

The world also checks, as it runs, what no moment may break (see ``World`` docstring).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import defaultdict
from dataclasses import dataclass

from desktop.core import events as ev
from desktop.core.config import SessionConfig
from desktop.core.session import AgentSession
from server_stub import protocol as p

AGENT = "1001"
PASSWORD = "pw"
REASONS = ("break", "lunch")
WALL0 = 1_700_000_000_000
BASE_LATENCY = 0.002
TICK = 0.25  # server sweep period
SERVER_TIMEOUT = 1.5
SERVER_INTERVAL = 0.5
TOKEN_REFRESH = 20.0
_SOCKET_BINDING = (p.RequestRegisterClient, p.RequestAgentLogin, p.RequestAgentAvailable)


@dataclass(eq=False)
class Conn:
    link: int
    server: ModelServer
    incarnation: int
    opened: float
    last_rx: float
    last_tx: float
    registered: bool = False
    standby: bool = False
    login: Login | None = None
    closed: bool = False


def token_claim(token: str) -> tuple[int, str]:
    """(epoch, issuing site) of a model token, ``T.<epoch>.<wall ms>.<site>``."""
    _, epoch, _, site = token.split(".")
    return int(epoch), site


@dataclass(eq=False)
class Login:
    conn: Conn
    epoch: int
    state: str
    reason: str | None
    since_ms: int
    token_at: float
    made_from: tuple[str, int] | None = None  # (site, epoch) of the token it was made with


@dataclass(eq=False)
class HeldHere:
    notes: str
    epoch: int


class Refusal(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class ModelServer:
    def __init__(self, name: str, world: World):
        self.name = name
        self.world = world
        self.incarnation = 0
        self.latency = BASE_LATENCY
        self.up = True
        self.hung = False
        self.boot()

    # ------------------------------------------------------------------ lifecycle and faults

    def boot(self) -> None:
        """(Re)start with fresh memory."""
        self.up, self.hung, self.latency = True, False, BASE_LATENCY
        self.incarnation += 1
        self.login: Login | None = None
        self.known = 0  # highest epoch ever seen here (own logins, peer, tokens)
        # (epoch, token epoch) of the last login made here with a token: the lost-ack retry rule
        self.resumed_from: tuple[int, int] | None = None
        # Issuing site -> epoch of its last login logged out for good (here or told by the peer):
        # that site's tokens up to it are void.
        self.logged_out: dict[str, int] = {}
        self.answers: dict[str, p.Message] = {}  # the agent's answered request ids
        self.conns: set[Conn] = set()
        self.backlog: list[tuple[Conn, p.Message | None]] = []
        self.offers: dict[str, tuple[int, p.Interaction]] = {}  # offered to the agent's login at epoch
        self.held: dict[str, HeldHere] = {}  # in the agent's hands (kept when its login ends)
        self.completed: set[str] = set()  # completed here or (as the peer told) there
        self.world.schedule(self.world.now + TICK, self.tick, self.incarnation)
        self.world.peer_sync()

    def crash(self) -> None:
        self.up = False
        for conn in list(self.conns):
            conn.closed = True
            self.world.close_to_client(conn, p.CloseCode.ABNORMAL)
        self.conns.clear()
        self.login = None

    def drop_links(self, code: int) -> None:
        for conn in list(self.conns):
            self.close(conn, code)

    def resume(self) -> None:
        """SIGCONT: everyone gets a fresh timeout, the peer link tells what happened meanwhile (a
        login it holds at a newer epoch fences ours, as docs/protocol.md "SIGSTOP" shows), then what
        queued up is processed in order."""
        self.hung = False
        for conn in self.conns:
            conn.last_rx = self.world.now
        self.world.peer_sync()
        backlog, self.backlog = self.backlog, []
        for conn, message in backlog:
            if message is None:
                self.client_closed(conn)
            else:
                self.receive(conn, message)
        self.world.peer_sync()

    def tick(self, incarnation: int) -> None:
        if incarnation != self.incarnation or not self.up:
            return
        now = self.world.now
        self.world.schedule(now + TICK, self.tick, incarnation)
        if self.hung:
            return
        for conn in list(self.conns):
            if now - conn.last_rx > SERVER_TIMEOUT or (not conn.registered and now - conn.opened > 10):
                self.close(conn, p.CloseCode.HEARTBEAT)
            elif conn.registered and now - conn.last_tx >= SERVER_INTERVAL:
                self.send(conn, p.Heartbeat())
        login = self.login
        if login is not None and now - login.token_at >= TOKEN_REFRESH:
            login.token_at = now
            self.send(login.conn, p.EventResumeToken(epoch=login.epoch, resume_token=self.token(login.epoch),
                                                     token_expires_ms=self.world.wall + 600_000))

    # ------------------------------------------------------------------ sockets

    def send(self, conn: Conn, message: p.Message) -> None:
        conn.last_tx = self.world.now
        if not conn.closed:
            self.world.to_client(conn, message)

    def close(self, conn: Conn, code: int) -> None:
        if conn.closed:
            return
        conn.closed = True
        self.gone(conn)
        self.world.close_to_client(conn, code)

    def client_closed(self, conn: Conn) -> None:
        if not self.up or conn.incarnation != self.incarnation:
            return
        if self.hung:
            self.backlog.append((conn, None))
        elif not conn.closed:
            conn.closed = True
            self.gone(conn)

    def gone(self, conn: Conn) -> None:
        self.conns.discard(conn)
        if conn.login is not None:
            self.end_login(conn.login, "disconnected", fence=False)

    def end_login(self, login: Login, reason: str, fence: bool) -> None:
        if self.login is not login:
            return
        self.login = None
        login.conn.login = None
        self.offers.clear()  # back to the queue
        if fence:
            self.send(login.conn, p.EventForcedLogout(agent_id=AGENT, epoch=login.epoch, reason=reason, message=reason))
            self.close(login.conn, p.CloseCode.SUPERSEDED)

    def token(self, epoch: int) -> str:
        return f"T.{epoch}.{self.world.wall}.{self.name}"

    # ------------------------------------------------------------------ requests

    def receive(self, conn: Conn, message: p.Message) -> None:
        if not self.up or conn.incarnation != self.incarnation or conn.closed:
            return
        if self.hung:
            self.backlog.append((conn, message))
            return
        conn.last_rx = self.world.now
        if isinstance(message, p.Heartbeat):
            return
        rid = message.request_id
        if not conn.registered and not isinstance(message, p.RequestRegisterClient):
            return self.send(conn, p.EventError(code="not_registered", message="", request_id=rid))
        if not isinstance(message, _SOCKET_BINDING) and rid in self.answers:
            return self.send(conn, self.answers[rid])  # a retry: the original answer, no effect
        handler = getattr(self, "on_" + type(message).__name__)
        try:
            answer, after = handler(conn, message)
        except Refusal as refusal:
            return self.send(conn, p.EventError(code=refusal.code, message=refusal.code, request_id=rid))
        if not isinstance(message, _SOCKET_BINDING):
            self.answers[rid] = answer
        self.send(conn, answer)
        for event in after:
            self.send(conn, event)

    def ack(self, message: p.Request, **fields) -> p.EventAck:
        return p.EventAck(request_id=message.request_id, server=self.name, **fields)

    def status(self, login: Login) -> p.EventCurrentAgentStatus:
        return p.EventCurrentAgentStatus(
            agent_id=AGENT,
            epoch=login.epoch,
            server=self.name,
            state=login.state,
            since_ms=login.since_ms,
            reason=login.reason,
            interaction_ids=sorted(i for i, h in self.held.items() if h.epoch == login.epoch),
        )

    # ------------------------------------------------------------------ interactions (server-initiated)

    def offer(self) -> str | None:
        """Offer a new interaction to the agent's login if it holds nothing and has no offer."""
        login = self.login
        if not self.up or self.hung or login is None or self.offers or any(
                h.epoch == login.epoch for h in self.held.values()):
            return None
        iid = self.world.new_interaction()
        interaction = p.Interaction(interaction_id=iid, media="voice", queue="q", created_ms=self.world.wall)
        self.offers[iid] = (login.epoch, interaction)
        self.world.interactions[iid] = interaction
        self.send(login.conn, p.EventInvite(agent_id=AGENT, epoch=login.epoch, interaction=interaction,
                                            offered_ms=self.world.wall, expires_ms=self.world.wall + 30_000))
        return iid

    def revoke(self, held: bool) -> None:
        """The offer times out, or (``held``) the customer hangs up on the interaction in hand."""
        login = self.login
        if not self.up or self.hung or login is None:
            return
        if held:
            iid = next((i for i, h in self.held.items() if h.epoch == login.epoch), None)
            if iid is None:
                return
            del self.held[iid]
            self.world.abandoned_interactions.add(iid)
            reason = "abandoned"
        else:
            iid = next(iter(self.offers), None)
            if iid is None:
                return
            del self.offers[iid]
            reason = "timeout"
        self.send(login.conn, p.EventInviteRevoked(agent_id=AGENT, epoch=login.epoch, interaction_id=iid,
                                                   reason=reason, message=reason))

    def on_RequestRegisterClient(self, conn, message):
        conn.registered = True
        return self.ack(message, protocol_version=1, heartbeat_interval_ms=500, heartbeat_timeout_ms=1500,
                        reasons=[p.ReasonInfo(code=r, label=r) for r in REASONS]), ()

    def authenticate(self, message) -> int | None:
        if (message.password is None) == (message.resume_token is None):
            raise Refusal("bad_message")
        if message.password is not None:
            if message.password != PASSWORD:
                raise Refusal("bad_credentials")
            return None
        token_epoch, site = token_claim(message.resume_token)
        if token_epoch <= self.logged_out.get(site, 0):
            raise Refusal("invalid_token")
        return token_epoch

    def newest_epoch(self) -> int:
        here = self.login
        return max(here.epoch if here else 0, self.world.peer_epoch(self), self.known)

    def takes_token(self, token_epoch: int, requested: int | None = None) -> bool:
        """As server_stub/server.py: a token older than the newest login is stale, except the retry
        of the token login made here last (its ack may have been lost with its link). The retry
        must ask for a higher epoch than that login, or the original request, arriving late on the
        link the desktop gave up, would pass for a retry and displace the retry's live login
        (``moved``). The desktop asks for a higher epoch on every attempt, so its real retries
        pass. ``requested`` None: would some retry pass. Simpler than the server: the marker is
        not shared with the peer and does not expire."""
        newest = self.newest_epoch()
        retry = self.resumed_from == (newest, token_epoch) and (requested is None or requested > newest)
        return token_epoch >= newest or retry

    def on_RequestAgentLogin(self, conn, message):
        token_epoch = self.authenticate(message)
        if conn.login is not None:
            raise Refusal("already_logged_in")
        here = self.login
        if token_epoch is not None and not self.takes_token(token_epoch, message.epoch):
            raise Refusal("stale_epoch")
        wall = self.world.wall
        state, reason, since = "not_ready", None, wall
        if message.state is not None:
            state, since = message.state.state, min(message.state.since_ms, wall)
            reason = message.state.reason if state == "not_ready" else None
            if reason is not None and reason not in REASONS:
                raise Refusal("invalid_reason")
        epoch = max(message.epoch or 1, max(self.newest_epoch(), token_epoch or 0) + 1)
        if here is not None:
            self.end_login(here, "moved" if token_epoch is not None else "duplicate_login", fence=True)
        conn.standby = False
        for carried in message.interactions:  # adopt (or re-attach) what the agent holds
            iid = carried.interaction.interaction_id
            if iid not in self.completed and iid not in self.world.abandoned_interactions:
                self.held[iid] = HeldHere(carried.notes, epoch)
                self.world.adoptions[iid].append((self.name, self.incarnation, epoch))
        made_from = (token_claim(message.resume_token)[1], token_epoch) if token_epoch is not None else None
        login = Login(conn, epoch, state, reason, since, token_at=self.world.now, made_from=made_from)
        self.world.check_time_in_state(login)
        self.login, conn.login, self.known = login, login, epoch
        self.resumed_from = (epoch, token_epoch) if token_epoch is not None else None
        self.world.logins.append((self.name, self.incarnation, epoch, message.state))
        self.world.peer_told(self, epoch)
        return self.ack(message, role="primary", epoch=epoch, resume_token=self.token(epoch),
                        token_expires_ms=wall + 600_000), (self.status(login),)

    def on_RequestAgentAvailable(self, conn, message):
        self.authenticate(message)
        if conn.login is not None:
            raise Refusal("invalid_state")
        conn.standby = True
        return self.ack(message, role="secondary"), ()

    def on_RequestAgentNotAvailable(self, conn, message):
        if not conn.standby:
            raise Refusal("invalid_state")
        conn.standby = False
        return self.ack(message), ()

    def own_login(self, conn, epoch) -> Login:
        if conn.login is None:
            raise Refusal("not_logged_in")
        if conn.login.epoch != epoch:
            raise Refusal("stale_epoch")
        return conn.login

    def set_state(self, conn, message, state, reason=None):
        login = self.own_login(conn, message.epoch)
        if reason is not None and reason not in REASONS:
            raise Refusal("invalid_reason")
        intent_id = message.request_id.rpartition("/")[0]
        self.world.applications[intent_id].append((self.name, self.incarnation, login.epoch))
        if (login.state, login.reason) != (state, reason):
            login.state, login.reason, login.since_ms = state, reason, self.world.wall
        return self.ack(message, epoch=login.epoch), (self.status(login),)

    def on_RequestAgentReady(self, conn, message):
        return self.set_state(conn, message, "ready")

    def on_RequestAgentNotReady(self, conn, message):
        return self.set_state(conn, message, "not_ready", message.reason)

    def on_RequestAgentAfterCallWork(self, conn, message):
        return self.set_state(conn, message, "after_call_work")

    def held_by(self, conn, message) -> HeldHere:
        login = self.own_login(conn, message.epoch)
        held = self.held.get(message.interaction_id)
        if held is None or held.epoch != login.epoch:
            raise Refusal("unknown_interaction")
        return held

    def on_RequestAccept(self, conn, message):
        login = self.own_login(conn, message.epoch)
        offer = self.offers.pop(message.interaction_id, None)
        if offer is None or offer[0] != login.epoch:
            raise Refusal("unknown_interaction")
        self.held[message.interaction_id] = HeldHere("", login.epoch)
        self.world.accepts[message.interaction_id].append((self.name, self.incarnation, login.epoch))
        return self.ack(message, epoch=login.epoch), ()

    def on_RequestReject(self, conn, message):
        login = self.own_login(conn, message.epoch)
        if self.offers.pop(message.interaction_id, None) is None:
            raise Refusal("unknown_interaction")
        return self.ack(message, epoch=login.epoch), ()

    def on_RequestUpdateNotes(self, conn, message):
        self.held_by(conn, message).notes = message.notes
        return self.ack(message, epoch=message.epoch), ()

    def on_RequestCompleteInteraction(self, conn, message):
        login = self.own_login(conn, message.epoch)
        iid = message.interaction_id
        if iid in self.completed:  # completed here or at the peer: the same answer, nothing twice
            return self.ack(message, epoch=login.epoch), ()
        self.held_by(conn, message)
        del self.held[iid]
        self.completed.add(iid)
        self.world.completions[iid].append((self.name, self.incarnation, login.epoch, message.request_id,
                                            message.notes, message.disposition))
        self.world.peer_completed(self, iid)
        return self.ack(message, epoch=login.epoch), ()

    def on_RequestAgentLogout(self, conn, message):
        login = self.own_login(conn, message.epoch)
        self.end_login(login, "logout", fence=False)
        if not message.handover:  # a failback's login at the other site still needs the token
            voided = {self.name: login.epoch}
            if login.made_from is not None:  # and the token this login was made from
                site, epoch = login.made_from
                voided[site] = max(epoch, voided.get(site, 0))
            for site, epoch in voided.items():
                self.logged_out[site] = max(self.logged_out.get(site, 0), epoch)
            self.world.peer_logged_out(self, voided)
        return self.ack(message, epoch=login.epoch), ()


class World:
    """Clock, event queue, links, servers and the session, plus the checks made while it runs:

    - a ``RequestAgentLogin`` never leaves the desktop while a server holds the agent's login on a
      link the desktop still holds open (invariant 1 at the moment it could break);
    - no wire request id is sent twice, and nothing is sent on a link that is not open;
    - every intent gets at most one outcome; ``IntentApplied(endpoint, epoch)`` only after that
      server really applied the intent at that epoch;
    - time in state survives failover: two consecutive AgentStateChanged with the same state and
      reason carry the same ``since_ms``;
    - an intent takes effect once: a state request of it is applied at most once, anywhere (checked
      by the machine), and a login that carries it (``RequestAgentLogin.state``) never moves time in
      state forward: a login replacing the agent's effective login (the newest) in the same state
      and reason starts it no later than that login had it;
    - LoginFailed never happens while some server would still take the session's resume token: only
      as ``stale_epoch`` once no live server takes it (the one that made the lost-ack login lost its
      memory in a reboot, and the peer taught it the newer epoch). That is the one case in which the
      "user" types the password again. LoggedOut never happens (nobody logs out here).
    """

    def __init__(self, failback: str, peer_fencing: bool, seed: int):
        self.now = 0.0
        self._heap: list = []
        self._seq = itertools.count()
        self.peer_fencing = peer_fencing
        self.servers: dict[str, ModelServer] = {}
        for name in ("A", "B"):
            self.servers[name] = ModelServer(name, self)
        config = SessionConfig(endpoints=(p.Site("A", "ws://a"), p.Site("B", "ws://b")), failback=failback)
        self.session = AgentSession(config, random.Random(seed))
        self.timers: dict[object, float] = {}
        self.conn_of: dict[int, Conn] = {}
        self.client_open: set[int] = set()  # links the desktop holds open
        self.given_up_links: set[int] = set()  # links the desktop closed or was told were closed
        self.pipe: dict[tuple[int, str], float] = {}
        self.sent_ids: set[str] = set()
        self.logins_sent: set[str] = set()
        self.answered: set[str] = set()
        self.applications: dict[str, list] = defaultdict(list)  # intent id -> [(server, incarnation, epoch)]
        self.logins: list = []
        self.issued: list[tuple[str, ev.StateIntent]] = []
        self.outcome: dict[str, ev.Event | None] = {}
        self.shown: ev.AgentStateChanged | None = None
        self.login_failures = 0
        self.token_epoch: int | None = None  # of the resume token in the session's last login request
        self.effective: Login | None = None  # the agent's newest login, wherever it is
        # interactions
        self.ix_counter = itertools.count(1)
        self.interactions: dict[str, p.Interaction] = {}
        self.accepts: dict[str, list] = defaultdict(list)  # id -> [(server, incarnation, epoch)]
        self.adoptions: dict[str, list] = defaultdict(list)
        self.completions: dict[str, list] = defaultdict(list)  # id -> [(server, inc, epoch, wire id, notes, disp)]
        self.abandoned_interactions: set[str] = set()  # the customer hung up (a carrier fact, known everywhere)
        self.acked_ids: set[str] = set()  # request ids whose EventAck reached the desktop
        self.typed: dict[str, str] = {}  # id -> the notes the user typed last
        self.completing: dict[str, str] = {}  # id -> the notes the user's completion was given
        self.in_hand: set[str] = set()  # InteractionStarted seen, InteractionEnded not yet
        self.ended: dict[str, list[ev.InteractionEnded]] = defaultdict(list)
        self.ix_outcome: dict[str, ev.Event | None] = {}
        self.complete_sent: dict[str, list[tuple[str, int]]] = defaultdict(list)  # id -> [(wire id, link)]

    # ------------------------------------------------------------------ clock

    @property
    def wall(self) -> int:
        return WALL0 + round(self.now * 1000)

    def schedule(self, at: float, fn, *args) -> None:
        heapq.heappush(self._heap, (at, next(self._seq), fn, args))

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            heap_at = self._heap[0][0] if self._heap else float("inf")
            key, timer_at = min(self.timers.items(), key=lambda kv: kv[1]) if self.timers else (None, float("inf"))
            at = min(heap_at, timer_at)
            if at > end:
                break
            self.now = max(self.now, at)
            if timer_at <= heap_at:
                del self.timers[key]
                self.feed(self.session.timer_fired, key)
            else:
                _, _, fn, args = heapq.heappop(self._heap)
                fn(*args)
        self.now = end

    # ------------------------------------------------------------------ the desktop's side

    def feed(self, method, *args, **kwargs) -> None:
        for out in method(*args, now=self.now, wall_ms=self.wall, **kwargs):
            self.execute(out)

    def execute(self, out: ev.Output) -> None:
        if isinstance(out, ev.SetTimer):
            self.timers[out.key] = out.at
        elif isinstance(out, ev.CancelTimer):
            self.timers.pop(out.key, None)
        elif isinstance(out, ev.OpenLink):
            server = self.servers[out.endpoint]
            self.schedule(self.now + server.latency, self.connect, out.link, server)
        elif isinstance(out, ev.Send):
            self.client_sends(out.link, out.message)
        elif isinstance(out, ev.CloseLink):
            self.client_open.discard(out.link)
            self.given_up_links.add(out.link)
            conn = self.conn_of.get(out.link)
            if conn is not None:
                self.schedule(self.fifo(out.link, "up", conn.server.latency), conn.server.client_closed, conn)
        else:
            self.observe(out)

    def client_sends(self, link: int, message: p.Message) -> None:
        assert link in self.client_open, f"sent {type(message).__name__} on link {link}, which is not open"
        if isinstance(message, p.Request):
            assert message.request_id not in self.sent_ids, f"request id {message.request_id} sent twice"
            self.sent_ids.add(message.request_id)
        if isinstance(message, p.RequestCompleteInteraction):
            iid = message.interaction_id
            sent = self.complete_sent[iid]
            assert not [rid for rid, _ in sent if rid in self.acked_ids], f"{iid}: completion sent again after its ack"
            assert link not in [on for _, on in sent], f"{iid}: completion sent twice on link {link}"
            sent.append((message.request_id, link))
        if isinstance(message, p.RequestAgentLogin):
            holders = [s.name for s in self.servers.values()
                       if s.up and s.login is not None and s.login.conn.link in self.client_open]
            assert holders == [], f"login sent on link {link} while {holders} hold the login on an open link"
            self.logins_sent.add(message.request_id)
            self.token_epoch = token_claim(message.resume_token)[0] if message.resume_token else None
        conn = self.conn_of[link]
        self.schedule(self.fifo(link, "up", conn.server.latency), conn.server.receive, conn, message)

    def observe(self, event: ev.Event) -> None:
        if isinstance(event, ev.IntentPending):
            assert event.request_id not in self.outcome
            self.issued.append((event.request_id, event.intent))
            self.outcome[event.request_id] = None
        elif isinstance(event, (ev.IntentApplied, ev.IntentSuperseded, ev.IntentFailed)):
            assert self.outcome.get(event.request_id, "unknown") is None, f"second outcome {event}"
            self.outcome[event.request_id] = event
            if isinstance(event, ev.IntentApplied):
                done = {(server, epoch) for server, _, epoch in self.applications[event.request_id]}
                intent = event.intent
                done |= {(server, epoch) for server, _, epoch, state in self.logins
                         if state is not None and (state.state, state.reason) == (intent.state, intent.reason)}
                assert (event.endpoint, event.epoch) in done, f"{event} but the server never applied it"
        elif isinstance(event, ev.AgentStateChanged):
            last = self.shown
            if last is not None and (last.state, last.reason) == (event.state, event.reason):
                assert last.since_ms == event.since_ms, f"time in state reset: {last} -> {event}"
            self.shown = event
        elif isinstance(event, ev.LoginFailed):
            assert event.code == "stale_epoch" and self.token_epoch is not None, event
            takers = [s.name for s in self.servers.values() if s.up and s.takes_token(self.token_epoch)]
            assert takers == [], f"{event} but {takers} would take the token of epoch {self.token_epoch}"
            self.login_failures += 1
            self.schedule(self.now + 0.5, self.feed, self.session.login, AGENT, PASSWORD)  # the user
        elif isinstance(event, ev.LoggedOut):
            raise AssertionError(f"the session ended: {event}")
        elif isinstance(event, ev.InteractionPending):
            assert event.request_id not in self.ix_outcome
            self.ix_outcome[event.request_id] = None
        elif isinstance(event, (ev.InteractionApplied, ev.InteractionSuperseded, ev.InteractionFailed)):
            if event.request_id in self.ix_outcome:  # refused at once: no Pending before
                assert self.ix_outcome[event.request_id] is None, f"second outcome {event}"
            self.ix_outcome[event.request_id] = event
        elif isinstance(event, ev.InteractionStarted):
            iid = event.interaction.interaction_id
            assert iid not in self.in_hand, f"started twice: {event}"
            assert self.accepts[iid] or self.adoptions[iid], f"{event} but no server accepted or adopted it"
            self.in_hand.add(iid)
        elif isinstance(event, ev.InteractionEnded):
            self.in_hand.discard(event.interaction_id)
            self.ended[event.interaction_id].append(event)
            assert len(self.ended[event.interaction_id]) == 1, f"ended twice: {self.ended[event.interaction_id]}"
            if event.reason == "completed":
                assert self.completions[event.interaction_id] or False, f"{event} but no server completed it"

    def check_time_in_state(self, login: Login) -> None:
        """A new login replacing the agent's newest one keeps its time in state if the state is the same."""
        last = self.effective
        if last is not None and login.epoch < last.epoch:
            return  # a stale server at an older epoch: not the agent's effective state
        if last is not None and (last.state, last.reason) == (login.state, login.reason):
            assert login.since_ms <= last.since_ms, f"time in state moved forward by a login: {last} -> {login}"
        self.effective = login

    # ------------------------------------------------------------------ links

    def fifo(self, link: int, direction: str, latency: float) -> float:
        at = max(self.now + latency, self.pipe.get((link, direction), 0.0))
        self.pipe[(link, direction)] = at
        return at

    def connect(self, link: int, server: ModelServer) -> None:
        if link in self.given_up_links:
            return
        if not server.up:
            self.given_up_links.add(link)
            self.feed(self.session.link_closed, link, code=None)
            return
        conn = Conn(link, server, server.incarnation, self.now, self.now, self.now)
        server.conns.add(conn)
        self.conn_of[link] = conn
        self.client_open.add(link)
        self.feed(self.session.link_opened, link)

    def to_client(self, conn: Conn, message: p.Message) -> None:
        self.schedule(self.fifo(conn.link, "down", conn.server.latency), self.deliver, conn.link, message)

    def deliver(self, link: int, message: p.Message) -> None:
        if link in self.client_open:
            if isinstance(message, (p.EventAck, p.EventError)) and message.request_id:
                self.answered.add(message.request_id)
            if isinstance(message, p.EventAck):
                self.acked_ids.add(message.request_id)
            self.feed(self.session.message_received, link, message)

    def close_to_client(self, conn: Conn, code: int) -> None:
        self.schedule(self.fifo(conn.link, "down", conn.server.latency), self.closed_by_server, conn.link, code)

    def closed_by_server(self, link: int, code: int) -> None:
        if link in self.client_open:
            self.client_open.discard(link)
            self.given_up_links.add(link)
            self.feed(self.session.link_closed, link, code=code)

    # ------------------------------------------------------------------ peer link

    def peer_up(self) -> bool:
        return self.peer_fencing and all(s.up and not s.hung for s in self.servers.values())

    def other(self, server: ModelServer) -> ModelServer:
        return next(s for s in self.servers.values() if s is not server)

    def peer_epoch(self, server: ModelServer) -> int:
        other = self.other(server)
        return other.login.epoch if self.peer_up() and other.login is not None else 0

    def peer_told(self, server: ModelServer, epoch: int) -> None:
        """``server`` logged the agent in at ``epoch``: the peer learns it and fences an older login."""
        if not self.peer_up():
            return
        other = self.other(server)
        other.known = max(other.known, epoch)
        if other.login is not None and other.login.epoch < epoch:
            other.end_login(other.login, "moved", fence=True)

    def peer_logged_out(self, server: ModelServer, voided: dict[str, int]) -> None:
        if self.peer_up():
            other = self.other(server)
            for site, epoch in voided.items():
                other.logged_out[site] = max(other.logged_out.get(site, 0), epoch)

    def peer_sync(self) -> None:
        if len(self.servers) == 2 and self.peer_up():
            a, b = self.servers.values()
            merged = {site: max(a.logged_out.get(site, 0), b.logged_out.get(site, 0))
                      for site in a.logged_out.keys() | b.logged_out.keys()}
            a.logged_out, b.logged_out = merged, dict(merged)
            a.completed |= b.completed
            b.completed |= a.completed
            a.known = b.known = max(a.known, b.known)  # the full sync carries the epochs seen
            for server in list(self.servers.values()):
                if server.login is not None:
                    self.peer_told(server, server.login.epoch)

    def peer_completed(self, server: ModelServer, interaction_id: str) -> None:
        if self.peer_up():
            self.other(server).completed.add(interaction_id)

    def new_interaction(self) -> str:
        return f"ix-{next(self.ix_counter)}"

    # ------------------------------------------------------------------ the test's view

    def held_logins(self) -> list[str]:
        """Servers holding the agent's login on a link the desktop holds open."""
        return [s.name for s in self.servers.values()
                if s.up and s.login is not None and s.login.conn.link in self.client_open]

    def heal(self) -> None:
        for server in self.servers.values():
            if not server.up:
                server.boot()
            elif server.hung:
                server.resume()
            server.latency = BASE_LATENCY
