"""Every benchmark runs end to end at a tiny size and ends with the JSON line its README row promises.

The figures themselves are not judged here (benchmarks measure; tests do not time): this only
keeps the benchmarks runnable, so a reader who runs one gets an answer, not a traceback or a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.servers import REPO

# bench/chaos.py: tests/chaos/test_chaos.py runs it (at its CI size) and checks its JSON line.
SMOKE = {
    "abuse": (["--seconds", "0.5"], {"idle_login_p99_ms", "attacks", "server_survived", "all_ok"}),
    "failover": (["--trials", "1", "--storm", "4", "--storm-procs", "1", "--restart-watch", "0.5"],
                 {"kill9_p50_ms", "kill9_p99_ms", "sigstop_p50_ms", "sigstop_p99_ms", "cold_login_p50_ms",
                  "storm_agents", "storm_all_relogged_ms", "storm_attempts_per_agent", "double_logins", "trials"}),
    "routing": (["--agents", "4", "--rate", "10", "--duration", "0.5", "--burst", "4", "--workers", "1"],
                {"offer_p50_ms", "offer_p99_ms", "routed_per_s", "raw_rtt_p50_ms"}),
    "supervisor": (["--agents", "20", "--rate", "20", "--seconds", "0.5", "--warmup", "0.2", "--no-naive"],
                   {"agents", "events_per_s", "busy_fraction", "event_to_screen_p99_ms"}),
    "desktop_start": (["--runs", "1", "--memory-runs", "1"], {"start_to_login_window_s", "rss_after_login_mib"}),
    "bus": (["--sites", "2", "--seconds", "0.5", "--rate", "50", "--handovers", "10", "--no-kill"],
            {"broker_start_s", "propagation_p99_ms", "handover_confirm_p99_ms", "dropped"}),
}


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_benchmark_runs_and_ends_with_its_json_line(name):
    args, keys = SMOKE[name]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, (
        f"bench/{name}.py exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    last = done.stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert keys <= result.keys(), f"missing keys: {sorted(keys - result.keys())}"
