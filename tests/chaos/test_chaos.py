"""Interactions survive failover under chaos: 6 headless agents (agent-cli --auto-answer processes)
answer carrier traffic while A, then B, then A, then B is killed with SIGKILL and restarted, each
kill finding interactions in agents' hands. (bench/chaos.py runs the same at scale: 20 agents,
10 kills over 40 s of traffic.)

At the end every submitted interaction is completed exactly once or ended with an explicit reason,
none is lost, none completed twice, none offered by one server while the other had it; and the
supervisors' streams, the carrier's ledger and the agents' own events tell the same totals.

The run is bench/chaos.py's, at this size: it also proves the benchmark runs and ends with its
JSON line (the figures checked here), so the bench smoke test does not run it a second time."""

import json
import subprocess
import sys

import pytest

from tests.support.servers import REPO

# The smallest run that still kills and restarts each server twice (a restarted one dies again) with
# traffic flowing: each site's 3 agents are kept busy at 2/s, and every kill waits for work in hand.
AGENTS, KILLS, RATE, DURATION = 6, 4, 4.0, 8.0
ARGS = ["--agents", str(AGENTS), "--cycles", str(KILLS), "--rate", str(RATE), "--duration", str(DURATION),
        "--kill-with-work-in-hand", "--quiet"]


# About 15 s alone on a 2-core machine. The bound covers the harness's own deadlines (30 s for the
# agents to be Ready, 8 s of traffic, up to 30 s per kill and restart, 20 s of drain).
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_interaction_ends_exactly_once_while_the_servers_are_killed_in_turn():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "chaos.py"), *ARGS], cwd=REPO, capture_output=True,
                          text=True, timeout=220)
    report = f"bench/chaos.py exited {done.returncode}:\n{done.stdout}\n{done.stderr[-3000:]}"
    print(done.stdout)
    lines = done.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("{"), report
    f = json.loads(lines[-1])
    assert f["agents"] >= AGENTS and f["kills"] >= KILLS and f["restarts"] == f["kills"], report
    # Most of what the carriers were asked for went out (kills and restarts cost some of it).
    assert f["submitted"] >= 0.6 * RATE * DURATION and f["submitted"] == f["carrier_submitted"], report
    # The faults hit the work: agents moved with interactions in hand, and the taps re-subscribed.
    # Both servers' deaths hit interactions in hand: each survivor adopted some.
    assert f["failover_logins"] >= f["kills"] and set(f["adopted_by"]) == {"A", "B"}, report
    assert f["supervisor_subscriptions"] >= 2 + f["kills"], report
    # The agents transferred some calls meanwhile (bench/chaos.py's default --transfer-share).
    assert f["transferred"] >= 1, report
    # Invariant 2 (docs/architecture.md, "Invariants").
    assert f["lost"] == 0, report
    assert f["completed_twice"] == 0 and f["carrier_completed_twice"] == 0 and f["agents_completed_twice"] == 0, report
    assert f["double_offers"] == 0, report
    assert f["chats"] > 0 and f["chat_transcripts_checked"] > 0, report
    assert f["chat_lines_lost"] == 0 and f["chat_lines_duplicated"] == 0 and f["chat_lines_out_of_order"] == 0, report
    assert f["completed"] + f["ended_with_reason"] == f["submitted"], report
    # The totals reconcile: the supervisors' streams show every completion the agents were told of.
    assert f["unreported"] == 0 and f["completed"] == f["agents_completed"], report
    # The carrier's ledger agrees interaction by interaction (same end, server, agent, disposition);
    # what it never saw end (a restarted server reported it before the carrier was back) the
    # streams show ended, so its totals plus those equal the streams' totals exactly.
    assert f["carrier_disagreements"] == 0, report
    assert f["carrier_completed"] + f["carrier_abandoned"] + f["carrier_open"] == f["submitted"], report
    # Every queue statistic a server published equals the interaction events of its stream.
    assert f["queue_stats_with_events"] >= f["kills"] and f["queue_stats_mismatches"] == 0, report
    assert done.returncode == 0, report
