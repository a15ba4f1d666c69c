"""The freezes bench/chaos.py --freeze records (tests/chaos/harness.py) lie inside the time the
process was really stopped: the ledger cuts a server's copy held across a freeze at the freeze's
start only when the server stamped nothing inside it (``Ledger.double_offers``), so a recorded
start before the process stopped, or a recorded end after it ran again, makes an offer made just
before the freeze (or an event just after it) look like a double offer."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from tests.chaos.harness import _freeze
from tests.support.servers import wait_until

CLOCK = "import time\nwhile True:\n    print(int(time.time() * 1000), flush=True)\n"


class Clock:
    """A process that prints the wall clock (ms) as fast as it can, as a server stamps its events."""

    name = "clock"

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", CLOCK], stdout=subprocess.PIPE, text=True)
        self.stamps: list[int] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stamps.append(int(line))

    def running(self) -> subprocess.Popen[str]:
        return self.proc

    def sigstop(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        self.proc.send_signal(signal.SIGCONT)


@pytest.mark.server_processes
def test_a_recorded_freeze_holds_no_moment_the_process_ran():
    clock = Clock()
    freezes: list[tuple[str, int, int]] = []
    done = threading.Event()

    def busy() -> None:  # as the harness's supervisor taps and agent readers: threads that want the GIL
        while not done.is_set():
            sum(range(10_000))

    threads = [threading.Thread(target=busy, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(6):
            seen = len(clock.stamps)
            wait_until(lambda seen=seen: len(clock.stamps) > seen + 100, 10, interval=0.001,
                       message="the clock to run between freezes")
            _freeze(clock, 0.15, freezes)  # type: ignore[arg-type]
        wait_until(lambda: clock.stamps[-1] > freezes[-1][2], 10, interval=0.001, message="the clock to run again")
    finally:
        done.set()
        clock.proc.kill()
        clock.proc.wait(5)
        clock.reader.join(5)
    assert len(freezes) == 6
    for _, started, thawed in freezes:
        inside = [s for s in clock.stamps if started < s < thawed]
        assert not inside, (started, thawed, inside[:3])
