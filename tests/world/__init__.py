"""The simulated world: the real server cores and desktop sessions under faults (see ``world.py``)."""
