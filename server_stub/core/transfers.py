"""Hold, resume and transfers of interactions in hand, without sockets or clocks.

Works on the routing engine's interactions and agents (routing.py) and returns the same kind of
effects, plus two of its own: ``ConsultOffer`` (an ``EventInvite`` with ``consult_from``) and
``TransferNote`` (an ``EventTransfer``). The rules (docs/protocol.md, "Hold and transfers"):

- **Hold** (voice only): the interaction stays in the agent's hands, ``hold_since`` set; reported
  ``on_hold`` and ``resumed``; carried across a failover in ``HeldInteraction.hold_since_ms``.
- **Blind** transfer: the interaction leaves the agent at once, keeping its id, customer data and
  notes (``Interaction.notes``), with one more ``TransferStep``. To a queue: at the *head* of that
  queue (before every interaction waiting for its first offer), with a new wait clock. To an agent:
  offered to that agent at once, here or, through the agent pool's hand-over, at the site where the
  agent is logged in; the agent must be available now (``target_unavailable`` otherwise, and the
  interaction stays). A refusal or timeout sends it to the head of its queue.
- **Consultative** transfer (to an agent wherever it is logged in, or to the best available member
  of a queue: here first, else at another site as the agent pool knows it): the interaction stays
  in the first agent's hands; the target is offered it (``consult_from``) with the notes and
  history, and offered nothing else meanwhile. A refusal or timeout ends the consultation (the
  first agent is told); the first agent completes the hand-over once the consulted agent accepted,
  or cancels at any time. Across sites each side keeps a
  ``Consult`` ("asker" or "consulted") and they tell each other its steps (``ToPeer``:
  PeerConsult, PeerConsultUpdate); on completion the first site keeps the interaction in custody
  (``MOVED``) until the consulted site's "adopt" claim arrives, and takes it back if that site is
  lost first. A consultation is not replicated: it ends "lost" with either site.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, replace
from typing import Literal

import msgspec

from .. import protocol as p
from .routing import (
    ENDED,
    HELD,
    MOVED,
    QUEUED,
    WITHDRAWN,
    Effect,
    EngineRefusal,
    HeldChanged,
    PeerRecord,
    Remote,
    Report,
    Revoke,
    RoutingEngine,
    Tracked,
)


@dataclass(frozen=True)
class ConsultOffer:
    """Offer ``interaction`` to ``agent_id`` for a consultation asked by ``from_agent``."""

    agent_id: str
    interaction: p.Interaction
    offered_ms: int
    expires_ms: int
    from_agent: str


@dataclass(frozen=True)
class TransferNote:
    """Tell ``agent_id`` where a transfer stands (EventTransfer)."""

    agent_id: str
    interaction_id: str
    kind: p.TransferKind
    status: p.TransferStatus
    at_ms: int
    from_agent: str | None = None
    to_agent: str | None = None
    to_queue: str | None = None
    message: str = ""
    notes: str | None = None


@dataclass(frozen=True)
class ToPeer:
    """Tell ``site`` (a cross-site consultation: PeerConsult, PeerConsultUpdate)."""

    site: str
    message: p.Message


TransferEffect = ConsultOffer | TransferNote | ToPeer


@dataclass(eq=False)
class Consult:
    """One consultation. ``side``: "local" (both agents here), "asker" (the first agent here, the
    consulted one at ``peer``), "consulted" (the consulted agent here, the first one at ``peer``)."""

    interaction_id: str
    from_agent: str
    to_agent: str
    to_queue: str | None
    expires_ms: int
    accepted: bool = False
    peer: str | None = None
    side: Literal["local", "asker", "consulted"] = "local"
    interaction: p.Interaction | None = None  # "consulted": the interaction as offered


MAX_STEPS = 32  # Interaction.transfers holds at most this many: the oldest go first
# The first agent's site waits this long past a cross-site consultation's offer timeout for the
# consulted site's answer before it gives the consultation up itself.
ANSWER_GRACE_MS = 2_000


class Transfers:
    def __init__(self, engine: RoutingEngine, site: str) -> None:
        self.engine = engine
        self.site = site
        self.consults: dict[str, Consult] = {}  # interaction id -> its consultation
        self._timers: list[tuple[int, int, str, Consult]] = []
        self._n = itertools.count()

    # ------------------------------------------------------------------ hold

    def hold(self, agent_id: str, iid: str, now: int) -> tuple[int, list[Effect | TransferEffect]]:
        """Put a voice interaction in hand on hold; returns (since, effects). A repeat keeps its time."""
        item = self._held(agent_id, iid)
        if item.interaction.media != "voice":
            raise EngineRefusal("invalid_state", f"{iid} is a {item.interaction.media}: only calls are put on hold")
        if item.hold_since is not None:
            return item.hold_since, []
        item.hold_since = now
        return now, [Report("on_hold", item.interaction, agent_id)]

    def resume(self, agent_id: str, iid: str) -> list[Effect | TransferEffect]:
        item = self._held(agent_id, iid)
        if item.hold_since is None:
            return []
        item.hold_since = None
        return [Report("resumed", item.interaction, agent_id)]

    def restore_holds(self, agent_id: str, held: list[p.HeldInteraction], adopted: list[str]) -> list[Effect]:
        """A failover login brought interactions on hold: they stay on hold, from the same time
        (reported ``on_hold`` again here, after their ``adopted``)."""
        effects: list[Effect] = []
        for h in held:
            iid = h.interaction.interaction_id
            item = self.engine.interactions.get(iid)
            if iid in adopted and item is not None and item.status == HELD and item.agent_id == agent_id:
                item.hold_since = h.hold_since_ms
                if h.hold_since_ms is not None:
                    effects.append(Report("on_hold", item.interaction, agent_id))
        return effects

    # ------------------------------------------------------------------ transfers

    def transfer(self, agent_id: str, iid: str, kind: p.TransferKind, to_agent: str | None, to_queue: str | None,
                 notes: str | None, now: int, remote: Remote | None = None) -> list[Effect | TransferEffect]:
        """Start a transfer (``remote``: the target agent's place in the pool, when it is logged in
        at another site and available there). Raises EngineRefusal with the protocol code."""
        engine = self.engine
        item = self._held(agent_id, iid)
        if (to_agent is None) == (to_queue is None):
            raise EngineRefusal("bad_message", "RequestTransfer needs exactly one of to_agent and to_queue")
        if iid in self.consults:
            raise EngineRefusal("invalid_state", f"{iid} is already being transferred; complete or cancel that first")
        if to_agent == agent_id:
            raise EngineRefusal("invalid_state", "an agent cannot transfer an interaction to itself")
        if to_queue is not None and to_queue not in engine.queues:
            raise EngineRefusal("unknown_queue", f"no queue {to_queue!r} here; queues: {sorted(engine.queues)}")
        if notes is not None:
            item.notes = notes
        if kind == "consult":
            return self._consult(item, agent_id, to_agent, to_queue, now, remote)
        return self._blind(item, agent_id, to_agent, to_queue, now, remote)

    def _blind(self, item: Tracked, agent_id: str, to_agent: str | None, to_queue: str | None, now: int,
               remote: Remote | None) -> list[Effect | TransferEffect]:
        engine = self.engine
        target = engine.agents.get(to_agent) if to_agent is not None else None
        if to_agent is not None and remote is None and (target is None or not target.available):
            why = "is not available now" if target is not None else "is not logged in here or at a linked site"
            raise EngineRefusal("target_unavailable", f"agent {to_agent} {why}; try a queue, or later")
        effects: list[Effect | TransferEffect] = []
        self._leave(item, agent_id, "blind", to_agent, to_queue, now, effects, free=False)
        routed: list[Effect] = []
        if to_queue is not None:
            item.interaction = msgspec.structs.replace(item.interaction, queue=to_queue)
            item.arrived_ms = now  # a new wait, in the new queue
            engine._enqueue(item, now, head=True)
            engine._route(now, routed)
        elif remote is not None:
            engine._hand_over(item, remote, routed)
        else:
            assert target is not None
            engine._offer(engine.queues[item.interaction.queue], item, target, now, routed)
        # Only now may the agent who transferred it be offered work: another free member comes first.
        engine._make_available(engine.agents[agent_id])
        engine._route(now, routed)
        return [*effects, *routed]

    def _leave(self, item: Tracked, agent_id: str, kind: p.TransferKind, to_agent: str | None, to_queue: str | None,
               now: int, effects: list[Effect | TransferEffect], free: bool = True) -> None:
        """The interaction leaves its agent's hands, its history one step longer (``free``: the
        agent is offerable at once)."""
        engine = self.engine
        agent = engine.agents[agent_id]
        del agent.held[item.id]
        agent.idle_since = now
        agent.version += 1
        if free:
            engine._make_available(agent)
        item.interaction = self._stepped(item, agent_id, kind, to_agent, to_queue, now)
        item.hold_since, item.accepted_ms, item.unconfirmed = None, None, False
        item.answered = False  # its next taker answers it again, in the queue it is in (its figures)
        item.token += 1
        where = f"agent {to_agent}" if to_agent is not None else f"queue {to_queue}"
        effects.append(Report("transferred", item.interaction, agent_id, reason=f"{kind} transfer to {where}"))
        effects.append(HeldChanged(agent_id))

    def _stepped(self, item: Tracked, agent_id: str, kind: p.TransferKind, to_agent: str | None,
                 to_queue: str | None, now: int) -> p.Interaction:
        step = p.TransferStep(kind=kind, from_agent=agent_id, at_ms=now, to_agent=to_agent, to_queue=to_queue,
                              site=self.site)
        steps = [*item.interaction.transfers, step][-MAX_STEPS:]
        return msgspec.structs.replace(item.interaction, notes=item.notes, transfers=steps)

    def _consult(self, item: Tracked, agent_id: str, to_agent: str | None, to_queue: str | None,
                 now: int, remote: Remote | None) -> list[Effect | TransferEffect]:
        engine = self.engine
        timeout = engine.queues[item.interaction.queue].config.accept_timeout_ms
        best = engine._best_agent(engine.queues[to_queue]) if to_queue is not None else None
        if remote is not None and best is None:  # the agent is at another site: it offers it there (PeerConsult)
            consult = Consult(item.id, agent_id, remote.agent_id, to_queue, now + timeout, peer=remote.site,
                              side="asker")
            self._start(consult, now + timeout + ANSWER_GRACE_MS)
            shown = self._stepped(item, agent_id, "consult", remote.agent_id, to_queue, now)
            return [ToPeer(remote.site, p.PeerConsult(server=self.site, interaction=shown, from_agent=agent_id,
                                                      to_agent=remote.agent_id, epoch=remote.epoch,
                                                      expires_ms=consult.expires_ms, to_queue=to_queue)),
                    Report("consult_offered", item.interaction, remote.agent_id,
                           reason=f"asked by agent {agent_id}, at site {remote.site}"),
                    self._note(consult, agent_id, "offered", now)]
        if to_queue is not None:
            if best is None:
                raise EngineRefusal("target_unavailable", f"no member of queue {to_queue!r} is available now")
            target = best[1]
        else:
            assert to_agent is not None
            found = engine.agents.get(to_agent)
            if found is None:
                raise EngineRefusal("target_unavailable", f"agent {to_agent} is not logged in here or at a linked "
                                                          f"site")
            if not found.available:
                raise EngineRefusal("target_unavailable", f"agent {to_agent} is not available now")
            target = found
        consult = Consult(item.id, agent_id, target.agent_id, to_queue, now + timeout)
        self._start(consult, consult.expires_ms)
        target.consulting = item.id
        engine._make_available(target)
        shown = self._stepped(item, agent_id, "consult", target.agent_id, to_queue, now)
        return [ConsultOffer(target.agent_id, shown, now, consult.expires_ms, agent_id),
                Report("consult_offered", item.interaction, target.agent_id, reason=f"asked by agent {agent_id}"),
                self._note(consult, agent_id, "offered", now)]

    def _start(self, consult: Consult, timer_ms: int) -> None:
        self.consults[consult.interaction_id] = consult
        heapq.heappush(self._timers, (timer_ms, next(self._n), consult.interaction_id, consult))

    def visit(self, msg: p.PeerConsult, here: bool, now: int) -> list[Effect | TransferEffect]:
        """Site ``msg.server`` asks our agent ``msg.to_agent`` (logged in here at that epoch when
        ``here``) to consult on an interaction its agent holds."""
        iid = msg.interaction.interaction_id
        target = self.engine.agents.get(msg.to_agent) if here else None
        known = self.consults.get(iid)
        if known is not None and known.side == "consulted" and known.peer == msg.server:
            return []  # a repeat
        why = ("not logged in here at that epoch" if target is None else
               "not available now" if not target.available or known is not None else None)
        if why is not None or target is None:
            return [ToPeer(msg.server, p.PeerConsultUpdate(server=self.site, interaction_id=iid, status="refused",
                                                           message=f"agent {msg.to_agent} is {why}"))]
        consult = Consult(iid, msg.from_agent, msg.to_agent, msg.to_queue, msg.expires_ms, peer=msg.server,
                          side="consulted", interaction=msg.interaction)
        self._start(consult, consult.expires_ms)
        target.consulting = iid
        self.engine._make_available(target)
        return [ConsultOffer(target.agent_id, msg.interaction, now, consult.expires_ms, msg.from_agent),
                Report("consult_offered", msg.interaction, target.agent_id,
                       reason=f"asked by agent {msg.from_agent}, at site {msg.server}")]

    def peer_update(self, msg: p.PeerConsultUpdate, now: int) -> tuple[Tracked | None, list[Effect | TransferEffect]]:
        """The other side of a cross-site consultation moved on. Returns (the interaction now held
        here by the consulted agent, when the first agent completed the transfer; effects)."""
        consult = self.consults.get(msg.interaction_id)
        if consult is None or consult.peer != msg.server:
            return None, []
        if consult.side == "asker":
            if msg.status == "accepted":
                if consult.accepted:
                    return None, []
                consult.accepted = True
                return None, [self._note(consult, consult.from_agent, "accepted", now)]
            if msg.status in ("refused", "timeout", "lost"):
                return None, self._end(consult, msg.status, now, msg.message, tell=False)
            return None, []
        if msg.status == "completed":
            return self._take(consult, msg.interaction or consult.interaction, now)
        if msg.status in ("cancelled", "lost"):
            return None, self._end(consult, msg.status, now, msg.message, tell=False)
        return None, []

    def _take(self, consult: Consult, interaction: p.Interaction | None,
              now: int) -> tuple[Tracked | None, list[Effect | TransferEffect]]:
        """The first agent, at another site, handed the interaction over: our agent holds it now."""
        engine = self.engine
        target = engine.agents.get(consult.to_agent)
        del self.consults[consult.interaction_id]
        if target is None or interaction is None:  # cannot happen: its logout ended the consultation
            return None, []
        iid = consult.interaction_id
        dropped: list[Effect] = []
        item = engine.interactions.get(iid)
        if item is not None and item.status not in ENDED:  # a stray copy here (a re-submission): ours now
            engine._drop_copy(item, now, dropped, f"transferred to agent {target.agent_id}")
        elif item is not None:
            engine._release(item)
        size = len(msgspec.json.encode(interaction))
        item = Tracked(interaction, HELD, arrived_ms=min(interaction.created_ms, now), agent_id=target.agent_id,
                       accepted_ms=now, notes=interaction.notes, size=size)
        engine.live_bytes += size
        engine.interactions[iid] = item
        engine.confirm(iid)  # reported "accepted": counted answered, like every accept
        engine.peer.pop(iid, None)
        target.consulting = None
        target.held[iid] = None
        target.version += 1
        effects: list[Effect | TransferEffect] = [*dropped, Report("accepted", interaction, target.agent_id,
                           reason=f"transferred by agent {consult.from_agent} at site {consult.peer}"),
                    HeldChanged(target.agent_id),
                    replace(self._note(consult, target.agent_id, "completed", now), notes=interaction.notes)]
        return item, effects

    def consult_for(self, agent_id: str, iid: str) -> Consult | None:
        """The consultation of ``iid`` offered here to (or accepted by) ``agent_id``, if any."""
        consult = self.consults.get(iid)
        return consult if consult is not None and consult.to_agent == agent_id and consult.side != "asker" else None

    def answer(self, consult: Consult, accepted: bool, now: int) -> list[Effect | TransferEffect]:
        """The consulted agent accepts (a repeat changes nothing) or refuses."""
        if accepted:
            if consult.accepted:
                return []
            consult.accepted = True
            if consult.side == "consulted":
                assert consult.peer is not None
                return [ToPeer(consult.peer, p.PeerConsultUpdate(
                    server=self.site, interaction_id=consult.interaction_id, status="accepted"))]
            return [self._note(consult, consult.from_agent, "accepted", now)]
        return self._end(consult, "refused", now, f"agent {consult.to_agent} declined")

    def complete(self, agent_id: str, iid: str, now: int) -> list[Effect | TransferEffect]:
        """The first agent hands the consulted interaction over: the consulted agent holds it now
        (at another site: this site keeps it in custody until that site says it holds it)."""
        item = self._held(agent_id, iid)
        consult = self.consults.get(iid)
        if consult is None or consult.from_agent != agent_id or consult.side == "consulted":
            raise EngineRefusal("invalid_state", f"{iid} is not being transferred by consultation")
        if not consult.accepted:
            raise EngineRefusal("invalid_state", f"agent {consult.to_agent} has not accepted the consultation yet")
        engine = self.engine
        effects: list[Effect | TransferEffect] = []
        if consult.side == "asker":
            assert consult.peer is not None
            del self.consults[iid]
            self._leave(item, agent_id, "consult", consult.to_agent, consult.to_queue, now, effects)
            item.status, item.agent_id, item.moved_to, item.custody = MOVED, consult.to_agent, consult.peer, True
            item.moves += 1
            return [*effects, ToPeer(consult.peer, p.PeerConsultUpdate(
                server=self.site, interaction_id=iid, status="completed", interaction=item.interaction)),
                self._note(consult, agent_id, "completed", now)]
        target = engine.agents.get(consult.to_agent)
        if target is None:  # cannot happen: its logout ends the consultation
            raise EngineRefusal("target_unavailable", f"agent {consult.to_agent} is gone")
        del self.consults[iid]
        self._leave(item, agent_id, "consult", consult.to_agent, consult.to_queue, now, effects)
        target.consulting = None
        target.held[iid] = None
        target.version += 1
        item.agent_id, item.accepted_ms, item.status = target.agent_id, now, HELD
        # Counted answered (engine.confirm) by the caller when it publishes the "accepted" below: it
        # waits for the peers to know the new holder, and statistics published meanwhile must not
        # count it yet.
        effects.append(Report("accepted", item.interaction, target.agent_id, reason=f"transferred by agent {agent_id}"))
        effects.append(HeldChanged(target.agent_id))
        effects.append(self._note(consult, agent_id, "completed", now))
        effects.append(replace(self._note(consult, target.agent_id, "completed", now), notes=item.notes))
        return effects

    def cancel(self, agent_id: str, iid: str, now: int) -> list[Effect | TransferEffect]:
        """The first agent takes the interaction back; cancelling what is not (any more) in
        consultation is a harmless repeat."""
        self._held(agent_id, iid)
        consult = self.consults.get(iid)
        if consult is None or consult.from_agent != agent_id or consult.side == "consulted":
            return []
        return self._end(consult, "cancelled", now, f"agent {agent_id} took it back")

    def agent_gone(self, agent_id: str, now: int) -> list[Effect | TransferEffect]:
        """An agent's login here ended: its consultations (asked or offered) end ("lost")."""
        effects: list[Effect | TransferEffect] = []
        for consult in list(self.consults.values()):
            mine = (consult.side != "consulted" and consult.from_agent == agent_id) or \
                (consult.side != "asker" and consult.to_agent == agent_id)
            if mine:
                effects += self._end(consult, "lost", now, f"agent {agent_id} logged out")
        return effects

    def site_lost(self, site: str, now: int) -> list[Effect | TransferEffect]:
        """No link to ``site`` any more: consultations with its agents end ("lost")."""
        effects: list[Effect | TransferEffect] = []
        for consult in [c for c in self.consults.values() if c.peer == site]:
            effects += self._end(consult, "lost", now, f"site {site} cannot be reached", tell=False)
        return effects

    def tick(self, now: int) -> list[Effect | TransferEffect]:
        effects: list[Effect | TransferEffect] = []
        while self._timers and self._timers[0][0] <= now:
            _, _, iid, consult = heapq.heappop(self._timers)
            if self.consults.get(iid) is consult and not consult.accepted:
                effects += self._end(consult, "timeout", now, f"not answered by agent {consult.to_agent} in time")
        # A consultation whose interaction left its first agent by other means ends with it.
        for iid, consult in list(self.consults.items()):
            item = self.engine.interactions.get(iid)
            if consult.side != "consulted" and (item is None or item.status != HELD
                                                or item.agent_id != consult.from_agent):
                effects += self._end(consult, "lost", now, "the interaction ended")
        return effects

    def _end(self, consult: Consult, status: p.TransferStatus, now: int, message: str,
             tell: bool = True) -> list[Effect | TransferEffect]:
        """The consultation ends without a hand-over: each agent here told, the other site too
        (``tell``) when it is a cross-site one."""
        self.consults.pop(consult.interaction_id, None)
        effects: list[Effect | TransferEffect] = []
        target = self.engine.agents.get(consult.to_agent) if consult.side != "asker" else None
        if target is not None and target.consulting == consult.interaction_id:
            target.consulting = None
            if status in ("refused", "timeout"):
                target.idle_since = now  # to the back of the idle order, as after a reject
            self.engine._make_available(target)
            reason: p.RevokeReason = "timeout" if status == "timeout" else "withdrawn"
            if status != "refused":
                effects.append(Revoke(target.agent_id, consult.interaction_id, reason, message))
            effects.append(self._note(consult, target.agent_id, status, now, message))
        item = self.engine.interactions.get(consult.interaction_id)
        interaction = consult.interaction or (item.interaction if item is not None else None)
        if interaction is not None:
            effects.append(Report("consult_ended", interaction, consult.to_agent, reason=status))
        if consult.side != "consulted":
            effects.append(self._note(consult, consult.from_agent, status, now, message))
        if tell and consult.peer is not None:
            effects.append(ToPeer(consult.peer, p.PeerConsultUpdate(
                server=self.site, interaction_id=consult.interaction_id, status=status, message=message[:256])))
        routed: list[Effect] = []
        self.engine._route(now, routed)
        return [*effects, *routed]

    def _note(self, consult: Consult, agent_id: str, status: p.TransferStatus, now: int,
              message: str = "") -> TransferNote:
        return TransferNote(agent_id, consult.interaction_id, "consult", status, now, consult.from_agent,
                            consult.to_agent, consult.to_queue, message)

    def _held(self, agent_id: str, iid: str) -> Tracked:
        item = self.engine.interactions.get(iid)
        if item is None or item.status != HELD or item.agent_id != agent_id or agent_id not in self.engine.agents:
            raise EngineRefusal("unknown_interaction", f"{iid} is not in the hands of {agent_id} here")
        return item

    # ------------------------------------------------------------------ the peer's transferred interactions

    def requeue_lost(self, site: str, now: int) -> list[Effect]:
        """``site`` is unreachable with transferred interactions waiting there (told as "queued"
        records): they wait here now, at the head of their queues, whole. One known here already
        (handed here, or re-submitted meanwhile) is left as it is."""
        engine = self.engine
        effects: list[Effect] = []
        for iid, record in list(engine.peer.items()):
            if record.status != "queued" or record.site not in (site, "") or record.interaction is None:
                continue
            del engine.peer[iid]
            interaction = record.interaction
            mine = engine.interactions.get(iid)
            gone = mine is not None and mine.status in (MOVED, WITHDRAWN) and not mine.custody  # handled elsewhere
            if (mine is not None and not gone) or interaction.queue not in engine.queues:
                continue
            size = len(msgspec.json.encode(interaction))
            item = Tracked(interaction, QUEUED, arrived_ms=now, size=size, notes=interaction.notes)
            engine.live_bytes += size
            engine.interactions[iid] = item
            effects.append(Report("queued", interaction, reason=f"transferred at site {site}, which was lost"))
            engine._enqueue(item, now, head=True)
        engine._route(now, effects)
        return effects

    def peer_queued(self, row: p.PeerInteractionRecord, site: str) -> None:
        """``site`` tells of a transferred interaction waiting there (status "queued")."""
        engine = self.engine
        item = engine.interactions.get(row.interaction_id)
        if row.interaction is None or (item is not None and item.status not in ENDED):
            return  # a live copy here (handed here, re-submitted): the accept claims settle who takes it
        engine.peer[row.interaction_id] = PeerRecord("queued", None, row.queue, row.media, site=site,
                                                     interaction=row.interaction)
        engine.peer.move_to_end(row.interaction_id)
        while len(engine.peer) > engine.remember:
            engine.peer.popitem(last=False)

    def waiting_rows(self) -> list[p.PeerInteractionRecord]:
        """Transferred interactions waiting here, for a (re)connected peer's sync."""
        return [queued_row(item) for item in self.engine.interactions.values()
                if item.status == QUEUED and item.interaction.transfers]


def queued_row(item: Tracked) -> p.PeerInteractionRecord:
    i = item.interaction
    return p.PeerInteractionRecord(interaction_id=i.interaction_id, status="queued", queue=i.queue, media=i.media,
                                   claim="transfer", interaction=i)
