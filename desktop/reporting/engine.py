"""The supervisor's picture of every agent, merged from the reporting streams of every server.

Sans-I/O: no sockets, no Qt, no clock. Inputs are what happened to one server's stream
(subscribed, a decoded message, lost) with the wall time ``now_ms``; the engine keeps

- per server: its stream position (``stream_id``, last ``seq``), the agents it reports logged in,
  whether it is live, its queue statistics;
- per agent: one merged row (``AgentRow``) that says who is where, in what state, and whether the
  agent is in the middle of a failover;

and records what changed (``take_changes``) so a view can redraw only that, in batches.

Rules (docs/protocol.md, "The reporting stream" and "Sequence diagrams"):
- per server, events are applied in ``seq`` order; a repeat is dropped, a gap asks for a resubscribe
  (``Resubscribe``) and nothing is applied until the resume or a snapshot fills it;
- a snapshot replaces everything known about that server;
- between servers the higher epoch wins; an event below the agent's highest epoch is ignored;
- a lost stream turns that server's agents into *server lost* (a failover reason, not a logout)
  until the survivor reports them (``EventAgentLogin``) or the lost server comes back.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from server_stub import protocol as p

Presence = Literal["logged_in", "server_lost", "moving", "logged_out"]

# Counts shown to the supervisor: an agent's handling state when logged in, else its presence.
_ENDS_IN_HAND = ("completed", "abandoned", "withdrawn", "transferred")  # the interaction left the agent
COUNT_KEYS = ("ready", "ringing", "busy", "not_ready", "after_call_work", "failover", "logged_out")

# Logout reasons after which the agent is expected to show up on another server.
_FAILOVER_LOGOUTS = frozenset({"moved", "server_shutdown"})
# Logout reasons after which a login elsewhere is not a failover but a new login.
_DELIBERATE_LOGOUTS = frozenset({"logout", "forced", "duplicate_login"})

FEED_LIMIT = 1000
# An agent that left its server for a failover but shows up nowhere for this long is shown as
# logged out: its desktop is gone too, and "failing over" would promise something that will not come.
FAILOVER_GIVE_UP_MS = 120_000


@dataclass(slots=True)
class _Login:
    """One server's report of one agent's login (mutable: state changes update it in place)."""

    agent_id: str
    name: str
    epoch: int
    state: str
    since_ms: int
    login_ms: int
    reason: str | None = None
    place: str | None = None
    interaction_id: str | None = None
    forced_by: str | None = None
    reachable: bool = True  # False: the server has not heard the agent's desktop lately (suspect)
    interaction_since_ms: int | None = None  # when it came into the agent's hands (None: not reported)
    offer_id: str | None = None  # an offer waiting for the agent's answer (EventInteraction "offered")
    offered_ms: int | None = None
    hold_since_ms: int | None = None  # the call in hand on hold since then (EventInteraction "on_hold")

    @classmethod
    def from_report(cls, report: Any) -> _Login:
        return cls(report.agent_id, report.name, report.epoch, report.state, report.since_ms, report.login_ms,
                   report.reason, getattr(report, "place", None), getattr(report, "interaction_id", None),
                   reachable=getattr(report, "reachable", True))


@dataclass(slots=True)
class AgentRow:
    """What the supervisor sees for one agent."""

    agent_id: str
    name: str = ""
    presence: Presence = "logged_out"
    state: str | None = None  # ready / not_ready / after_call_work while logged in
    reason: str | None = None  # Not Ready reason, or why the agent is not logged in
    since_ms: int = 0  # start of the current state (or of not being logged in)
    server: str | None = None  # where the agent is (or was last) logged in
    epoch: int = 0
    place: str | None = None
    interaction_id: str | None = None
    forced_by: str | None = None
    logout_reason: str | None = None
    lost_since_ms: int | None = None  # start of the failover in progress
    last_failover_ms: int | None = None
    last_failover_from: str | None = None
    last_failover_to: str | None = None
    last_failover_duration_ms: int | None = None
    # False while logged in: its server has not heard the desktop for the heartbeat timeout (it is
    # offered nothing, and logged out after the client timeout): "unreachable at <server>".
    reachable: bool = True
    # Handling, from the interaction events: in hand since (the first server's accept, kept across a
    # failover; None after a snapshot, which does not say), and an offer ringing since.
    interaction_since_ms: int | None = None
    ringing_since_ms: int | None = None
    hold_since_ms: int | None = None  # the call in hand on hold since then

    @property
    def in_failover(self) -> bool:
        return self.presence in ("server_lost", "moving")

    def copy(self) -> AgentRow:
        """A frozen-in-time copy, so a view shows only what it was told about."""
        return AgentRow(self.agent_id, self.name, self.presence, self.state, self.reason, self.since_ms, self.server,
                        self.epoch, self.place, self.interaction_id, self.forced_by, self.logout_reason,
                        self.lost_since_ms, self.last_failover_ms, self.last_failover_from, self.last_failover_to,
                        self.last_failover_duration_ms, self.reachable, self.interaction_since_ms,
                        self.ringing_since_ms, self.hold_since_ms)

    @property
    def count_key(self) -> str:
        """What the agent is counted as: the handling state while logged in (busy with an
        interaction in hand, ringing with an offer waiting, else the state), else the presence."""
        if self.presence == "logged_in":
            if self.interaction_id:
                return "busy"
            if self.ringing_since_ms is not None:
                return "ringing"
            return self.state or "not_ready"
        return "failover" if self.in_failover else "logged_out"


@dataclass(slots=True)
class ServerStatus:
    """One server's stream as the supervisor sees it."""

    name: str
    connected: bool = False  # the subscription is acknowledged and the socket is open
    awaiting_snapshot: bool = False  # new stream (server restarted): old records are not valid
    resyncing: bool = False  # a gap was seen; events are dropped until the resume answers
    stream_id: str | None = None
    seq: int = 0
    agents: dict[str, _Login] = field(default_factory=dict)
    last_event_ms: int | None = None
    connected_since_ms: int | None = None
    lost_since_ms: int | None = None
    lost_reason: str | None = None
    queues: list[p.QueueStatistics] | None = None  # None: this server never reported queue statistics
    queues_at_ms: int | None = None
    offers: dict[str, str] = field(default_factory=dict)  # interaction id -> agent it is offered to
    logged_in: int = 0  # agents shown logged in on this server (merged view)
    snapshots: int = 0
    resumes: int = 0
    gaps: int = 0

    @property
    def live(self) -> bool:
        return self.connected and not self.awaiting_snapshot


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """A line of the supervisor's event feed. ``notify``: worth a notification, not just a line."""

    at_ms: int
    kind: str  # server_lost, server_back, failover, disconnected, forced, gap, reachability
    text: str
    server: str | None = None
    agent_id: str | None = None
    notify: bool = False


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """Command: subscribe again on ``server``'s socket with the resume point (a gap was seen)."""

    server: str


