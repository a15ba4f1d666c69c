"""The reporting side of the world: what the servers' reporting streams say, and who reads them.

``Reports`` is every event each server incarnation published, in the order and at the moment it
was published, read as a supervisor combining both streams reads them: an agent's login at an older
epoch than its newest is a stale one (docs/protocol.md, "SIGSTOP: stale primary fenced"), and a
killed server's stream says nothing any more. Checked as each event is published:

- a server that has been told of an agent's login at its peer (the peer's epochs, sent after that
  login was reported, reached its core) never reports a login of that agent at the same or an
  older epoch while that one is reported open: never logged in at two servers at once, as
  reported. (One that has not been told yet may: a restarted server, a partition, a request that
  arrives late; the view ignores the older epoch, and the newer one fences it when it is told);
- a login that takes over the agent's newest login in the same state and reason starts it no
  later than that one had it (time in state is kept across failover);
- an offer reported to an agent never meets an open offer of the same interaction to the same
  agent at another server, but one to an older login of the agent or at a server not yet told of
  the newer one;
- no offer is reported to an agent its site reports unreachable (suspect: its desktop silent past
  the heartbeat timeout) until that site reports it reachable again;
- an interaction is reported completed at most once. A second completion is let through only when
  no server could have known of the first: a server was killed since the first (a completion can
  die with its server before it reaches the peer, and the desktop, which never got its ack, sends
  it again); the two sites were partitioned (and not linked again yet), or too slow to keep a
  peer link, at some moment of the interaction's life; a server went ahead without its peer after
  a stall (it waits a heartbeat timeout to hear it, then serves alone) during the interaction's
  life; or one of the two was reported by a server for its peer, which had been stopped or down
  during the interaction's life (a server takes a peer that went silent with a completion
  unreported for dead, and reports it so that it is not lost; it cannot tell a stopped peer from a
  dead one, and a stopped peer that thaws may report the completion too).

``Watcher`` is a reporting client (the supervisor, or the carrier) with one link per site: it
registers, subscribes with its password and then its resume token, resumes its streams after a
lost link (a replay, or a snapshot from a restarted server), beats and gives up silent links as
``server_stub.traffic`` does. ``Carrier`` adds the traffic generator's policy: submit to the first
site that is up, and when a site is lost re-submit to another (same ids; the servers de-duplicate)
whatever it had submitted there and not seen handed to an agent.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from server_stub import protocol as p
from server_stub.core.routing import COMPLETED
from server_stub.traffic import Ledger

from .net import Link, Process
from .site import PASSWORD

if TYPE_CHECKING:
    from .site import Site
    from .world import World

WATCH_INTERVAL = 0.5
WATCH_TIMEOUT = 1.5
WATCH_OPEN_TIMEOUT = 3.0
CARRIER_GRACE = 1.0  # traffic.TrafficOptions.grace
ON_BEHALF = "completed at the peer site, which stopped before reporting it"  # the reason of such a report
Reported = (p.EventAgentLogin | p.EventAgentLogout | p.EventAgentStateChanged | p.EventInteraction
            | p.EventQueueStatistics)


@dataclass(frozen=True)
class Completion:
    site: str
    incarnation: int
    agent_id: str | None
    epoch: int | None
    at: float
    notes: str | None  # as the completing server kept them (None: completed at the peer, which died)
    for_stopped_peer: bool = False  # reported for the peer, which was stopped (or down) since it showed up


class Reports:
    def __init__(self, world: World) -> None:
        self.world = world
        self.open_logins: defaultdict[str, dict[str, int]] = defaultdict(dict)  # agent -> site -> epoch
        self.login_at: dict[tuple[str, str], int] = {}  # (agent, site) -> World.stamps when its login was reported
        self.effective: dict[str, tuple[int, str, str | None, int]] = {}  # agent -> its newest login's state
        self.offers: dict[tuple[str, str], tuple[str | None, int | None]] = {}  # (site, id) -> (agent, epoch)
        self.taken: set[tuple[str, str | None]] = set()  # (id, agent): accepted or adopted somewhere
        self.completions: defaultdict[str, list[Completion]] = defaultdict(list)
        self.abandoned: defaultdict[str, list[p.EventInteraction]] = defaultdict(list)
        self.partitioned_ids: set[str] = set()  # touched while the sites were apart (World.sites_apart)
        self.first_seen: dict[str, float] = {}  # id -> when it was first reported
        # id -> (site, event, agent) of every event reported about it
        self.history: defaultdict[str, list[tuple[str, str, str | None]]] = defaultdict(list)
        self.log: list[tuple[float, str, p.Message]] = []  # (when, site, event): everything published
        self.unreachable: set[tuple[str, str]] = set()  # (site, agent): reported unreachable there, not since cleared

    def logins_and_logouts(self, agent_id: str, since: float) -> list[tuple[str, str, int]]:
        """(site, event type, epoch) of every login and logout of the agent reported since ``since``."""
        return [(site, type(m).__name__, m.agent.epoch if isinstance(m, p.EventAgentLogin) else m.epoch)
                for when, site, m in self.log if when >= since
                and ((isinstance(m, p.EventAgentLogin) and m.agent.agent_id == agent_id)
                     or (isinstance(m, p.EventAgentLogout) and m.agent_id == agent_id))]

    def site_lost(self, site: Site) -> None:
        """A killed server's stream is gone: its logins and offers are not reported any more."""
        for logins in self.open_logins.values():
            logins.pop(site.name, None)
        for key in [key for key in self.offers if key[0] == site.name]:
            del self.offers[key]

    def published(self, site: Site, message: p.Message) -> None:
        self.log.append((self.world.loop.now, site.name, message))
        if isinstance(message, (p.EventAgentLogin, p.EventAgentLogout, p.EventAgentStateChanged)):
            agent_id = message.agent.agent_id if isinstance(message, p.EventAgentLogin) else message.agent_id
            reachable = not isinstance(message, p.EventAgentStateChanged) or message.reachable
            (self.unreachable.discard if reachable else self.unreachable.add)((site.name, agent_id))
        if isinstance(message, p.EventAgentLogin):
            self._login(site, message.agent)
        elif isinstance(message, p.EventAgentLogout):
            if self.open_logins[message.agent_id].get(site.name) == message.epoch:
                del self.open_logins[message.agent_id][site.name]
        elif isinstance(message, p.EventAgentStateChanged):
            effective = self.effective.get(message.agent_id)
            if effective is not None and effective[0] == message.epoch:
                self.effective[message.agent_id] = (message.epoch, message.state, message.reason, message.since_ms)
        elif isinstance(message, p.EventInteraction):
            self._interaction(site, message)

    def _login(self, site: Site, agent: p.AgentReport) -> None:
        newer = {name: epoch for name, epoch in self.open_logins[agent.agent_id].items()
                 if name != site.name and epoch >= agent.epoch and self.told(site, agent.agent_id, name)}
        assert not newer, f"{site.name} logs {agent.agent_id} in at epoch {agent.epoch}, told of the login at {newer}"
        self.open_logins[agent.agent_id][site.name] = agent.epoch
        self.login_at[(agent.agent_id, site.name)] = next(self.world.stamps)
        last = self.effective.get(agent.agent_id)
        if last is not None and agent.epoch < last[0]:
            return  # a stale server at an older epoch: not the agent's effective state
        if last is not None and last[1:3] == (agent.state, agent.reason):
            assert agent.since_ms <= last[3], f"time in state moved forward by a login: {last} -> {agent}"
        self.effective[agent.agent_id] = (agent.epoch, agent.state, agent.reason, agent.since_ms)

    def told(self, site: Site, agent_id: str, other: str) -> bool:
        """Had ``site`` been told (by its peer's epochs) of the agent's login at ``other``?"""
        return site.heard_peer > self.login_at[(agent_id, other)]

    def _interaction(self, site: Site, message: p.EventInteraction) -> None:
        iid, kind, agent = message.interaction_id, message.event, message.agent_id
        self.history[iid].append((site.name, kind, agent))
        self.first_seen.setdefault(iid, site.loop.now)
        if self.world.sites_apart():
            self.partitioned_ids.add(iid)
        if kind == "offered":
            # A site that reported the agent unreachable (its desktop silent) offers it nothing.
            assert (site.name, agent) not in self.unreachable, f"{iid} offered to {agent}, unreachable at {site.name}"
            for (name, other), (to, epoch) in self.offers.items():
                if other == iid and to == agent and name != site.name and agent is not None:
                    stale = (epoch or 0) < (message.epoch or 0) or not self.told(site, agent, name)
                    assert stale, (f"{iid} offered to {agent} by {site.name} (epoch {message.epoch}) and {name} "
                                   f"(epoch {epoch})")
            self.offers[(site.name, iid)] = (agent, message.epoch)
            return
        self.offers.pop((site.name, iid), None)
        if kind in ("accepted", "adopted"):
            self.taken.add((iid, agent))
        elif kind == "abandoned":
            self.abandoned[iid].append(message)
        elif kind == "completed":
            item = site.core.engine.interactions.get(iid) if site.core is not None else None
            notes = item.notes if item is not None and item.status == COMPLETED else None
            since = self.first_seen[iid]
            for_stopped_peer = message.reason == ON_BEHALF and self.world.stopped_since(site.peer, since)
            completion = Completion(site.name, site.incarnation, agent, message.epoch, site.loop.now, notes,
                                    for_stopped_peer)
            alone = any(s.went_ahead_at >= since for s in self.world.sites.values())
            for first in self.completions[iid]:
                forgot = site.started_at > first.at or any(first.at <= at for at in self.world.kills)
                guessed = first.for_stopped_peer or completion.for_stopped_peer or alone
                assert forgot or guessed or iid in self.partitioned_ids, (
                    f"{iid} completed twice: {first}, then {completion}; no server lost its memory, was left alone or "
                    f"guessed for a stopped peer meanwhile, and the sites were not partitioned")
            self.completions[iid].append(completion)


