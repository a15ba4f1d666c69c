"""The garbage collector's pacing for a process that holds thousands of connections.

CPython's cyclic collector runs a full collection whenever the objects promoted into its oldest
generation since the last one reach a quarter of that generation. A server's heap grows with every
desktop's socket (its connection, protocol, reader, tasks and buffers, its session in the core), and
under load many objects that live for a few loop passes (tasks, futures, queued frames) survive the
young collections, taken every 700 new objects by default, and are promoted too. Measured on a
2-core machine during the 5,000-agent morning of ``bench/failover.py``: each server spent a third
of its CPU in the collector, 18-19 full collections stopping it for up to 2.2-2.8 s, longer than a
desktop's heartbeat timeout (1.5 s): the pauses were late heartbeats behind the false failovers
(docs/failover.md, "The collector and frame writing").

Taking the young collection every ``YOUNG_THRESHOLD`` new objects instead of 700 promotes only
objects that live much longer (the heap's own), so a full collection comes when the heap really grew
by a quarter, not every few seconds (the servers' collector then took 8-15 % of their CPU). The
objects made at start-up (modules, classes, the directory) are moved out of the collector's way
(``gc.freeze``): they live as long as the process. What this costs: cyclic garbage waits longer to
be freed: until 10,000 new objects were made rather than 700, and for a full collection about 1.2
million rather than 85,000."""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # new tracked objects between young collections (CPython's default: 700)
OLDER_THRESHOLDS = (10, 10)  # CPython's defaults: young collections per middle one, middle per old


def tune_for_many_connections() -> None:
    """Pace the collector for a long-running process with a large, slowly changing heap (a server,
    a swarm of test desktops). Call once, after start-up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
