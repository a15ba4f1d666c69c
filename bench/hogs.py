"""CPU hogs for the benchmarks: busy processes that starve the machine the way a crowded VDI host,
an old laptop or other test runs do (``bench/failover.py --cpu-hogs N``).

Each hog is a separate Python process running a pure CPU loop. They are stopped when the block
ends, on an error or Ctrl-C too; and each hog checks now and then that its parent still lives, so a
bench killed with SIGKILL does not leave them spinning.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

# A pure CPU loop; every 2**20 turns it asks whether the bench that started it is still its parent.
_HOG = """
import os, sys
parent = int(sys.argv[1])
n = 0
while True:
    n += 1
    if n & 0xFFFFF == 0 and os.getppid() != parent:
        break
"""


@contextlib.contextmanager
def cpu_hogs(count: int) -> Iterator[list[subprocess.Popen]]:
    """``count`` busy processes for the duration of the block (none for 0)."""
    hogs: list[subprocess.Popen] = []
    try:
        for _ in range(count):
            hogs.append(subprocess.Popen([sys.executable, "-c", _HOG, str(os.getpid())],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        yield hogs
    finally:
        for hog in hogs:
            if hog.poll() is None:
                hog.kill()
        for hog in hogs:
            hog.wait(5)


def exit_on_sigterm() -> None:
    """SIGTERM ends the bench like Ctrl-C does: through the ``finally`` blocks that stop its children."""
    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
