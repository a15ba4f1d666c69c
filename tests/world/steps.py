"""Steps shared by the world's scenario tests."""

from __future__ import annotations

from .desk import Desk
from .world import World


def two_sites(agents: int = 2, seed: int = 7) -> World:
    """Both sites up and linked, every agent logged in at A (B its standby)."""
    world = World(seed=seed, agents=agents)
    world.start()
    world.run_for(2.0)
    assert [d.session.snapshot().primary for d in world.desks] == ["A"] * agents
    return world


def offered(world: World, desk: Desk) -> str:
    """The agent is Ready and the carrier's next call is offered to it."""
    desk.ready()
    world.carrier.new_interaction()
    world.run_for(0.1)
    (offer,) = desk.session.snapshot().offers
    return offer.interaction.interaction_id


def in_hand(world: World, desk: Desk) -> str:
    iid = offered(world, desk)
    desk.answer(0, take=True)
    world.run_for(0.1)
    assert [h.interaction.interaction_id for h in desk.session.snapshot().held] == [iid]
    return iid


def holding_a_call() -> tuple[World, Desk, str]:
    """One agent, logged in at A, with a call in hand."""
    world = two_sites(agents=1)
    desk = world.desks[0]
    return world, desk, in_hand(world, desk)


def completing(world: World, desk: Desk, peer_latency: float, wait: float) -> None:
    """The sites are far apart (a confirmation by the peer takes ``2 * peer_latency``); the agent
    completes the call it holds, with final notes, and ``wait`` passes."""
    world.peer_latency = peer_latency
    world.run_for(0.5)
    desk.complete(0, final_notes=True)
    world.run_for(wait)


def holding_a_call_at_b() -> tuple[World, Desk, str]:
    """One agent with a call in hand at B: A was killed (the agent and the carrier moved to B) and
    has just been restarted, not linked to B yet."""
    world = two_sites(agents=1)
    desk = world.desks[0]
    world.kill("A")
    world.run_for(3.0)
    iid = in_hand(world, desk)
    world.restart("A")
    return world, desk, iid


def consultation_accepted(seed: int) -> tuple[World, Desk, Desk, str]:
    """Two agents at A: the first holds a call and consults the second, who has accepted; the
    first has not completed the transfer yet. Returns (world, first, second, call)."""
    world = two_sites(agents=2, seed=seed)
    first, second = world.desks
    second.intent("not_ready")
    iid = in_hand(world, first)
    second.ready()
    world.run_for(0.2)
    first.act(first.session.transfer, iid, "consult", to_agent=second.agent_id)
    world.run_for(0.2)
    second.answer(0, take=True)
    world.run_for(0.2)
    return world, first, second, iid
