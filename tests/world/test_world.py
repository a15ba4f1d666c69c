"""The world under random faults: 2 sites, 5 agents, a carrier and a supervisor (tests/world/world.py)."""

from __future__ import annotations

from .machine import WorldMachine, world_settings


class FiveAgents(WorldMachine):
    AGENTS = 5


FiveAgents.TestCase.settings = world_settings(examples=100, steps=40)
test_world = FiveAgents.TestCase