@dataclass(slots=True)
class Changes:
    agents: set[str]
    servers: set[str]
    feed: list[FeedEntry]


class ReportingEngine:
    """Merges the reporting streams of ``servers`` into one row per agent. See the module doc."""

    def __init__(self, servers: Iterable[str]):
        self.servers: dict[str, ServerStatus] = {name: ServerStatus(name) for name in servers}
        if not self.servers:
            raise ValueError("the reporting engine needs at least one server")
        self.rows: dict[str, AgentRow] = {}
        self.highest_epoch: dict[str, int] = {}
        self.counts: collections.Counter[str] = collections.Counter({k: 0 for k in COUNT_KEYS})
        self.feed: collections.deque[FeedEntry] = collections.deque(maxlen=FEED_LIMIT)
        self._dirty_agents: set[str] = set()
        self._dirty_servers: set[str] = set()
        self._new_feed: list[FeedEntry] = []
        self._moving: set[str] = set()  # rows waiting to show up on another server
        self.failover_give_up_ms = FAILOVER_GIVE_UP_MS
        self.ignored_stale = 0  # events below the agent's highest epoch (a stale primary)
        self.dropped_repeats = 0  # events at or below the applied seq (a resume repeating them)

    # ------------------------------------------------------------------ inputs

    def stream_opened(self, server: str, stream_id: str, now_ms: int) -> list[Resubscribe]:
        """The server acknowledged our subscription (``EventAck.stream_id``).

        Same stream as before: the server will replay what we missed (or nothing), so its agents
        are restored at once; a snapshot, if one follows after all, replaces them. Another stream:
        the server restarted; its old records stay *server lost* until its snapshot arrives.
        """
        sv = self._server(server)
        was_live = sv.live
        sv.resyncing = False
        if sv.stream_id is not None and stream_id == sv.stream_id:
            sv.awaiting_snapshot = False
            sv.resumes += 1
        else:
            sv.awaiting_snapshot = True
        if not sv.connected:
            sv.connected = True
            sv.connected_since_ms = now_ms
            if sv.lost_since_ms is not None:
                self._add_feed(now_ms, "server_back", f"Server {server} is reachable again", server, notify=True)
            sv.lost_since_ms = None
            sv.lost_reason = None
        self._dirty_servers.add(server)
        if sv.live != was_live:
            self._recompute_many(sv.agents.keys(), now_ms)
        return []

    def stream_lost(self, server: str, reason: str, now_ms: int) -> None:
        """The reporting socket to ``server`` closed or went silent: its agents are *server lost*."""
        sv = self._server(server)
        if not sv.connected:
            return
        was_live = sv.live
        sv.connected = False
        sv.resyncing = False
        sv.lost_since_ms = now_ms
        sv.lost_reason = reason
        sv.connected_since_ms = None
        self._dirty_servers.add(server)
        affected = [a for a, login in sv.agents.items() if self._is_current(a, login.epoch)]
        if was_live:
            self._recompute_many(sv.agents.keys(), now_ms)
        self._add_feed(now_ms, "server_lost",
                       f"Server {server} lost ({reason}); {len(affected)} agent(s) waiting to fail over",
                       server, notify=True)

    def tick(self, now_ms: int) -> None:
        """Time passes: failovers that never completed are given up (see FAILOVER_GIVE_UP_MS)."""
        for agent_id in list(self._moving):
            row = self.rows[agent_id]
            if row.lost_since_ms is not None and now_ms - row.lost_since_ms >= self.failover_give_up_ms:
                row.logout_reason = "vanished"
                self._add_feed(now_ms, "vanished", f"Agent {agent_id} ({row.name}) did not come back after the "
                               f"loss of {row.server}", row.server, agent_id)
                self._recompute(agent_id, now_ms)

    def message(self, server: str, msg: Any, now_ms: int) -> list[Resubscribe]:
        """A decoded reporting message from ``server``'s stream. Returns commands for the client."""
        sv = self._server(server)
        kind = type(msg).__name__
        if kind == "EventReportingSnapshot":
            self._snapshot(sv, msg, now_ms)
            return []
        seq = getattr(msg, "seq", None)
        if seq is None:
            return []  # not a reporting event (acks, errors, heartbeats are the client's business)
        if sv.awaiting_snapshot or sv.resyncing:
            return []
        if seq <= sv.seq:
            self.dropped_repeats += 1
            return []
        if seq > sv.seq + 1:
            sv.resyncing = True
            sv.gaps += 1
            self._add_feed(now_ms, "gap", f"Server {server}: events {sv.seq + 1}..{seq - 1} missing; resuming", server)
            return [Resubscribe(server)]
        sv.seq = seq
        sv.last_event_ms = now_ms
        self._dirty_servers.add(server)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, sv, msg, now_ms)
        return []

    # ------------------------------------------------------------------ outputs

    def resume_point(self, server: str) -> tuple[str, int] | None:
        """(stream_id, last seq applied) to resubscribe with, or None for a fresh snapshot."""
        sv = self._server(server)
        if sv.stream_id is None or sv.awaiting_snapshot:
            return None
        return sv.stream_id, sv.seq

    def take_changes(self) -> Changes:
        """What changed since the last call: agents and servers to redraw, new feed lines."""
        changes = Changes(self._dirty_agents, self._dirty_servers, self._new_feed)
        self._dirty_agents, self._dirty_servers, self._new_feed = set(), set(), []
        return changes

    def logged_in_server(self, agent_id: str) -> str | None:
        """The server a supervisor action for the agent must go to (its live primary), if any."""
        row = self.rows.get(agent_id)
        if row is None or row.presence != "logged_in":
            return None
        return row.server

    # ------------------------------------------------------------------ message handlers

    def _snapshot(self, sv: ServerStatus, msg: Any, now_ms: int) -> None:
        old = sv.agents
        sv.agents = {}
        sv.offers = {}  # a snapshot does not carry offers; the next answer to one clears nothing
        for report in msg.agents:
            sv.agents[report.agent_id] = _Login.from_report(report)
            if report.epoch > self.highest_epoch.get(report.agent_id, 0):
                self.highest_epoch[report.agent_id] = report.epoch
        for agent_id, login in old.items():
            if agent_id not in sv.agents and self._is_current(agent_id, login.epoch):
                # Logged out while we were not listening; the snapshot does not say why.
                row = self.rows.get(agent_id)
                if row is not None and row.server == sv.name:
                    row.logout_reason = "gone"
        sv.stream_id = msg.stream_id
        sv.seq = msg.seq
        sv.awaiting_snapshot = False
        sv.resyncing = False
        sv.snapshots += 1
        sv.last_event_ms = now_ms
        queues = getattr(msg, "queues", None)
        if queues:
            self._set_queues(sv, queues, now_ms)
        self._dirty_servers.add(sv.name)
        self._recompute_many(set(old) | set(sv.agents), now_ms)

    def _login(self, sv: ServerStatus, msg: Any, now_ms: int) -> None:
        report = msg.agent
        agent_id = report.agent_id
        if report.epoch < self.highest_epoch.get(agent_id, 0):
            self.ignored_stale += 1
            return
        self.highest_epoch[agent_id] = report.epoch
        sv.agents[agent_id] = _Login.from_report(report)
        self._recompute(agent_id, now_ms)

    def _logout(self, sv: ServerStatus, msg: Any, now_ms: int) -> None:
        agent_id = msg.agent_id
        login = sv.agents.get(agent_id)
        if login is not None and login.epoch == msg.epoch:
            del sv.agents[agent_id]
        if msg.epoch < self.highest_epoch.get(agent_id, 0):
            self.ignored_stale += 1
            return
        row = self.rows.get(agent_id)
        if row is None:
            return
        row.logout_reason = msg.reason
        if msg.reason == "disconnected":
            self._add_feed(now_ms, "disconnected", f"Agent {agent_id} ({row.name}) disconnected from {sv.name}",
                           sv.name, agent_id)
        elif msg.reason == "forced":
            self._add_feed(now_ms, "forced", f"Agent {agent_id} ({row.name}) logged out by a supervisor on {sv.name}",
                           sv.name, agent_id)
        self._recompute(agent_id, now_ms)

    def _state_changed(self, sv: ServerStatus, msg: Any, now_ms: int) -> None:
        agent_id = msg.agent_id
        login = sv.agents.get(agent_id)
        if login is None or login.epoch != msg.epoch or msg.epoch < self.highest_epoch.get(agent_id, 0):
            self.ignored_stale += 1
            return
        login.state = msg.state
        login.since_ms = msg.since_ms
        login.reason = msg.reason
        login.forced_by = getattr(msg, "forced_by", None)
        reachable = getattr(msg, "reachable", True)
        if reachable != login.reachable:
            login.reachable = reachable
            text = "reachable again" if reachable else "unreachable (its desktop is not heard)"
            self._add_feed(now_ms, "reachability", f"Agent {agent_id} at {sv.name}: {text}", sv.name, agent_id)
        if login.forced_by:
            self._add_feed(now_ms, "forced", f"Agent {agent_id} set {msg.state.replace('_', ' ')} by {login.forced_by}",
                           sv.name, agent_id)
        self._recompute(agent_id, now_ms)

    def _interaction(self, sv: ServerStatus, msg: Any, now_ms: int) -> None:
        agent_id = getattr(msg, "agent_id", None)
        event = getattr(msg, "event", None)
        at_ms = getattr(msg, "at_ms", None)
        # Any later step of an offered interaction ends the offer (an abandon names no agent).
        offered_to = sv.offers.pop(msg.interaction_id, None)
        ringing = sv.agents.get(offered_to) if offered_to else None
        if ringing is not None and ringing.offer_id == msg.interaction_id:
            ringing.offer_id = ringing.offered_ms = None
            if ringing.agent_id != agent_id:
                self._recompute(ringing.agent_id, now_ms)
        login = sv.agents.get(agent_id) if agent_id else None
        if login is None:
            return
        if event in ("offered", "consult_offered"):
            sv.offers[msg.interaction_id] = login.agent_id
            login.offer_id, login.offered_ms = msg.interaction_id, at_ms
        elif event in ("accepted", "adopted"):
            login.interaction_id = msg.interaction_id
            login.interaction_since_ms = at_ms
            login.hold_since_ms = None
        elif event in ("on_hold", "resumed") and login.interaction_id == msg.interaction_id:
            login.hold_since_ms = at_ms if event == "on_hold" else None
        elif login.interaction_id == msg.interaction_id and event in _ENDS_IN_HAND:
            login.interaction_id = login.interaction_since_ms = login.hold_since_ms = None
        elif ringing is not login:
            return
        self._recompute(login.agent_id, now_ms)

    def _queue_statistics(self, sv: ServerStatus, msg: Any, now_ms: int) -> None:
        self._set_queues(sv, msg.queues, now_ms)

    def _set_queues(self, sv: ServerStatus, queues: list[p.QueueStatistics], now_ms: int) -> None:
        sv.queues = list(queues)  # the decoded figures as they are: nothing here changes them
        sv.queues_at_ms = now_ms
        self._dirty_servers.add(sv.name)

    # ------------------------------------------------------------------ merging

    def _server(self, name: str) -> ServerStatus:
        try:
            return self.servers[name]
        except KeyError:
            raise ValueError(f"unknown server {name!r}; configured: {sorted(self.servers)}") from None

    def _is_current(self, agent_id: str, epoch: int) -> bool:
        return epoch >= self.highest_epoch.get(agent_id, 0)

    def _recompute_many(self, agent_ids: Iterable[str], now_ms: int) -> None:
        for agent_id in list(agent_ids):
            self._recompute(agent_id, now_ms)

    def _recompute(self, agent_id: str, now_ms: int) -> None:
        """Derive the agent's row from every server's records: the highest epoch wins."""
        best_sv: ServerStatus | None = None
        best: _Login | None = None
        for sv in self.servers.values():
            login = sv.agents.get(agent_id)
            if login is not None and (best is None or login.epoch > best.epoch):
                best_sv, best = sv, login
        if best is not None and best.epoch < self.highest_epoch.get(agent_id, 0):
            best_sv = best = None  # only older logins remain: the current one ended
        row = self.rows.get(agent_id)
        if row is None:
            if best is None:
                return
            row = self.rows[agent_id] = AgentRow(agent_id)
            self.counts[row.count_key] += 1
        old_key, old_server = row.count_key, row.server if row.presence == "logged_in" else None
        if best is not None and best_sv is not None and best_sv.live:
            if row.presence != "logged_in" or row.server != best_sv.name:
                self._arrived(row, best_sv.name, now_ms)
            row.presence = "logged_in"
            row.name = best.name
            row.state = best.state
            row.reason = best.reason
            row.since_ms = best.since_ms
            row.server = best_sv.name
            row.epoch = best.epoch
            row.place = best.place
            if best.interaction_id is None:
                row.interaction_since_ms = None
            elif best.interaction_id != row.interaction_id or row.interaction_since_ms is None:
                row.interaction_since_ms = best.interaction_since_ms
            # (the same interaction adopted after a failover keeps the time of its first accept)
            row.interaction_id = best.interaction_id
            row.hold_since_ms = best.hold_since_ms if best.interaction_id is not None else None
            row.ringing_since_ms = best.offered_ms if best.offer_id is not None else None
            row.forced_by = best.forced_by
            row.reachable = best.reachable
            row.logout_reason = None
            row.lost_since_ms = None
        elif best is not None and best_sv is not None:  # held by a server whose stream is lost (or not yet re-read)
            if row.presence != "server_lost":
                row.lost_since_ms = best_sv.lost_since_ms or now_ms
                row.since_ms = row.lost_since_ms
            row.presence = "server_lost"
            row.name = best.name
            row.state = None
            row.reason = f"server {best_sv.name} lost"
            row.reachable = True
            row.server = best_sv.name
            row.epoch = best.epoch
            row.interaction_id = best.interaction_id
            row.ringing_since_ms = None
        else:
            moving = row.logout_reason in _FAILOVER_LOGOUTS or (
                row.presence in ("server_lost", "moving") and row.logout_reason not in _DELIBERATE_LOGOUTS
                and row.logout_reason != "vanished")
            presence: Presence = "moving" if moving else "logged_out"
            if row.presence != presence:
                row.since_ms = now_ms
                if moving and row.lost_since_ms is None:
                    row.lost_since_ms = now_ms
            if not moving:
                row.lost_since_ms = None
            row.presence = presence
            row.state = None
            row.reason = _LOGOUT_TEXT.get(row.logout_reason, row.logout_reason)
            row.interaction_id = row.interaction_since_ms = row.ringing_since_ms = row.hold_since_ms = None
            row.forced_by = None
            row.reachable = True
        if row.presence == "moving":
            self._moving.add(agent_id)
        else:
            self._moving.discard(agent_id)
        new_key = row.count_key
        if new_key != old_key:
            self.counts[old_key] -= 1
            self.counts[new_key] += 1
        new_server = row.server if row.presence == "logged_in" else None
        if new_server != old_server:
            if old_server is not None:
                self.servers[old_server].logged_in -= 1
                self._dirty_servers.add(old_server)
            if new_server is not None:
                self.servers[new_server].logged_in += 1
                self._dirty_servers.add(new_server)
        self._dirty_agents.add(agent_id)

    def _arrived(self, row: AgentRow, server: str, now_ms: int) -> None:
        """The agent shows up logged in on ``server``: a failover if it came from another one."""
        came_from = row.server
        if came_from is None or came_from == server:
            return  # a first login, or its own server came back (resumed): not a failover
        if row.presence == "logged_out" and row.logout_reason in _DELIBERATE_LOGOUTS:
            return  # logged out on purpose, then logged in elsewhere: a new login
        started = row.lost_since_ms if row.lost_since_ms is not None else now_ms
        row.last_failover_ms = now_ms
        row.last_failover_from = came_from
        row.last_failover_to = server
        row.last_failover_duration_ms = max(0, now_ms - started)
        self._add_feed(now_ms, "failover",
                       f"Agent {row.agent_id} ({row.name}) failed over {came_from} → {server} "
                       f"in {row.last_failover_duration_ms / 1000:.1f} s", server, row.agent_id)

    def _config_version(self, sv: ServerStatus, msg: Any, now_ms: int) -> None:
        """A server's shared configuration version changed, or sites now differ from it (or agree)."""
        version = f"{msg.version.generation}@{msg.version.origin}"
        if msg.differs:
            others = ", ".join(f"{site} ({v.generation}@{v.origin})" for site, v in msg.differs.items())
            self._add_feed(now_ms, "config", f"Server {sv.name} runs configuration {version}; {others} differ: no "
                           f"interaction goes between them until they agree", sv.name, notify=True)
        else:
            self._add_feed(now_ms, "config", f"Server {sv.name} runs configuration {version}, as every linked site",
                           sv.name)

    def _add_feed(self, at_ms: int, kind: str, text: str, server: str | None = None, agent_id: str | None = None,
                  notify: bool = False) -> None:
        entry = FeedEntry(at_ms, kind, text, server, agent_id, notify)
        self.feed.append(entry)
        self._new_feed.append(entry)


_LOGOUT_TEXT = {
    "logout": "logged out",
    "disconnected": "disconnected",
    "moved": "moving to the other server",
    "duplicate_login": "replaced by another login",
    "forced": "logged out by a supervisor",
    "server_shutdown": "server shut down",
    "gone": "logged out (while not reported)",
    "vanished": "did not come back after a failover",
    None: "logged out",
}

_HANDLERS = {
    "EventAgentLogin": ReportingEngine._login,
    "EventAgentLogout": ReportingEngine._logout,
    "EventAgentStateChanged": ReportingEngine._state_changed,
    "EventInteraction": ReportingEngine._interaction,
    "EventQueueStatistics": ReportingEngine._queue_statistics,
    "EventConfigVersion": ReportingEngine._config_version,
}
