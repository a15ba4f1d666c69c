"""Every benchmark runs end to end at a tiny size and ends with the JSON line its README row promises.

The figures themselves are not judged here (benchmarks measure; tests do not time): this only
keeps the benchmarks runnable, so a reader who runs one gets an answer, not a traceback or a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from bench.hogs import cpu_hogs
from tests.chaos.harness import VIOLATIONS
from tests.support.servers import REPO, wait_until

# bench/chaos.py's kill mode: tests/chaos/test_chaos.py runs it (at its CI size) and checks its JSON line.
# name -> (bench script, arguments, keys its JSON line must have)
SMOKE = {
    "abuse": ("abuse", ["--seconds", "0.5"], {"idle_login_p99_ms", "attacks", "server_survived", "all_ok"}),
    # One failover run covers the storm and the trials. Without a CPU hog: a hog spins a core for the
    # whole storm (~3.2 s of CPU here), and bench/hogs.py is run directly by
    # test_a_cpu_hog_spins_for_its_block_and_ends_with_it below.
    "failover": ("failover", ["--trials", "1", "--storm", "4", "--storm-procs", "1", "--restart-watch", "0.5",
                              "--cpu-hogs", "0"],
                 {"kill9_p50_ms", "kill9_p99_ms", "sigstop_p50_ms", "sigstop_p99_ms", "cold_login_p50_ms",
                  "storm_agents", "storm_all_relogged_ms", "storm_attempts_per_agent", "double_logins", "trials",
                  "false_failovers", "false_failover_agents", "login_failed", "storm_ready", "cpu_hogs"}),
    "routing": ("routing", ["--agents", "4", "--rate", "10", "--duration", "0.5", "--burst", "4", "--workers", "1"],
                {"offer_p50_ms", "offer_p99_ms", "routed_per_s", "raw_rtt_p50_ms"}),
    "supervisor": ("supervisor", ["--agents", "20", "--rate", "20", "--seconds", "0.5", "--warmup", "0.2",
                                  "--no-naive"],
                   {"agents", "events_per_s", "busy_fraction", "gui_busy_fraction_by_phase", "event_to_screen_p99_ms"}),
    "desktop_start": ("desktop_start", ["--runs", "1", "--memory-runs", "1"],
                      {"start_to_login_window_s", "rss_after_login_mib", "baseline", "start_ratio_to_baseline",
                       "rss_ratio_to_baseline"}),
    # The new modes of the stall issue, each small enough for ~20 s on a 2-core machine.
    "stall": ("stall", ["--runs", "1", "--spans", "1", "--trials", "1", "--settle", "0.5"],
              {"agent_cli", "desktop_gui_block", "kill9_failover_ms", "sigstop_detected_ms", "targets",
               "all_pauses_survived", "sigstop_vs_kill9_median"}),
    "chaos_freeze": ("chaos", ["--freeze", "--freezes", "2", "--freeze-min", "2", "--freeze-max", "2", "--agents",
                               "4", "--rate", "4", "--duration", "2", "--drain", "15", "--quiet"],
                     {"submitted", "lost", "completed_twice", "double_offers", "freezes", "frozen_s", "mode",
                      "copies_ended_after_thaw"}),
    "bus": ("bus", ["--sites", "2", "--seconds", "0.5", "--rate", "50", "--handovers", "10", "--no-kill"],
            {"broker_start_s", "propagation_p99_ms", "handover_confirm_p99_ms", "dropped"}),
    # Mesh only: the RabbitMQ mode needs a broker (~8 s to start), which the bus smoke run already covers.
    "multisite": ("multisite", ["--sites", "3", "--agents", "20", "--rate", "10", "--duration", "1", "--probes", "1",
                                "--drain", "15", "--modes", "mesh", "--workers", "1"],
                  {"sites", "agents", "modes", "all_ok"}),
}


def hogs_of(pid: int) -> list[int]:
    """Processes running bench/hogs.py's loop for the bench process ``pid`` (its argv[1])."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not a process
            continue
        if len(argv) > 3 and argv[1] == b"-c" and b"os.getppid() != parent" in argv[2] and argv[3] == str(pid).encode():
            found.append(int(proc.name))
    return found


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_benchmark_runs_and_ends_with_its_json_line(name):
    script, args, keys = SMOKE[name]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / f"{script}.py"), *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=200)
    finally:
        proc.kill()
    report = f"bench/{script}.py exited {proc.returncode}:\n{stdout[-2000:]}\n{stderr[-3000:]}"
    # chaos.py exits 1 when its ledger finds an interaction lost, completed twice or offered twice:
    # a verdict on the product, which the bench reports (and tests/chaos judges in the kill mode);
    # here the exit code must only agree with the JSON line.
    assert proc.returncode == 0 or (script == "chaos" and proc.returncode == 1), report
    last = stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert keys <= result.keys(), f"missing keys: {sorted(keys - result.keys())}"
    if script == "chaos":
        violations = {k: result[k] for k in VIOLATIONS if result[k]}
        assert (proc.returncode == 1) == bool(violations), report
        # The freeze mode's small run is judged: statistics count an offer when it is published, and
        # a freeze is recorded from inside the time the server was stopped (tests/chaos/harness.py).
        assert not (name == "chaos_freeze" and violations), report
        if violations:
            warnings.warn(f"bench/chaos.py {' '.join(args)} found {violations}: {stdout[:1500]}", stacklevel=1)
    if name == "failover":  # the storm ran, and left no hog behind
        assert result["cpu_hogs"] == 0 and result["storm_agents"] == 4
        assert not hogs_of(proc.pid)
    elif name == "stall":  # each kind logged in, paused once, and was judged; both detections ran
        for kind in ("agent_cli", "desktop_gui_block"):
            span = result[kind]["1.0"]
            assert span["runs"] == 1 and span["setup_failed"] == 0, span
            assert isinstance(span["trials"][0]["survived"], bool)
        assert result["desktop_gui_block"]["1.0"]["with_banner"] is not None
        assert result["kill9_failover_ms"]["n"] + result["kill9_failover_ms"]["failed"] == 1
        assert result["sigstop_detected_ms"]["n"] + result["sigstop_detected_ms"]["failed"] == 1
    elif name == "multisite":  # the mesh mode ran its traffic and its probes, with every figure reported
        mesh = result["modes"]["mesh"]
        assert set(result["modes"]) == {"mesh"} and mesh["submitted"] == 10 and mesh["probes"] == 9, mesh
        assert {"offer_local_p99_ms", "offer_remote_p99_ms", "propagation_p99_ms", "stranded_ms_p99",
                "penalty_violations", "completed", "completed_twice", "lost", "double_offers"} <= mesh.keys()
    elif name == "chaos_freeze":  # both freezes happened during the traffic; exit 0 means nothing lost or doubled
        assert result["mode"] == "freeze" and result["freezes"] == 2 and result["kills"] == 0
        assert result["submitted"] > 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (/proc/PID/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_cpu_hog_spins_for_its_block_and_ends_with_it():
    """What ``bench/failover.py --cpu-hogs N`` runs beside its storm (bench/hogs.py): N busy
    processes of this process while the block runs, none after it."""
    with cpu_hogs(1) as hogs:
        wait_until(lambda: hogs_of(os.getpid()) == [hogs[0].pid], 10, message="the hog's loop to run")
        wait_until(lambda: cpu_seconds(hogs[0].pid) >= 0.05, 10, message="the hog to burn CPU")
    assert hogs[0].poll() is not None
    wait_until(lambda: not hogs_of(os.getpid()), 5, message="the CPU hog to end with its block")
