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
