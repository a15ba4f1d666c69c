"""Queues, offers and the life of an interaction at one server, without sockets or clocks.

The server feeds the engine what happened (an interaction submitted, an agent ready, an offer
answered, time passing) with ``now`` in ms, and gets back a list of *effects* to carry out: an
offer to send, an offer to revoke, a reporting event, a state change the engine decided. Nothing
here does I/O, so every routing rule is unit-tested with a fake clock (tests/server/test_routing.py).

Routing: an interaction goes to the longest-idle available agent (logged in, Ready, not holding an
interaction and not being offered one) among the lowest penalty of its queue's members that has
one; higher penalties are used only while every better member is busy. Available agents sit in one
heap per (queue, penalty) keyed by the time they became idle, with lazy deletion (each agent
carries a version; stale heap entries are skipped), so an offer costs O(log agents).

Besides its own interactions the engine remembers what the peer site told it (``PeerRecord``):
which ids an agent holds or completed there. Together they answer the duplicate checks and the
conflicts of a failover (see docs/protocol.md, "Exactly once across failover").
"""

from __future__ import annotations

import collections
import heapq
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec

from .. import protocol as p
from ..config import QueueConfig

# ---------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Offer:
    agent_id: str
    interaction: p.Interaction
    offered_ms: int
    expires_ms: int


@dataclass(frozen=True)
class Revoke:
    agent_id: str
    interaction_id: str
    reason: p.RevokeReason
    message: str


@dataclass(frozen=True)
class Report:
    event: p.InteractionEventKind
    interaction: p.Interaction
    agent_id: str | None = None
    disposition: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class SetState:
    """A state change the engine decided (After Call Work, its end, Not Ready after timeouts)."""

    agent_id: str
    state: p.AgentStateName
    reason: str | None = None
    at_ms: int | None = None  # when the engine decided it: time in state (and an ACW's end) counts from here


@dataclass(frozen=True)
class HandOver:
    """Move ``interaction`` to ``site``, for ``agent_id`` logged in there (its best member is there).
    The engine holds it (``MOVING``) until ``handed_over`` says how it went."""

    site: str
    agent_id: str
    epoch: int
    interaction: p.Interaction
    moves: int
    arrived_ms: int


@dataclass(frozen=True)
class Remote:
    """An available member of a queue logged in at another site, as the agent pool knows it."""

    site: str
    agent_id: str
    epoch: int
    penalty: int


# (queue, (penalty, idle_since) of the best local member or None) -> a better member elsewhere, if any
RemoteChooser = Callable[[str, "tuple[int, int] | None"], "Remote | None"]


@dataclass(frozen=True)
class HeldChanged:
    """The set of interactions in the agent's hands changed without the agent asking."""

    agent_id: str


Effect = Offer | Revoke | Report | SetState | HeldChanged | HandOver


