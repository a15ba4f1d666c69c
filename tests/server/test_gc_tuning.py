"""The collector's pacing for processes with thousands of sockets (server_stub/gc_tuning.py): rarer
young collections, but garbage cycles are still freed without anyone calling ``gc.collect``."""

from __future__ import annotations

import subprocess
import sys

from tests.support.zygote import REPO

PROGRAM = """
import gc, weakref
from server_stub.gc_tuning import tune_for_many_connections

tune_for_many_connections()
assert gc.isenabled()

class Node:
    pass

def cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

first = cycle()  # garbage at once: only the collector can free a cycle
kept = [Node() for _ in range(30_000)]  # the heap grows meanwhile (a server's new sockets)
later = [cycle() for _ in range(10_000)]
print(first() is None, sum(ref() is None for ref in later))
"""


def test_garbage_cycles_are_still_freed_by_the_paced_collector():
    """In its own process: the pacing is process-wide, and the test process keeps its own."""
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO, capture_output=True, text=True, check=True,
                         timeout=60).stdout.split()
    assert out[0] == "True", "a garbage cycle made before the heap grew was never freed"
    assert int(out[1]) > 5_000, f"only {out[1]} of 10,000 later garbage cycles were freed"
