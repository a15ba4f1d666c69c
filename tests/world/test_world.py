"""The world under random faults: 2 sites, 5 agents, a carrier and a supervisor (tests/world/world.py).

Hypothesis draws the steps (tests/world/machine.py); the world checks its invariants as it runs,
after every step and after healing. CI runs a short search; for a longer one locally set
``WORLD_EXAMPLES`` (and ``WORLD_STEPS``), e.g. ``WORLD_EXAMPLES=3000 pytest tests/world``.
"""

from __future__ import annotations

from .machine import WorldMachine, world_settings


class FiveAgents(WorldMachine):
    AGENTS = 5


FiveAgents.TestCase.settings = world_settings(examples=160, steps=40)
test_world = FiveAgents.TestCase


class ThreeSites(WorldMachine):
    """The same faults in a mesh of three sites (docs/multisite.md): the desktops use all three."""

    AGENTS = 4
    SITES = ("A", "B", "C")


ThreeSites.TestCase.settings = world_settings(examples=40, steps=30)
test_world_of_three_sites = ThreeSites.TestCase
