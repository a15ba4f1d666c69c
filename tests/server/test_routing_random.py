"""The routing engine under long random sequences of events (fake clock): its bookkeeping stays
consistent, nobody available is left idle while a queue of theirs waits, and nothing is completed
twice or offered to two agents at once."""

from __future__ import annotations

import collections
import os
import random

import pytest

from server_stub import protocol as p
from server_stub.config import QueueConfig
from server_stub.core.routing import HELD, OFFERED, QUEUED, EngineRefusal, Offer, Report, RoutingEngine

AGENTS = [f"a{i}" for i in range(8)]
QUEUES = ("q1", "q2")


def check(engine: RoutingEngine, completions: collections.Counter) -> None:
    for name, q in engine.queues.items():
        queued = [i for i in engine.interactions.values() if i.status == QUEUED and i.interaction.queue == name]
        live = [item for token, item in q.waiting if item.token == token and item.status == QUEUED]
        assert q.waiting_count == len(queued) == len(live), name
        if q.waiting_count and engine.hold_until == 0:
            idle = [a.agent_id for a in engine.agents.values() if a.available and name in a.penalties]
            assert not idle, f"{idle} available while {name} has {q.waiting_count} waiting"
    for item in engine.interactions.values():
        if item.status == OFFERED:
            assert item.agent_id is not None and engine.agents[item.agent_id].offer == item.id
    offered: collections.Counter[str] = collections.Counter()
    for agent in engine.agents.values():
        if agent.offer is not None:
            offered[agent.offer] += 1
            assert engine.interactions[agent.offer].status == OFFERED
        for iid in agent.held:
            assert engine.interactions[iid].status == HELD and engine.interactions[iid].agent_id == agent.agent_id
    assert all(n == 1 for n in offered.values()), offered
    assert all(n == 1 for n in completions.values()), completions


@pytest.mark.parametrize("seed", range(int(os.environ.get("ROUTING_SEEDS", "30"))))  # more: ROUTING_SEEDS=2000
def test_random_event_sequences_keep_the_engine_consistent(seed):
    rng = random.Random(seed)
    engine = RoutingEngine([QueueConfig("q1", accept_timeout_ms=3000, acw_ms=rng.choice([None, 2000]),
                                        abandon_after_ms=rng.choice([None, 20_000])),
                            QueueConfig("q2", accept_timeout_ms=5000)],
                           max_offer_timeouts=2, orphan_timeout_ms=30_000)
    now = 1_000_000
    completions: collections.Counter = collections.Counter()
    n = 0

    def apply(effects):
        for effect in effects:
            if isinstance(effect, Report) and effect.event == "completed":
                completions[effect.interaction.interaction_id] += 1
            if isinstance(effect, Offer):
                assert engine.agents[effect.agent_id].offer == effect.interaction.interaction_id

    for _ in range(600):
        now += rng.choice([0, 1, 10, 500, 2000])
        op = rng.random()
        agent_id = rng.choice(AGENTS)
        try:
            if op < 0.12:
                if agent_id in engine.agents:
                    apply(engine.logout(agent_id, now))
                else:
                    penalties = {q: rng.randrange(3) for q in QUEUES if rng.random() < 0.7}
                    held = []
                    if rng.random() < 0.2:
                        iid = rng.choice(list(engine.interactions) or ["fresh"])
                        held = [
                            p.HeldInteraction(
                                interaction=p.Interaction(
                                    interaction_id=iid, media="voice", queue="q1", created_ms=now
                                ),
                                accepted_ms=now,
                            )
                        ]
                    _, effects = engine.login(agent_id, penalties, rng.choice(["ready", "not_ready"]), now, held)
                    apply(effects)
            elif op < 0.25:
                apply(engine.set_state(agent_id, rng.choice(["ready", "ready", "not_ready", "after_call_work"]), now))
            elif op < 0.45:
                n += 1
                apply(engine.submit(p.Interaction(interaction_id=f"i{n}", media="chat", queue=rng.choice(QUEUES),
                                                  created_ms=now - rng.randrange(5000)), now))
            elif op < 0.6:
                agent = engine.agents.get(agent_id)
                if agent and agent.offer:
                    apply(engine.accept(agent_id, agent.offer, now))
            elif op < 0.67:
                agent = engine.agents.get(agent_id)
                if agent and agent.offer:
                    apply(engine.reject(agent_id, agent.offer, now))
            elif op < 0.8:
                agent = engine.agents.get(agent_id)
                if agent and agent.held:
                    apply(engine.complete(agent_id, next(iter(agent.held)), "resolved", "", now))
            elif op < 0.85 and engine.interactions:
                iid = rng.choice(list(engine.interactions))
                agreed, effects = engine.peer_record(iid, rng.choice(["held", "completed", "ended"]), "elsewhere", "q1",
                                                     "voice", rng.choice(["accept", "adopt", "sync"]), now)
                apply(effects)
            else:
                apply(engine.tick(now))
        except EngineRefusal:
            pass
        check(engine, completions)