class EngineRefusal(Exception):
    """The request cannot be carried out; ``code`` is the protocol error code."""

    def __init__(self, code: p.ErrorCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# ---------------------------------------------------------------------------- state

QUEUED, OFFERED, HELD, COMPLETED, ABANDONED, WITHDRAWN = (
    "queued",
    "offered",
    "held",
    "completed",
    "abandoned",
    "withdrawn",
)
# Cross-site hand-over (docs/multisite.md): MOVING while the receiving site has not answered;
# MOVED once it took the interaction (kept in custody, its data whole, until the receiving site
# says an agent there holds or completed it, or it is reclaimed from a receiver that was lost).
MOVING, MOVED = "moving", "moved"
ENDED = (COMPLETED, ABANDONED, WITHDRAWN, MOVED)


@dataclass(eq=False)
class Tracked:
    """One interaction this server has (had) a copy of."""

    interaction: p.Interaction
    status: str
    arrived_ms: int  # the customer's arrival, clamped to this server's clock
    agent_id: str | None = None
    offered_ms: int | None = None
    expires_ms: int | None = None
    accepted_ms: int | None = None
    notes: str = ""
    disposition: str | None = None
    orphan_deadline: int | None = None  # held, but its agent's login ended
    unconfirmed: bool = False  # accepted here; the peer has not yet agreed
    answered: bool = False  # counted in its queue's ``answered`` (once its accept was confirmed)
    reported: bool = False  # completed here and the completion report has left
    size: int = 0  # bytes of the submitted interaction, counted in the engine's live_bytes until it ends
    moves: int = 0  # hand-overs between sites so far (each attempt numbered): see docs/multisite.md
    moved_to: str | None = None  # MOVING/MOVED: the site it was handed to
    custody: bool = False  # MOVED and not yet known held or completed at moved_to
    token: int = 0  # bumped on every status change; stale timers and queue entries carry an old one
    hold_since: int | None = None  # HELD voice interaction on hold since then (transfers.py)

    @property
    def id(self) -> str:
        return self.interaction.interaction_id


@dataclass(eq=False)
class PeerRecord:
    """What the peer site told us about an interaction: held or completed there, by whom."""

    status: p.PeerRecordStatus
    agent_id: str | None
    queue: str
    media: p.Media
    orphan_deadline: int | None = None  # held at a peer we lost: ends here unless brought back
    token: int = 0
    reported: bool = True  # completed: the peer said it reported it (False between its claim and its notice)
    owed: str | None = None  # completed, not reported: the disposition of its agent's completion answered here
    lost: bool = False  # completed, not reported: the peer could not be reached since (it may have died with it)
    site: str = ""  # the peer site that told it ("" when unknown)
    interaction: p.Interaction | None = None  # status "queued": the whole transferred interaction (transfers.py)


def longest_acw_ms(config: QueueConfig) -> int:
    """The longest After Call Work this queue gives: its own, with every extension it allows."""
    if not config.acw_ms:
        return 0
    return config.acw_ms + (config.acw_extend_ms or 0) * config.acw_max_extends


@dataclass(eq=False)
class RoutedAgent:
    agent_id: str
    penalties: dict[str, int]
    state: str
    idle_since: int
    offer: str | None = None
    held: dict[str, None] = field(default_factory=dict)  # ordered set of interaction ids
    timeouts_in_row: int = 0
    acw_until: int | None = None
    version: int = 0
    reachable: bool = True  # False while its desktop is silent (suspect): offered nothing
    acw_queue: str | None = None  # whose timed After Call Work this is (its extension rules)
    acw_extends: int = 0  # extensions taken of this After Call Work
    consulting: str | None = None  # offered or consulted on a transfer (transfers.py): offered nothing else

    @property
    def available(self) -> bool:
        return (self.state == "ready" and self.offer is None and not self.held and self.reachable
                and self.consulting is None)


@dataclass(eq=False)
class QueueState:
    config: QueueConfig
    waiting: collections.deque[tuple[int, Tracked]] = field(default_factory=collections.deque)  # (token, Tracked)
    waiting_count: int = 0
    offered: int = 0  # counted as the caller reports each offer (offer_reported)
    answered: int = 0
    answered_in_target: int = 0
    abandoned: int = 0
    # penalty -> heap of (idle_since, n, version, agent)
    pools: dict[int, list[tuple[int, int, int, str]]] = field(default_factory=dict)


class RoutingEngine:
    def __init__(self, queues: tuple[QueueConfig, ...] | list[QueueConfig], *, max_offer_timeouts: int = 3,
                 offer_timeout_reason: str = "system", orphan_timeout_ms: int = 300_000,
                 remember: int = 200_000, max_waiting_per_queue: int = 5_000, max_waiting: int = 20_000,
                 max_live_bytes: int = 32 * 1024 * 1024):
        self.queues: dict[str, QueueState] = {q.name: QueueState(q) for q in queues}
        # What a carrier may make this server hold: waiting interactions per queue and in all, and
        # the bytes of every interaction not yet ended (customer data included).
        self.max_waiting_per_queue = max_waiting_per_queue
        self.max_waiting = max_waiting
        self.max_live_bytes = max_live_bytes
        self.live_bytes = 0
        self.max_offer_timeouts = max_offer_timeouts
        self.offer_timeout_reason = offer_timeout_reason
        self.orphan_timeout_ms = orphan_timeout_ms
        self.remember = remember  # ended interactions kept for duplicate detection
        self.interactions: dict[str, Tracked] = {}
        self.ended: collections.deque[str] = collections.deque()
        self.peer: collections.OrderedDict[str, PeerRecord] = collections.OrderedDict()
        self.agents: dict[str, RoutedAgent] = {}
        self.hold_until = 0  # no offers and no timers before this (a stalled server catching up)
        # The agent pool's view of better members at other sites (None: this site routes alone).
        self.remote: RemoteChooser | None = None
        # Called with an agent id whenever its availability here may have changed (presence).
        self.on_agent_change: Callable[[str], None] = lambda agent_id: None
        # Hand-overs this site refused: id -> the highest ``moves`` refused (a repeat is refused again).
        self.refused_moves: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._timers: list[tuple[int, int, str, str, int]] = []  # (when, n, kind, key, token)
        self._n = itertools.count()

    # ------------------------------------------------------------------ agents

    def login(
        self,
        agent_id: str,
        penalties: dict[str, int],
        state: str,
        now: int,
        interactions: Sequence[p.HeldInteraction] = (),
        acw_until: int | None = None,
    ) -> tuple[list[str], list[Effect]]:
        """A login here. ``interactions`` (a failover login) are adopted before anything is
        offered; ``acw_until`` (a failover login in a timed After Call Work) keeps its end, capped
        at the longest After Call Work a queue here sets. Returns (ids adopted, effects)."""
        penalties = {q: pen for q, pen in penalties.items() if q in self.queues}
        agent = self.agents[agent_id] = RoutedAgent(agent_id, penalties, state, idle_since=now)
        if state == "after_call_work" and acw_until is not None:
            longest = max((longest_acw_ms(q.config) for q in self.queues.values()), default=0)
            if longest:
                agent.acw_until = min(acw_until, now + longest)
                self._timer(agent.acw_until, "acw", agent_id, agent.acw_until)
        effects: list[Effect] = []
        adopted = []
        for held in interactions:
            if held.interaction.interaction_id in agent.held:
                continue
            ok, more = self._adopt(agent, held, now)
            effects += more
            if ok:
                adopted.append(held.interaction.interaction_id)
        self._make_available(agent)
        self._route(now, effects)
        return adopted, effects

    def logout(self, agent_id: str, now: int) -> list[Effect]:
        """The login ended: an offer goes back to the head of its queue; interactions in hand are
        kept for ``orphan_timeout_ms`` (the agent is probably re-attaching them elsewhere)."""
        agent = self.agents.pop(agent_id, None)
        effects: list[Effect] = []
        if agent is None:
            return effects
        agent.version += 1
        self.on_agent_change(agent_id)
        if agent.offer is not None:
            item = self.interactions[agent.offer]
            agent.offer = None
            self._requeue(item, now, effects, "queued", agent_id, f"offer withdrawn: agent {agent_id} logged out")
        for iid in agent.held:
            item = self.interactions[iid]
            item.orphan_deadline = now + self.orphan_timeout_ms
            item.token += 1
            self._timer(item.orphan_deadline, "orphan", iid, item.token)
        self._route(now, effects)
        return effects

    def set_state(self, agent_id: str, state: str, now: int) -> list[Effect]:
        """The agent's state changed (asked by the agent or a supervisor)."""
        agent = self.agents.get(agent_id)
        effects: list[Effect] = []
        if agent is None or agent.state == state:
            return effects
        agent.state = state
        agent.acw_until = None
        if state == "ready":
            agent.idle_since = now
            agent.timeouts_in_row = 0
        self._make_available(agent)
        self._route(now, effects)
        return effects

    def reconfigure(self, queues: Sequence[QueueConfig], penalties: dict[str, dict[str, int]],
                    now: int) -> list[Effect]:
        """New rules (a reload of the files): each queue's settings, new queues, and the logged-in
        agents' memberships (``penalties``: agent -> queue -> penalty). A queue no longer
        configured keeps what waits in it (it is served, and takes nothing new once restarted)."""
        for queue in queues:
            state = self.queues.get(queue.name)
            if state is None:
                self.queues[queue.name] = QueueState(queue)
            else:
                state.config = queue
        for agent_id, agent in self.agents.items():
            agent.penalties = {q: pen for q, pen in penalties.get(agent_id, {}).items() if q in self.queues}
            self._make_available(agent)
        effects: list[Effect] = []
        self._route(now, effects)
        return effects

    def set_reachable(self, agent_id: str, reachable: bool, now: int) -> list[Effect]:
        """The agent's desktop went silent (False: no new offers; one in flight keeps its own
        timeout) or was heard again (True: offerable again, keeping its place by idle time)."""
        agent = self.agents.get(agent_id)
        effects: list[Effect] = []
        if agent is None or agent.reachable == reachable:
            return effects
        agent.reachable = reachable
        self._make_available(agent)
        self._route(now, effects)
        return effects

    def acw_extends_left(self, agent_id: str) -> int:
        """How many more times this agent may extend its timed After Call Work (0 outside one, after a
        failover login, which does not know the queue, and where the queue allows none)."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.state != "after_call_work" or agent.acw_until is None or agent.acw_queue is None:
            return 0
        q = self.queues.get(agent.acw_queue)
        if q is None or not q.config.acw_extend_ms:
            return 0
        return max(0, q.config.acw_max_extends - agent.acw_extends)

    def extend_acw(self, agent_id: str, now: int) -> int | None:
        """Extend the agent's timed After Call Work by its queue's ``acw_extend_ms`` (from its current
        end, or from now if that has passed); the new end, or None when it may not (see
        ``acw_extends_left``). The server keeps the deadline: the desktop only shows it."""
        if not self.acw_extends_left(agent_id):
            return None
        agent = self.agents[agent_id]
        q = self.queues[agent.acw_queue]  # type: ignore[index]
        assert agent.acw_until is not None and q.config.acw_extend_ms
        agent.acw_until = max(agent.acw_until, now) + q.config.acw_extend_ms
        agent.acw_extends += 1
        self._timer(agent.acw_until, "acw", agent_id, agent.acw_until)  # the old timer's token no longer matches
        return agent.acw_until

    def acw_until(self, agent_id: str) -> int | None:
        """When this agent's timed After Call Work ends, if it is in one."""
        agent = self.agents.get(agent_id)
        return agent.acw_until if agent is not None and agent.state == "after_call_work" else None

    def held_by(self, agent_id: str) -> list[str]:
        agent = self.agents.get(agent_id)
        return list(agent.held) if agent else []

    # ------------------------------------------------------------------ interactions

    def submit(self, interaction: p.Interaction, now: int) -> list[Effect]:
        if interaction.queue not in self.queues:
            raise EngineRefusal("unknown_queue", f"no queue {interaction.queue!r} here; queues: {sorted(self.queues)}")
        iid = interaction.interaction_id
        if iid in self.interactions:
            raise EngineRefusal(
                "duplicate_interaction", f"{iid} is already known here ({self.interactions[iid].status})"
            )
        if iid in self.peer:
            raise EngineRefusal("duplicate_interaction", f"{iid} is {self.peer[iid].status} at the peer site")
        size = len(msgspec.json.encode(interaction))
        self._check_room(self.queues[interaction.queue], size)
        item = Tracked(interaction, QUEUED, arrived_ms=min(interaction.created_ms, now), size=size)
        self.live_bytes += size
        self.interactions[iid] = item
        effects: list[Effect] = [Report("queued", interaction)]
        self._enqueue(item, now, head=False)
        self._route(now, effects)
        return effects

    def _check_room(self, q: QueueState, size: int) -> None:
        if q.waiting_count >= self.max_waiting_per_queue:
            raise EngineRefusal("queue_full", f"queue {q.config.name!r} has {q.waiting_count} interactions waiting, "
                                              f"its limit; submit it again later or to another site")
        if sum(other.waiting_count for other in self.queues.values()) >= self.max_waiting:
            raise EngineRefusal("queue_full", f"{self.max_waiting} interactions are waiting here, the server's "
                                              f"limit; submit it again later or to another site")
        if self.live_bytes + size > self.max_live_bytes:
            raise EngineRefusal("queue_full", f"the interactions open here hold {self.live_bytes} bytes, near the "
                                              f"server's limit of {self.max_live_bytes}; submit it again later")

    def accept(self, agent_id: str, iid: str, now: int) -> list[Effect]:
        """The agent takes the offer. Accepting what it already holds is a harmless repeat ([])."""
        item = self.interactions.get(iid)
        if item is not None and item.status == HELD and item.agent_id == agent_id:
            return []
        agent = self.agents.get(agent_id)
        if item is None or agent is None or item.status != OFFERED or item.agent_id != agent_id:
            raise EngineRefusal("unknown_interaction", f"{iid} is not offered to {agent_id} here")
        agent.offer = None
        agent.held[iid] = None
        agent.timeouts_in_row = 0
        agent.version += 1
        item.status, item.accepted_ms, item.expires_ms = HELD, now, None
        item.unconfirmed = True
        item.token += 1
        return [Report("accepted", item.interaction, agent_id)]

    def mark_reported(self, iid: str) -> None:
        """The completion of ``iid`` was reported (after the peer knew of it)."""
        item = self.interactions.get(iid)
        if item is not None and item.status == COMPLETED:
            item.reported = True

    def confirm(self, iid: str) -> None:
        """The peer agreed to (or could not be asked about) this server's accept of ``iid``: only
        now is it answered here (a refused accept was answered at the peer, and counts there), in
        step with the ``accepted`` event the server publishes at this point."""
        item = self.interactions.get(iid)
        if item is None:
            return
        item.unconfirmed = False
        q = self.queues.get(item.interaction.queue)
        if q is not None and item.accepted_ms is not None and not item.answered:
            item.answered = True
            q.answered += 1
            if item.accepted_ms - item.arrived_ms <= q.config.service_level_target_ms:
                q.answered_in_target += 1

    def reject(self, agent_id: str, iid: str, now: int) -> list[Effect]:
        item = self._offered_to(agent_id, iid)
        agent = self.agents[agent_id]
        agent.offer = None
        agent.timeouts_in_row = 0
        agent.idle_since = now  # to the back of the idle order: the next agent gets it first
        effects: list[Effect] = []
        self._requeue(item, now, effects, "rejected", agent_id)
        self._make_available(agent)
        self._route(now, effects)
        return effects

    def update_notes(self, agent_id: str, iid: str, notes: str) -> None:
        self._held_by(agent_id, iid).notes = notes

    def complete(self, agent_id: str, iid: str, disposition: str, notes: str, now: int,
                 peer_linked: bool = False) -> list[Effect]:
        """Finish an interaction in hand. Completing again what this agent completed is a repeat ([]).
        ``peer_linked``: the peer site is connected (it reports what it completed)."""
        item = self.interactions.get(iid)
        if item is not None and item.status == COMPLETED and item.agent_id == agent_id:
            return []
        peer = self.peer.get(iid)
        if (
            (item is None or item.status != HELD)
            and peer is not None
            and peer.status == "completed"
            and peer.agent_id == agent_id
        ):
            # Completed at the peer before a failover; the agent re-sends it here. A repeat, unless
            # the peer died between telling us and reporting it: then this server reports it. While
            # the peer is linked it reports it itself (it may just be waiting for our answer); this
            # server reports it if the peer is lost before saying it did (``report_owed``), and at
            # once if it was lost since it claimed it (a peer linked again may be a restarted one).
            if peer.reported:
                return []
            if peer_linked and not peer.lost:
                peer.owed = disposition
                return []
            peer.reported = True
            lost = p.Interaction(interaction_id=iid, media=peer.media, queue=peer.queue, created_ms=now)
            return [Report("completed", lost, agent_id, disposition=disposition,
                           reason="completed at the peer site, which stopped before reporting it")]
        item = self._held_by(agent_id, iid)
        agent = self.agents[agent_id]
        del agent.held[iid]
        if notes:
            item.notes = notes
        item.status, item.disposition = COMPLETED, disposition
        self._ended(item)
        effects: list[Effect] = [Report("completed", item.interaction, agent_id, disposition=disposition)]
        q = self.queues.get(item.interaction.queue)
        acw = q.config.acw_ms if q is not None else None
        agent.idle_since = now
        if acw and agent.state != "not_ready":
            agent.state = "after_call_work"
            agent.acw_until = now + acw
            agent.acw_queue, agent.acw_extends = item.interaction.queue, 0
            effects.append(SetState(agent_id, "after_call_work", at_ms=now))
            self._timer(agent.acw_until, "acw", agent_id, agent.acw_until)
        self._make_available(agent)
        self._route(now, effects)
        return effects

    def reported_at_peer(self, iid: str) -> bool:
        """Did the peer say it reported a completion of ``iid``?"""
        record = self.peer.get(iid)
        return record is not None and record.status == "completed" and record.reported

    def complete_refused(self, iid: str) -> list[Effect]:
        """The completion of ``iid`` counts at the peer (the same completion reached it too, or it
        reported it while this server was stopped): this copy is withdrawn instead of reported."""
        item = self.interactions.get(iid)
        if item is None or item.status != COMPLETED or item.reported:
            return []
        item.status = WITHDRAWN
        i = item.interaction
        if not (iid in self.peer and self.peer[iid].status == "completed"):
            self.peer[iid] = PeerRecord("completed", item.agent_id, i.queue, i.media, reported=False)
        return [Report("withdrawn", i, item.agent_id, reason="completed at the peer site")]

    def accept_refused(self, agent_id: str, iid: str, now: int, reason: str) -> list[Effect]:
        """The peer refused this agent's accept (an agent there holds or completed it): drop the
        copy, if it is still that unconfirmed accept (meanwhile the peer's own claim may have taken
        it away already, and someone may even have adopted it here since)."""
        item = self.interactions.get(iid)
        effects: list[Effect] = []
        if item is None or item.status != HELD or item.agent_id != agent_id or not item.unconfirmed:
            return effects
        self._drop_copy(item, now, effects, reason)
        self._route(now, effects)
        return effects

    def _adopt(self, agent: RoutedAgent, held: p.HeldInteraction, now: int) -> tuple[bool, list[Effect]]:
        """A failover login brings an interaction in the agent's hands. Returns (adopted, effects).

        Not adopted: the interaction was completed already (by this agent: its re-sent completion
        is acknowledged as a repeat; by another: the agent is told ``taken_elsewhere``). Any other
        copy here (queued, offered, or held by another agent) is withdrawn: the adopter has it.
        """
        interaction = held.interaction
        iid = interaction.interaction_id
        agent_id = agent.agent_id
        effects: list[Effect] = []
        item = self.interactions.get(iid)
        peer = self.peer.get(iid)
        done_by = item.agent_id if item is not None and item.status == COMPLETED else (
            peer.agent_id if (item is None or item.status in ENDED) and peer is not None and peer.status == "completed"
            else None)
        if done_by is not None or (item is not None and item.status == COMPLETED):
            if done_by != agent_id:
                effects.append(Revoke(agent_id, iid, "taken_elsewhere", f"{iid} was completed by agent {done_by}"))
            return False, effects
        if item is not None and item.status == HELD and item.agent_id == agent_id:
            item.orphan_deadline = None  # the agent is back with it
            item.unconfirmed = False  # the agent has the customer: no accept claim can take it now
            item.token += 1
            item.notes = held.notes or item.notes
        else:
            if item is not None and item.status not in ENDED:
                self._drop_copy(item, now, effects, f"adopted by agent {agent_id}")
            elif item is not None:
                self._release(item)
            item = Tracked(interaction, HELD, arrived_ms=min(interaction.created_ms, now), agent_id=agent_id,
                           accepted_ms=min(held.accepted_ms, now), notes=held.notes)
            self.interactions[iid] = item
        self.peer.pop(iid, None)
        agent.held[iid] = None
        agent.version += 1
        effects.append(Report("adopted", interaction, agent_id))
        return True, effects

    # ------------------------------------------------------------------ the peer site

    def peer_record(self, iid: str, status: p.PeerRecordStatus, agent_id: str | None, queue: str, media: p.Media,
                    claim: p.PeerClaim, now: int, peer_wins_ties: bool = False,
                    site: str = "") -> tuple[bool, list[Effect]]:
        """The peer holds (``held``), completed or otherwise ended an interaction. Returns (agreed,
        effects). A local copy not yet in an agent's hands is withdrawn. ``claim="accept"`` is
        refused when an agent here already holds or completed it (the first taker keeps it); an
        adoption (``claim="adopt"``) always wins, since that agent has the customer. Two accepts
        that cross (each side's still unconfirmed) are settled the same way on both sides: the
        peer wins when ``peer_wins_ties`` (its name sorts first), else it is refused. So do two
        completions of one interaction (``claim="complete"`` for one completed here as well: its agent
        sent it to both sites): one reported here already wins, else the tie rule picks one."""
        effects: list[Effect] = []
        item = self.interactions.get(iid)
        if item is not None and status in ("held", "completed"):
            self._release(item)  # handed over to the peer: its agent has it now
        if item is not None and status == "held":
            if item.status == COMPLETED:
                return False, effects
            here = self.agents.get(agent_id) if agent_id else None
            if item.status == HELD and item.agent_id == agent_id and here is not None and iid in here.held:
                # The same agent, logged in here with it: it moved here after that claim was sent.
                return True, effects
            if item.status == HELD and item.agent_id != agent_id and claim != "adopt":
                if not (item.unconfirmed and peer_wins_ties and claim == "accept"):
                    return False, effects
        if item is not None and status == "completed" and claim == "complete" and item.status == COMPLETED:
            # This server completed it too: its agent sent the completion again here after losing
            # the link to the other one. One completion counts: one already reported, else (both
            # still wait for the other's answer) the one the tie rule picks on both sides.
            if item.reported or not peer_wins_ties:
                return False, effects
        known = self.peer.get(iid)
        if claim == "reported" and known is not None and known.status == "completed":
            known.reported = True
            return True, effects
        owed, lost = (known.owed, known.lost) if known is not None and status == "completed" else (None, False)
        self.peer[iid] = PeerRecord(status, agent_id, queue, media, reported=claim != "complete", owed=owed, lost=lost,
                                    site=site)
        self.peer.move_to_end(iid)
        while len(self.peer) > self.remember:
            self.peer.popitem(last=False)
        if item is not None and item.status not in ENDED and status in ("held", "completed"):
            self._drop_copy(item, now, effects, f"{status} at the peer site by agent {agent_id}")
            self._route(now, effects)
        return True, effects

    def peer_lost(self, now: int, site: str | None = None) -> None:
        """The peer site is gone (or unreachable). What its agents held is expected back here in
        their failover logins; what is not brought back within ``orphan_timeout_ms`` (the agent's
        desktop died too) ends ``abandoned`` here, so that it does not vanish. A peer that comes
        back and still holds it says so in its start-up sync, which cancels this."""
        deadline = now + self.orphan_timeout_ms
        for iid, record in self.peer.items():
            if site is not None and record.site not in (site, ""):
                continue  # held at another peer, still linked
            if record.status == "held" and record.orphan_deadline is None:
                record.orphan_deadline = deadline
                record.token = next(self._n)
                self._timer(deadline, "peer_orphan", iid, record.token)

    def report_owed(self, now: int, site: str | None = None) -> list[Effect]:
        """The peer cannot be reached any more (neither link is up): each completion it claimed and
        did not say it reported is marked lost (a re-sent one is reported here, even once the peer is
        linked again), and the ones its agent sent here again meanwhile are reported now."""
        effects: list[Effect] = []
        for iid, record in self.peer.items():
            if site is not None and record.site not in (site, ""):
                continue
            if record.status == "completed" and not record.reported:
                record.lost = True
            if record.status == "completed" and not record.reported and record.owed is not None:
                record.reported = True
                lost = p.Interaction(interaction_id=iid, media=record.media, queue=record.queue, created_ms=now)
                effects.append(Report("completed", lost, record.agent_id, disposition=record.owed,
                                      reason="completed at the peer site, which stopped before reporting it"))
        return effects

    def peer_records(
        self, completed_limit: int = 20_000
    ) -> list[tuple[str, p.PeerRecordStatus, str | None, str, p.Media, p.PeerClaim]]:
        """What to tell a (re)connected peer, as (id, status, agent, queue, media, claim): every
        interaction held here, the most recent completions here, and the most recent ends the peer
        itself once told us (a restarted peer has forgotten what it completed before it died, and
        must still refuse a re-submission of it). A completion not reported yet goes as a
        ``complete`` claim, so the peer reports a re-sent completion itself if we die first."""
        out: list[tuple[str, p.PeerRecordStatus, str | None, str, p.Media, p.PeerClaim]] = [
            (item.id, "held", item.agent_id, item.interaction.queue, item.interaction.media, "sync")
            for item in self.interactions.values() if item.status == HELD]
        seen: set[str] = set()
        for iid in reversed(self.ended):
            if len(seen) >= completed_limit:
                break
            item = self.interactions.get(iid)
            if item is not None and item.status == COMPLETED and iid not in seen:
                seen.add(iid)
                out.append((iid, "completed", item.agent_id, item.interaction.queue, item.interaction.media,
                            "sync" if item.reported else "complete"))
        told = 0
        for iid in reversed(self.peer):
            if told >= completed_limit:
                break
            record = self.peer[iid]
            mine = self.interactions.get(iid)
            if record.status in ("completed", "ended") and iid not in seen and (mine is None or mine.status != HELD):
                told += 1
                out.append((iid, record.status, record.agent_id, record.queue, record.media,
                            "sync" if record.reported else "complete"))
        return out

    # ------------------------------------------------------------------ time

    def tick(self, now: int) -> list[Effect]:
        """Fire the timers that are due: offer timeouts, abandonments, After Call Work ends, orphans."""
        effects: list[Effect] = []
        if now < self.hold_until:
            return effects
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, kind, key, token = heapq.heappop(timers)
            if kind == "acw":
                agent = self.agents.get(key)
                if agent is not None and agent.acw_until == token and agent.state == "after_call_work":
                    agent.state, agent.acw_until, agent.idle_since = "ready", None, now
                    effects.append(SetState(key, "ready", at_ms=now))
                    self._make_available(agent)
                continue
            if kind == "peer_orphan":
                record = self.peer.get(key)
                if (
                    record is not None
                    and record.orphan_deadline is not None
                    and record.token == token
                    and record.status == "held"
                ):
                    record.status = "ended"
                    lost = p.Interaction(interaction_id=key, media=record.media, queue=record.queue, created_ms=now)
                    effects.append(Report("abandoned", lost, record.agent_id, reason=(
                        f"held by agent {record.agent_id} at the lost peer site and not brought back")))
                continue
            item = self.interactions.get(key)
            if item is None or item.token != token:
                continue
            if kind == "offer" and item.status == OFFERED:
                self._offer_timed_out(item, now, effects)
            elif kind == "abandon" and item.status in (QUEUED, OFFERED):
                self._abandon(item, now, effects)
            elif kind == "orphan" and item.status == HELD and item.orphan_deadline is not None:
                item.status = ABANDONED
                self._ended(item)
                effects.append(Report("abandoned", item.interaction, item.agent_id,
                                      reason=f"agent {item.agent_id} left and did not bring it back"))
        self._route(now, effects)
        return effects

    def hold(self, until: int) -> None:
        """No offers and no timeouts before ``until`` (after a stall, until the peer is heard)."""
        self.hold_until = until

    def offer_reported(self, queue: str) -> None:
        """The caller published an offer's "offered" report: only now does it count as offered, in
        step with the event (an offer decided with a completion waits for the peer's answer before
        it is reported, and may be taken back meanwhile; statistics published in between must not
        count it). As ``confirm`` counts an answer."""
        q = self.queues.get(queue)
        if q is not None:
            q.offered += 1

    def statistics(self, now: int) -> list[p.QueueStatistics]:
        out = []
        for name, q in self.queues.items():
            oldest = min(
                (item.arrived_ms for token, item in q.waiting if item.token == token and item.status == QUEUED),
                default=None,
            )
            finished = q.answered + q.abandoned
            out.append(p.QueueStatistics(
                queue=name, waiting=q.waiting_count, longest_wait_ms=max(0, now - oldest) if oldest is not None else 0,
                offered=q.offered, answered=q.answered, abandoned=q.abandoned,
                service_level=round(q.answered_in_target / finished, 4) if finished else None,
                service_level_target_ms=q.config.service_level_target_ms))
        return out

    # ------------------------------------------------------------------ internals

    def _timer(self, when: int, kind: str, key: str, token: int) -> None:
        heapq.heappush(self._timers, (when, next(self._n), kind, key, token))

    def _offered_to(self, agent_id: str, iid: str) -> Tracked:
        item = self.interactions.get(iid)
        if item is None or item.status != OFFERED or item.agent_id != agent_id or agent_id not in self.agents:
            raise EngineRefusal("unknown_interaction", f"{iid} is not offered to {agent_id} here")
        return item

    def _held_by(self, agent_id: str, iid: str) -> Tracked:
        item = self.interactions.get(iid)
        if item is None or item.status != HELD or item.agent_id != agent_id or agent_id not in self.agents:
            raise EngineRefusal("unknown_interaction", f"{iid} is not in the hands of {agent_id} here")
        return item

    def _ended(self, item: Tracked) -> None:
        item.token += 1
        # Only the id, queue and media are needed from now on (duplicates, the peer's records), and
        # the agent's final notes: the customer's data a carrier sent goes, so an ended interaction
        # costs what its agent wrote and a few hundred bytes.
        i = item.interaction
        item.interaction = p.Interaction(interaction_id=i.interaction_id, media=i.media, queue=i.queue,
                                         created_ms=i.created_ms, transfers=i.transfers)
        self.live_bytes -= item.size
        item.size = 0
        self.ended.append(item.id)
        while len(self.ended) > self.remember:
            old = self.ended.popleft()
            if self.interactions.get(old) is not None and self.interactions[old].status in ENDED:
                del self.interactions[old]

    def _enqueue(self, item: Tracked, now: int, *, head: bool) -> None:
        q = self.queues[item.interaction.queue]
        item.status, item.agent_id, item.offered_ms, item.expires_ms = QUEUED, None, None, None
        item.token += 1
        (q.waiting.appendleft if head else q.waiting.append)((item.token, item))
        q.waiting_count += 1
        if q.config.abandon_after_ms:
            self._timer(max(now, item.arrived_ms + q.config.abandon_after_ms), "abandon", item.id, item.token)

    def _requeue(
        self, item: Tracked, now: int, effects: list[Effect], event: p.InteractionEventKind, agent_id: str,
        reason: str | None = None
    ) -> None:
        """An offer that was not taken: back to the head of its queue."""
        effects.append(Report(event, item.interaction, agent_id, reason=reason))
        self._enqueue(item, now, head=True)

    def _drop_copy(self, item: Tracked, now: int, effects: list[Effect], reason: str) -> None:
        """End this server's copy because the interaction is handled elsewhere."""
        if item.status == QUEUED:
            self.queues[item.interaction.queue].waiting_count -= 1
        holder = item.agent_id if item.status in (OFFERED, HELD) else None
        agent = self.agents.get(holder) if holder else None
        if agent is not None:
            if agent.offer == item.id:
                agent.offer = None
            if agent.held.pop(item.id, 0) is None:
                effects.append(HeldChanged(agent.agent_id))
            agent.version += 1
            self._make_available(agent)
            effects.append(Revoke(agent.agent_id, item.id, "taken_elsewhere", reason))
        item.status = WITHDRAWN
        self._ended(item)
        effects.append(Report("withdrawn", item.interaction, holder, reason=reason))

    def _offer_timed_out(self, item: Tracked, now: int, effects: list[Effect]) -> None:
        agent_id = item.agent_id
        assert agent_id is not None, "an offer names its agent"
        agent = self.agents.get(agent_id)
        q = self.queues[item.interaction.queue]
        effects.append(
            Revoke(agent_id, item.id, "timeout", f"not answered within {q.config.accept_timeout_ms / 1000:g} s")
        )
        self._requeue(item, now, effects, "offer_timeout", agent_id)
        if agent is None:
            return
        agent.offer = None
        agent.idle_since = now
        agent.timeouts_in_row += 1
        if agent.timeouts_in_row >= self.max_offer_timeouts and agent.state == "ready":
            agent.state, agent.timeouts_in_row = "not_ready", 0
            effects.append(SetState(agent_id, "not_ready", self.offer_timeout_reason, at_ms=now))
        self._make_available(agent)

    def _abandon(self, item: Tracked, now: int, effects: list[Effect]) -> None:
        q = self.queues[item.interaction.queue]
        if item.status == OFFERED:
            agent = self.agents.get(item.agent_id) if item.agent_id else None
            if agent is not None:
                agent.offer = None
                self._make_available(agent)
                effects.append(Revoke(agent.agent_id, item.id, "abandoned", "the customer hung up"))
        else:
            q.waiting_count -= 1
        q.abandoned += 1
        item.status = ABANDONED
        self._ended(item)
        effects.append(Report("abandoned", item.interaction, reason="the customer hung up while waiting"))

    def _make_available(self, agent: RoutedAgent) -> None:
        """Re-file the agent in its queues' pools (or, by bumping the version, take it out)."""
        agent.version += 1
        self.on_agent_change(agent.agent_id)
        if self.agents.get(agent.agent_id) is not agent or not agent.available:
            return
        entry = (agent.idle_since, next(self._n), agent.version, agent.agent_id)
        for queue, penalty in agent.penalties.items():
            heapq.heappush(self.queues[queue].pools.setdefault(penalty, []), entry)

    def _best_agent(self, q: QueueState) -> tuple[int, RoutedAgent] | None:
        """The best available member here: (penalty, agent)."""
        for penalty in sorted(q.pools):
            heap = q.pools[penalty]
            while heap:
                _, _, version, agent_id = heap[0]
                agent = self.agents.get(agent_id)
                if agent is not None and agent.version == version and agent.available:
                    return penalty, agent
                heapq.heappop(heap)
        return None

    def route(self, now: int) -> list[Effect]:
        """Offer (or hand over) what waits: the agent pool learned of a member available elsewhere."""
        effects: list[Effect] = []
        self._route(now, effects)
        return effects

    def _route(self, now: int, effects: list[Effect]) -> None:
        if now < self.hold_until:
            return
        busy = [q for q in self.queues.values() if q.waiting_count]
        # The queue whose head customer came first picks first (agents in several queues).
        def first_arrival(q: QueueState) -> int:
            head = self._head(q)
            return head.arrived_ms if head else now

        busy.sort(key=first_arrival)
        for q in busy:
            while q.waiting_count:
                best = self._best_agent(q)
                remote = None
                if self.remote is not None:
                    remote = self.remote(q.config.name, (best[0], best[1].idle_since) if best else None)
                if best is None and remote is None:
                    break
                head = self._head(q)
                if head is None:  # cannot happen while waiting_count is right; never spin on it
                    q.waiting_count = 0
                    break
                q.waiting.popleft()
                q.waiting_count -= 1
                if remote is not None:
                    self._hand_over(head, remote, effects)
                else:
                    assert best is not None
                    self._offer(q, head, best[1], now, effects)

    def _head(self, q: QueueState) -> Tracked | None:
        while q.waiting:
            token, item = q.waiting[0]
            if item.token == token and item.status == QUEUED:
                return item
            q.waiting.popleft()
        return None

    def _hand_over(self, item: Tracked, remote: Remote, effects: list[Effect]) -> None:
        item.status, item.agent_id, item.moved_to = MOVING, remote.agent_id, remote.site
        item.moves += 1
        item.token += 1
        effects.append(HandOver(remote.site, remote.agent_id, remote.epoch, item.interaction, item.moves,
                                item.arrived_ms))

    # ------------------------------------------------------------------ hand-over between sites

    def handed_over(self, iid: str, moves: int, accepted: bool, now: int, reason: str | None = None,
                    offered_to: str | None = None) -> list[Effect]:
        """The answer to our ``HandOver`` of ``iid`` (attempt ``moves``). Accepted: the other site
        has it (kept in custody until an agent there holds it); ``offered_to``: the agent there it
        was offered to instead of the one named (a member of its queue at no higher penalty);
        refused: back to the head of its queue and routed again. An answer to an attempt that is
        no longer the current one is ignored."""
        item = self.interactions.get(iid)
        effects: list[Effect] = []
        if item is None or item.status != MOVING or item.moves != moves:
            return effects
        if accepted:
            item.status, item.custody = MOVED, True
            item.agent_id = offered_to or item.agent_id
            item.token += 1
            effects.append(Report("withdrawn", item.interaction, None,
                                  reason=f"handed over to agent {item.agent_id} at site {item.moved_to}"))
            return effects
        self._enqueue(item, now, head=True)
        self._route(now, effects)
        return effects

    def take_over(self, interaction: p.Interaction, agent_id: str, moves: int, arrived_ms: int,
                  now: int, *, sender: str, here: bool = True, wins_cross: bool = False,
                  penalty: int | None = None) -> tuple[bool, str | None, list[Effect]]:
        """Another site (``sender``) hands ``interaction`` over for ``agent_id`` here. Returns
        (accepted, reason, effects): taken and offered to that agent at once when it is available
        here. When it is not (busy, offer pending, not Ready, not logged in here at that epoch),
        the best available member of the interaction's queue here (lowest penalty, longest idle)
        takes its place if its penalty is no higher than ``penalty`` (the named agent's penalty for
        that queue under the rules both sites share; None: no stand-in), so the sender's penalty
        order holds and two sites that chose one agent at once do not bounce (docs/multisite.md);
        never for a transfer to an agent by name. A copy here already (live, or ended here) wins:
        accepted, the sender drops its copy. A repeat of a refused attempt is refused again, so
        duplicates are harmless. Our copy handed to ``sender`` comes back with a later attempt. Two
        sites handing the same id to each other at once (a carrier submitted it to both): the one
        with ``wins_cross`` keeps it."""
        iid = interaction.interaction_id
        effects: list[Effect] = []
        item = self.interactions.get(iid)
        if item is not None:
            back = item.status == MOVED and item.custody and item.moved_to == sender and moves > item.moves
            # A transferred interaction may come back to a site where it ended (handed on, or withdrawn
            # because an agent elsewhere took it): a longer transfer history is a newer life of it.
            back = back or (item.status in (MOVED, WITHDRAWN) and not item.custody
                            and len(interaction.transfers) > len(item.interaction.transfers))
            if item.status == MOVING and item.moved_to == sender and not wins_cross:
                self._refused(iid, moves)
                return False, f"{iid} is being handed to {sender} by this site too; {sender} keeps it", effects
            if not back:
                item.moves = max(item.moves, moves)  # later attempts, from wherever, are numbered above
                return True, None, effects  # here already (or it ended here): the sender drops its copy
        if self.refused_moves.get(iid, 0) >= moves:
            return False, "refused before", effects
        peer = self.peer.get(iid)
        if peer is not None and peer.status in ("completed", "ended"):
            return True, None, effects  # it ended at the peer: nothing to offer
        agent = self.agents.get(agent_id) if here else None
        q = self.queues.get(interaction.queue)
        why = (f"no queue {interaction.queue!r} here" if q is None else
               f"agent {agent_id} is not logged in here at that epoch" if agent is None else
               "this site is holding offers" if now < self.hold_until else
               f"agent {agent_id} is not available" if not agent.available or (
                   interaction.queue not in agent.penalties and not _transferred_to(interaction, agent_id))
               else None)
        if why is not None and q is not None and now >= self.hold_until:
            agent = self._stand_in(q, interaction, penalty)
            why = why if agent is None else None
        if why is not None:
            self._refused(iid, moves)
            return False, why, effects
        assert q is not None and agent is not None
        if item is not None:  # it comes back: our custody copy is replaced
            self._release(item)
        size = len(msgspec.json.encode(interaction))
        item = Tracked(interaction, QUEUED, arrived_ms=min(arrived_ms, now), size=size, moves=moves,
                       notes=interaction.notes)  # a transferred interaction keeps its notes
        self.live_bytes += size
        self.interactions[iid] = item
        effects.append(Report("queued", interaction, reason="handed over by another site"))
        self._offer(q, item, agent, now, effects)
        return True, None, effects

    def _stand_in(self, q: QueueState, interaction: p.Interaction, penalty: int | None) -> RoutedAgent | None:
        """The member here that takes a hand-over its named agent cannot: the best available member
        of ``q`` (lowest penalty, longest idle), if its penalty is no higher than ``penalty``."""
        if penalty is None or (interaction.transfers and interaction.transfers[-1].to_agent is not None):
            return None  # no bound known, or a transfer to that agent by name
        best = self._best_agent(q)
        return best[1] if best is not None and best[0] <= penalty else None

    def _refused(self, iid: str, moves: int) -> None:
        self.refused_moves[iid] = max(moves, self.refused_moves.get(iid, 0))
        self.refused_moves.move_to_end(iid)
        while len(self.refused_moves) > self.remember:
            self.refused_moves.popitem(last=False)

    def _release(self, item: Tracked) -> None:
        """Custody of a moved interaction ends: an agent at the other site has it, or it ended there."""
        if item.status == MOVED and item.custody:
            item.custody = False
            self._ended(item)

    def reclaim(self, site: str, now: int, unanswered: bool = True) -> list[Effect]:
        """``site`` was lost (or restarted) holding interactions we handed to it that no agent there
        had taken yet, or (``unanswered``) that it never answered for: they wait here again (at the
        head of their queues). A restarted site is asked again what it never answered (the repeat
        is on its way on the new link, and its answer counts), so only its custody comes back."""
        effects: list[Effect] = []
        for item in list(self.interactions.values()):
            in_custody = item.status == MOVED and item.custody
            if (in_custody or (unanswered and item.status == MOVING)) and item.moved_to == site:
                item.custody = False
                item.moves += 1
                effects.append(Report("queued", item.interaction, reason=f"taken back from site {site}"))
                self._enqueue(item, now, head=True)
        self._route(now, effects)
        return effects

    def moving_to(self, site: str) -> list[Tracked]:
        """What waits for ``site``'s answer to a hand-over (sent again when the link is back)."""
        return [item for item in self.interactions.values() if item.status == MOVING and item.moved_to == site]

    def _offer(self, q: QueueState, item: Tracked, agent: RoutedAgent, now: int, effects: list[Effect]) -> None:
        agent.offer = item.id
        agent.version += 1
        self.on_agent_change(agent.agent_id)
        item.status, item.agent_id, item.offered_ms = OFFERED, agent.agent_id, now
        item.expires_ms = now + q.config.accept_timeout_ms
        item.token += 1
        self._timer(item.expires_ms, "offer", item.id, item.token)
        if q.config.abandon_after_ms:
            self._timer(max(now, item.arrived_ms + q.config.abandon_after_ms), "abandon", item.id, item.token)
        effects.append(Offer(agent.agent_id, item.interaction, now, item.expires_ms))
        effects.append(Report("offered", item.interaction, agent.agent_id))


def _transferred_to(interaction: p.Interaction, agent_id: str) -> bool:
    """Is ``interaction`` being transferred to ``agent_id`` by name (who need not be in its queue)?"""
    return bool(interaction.transfers) and interaction.transfers[-1].to_agent == agent_id