class Feed:
    """One reporting client's link to one site."""

    def __init__(self, watcher: Watcher, site: str) -> None:
        self.watcher = watcher
        self.world = watcher.world
        self.site = site
        self.link: Link | None = None
        self.up = False
        self.registered = False
        self.token: str | None = None
        self.resume: p.ResumePoint | None = None
        self.stream_id: str | None = None
        self.last_rx = self.last_tx = 0.0
        self.delay = 0.2
        self.pending: dict[str, str] = {}  # request id -> what it is ("register", "subscribe" or an interaction id)
        # The view: agent -> (epoch, state, reason, since) of the agents it reports logged in.
        self.agents: dict[str, tuple[int, str, str | None, int]] = {}
        self.unreachable: set[str] = set()  # of those, the ones it reports unreachable (suspect)

    def connect(self) -> None:
        self.registered = False
        self.link = link = self.world.dial(self.watcher, self.world.sites[self.site], "report", self._opened,
                                           self._frame, self._closed)
        self.watcher.later(WATCH_OPEN_TIMEOUT, self._open_timeout, link)

    def _open_timeout(self, link: Link) -> None:
        if link is self.link and not self.registered:
            self._lose()

    def send(self, message: p.Message, kind: str | None = None) -> None:
        assert self.link is not None
        if kind is not None and isinstance(message, p.Request):
            self.pending[message.request_id] = kind
        self.link.send(p.encode(message))
        self.last_tx = self.watcher.loop.now

    def _opened(self, link: Link) -> None:
        self.last_rx = self.last_tx = self.watcher.loop.now
        self.send(p.RequestRegisterClient(request_id=self.watcher.new_id(), protocol_version=p.PROTOCOL_VERSION,
                                          client_name=self.watcher.user, heartbeat_interval_ms=500), "register")
        self._arm(link)

    def _subscribe(self, with_token: bool) -> None:
        token = self.token if with_token and self.token else None
        self.send(p.RequestSubscribeReporting(request_id=self.watcher.new_id(), user_id=self.watcher.user,
                                              resume=self.resume, resume_token=token,
                                              password=None if token else PASSWORD), "subscribe")

    def _arm(self, link: Link) -> None:
        self.watcher.later(0.25, self._beat, link)

    def _beat(self, link: Link) -> None:
        if link is not self.link:
            return
        now = self.watcher.loop.now
        if now - self.last_rx > WATCH_TIMEOUT:
            self._lose()
            return
        if self.registered and now - self.last_tx >= WATCH_INTERVAL:
            self.send(p.Heartbeat())
        self._arm(link)

    def _closed(self, link: Link, code: int | None) -> None:
        if link is self.link:
            self._lose()

    def _lose(self) -> None:
        if self.link is not None:
            self.link.close()
        self.link, self.registered, was_up, self.up = None, False, self.up, False
        self.pending.clear()
        if was_up:
            self.watcher.lost(self)
        self.watcher.later(self.delay, self.connect)
        self.delay = min(2.0, self.delay * 2)

    def _frame(self, link: Link, frame: str) -> None:
        if link is not self.link:
            return
        self.last_rx = self.watcher.loop.now
        message = p.decode_server(frame)
        if isinstance(message, (p.EventAck, p.EventError)) and message.request_id in self.pending:
            self._answer(message, self.pending.pop(message.request_id))
        elif isinstance(message, p.EventReportingSnapshot):
            self.resume = p.ResumePoint(stream_id=message.stream_id, seq=message.seq)
            self.agents = {a.agent_id: (a.epoch, a.state, a.reason, a.since_ms) for a in message.agents}
            self.unreachable = {a.agent_id for a in message.agents if not a.reachable}
            self.watcher.snapshot(self, message)
        elif isinstance(message, (p.EventAgentLogin, p.EventAgentLogout, p.EventAgentStateChanged,
                                  p.EventInteraction, p.EventQueueStatistics)):
            assert self.stream_id is not None
            self.resume = p.ResumePoint(stream_id=self.stream_id, seq=message.seq)
            self._view(message)
            self.watcher.event(self, message)

    def _answer(self, message: p.EventAck | p.EventError, kind: str) -> None:
        if kind == "register":
            if isinstance(message, p.EventAck):
                self.registered = True
                self._subscribe(with_token=True)
        elif kind == "subscribe":
            if isinstance(message, p.EventError):
                if self.token is not None:
                    self.token = None
                    self._subscribe(with_token=False)
                return
            self.token, self.stream_id, self.up, self.delay = message.resume_token, message.stream_id, True, 0.2
            self.watcher.subscribed(self)
        else:
            self.watcher.answered(self, kind, message)

    def _view(self, message: Reported) -> None:
        """As a supervisor's window keeps it: the agents this server reports logged in."""
        if isinstance(message, p.EventAgentLogin):
            a = message.agent
            self.agents[a.agent_id] = (a.epoch, a.state, a.reason, a.since_ms)
            self._reachable(a.agent_id, a.reachable)
        elif isinstance(message, p.EventAgentLogout):
            if self.agents.get(message.agent_id, (None,))[0] == message.epoch:
                del self.agents[message.agent_id]
                self.unreachable.discard(message.agent_id)
        elif isinstance(message, p.EventAgentStateChanged):
            known = self.agents.get(message.agent_id)
            if known is not None and known[0] == message.epoch:
                self.agents[message.agent_id] = (message.epoch, message.state, message.reason, message.since_ms)
                self._reachable(message.agent_id, message.reachable)

    def _reachable(self, agent_id: str, reachable: bool) -> None:
        (self.unreachable.discard if reachable else self.unreachable.add)(agent_id)


