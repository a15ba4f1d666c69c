"""Two routing engines joined by an in-memory peer link (in order, with random delays), under
random submissions, re-submissions to both sites, accepts that cross, completions and agents
moving between sites with what they hold: once the link is drained, no interaction is in the hands
of agents at both sites, and none is completed at both. This is the server's claim protocol
(docs/protocol.md, "Exactly once across failover") without sockets."""

from __future__ import annotations

import collections
import os
import random

from server_stub import protocol as p
from server_stub.config import QueueConfig
from server_stub.core.routing import HELD, EngineRefusal, Report, RoutingEngine

AGENTS = [f"g{i}" for i in range(6)]


class Site:
    def __init__(self, name: str):
        self.name = name
        self.engine = RoutingEngine([QueueConfig("q", accept_timeout_ms=4000)], orphan_timeout_ms=10**9)
        self.inbox: collections.deque = collections.deque()  # peer messages from the other site, in order
        self.pending_accepts: dict[int, tuple[str, str]] = {}  # ack id -> (agent, interaction)


def test_claims_keep_one_holder_and_one_completion_across_two_sites():
    seeds = int(os.environ.get("PAIR_SEEDS", "40"))  # more: PAIR_SEEDS=2000
    for seed in range(seeds):
        run_pair(seed)


def run_pair(seed: int) -> None:
    rng = random.Random(seed)
    a, b = Site("A"), Site("B")
    other = {a: b, b: a}
    where: dict[str, Site] = {}  # agent -> the site it is logged in at
    completions: collections.Counter = collections.Counter()
    ack_ids = iter(range(1, 10**9))
    now = 1_000_000

    def count(effects):
        for effect in effects:
            if isinstance(effect, Report) and effect.event == "completed":
                completions[effect.interaction.interaction_id] += 1

    def send(site: Site, kind: str, **fields) -> None:
        other[site].inbox.append((kind, fields))

    def deliver(site: Site) -> None:
        kind, f = site.inbox.popleft()
        sender = other[site]
        if kind == "claim":
            agreed, effects = site.engine.peer_record(f["iid"], f["status"], f["agent"], "q", "voice", f["claim"], now,
                                                      peer_wins_ties=sender.name < site.name)
            count(effects)
            if f.get("ack") is not None:
                send(site, "ack", ack=f["ack"], refused=not agreed)
        elif kind == "ack":
            agent, iid = site.pending_accepts.pop(f["ack"])
            if f["refused"]:
                count(site.engine.accept_refused(agent, iid, now, "taken at the peer"))
            else:
                site.engine.confirm(iid)

    for _ in range(400):
        now += rng.choice([1, 5, 50, 300])
        op = rng.random()
        agent_id = rng.choice(AGENTS)
        site = where.get(agent_id)
        try:
            if op < 0.1:  # log in somewhere, or move to the other site with what it holds
                if site is None:
                    target = rng.choice([a, b])
                    count(target.engine.login(agent_id, {"q": rng.randrange(2)}, "ready", now)[1])
                else:
                    target = other[site]
                    held = [site.engine.interactions[i] for i in site.engine.held_by(agent_id)]
                    count(site.engine.logout(agent_id, now))
                    carried = [
                        p.HeldInteraction(interaction=t.interaction, accepted_ms=t.accepted_ms or now) for t in held
                    ]
                    adopted, effects = target.engine.login(agent_id, {"q": 0}, "ready", now, carried)
                    count(effects)
                    for iid in adopted:
                        send(target, "claim", iid=iid, status="held", agent=agent_id, claim="adopt", ack=None)
                where[agent_id] = target
            elif op < 0.35:  # the carrier submits, sometimes to both sites (a re-submission)
                iid = f"x{rng.randrange(40)}"
                for target in ([a, b] if rng.random() < 0.5 else [rng.choice([a, b])]):
                    count(
                        target.engine.submit(
                            p.Interaction(interaction_id=iid, media="voice", queue="q", created_ms=now), now
                        )
                    )
            elif op < 0.55 and site is not None:  # accept the offer: held here, claimed at the peer
                agent = site.engine.agents.get(agent_id)
                if agent is not None and agent.offer:
                    iid = agent.offer
                    count(site.engine.accept(agent_id, iid, now))
                    ack = next(ack_ids)
                    site.pending_accepts[ack] = (agent_id, iid)
                    send(site, "claim", iid=iid, status="held", agent=agent_id, claim="accept", ack=ack)
            elif op < 0.7 and site is not None:  # complete what is confirmed in hand
                for iid in site.engine.held_by(agent_id):
                    if not site.engine.interactions[iid].unconfirmed:
                        count(site.engine.complete(agent_id, iid, "resolved", "", now))
                        send(site, "claim", iid=iid, status="completed", agent=agent_id, claim="complete", ack=None)
                        break
            elif op < 0.8 and site is not None and rng.random() < 0.5:
                agent = site.engine.agents.get(agent_id)
                if agent is not None and agent.offer:
                    count(site.engine.reject(agent_id, agent.offer, now))
            elif op < 0.9:
                for s in (a, b):
                    count(s.engine.tick(now))
            else:  # the link delivers some messages, in order, each direction independently
                for s in (a, b):
                    for _ in range(rng.randrange(3)):
                        if s.inbox:
                            deliver(s)
        except EngineRefusal:
            pass
    while a.inbox or b.inbox:  # drain the link
        for s in (a, b):
            while s.inbox:
                deliver(s)
    for iid in set(a.engine.interactions) | set(b.engine.interactions):  # nothing vanished: a live copy, or an end
        statuses = {s.engine.interactions[iid].status for s in (a, b) if iid in s.engine.interactions}
        assert statuses - {"withdrawn"}, f"seed {seed}: {iid} withdrawn at both sites, handled nowhere"
    twice = [iid for iid, n in completions.items() if n > 1]
    assert not twice, f"seed {seed}: completed twice: {twice}"
    for iid in set(a.engine.interactions) & set(b.engine.interactions):
        ta, tb = a.engine.interactions[iid], b.engine.interactions[iid]
        assert not (ta.status == HELD and tb.status == HELD), (
            f"seed {seed}: {iid} held by {ta.agent_id}@A and {tb.agent_id}@B"
        )
        assert not (completions[iid] and HELD in (ta.status, tb.status)), f"seed {seed}: {iid} completed and still held"
