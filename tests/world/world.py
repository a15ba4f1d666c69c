"""One simulated world with the real cores on both sides.

**What it holds.** Two sites, A (preferred) and B (or N sites, each linked to every other, with
``World(sites=...)``: docs/multisite.md), each the real ``ServerCore`` under a simulated
transport (``site.Site``), peer-linked as ``server_stub.server`` and ``server_stub.peer`` link them;
one agent desktop per agent, each the real ``AgentSession`` (``desk.Desk``); a carrier submitting
interactions with the real carrier's policy and a supervisor watching both reporting streams
(``reports.Carrier``, ``reports.Watcher``). Time is a fake clock (``net.Loop``): nothing happens
unless the test advances it, every random choice comes from a seed, and no thread, socket or sleep
is involved.

**Links.** Every connection (a desktop's, the carrier's and the supervisor's to each site, and each
site's outbound peer link, which the other site serves as an ordinary connection) is two FIFO
directions with the site's latency. A close follows what was queued before it; a dial to a dead
site is refused, one to a frozen site is accepted when it thaws. Each site dials its peer, beats on
that link when idle, gives it up after 1.5 s of silence and redials with jittered backoff; the
served side's core closes a silent peer connection itself. A site's core is ticked every 0.1 s.

**Faults** (``World`` methods, driven by the Hypothesis machines of ``tests/world/machine.py``):
kill and restart of a site (memory lost, every connection reset), freeze and thaw of a site or of
a desktop (SIGSTOP/SIGCONT: time passes, nothing is processed, then everything that arrived is
processed at once), including a site stopped right after an agent's completion, accept or state
request left for it, cuts of the desktops' links to a site (a clean close by the server, a reset,
or a hold: nothing gets through until the cut heals, then TCP delivers what it held), a partition
of the peer links (held, and new dials lost), peer-link chaos (each peer frame randomly delayed,
so that the two links of the pair interleave in any order, or sent twice), slow sites (latency up
to 1.4 s) and a slow network between the sites. Besides, the carrier submits interactions and the
agents ask for states, accept, reject, write notes and complete.

**Invariants.** Checked the moment they could break (``desk.Desk``, ``reports.Reports``): a
desktop never sends a login while a server holds its login on a link it still holds open; nothing
twice on the wire; one outcome per intent, "applied" only when a server applied it; time in state
kept across failover, by the desktop and by the logins reported; a login reported anywhere is newer
than every login of that agent still reported open elsewhere (never logged in at two servers at
once, as reported); no interaction offered to one agent by two servers at once (but to a login the
agent has left); every interaction reported completed at most once. After every step
(``World.check``): at most one server holds each agent's login on a link its desktop holds open, and
the desktop calls at most one link primary; no intent applied twice; an interaction in hand stays in
hand until it ends. After healing (``World.settle``): within a bounded simulated time every desktop
is logged in at a live site that agrees with it (link, epoch, the state of the last intent and its
time in state, notes of what is in hand), the other site holds it as a standby, the supervisor's
view of both streams agrees; then, with the agents working (Ready, taking every offer, completing
what they hold), every interaction the carrier submitted is reported completed, or ended with a
reason.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from typing import Any

from desktop.core import events as ev
from desktop.core.config import FailbackPolicy, SessionConfig
from server_stub import protocol as p
from server_stub.core.routing import COMPLETED, OFFERED
from server_stub.directory import AgentRecord, Directory

from .bus import SimBus
from .desk import Desk
from .net import BASE_LATENCY, Link, Loop, Process
from .reports import Carrier, Reports, Watcher
from .site import PASSWORD, PEER_TIMEOUT, Site

SITES = ("A", "B")
CONVERGE_S = 45.0  # after healing: the token wait (30 s), a password login and a failback fit in
DRAIN_S = 40.0  # then the agents finish the work: orphans (20 s) and carrier re-submissions fit in


def agent_ids(count: int) -> list[str]:
    return [str(1001 + i) for i in range(count)]


def directory(agents: list[str]) -> Directory:
    records = {a: AgentRecord(id=a, name=f"Agent {a}", password_hash="(checked by the world)", queues=("q",))
               for a in agents}
    records["sup1"] = AgentRecord(id="sup1", name="Supervisor", password_hash="-", role="supervisor")
    records["carrier1"] = AgentRecord(id="carrier1", name="Carrier", password_hash="-", role="carrier")
    return Directory(agents=records)


class World:
    def __init__(self, seed: int, agents: int = 5, failback: FailbackPolicy = "never",
                 sites: tuple[str, ...] = SITES, endpoints: tuple[str, ...] | None = None, bus: bool = False) -> None:
        self.seed = seed
        self.loop = Loop()
        self.failback = failback
        self.directory = directory(agent_ids(agents))
        self.partitioned = False
        self.apart = False  # partitioned, or not linked again since the partition ended
        self.chaos: random.Random | None = None
        self.peer_latency = BASE_LATENCY  # the network between the sites (the desktops reach both on their own)
        self.held_links: list[Link] = []
        self.kills: list[float] = []  # when a site was killed
        self.stamps = itertools.count(1)  # orders peer frames and reported logins, within an instant too
        self.site_names = sites  # the pair, or a mesh of N sites each linked to every other
        self.bus = SimBus(self) if bus else None  # the sites' frames through a broker instead (tests/world/bus.py)
        self.stops: dict[str, list[list[float]]] = {name: [] for name in sites}  # [from, to] a site was stopped or down
        self.sites = {name: Site(self, name, tuple(other for other in sites if other != name)) for name in sites}
        self.reports = Reports(self)
        config = SessionConfig(endpoints=[(name, f"ws://sim-{name}") for name in endpoints or sites],  # type: ignore[arg-type]
                               failback=failback)
        self.desks = [Desk(self, agent, config, seed * 1_000 + i) for i, agent in enumerate(agent_ids(agents))]
        self.supervisor = Watcher(self, "sup1")
        self.carrier = Carrier(self)
        self._answered: set[tuple[str, int, str]] = set()
        self._notes = 0

    def start(self) -> None:
        """Both sites up, the carrier and the supervisor watching, every agent logging in."""
        for site in self.sites.values():
            site.start()
        self.supervisor.start()
        self.carrier.start()
        for desk in self.desks:
            desk.feed(desk.session.login, desk.agent_id, PASSWORD)

    def run_for(self, seconds: float) -> None:
        self.loop.run_for(seconds)

    # ------------------------------------------------------------------ links

    def dial(self, dialler: Process, site: Site, kind: str, on_open: Callable[[Link], None],
             on_frame: Callable[[Link, Any], None], on_close: Callable[[Link, int | None], None],
             tag: Any = None) -> Link:
        link = Link(site, dialler, on_open, on_frame, on_close, kind, tag=tag)
        self.loop.at(self.loop.now + link.latency, site.connect_arrives, link)
        return link

    def peer_frame(self, send: Callable[..., None], frame: str) -> None:
        """A frame on a peer link, stamped with the order it was sent in, through the chaos fault when it is
        on: delayed (each direction of a link stays in order, as TCP keeps it; the two links of a pair
        interleave in any order) or sent twice."""
        payload = (frame, next(self.stamps))
        if self.bus is not None:
            self.bus.carry(send, frame, payload)
            return
        chaos = self.chaos
        if chaos is None:
            send(payload)
            return
        send(payload, extra=chaos.uniform(0.0, 0.3) if chaos.random() < 0.5 else 0.0)
        if chaos.random() < 0.15:
            send(payload)

    def server_answered(self, site: Site, link: Link, message: p.Message) -> None:
        """A site sends a desktop ``message``: the first ack of a request says it took effect there."""
        if isinstance(message, p.EventAck) and message.request_id:
            key = (site.name, site.incarnation, message.request_id)
            desk = link.dialler
            if key not in self._answered and isinstance(desk, Desk) and message.request_id in desk.requests:
                self._answered.add(key)
                desk.applied(site.name, site.incarnation, desk.requests[message.request_id], message)

    # ------------------------------------------------------------------ the test's view

    def desk_of(self, agent_id: str | None) -> Desk | None:
        return next((d for d in self.desks if d.agent_id == agent_id), None)

    def completed_somewhere(self, iid: str) -> bool:
        """Reported completed, or completed at a running site that has not reported it yet."""
        return bool(self.reports.completions[iid]) or any(
            site.core is not None and getattr(site.core.engine.interactions.get(iid), "status", None) == COMPLETED
            for site in self.sites.values())

    def login_holders(self, desk: Desk) -> list[str]:
        """Servers holding the agent's login on a link its desktop holds open."""
        holders = []
        for site in self.sites.values():
            login = site.login_of(desk.agent_id)
            link = site.conn_links.get(login.conn) if login is not None else None
            if link is not None and link.dialler is desk and link.tag in desk.client_open:
                holders.append(site.name)
        return holders

    def check(self) -> None:
        """What must hold after every step."""
        for desk in self.desks:
            holders = self.login_holders(desk)
            assert len(holders) <= 1, f"{desk}: logged in at {holders} on links it holds open"
            snapshot = desk.session.snapshot()  # one per desk and check: building it is most of a check's cost
            roles = [link.role for link in snapshot.links]
            assert roles.count("primary") <= 1, f"{desk}: {roles}"
            for intent_id, applied in desk.applications.items():
                assert len(applied) <= 1, f"{desk}: intent {intent_id} applied {applied}"
            held = {h.interaction.interaction_id for h in snapshot.held}
            assert desk.in_hand <= held, f"{desk}: {desk.in_hand - held} left the agent's hands without an end"
        self.check_hand_overs()

    def check_hand_overs(self) -> None:
        """An interaction handed between sites (docs/multisite.md) is offered at one site at a time:
        never at the site that handed it over while the receiver has it (but across a partition
        longer than the custody timeout, the documented approximation)."""
        offered: dict[str, list[str]] = {}
        moved: set[str] = set()
        for site in self.sites.values():
            if site.core is None:
                continue
            for iid, item in site.core.engine.interactions.items():
                if item.moves:
                    moved.add(iid)
                if item.status == OFFERED:
                    offered.setdefault(iid, []).append(f"{site.name}:{item.agent_id}")
        for iid in moved:
            at = offered.get(iid, [])
            assert len(at) <= 1 or iid in self.reports.partitioned_ids, f"{iid} handed over, offered at {at}"

    # ------------------------------------------------------------------ faults

    def stopped_since(self, name: str, when: float) -> bool:
        """Was the site stopped (frozen) or down at some moment since ``when``?"""
        return any(end >= when for _, end in self.stops[name])

    def _stopped(self, process: Process, stopped: bool) -> None:
        if isinstance(process, Site):
            if stopped:
                self.stops[process.name].append([self.loop.now, float("inf")])
            else:
                self.stops[process.name][-1][1] = self.loop.now

    def kill(self, name: str) -> None:
        site = self.sites[name]
        if site.alive:
            if not site.frozen:
                self._stopped(site, True)
            site.kill()

    def restart(self, name: str) -> None:
        if not self.sites[name].alive:
            self.sites[name].start()
            self._stopped(self.sites[name], False)

    def freeze(self, process: Process) -> None:
        if process.alive and not process.frozen:
            self._stopped(process, True)
            process.freeze()

    def thaw(self, process: Process) -> None:
        if process.alive and process.frozen:
            self._stopped(process, False)
            process.thaw()

    def cut(self, name: str, how: str, desk: Desk | None = None) -> None:
        """The desktops' links to a site (or one desktop's): closed by the server ("close"), reset
        ("reset"), held ("hold") until healed, or held from the site to the desktop only ("deaf")."""
        site = self.sites[name]
        if not site.alive or site.frozen:
            return
        for link in [link for link in site.links.values() if link.kind == "desk" and desk in (None, link.dialler)]:
            if how == "close":
                del site.links[link.conn_id]
                link.closed_by_site(1001)
                site.later(2 * link.latency, site.feed, site.core.disconnected, link.conn_id)  # type: ignore[union-attr]
            elif how == "reset":
                link.reset()
            elif how == "deaf":  # the desktop hears nothing from the site, which hears it: a false suspicion
                link.hold_down()
                self.held_links.append(link)
            elif not link.cut:
                link.hold()
                self.held_links.append(link)

    def partition(self) -> None:
        """The sites lose each other: peer links hold what they carry, new peer dials get nowhere."""
        self.partitioned = self.apart = True
        for site in self.sites.values():
            for dialer in site.dialers.values():
                if dialer.link is not None:
                    dialer.link.hold()

    def sites_apart(self) -> bool:
        """Partitioned (and not linked again yet), or too slow for a peer link to stay up: a round trip
        between the sites longer than the heartbeat timeout."""
        slowest = max([self.peer_latency] + [site.latency for site in self.sites.values()])
        return self.apart or 2 * slowest > PEER_TIMEOUT

    def peer_linked(self) -> None:
        """A peer link came up: once both are up after a partition, the sites hear each other again."""
        if not self.partitioned and all(s.dialers and all(d.up for d in s.dialers.values())
                                        for s in self.sites.values()):
            self.apart = False

    def end_partition(self) -> None:
        self.partitioned = False
        for site in self.sites.values():
            for link in site.links.values():
                if link.kind == "peer":
                    link.restore()
            for dialer in site.dialers.values():
                if dialer.link is not None:
                    dialer.link.restore()

    def set_chaos(self, seed: int | None) -> None:
        self.chaos = random.Random(seed) if seed is not None else None

    def heal(self) -> None:
        """Every fault stops."""
        for site in self.sites.values():
            self.thaw(site)
        for desk in self.desks:
            self.thaw(desk)
        for site in self.sites.values():
            self.restart(site.name)
            site.latency = BASE_LATENCY
        self.peer_latency = BASE_LATENCY
        if self.bus is not None:
            self.bus.heal()
        held, self.held_links = self.held_links, []
        for link in held:
            link.restore()
        self.end_partition()
        self.set_chaos(None)

    # ------------------------------------------------------------------ what the user does

    def next_notes(self, iid: str) -> str:
        self._notes += 1
        return f"notes {iid} #{self._notes}"

    # ------------------------------------------------------------------ healing

    def settle(self) -> None:
        """Heal, then: clients, servers and reporting agree within CONVERGE_S; with the agents working,
        every interaction ends within DRAIN_S, and they all still agree."""
        self.heal()
        self.converge()
        end = self.loop.now + DRAIN_S
        while self.loop.now < end and (self.unfinished() or self.carrier.waiting):
            for desk in self.desks:
                desk.work_through()
            self.run_for(0.5)
        assert not self.unfinished(), (f"not completed nor ended {DRAIN_S:g} s after healing: {self.unfinished()}; "
                                       f"{self.whereabouts(self.unfinished())}")
        self.converge()

    def converge(self) -> None:
        end = self.loop.now + CONVERGE_S
        while self.disagreements() and self.loop.now < end:
            self.run_for(1.0)
        problems = self.disagreements()
        assert not problems, f"{CONVERGE_S:g} s after healing: " + "; ".join(problems)

    def whereabouts(self, iids: Any) -> str:
        """Where each site has these interactions, and the agents as each site's pool sees them (for a failure)."""
        out = []
        for site in self.sites.values():
            core = site.core
            if core is None:
                continue
            for iid in iids:
                item = core.engine.interactions.get(iid)
                out.append(f"{site.name}:{iid}={item and (item.status, item.agent_id, item.moved_to, item.moves)}")
            out.append(f"{site.name} pool: " + ", ".join(
                f"{a}@{s.site}/{s.presence.epoch}:{'avail' if s.available else 'busy'}"
                for a, s in sorted(core.pool.remote.items())) + f" reserved {core.pool.reserved}")
            out.append(f"{site.name} agents: " + ", ".join(
                f"{a}:{r.state}/{r.offer}/{list(r.held)}" for a, r in sorted(core.engine.agents.items())))
        return "; ".join(out)

    def unfinished(self) -> dict[str, str]:
        reports = self.reports
        return {iid: entry.status for iid, entry in self.carrier.ledger.entries.items()
                if not reports.completions.get(iid) and not reports.abandoned.get(iid)}

    def disagreements(self) -> list[str]:
        problems = [problem for desk in self.desks for problem in self.disagreement(desk)]
        if not all(feed.up for feed in self.supervisor.feeds.values()):
            problems.append("the supervisor is not subscribed to both sites")
        return problems

    def disagreement(self, desk: Desk) -> list[str]:
        """How this desktop, the servers and the supervisor's view of the streams disagree."""
        snap = desk.session.snapshot()
        agent = desk.agent_id
        if snap.status != "logged_in" or snap.primary is None:
            return [f"{desk} is {snap.status}"]
        primary = self.sites[snap.primary]
        links = {info.endpoint: info for info in snap.links}
        login = primary.login_of(agent)
        link = desk.links.get(links[snap.primary].link or 0)
        if login is None or primary.conn_links.get(login.conn) is not link or link is None:
            return [f"{desk}: {snap.primary} does not hold its login on its primary link ({login})"]
        problems = []
        if login.epoch != snap.epoch:
            problems.append(f"{desk}: epoch {snap.epoch}, {snap.primary} has {login.epoch}")
        for name, site in self.sites.items():
            if name == snap.primary or name not in links:  # not one of this desktop's sites
                continue
            standby = desk.links.get(links[name].link or 0)
            core = site.core
            if links[name].role != "secondary" or standby is None or core is None \
                    or standby.conn_id not in core.standby.get(agent, set()) or site.login_of(agent) is not None:
                problems.append(f"{desk}: {name} is not a standby ({links[name]})")
        final = desk.issued[-1][1] if desk.issued else ev.StateIntent("not_ready")
        if snap.pending or any(outcome is None for outcome in desk.outcome.values()):
            problems.append(f"{desk}: intents pending {snap.pending}")
        if (login.state, login.reason) != (final.state, final.reason):
            problems.append(f"{desk}: {snap.primary} has {login.state}/{login.reason}, the last intent was {final}")
        shown = snap.agent
        if shown is None or (shown.state, shown.reason, shown.since_ms) != (login.state, login.reason, login.since_ms):
            problems.append(f"{desk} shows {shown}, {snap.primary} has {login.state}/{login.reason}/{login.since_ms}")
        preferred = self.site_names[0]
        if self.failback == "when-idle" and not snap.has_interaction and not snap.offers and snap.primary != preferred:
            problems.append(f"{desk}: idle at {snap.primary}, not failed back")
        problems += self._interactions_agree(desk, snap, primary)
        expected = (login.epoch, login.state, login.reason, login.since_ms)
        for name, feed in self.supervisor.feeds.items():
            seen = feed.agents.get(agent)
            if seen != (expected if name == snap.primary else None):
                problems.append(f"{desk}: the supervisor sees {seen} at {name}")
            if agent in feed.unreachable:
                problems.append(f"{desk}: the supervisor sees it unreachable at {name}")
        if self.reports.open_logins[agent] != {snap.primary: login.epoch}:
            problems.append(f"{desk}: reported logged in at {self.reports.open_logins[agent]}")
        return problems

    def _interactions_agree(self, desk: Desk, snap: ev.SessionSnapshot, primary: Site) -> list[str]:
        problems = []
        if snap.interaction_pending or any(outcome is None for outcome in desk.ix_outcome.values()):
            problems.append(f"{desk}: interaction intents pending {snap.interaction_pending}")
        engine = primary.core.engine  # type: ignore[union-attr]
        for info in snap.held:
            iid = info.interaction.interaction_id
            item = engine.interactions.get(iid)
            if info.epoch != snap.epoch or info.endpoint != snap.primary:
                problems.append(f"{desk}: {iid} held at {info.endpoint}/{info.epoch}")
            elif item is None or item.status != "held" or iid not in engine.held_by(desk.agent_id):
                problems.append(f"{desk}: {iid} in hand but {snap.primary} has {item and item.status}")
            elif not (info.notes == desk.typed.get(iid, "") == item.notes):
                problems.append(f"{desk}: {iid} notes typed {desk.typed.get(iid)!r}, shown {info.notes!r}, "
                                f"kept {item.notes!r}")
        for iid, notes in desk.completing.items():
            ended = desk.ended[iid]
            if len(ended) != 1:
                problems.append(f"{desk}: completion of {iid} asked, ended {ended}")
            elif ended[0].reason == "completed":
                # The latest (it may come back: a site that never heard it ended offers it again) by this
                # agent; by another if two held it (an accept unanswered when its server was lost is
                # adopted over another agent's): the one the servers counted.
                reported = [c for c in self.reports.completions[iid] if c.agent_id == desk.agent_id]
                if not self.reports.completions[iid]:
                    problems.append(f"{desk}: {iid} completed, not reported")
                elif reported and reported[-1].notes is not None and reported[-1].notes != notes:
                    kept = reported[-1].notes
                    problems.append(f"{desk}: {iid} completed with notes {kept!r}, the agent had {notes!r}")
            elif ended[0].reason not in ("taken_elsewhere", "not_adopted", "unknown_interaction", "withdrawn",
                                         "transferred"):
                problems.append(f"{desk}: {iid} ended {ended[0]}")
        return problems