class Watcher(Process):
    """A reporting client with one link per site (the supervisor's view)."""

    def __init__(self, world: World, user: str) -> None:
        super().__init__(world.loop)
        self.world = world
        self.user = user
        self._ids = itertools.count(1)
        self.feeds = {name: Feed(self, name) for name in world.sites}

    def __repr__(self) -> str:
        return self.user

    def start(self) -> None:
        for feed in self.feeds.values():
            feed.connect()

    def new_id(self) -> str:
        return f"{self.user}-{next(self._ids)}"

    # What a subclass may care about.
    def subscribed(self, feed: Feed) -> None:
        pass

    def lost(self, feed: Feed) -> None:
        pass

    def snapshot(self, feed: Feed, message: p.EventReportingSnapshot) -> None:
        pass

    def event(self, feed: Feed, message: Reported) -> None:
        pass

    def answered(self, feed: Feed, kind: str, message: p.EventAck | p.EventError) -> None:
        pass


class Carrier(Watcher):
    """The carrier: submits interactions, re-submits what a lost site had not handed to an agent."""

    def __init__(self, world: World) -> None:
        super().__init__(world, "carrier1")
        self.ledger = Ledger()
        self.waiting: list[p.Interaction] = []  # customers waiting at the carrier: no site up
        self.submitted_at: dict[str, float] = {}  # id -> when it was last submitted
        self._numbers = itertools.count(1)

    def new_interaction(self) -> None:
        n = next(self._numbers)
        interaction = p.Interaction(interaction_id=f"ix-{n}", media="voice", queue="q", created_ms=self.loop.wall_ms,
                                    subject=f"Call {n}")
        self.waiting.append(interaction)
        self._flush()

    def new_interaction_at(self, site: str) -> str:
        """A call the carrier submits at ``site`` (which must be up for the carrier); its id."""
        feed = self.feeds[site]
        assert feed.up, f"the carrier has no link to {site}"
        n = next(self._numbers)
        interaction = p.Interaction(interaction_id=f"ix-{n}", media="voice", queue="q", created_ms=self.loop.wall_ms,
                                    subject=f"Call {n}")
        self._submit(feed, interaction)
        return interaction.interaction_id

    def _up(self) -> list[Feed]:
        return [feed for feed in self.feeds.values() if feed.up]

    def _flush(self) -> None:
        up = self._up()
        if up:
            waiting, self.waiting = self.waiting, []
            for interaction in waiting:
                self._submit(up[0], interaction)

    def _submit(self, feed: Feed, interaction: p.Interaction) -> None:
        self.ledger.submitted(interaction, feed.site)
        self.submitted_at[interaction.interaction_id] = self.loop.now
        feed.send(p.RequestSubmitInteraction(request_id=self.new_id(), interaction=interaction),
                  interaction.interaction_id)

    def subscribed(self, feed: Feed) -> None:
        self._flush()

    def lost(self, feed: Feed) -> None:
        self.later(CARRIER_GRACE, self._resubmit, feed.site, self.loop.now)

    def _resubmit(self, lost: str, lost_at: float) -> None:
        # What the site had when it was lost (traffic.py also takes what was submitted to it after it
        # came back within the grace: needless duplicates the sites cannot always tell apart).
        todo = [i for i in self.ledger.to_resubmit(lost) if self.submitted_at[i.interaction_id] <= lost_at]
        if not todo:
            return
        up = self._up()
        target = next((feed for feed in up if feed.site != lost), up[0] if up else None)
        if target is None:
            self.later(0.1, self._resubmit, lost, lost_at)  # no site up: try again shortly
            return
        for interaction in todo:
            self._submit(target, interaction)

    def snapshot(self, feed: Feed, message: p.EventReportingSnapshot) -> None:
        self.ledger.seen[feed.site] = (message.stream_id, message.seq)

    def event(self, feed: Feed, message: Reported) -> None:
        assert feed.stream_id is not None
        if self.ledger.fresh(feed.site, feed.stream_id, message.seq) and isinstance(message, p.EventInteraction):
            self.ledger.event(message)

    def answered(self, feed: Feed, kind: str, message: p.EventAck | p.EventError) -> None:
        if isinstance(message, p.EventAck):
            self.ledger.answered(kind, feed.site, None)
        else:
            self.ledger.answered(kind, feed.site, message.code, message.message)
