"""Stall benchmark: a paused agent is not a dead agent, and a dead server is still found fast.

One run against a peer-linked pair of real ``interaction-server`` processes on loopback, with a
supervisor subscribed to both sites' reporting streams the whole time:

1. ``agent_cli``: the headless agent (``agent-cli``, a real process) logs in at A (standby at B),
   is paused with SIGSTOP for each span (default 0, 1, 2, 4 and 8 s; 0 is the control: the same
   observation without a pause) and continued with SIGCONT; then ``--settle`` seconds are watched.
2. ``desktop_gui_block``: the real desktop (``agent-desktop``, offscreen, driven by
   bench/desktop_block.py) logs in the same way, and a slot on its GUI thread sleeps for each span.
3. ``kill9_failover_ms`` / ``sigstop_detected_ms``: an agent-cli logged in at A; A is killed with
   SIGKILL (restarted after), or stopped with SIGSTOP (continued after): the time from the signal
   until the agent shows its state on B (the agent's own event; its clock is the machine's
   monotonic clock, shared by every process).

Per pause the login survived when neither supervisor saw the agent log out or log in again (a
failover ``EventAgentLogin`` at B, or a new login at A) and the agent is still logged in at A in the
same epoch, having logged in nowhere meanwhile; the desktop also must not show a failover banner.
Every reporting event about the agent after the pause began is counted by type per site (a
"suspect" flag or state, if the server reports one, shows there too). Each span is tried
``--runs`` times (a fresh agent, and a fresh desktop process, each time); per span the JSON gives
how many survived, and medians and spreads of when the first logout and failover login arrived.
Targets: kill -9 failover p99 <= 100 ms; a silent (stopped) primary detected within 2.5 s.

    python bench/stall.py [--runs 3] [--spans 0,1,2,4,8] [--trials 20] [--settle 3] [--no-desktop]

Prints a human summary, then one JSON object (the last line). Exit 0 whatever the product did;
nonzero only when the harness itself failed (a server or an agent that would not start).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.figures import pct, rounded  # noqa: E402
from bench.hogs import exit_on_sigterm  # noqa: E402
from server_stub.directory import AgentRecord, Directory, hash_password  # noqa: E402
from tests.support.agents import AgentProcess  # noqa: E402
from tests.support.reporting import ReportingWatcher  # noqa: E402
from tests.support.servers import ServerProcess, start_pair, wait_until  # noqa: E402

PASSWORD = "bench"
KILL9_P99_TARGET_MS = 100.0
SILENT_PRIMARY_TARGET_MS = 2500.0


def spread(values: list[float], digits: int = 1) -> dict | None:
    """Median, p99 (nearest rank), min, max and count; None without samples."""
    if not values:
        return None
    return {"median": round(statistics.median(values), digits), "p99": rounded(pct(values, 99), digits),
            "min": round(min(values), digits), "max": round(max(values), digits), "n": len(values)}


class DesktopProcess(AgentProcess):
    """bench/desktop_block.py: the real desktop, offscreen, read through its JSON event lines as
    agent-cli is."""

    def __init__(self, agent_id: str, settings_file: Path, config_home: str):
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": config_home,
               "AGENT_PASSWORD": PASSWORD, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        self.events: list[dict] = []
        self.stderr: list[str] = []
        proc = self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "desktop_block.py"), "--settings", str(settings_file),
             "--agent", agent_id], cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
        assert stdin is not None and stdout is not None and stderr is not None  # PIPE above
        self.stdin = stdin
        threading.Thread(target=self._pump, args=(stdout,), daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(stderr), daemon=True).start()

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))


def write_directory(folder: Path, agents: int) -> Path:
    directory = Directory()
    cheap = hash_password(PASSWORD, n=16, r=1, p=1)  # the servers run with --allow-weak-hashes
    for i in range(agents):
        directory.add(AgentRecord(id=f"st{i}", name=f"Stall {i}", password_hash=cheap))
    directory.add(AgentRecord(id="sup1", name="Bench supervisor", password_hash=hash_password("demo"),
                              role="supervisor"))
    path = folder / "agents.toml"
    directory.save(path)
    return path


def logged_in_at_a(agent, agent_id: str, watchers: dict[str, ReportingWatcher], timeout: float) -> int:
    """Wait until the agent is logged in at A with its standby at B, and supervisor A has seen the
    login; the login's epoch."""
    login = agent.wait_for("LoggedIn", timeout=timeout, endpoint="A")
    wait_until(lambda: agent.role_of("B") == "secondary", timeout, message=f"{agent_id}'s standby at B")
    watchers["A"].wait_for("EventAgentLogin", agent_id, timeout=timeout, epoch=login["epoch"])
    return login["epoch"]


def judge(agent, agent_id: str, epoch: int, watchers: dict[str, ReportingWatcher], marks: dict[str, int],
          after: int, paused_at: float) -> dict:
    """What the supervisors and the agent saw from the pause on (``marks``: the watchers' event
    counts then; ``after``: the agent's; ``paused_at``: wall time)."""
    seen: dict[str, dict[str, int]] = {}
    logouts, logins = [], []
    for site, w in watchers.items():
        events = list(w.events)[marks[site]:]
        arrived = list(w.arrived_at)[marks[site]:]
        counts: collections.Counter[str] = collections.Counter()
        for t, e in zip(arrived, events, strict=False):
            about = e.get("agent", {}).get("agent_id") if e["type"] == "EventAgentLogin" else e.get("agent_id")
            if about != agent_id:
                continue
            counts[e["type"]] += 1
            if e["type"] == "EventAgentLogout":
                logouts.append({"site": site, "after_ms": round((t - paused_at) * 1000), "reason": e.get("reason")})
            elif e["type"] == "EventAgentLogin":
                logins.append({"site": site, "after_ms": round((t - paused_at) * 1000), "epoch": e["agent"]["epoch"]})
        seen[site] = dict(counts)
    mine = list(agent.events)[after:]
    relogins = [e for e in mine if e["event"] == "LoggedIn"]
    ended = [e["event"] for e in mine if e["event"] in ("LoggedOut", "LoginFailed")]
    failover_phases = [e for e in mine if e["event"] == "FailoverPhase" and e.get("kind") == "failover"]
    status = [e for e in agent.events if e["event"] in ("LoggedIn", "AgentStateChanged")]
    last = status[-1] if status else {}
    kept = last.get("endpoint") == "A" and last.get("epoch") == epoch
    return {
        "survived": not logouts and not logins and not relogins and not ended and kept,
        "supervisor_logouts": logouts,
        "supervisor_logins": logins,
        "supervisor_events": seen,
        "agent_relogins": [{"endpoint": e["endpoint"], "resumed": e["resumed"]} for e in relogins],
        "agent_ended": ended,
        "agent_failover_phases": len(failover_phases),
        "agent_now": {"endpoint": last.get("endpoint"), "epoch": last.get("epoch"), "was_epoch": epoch},
    }


def quit_agent(agent) -> None:
    if agent.proc.poll() is None:
        agent.proc.send_signal(signal.SIGCONT)
        try:
            agent.command("logout")
            agent.command("quit")
            agent.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass
    agent.stop()


def stall_trial(kind: str, span: float, agent_id: str, urls: list[str], watchers: dict[str, ReportingWatcher],
                settle: float, settings_file: Path, config_home: str, timeout: float) -> dict:
    if kind == "agent_cli":
        agent = AgentProcess(agent_id, urls, password=PASSWORD)
    else:
        agent = DesktopProcess(agent_id, settings_file, config_home)
    try:
        try:
            epoch = logged_in_at_a(agent, agent_id, watchers, timeout)
        except AssertionError as exc:  # the product did not log in: a result, not a harness error
            return {"span_s": span, "survived": False, "setup_failed": str(exc)[-500:],
                    "stderr": agent.stderr[-5:]}
        time.sleep(1.0)  # a second of ordinary heartbeats first (an observation window)
        marks = {site: len(w.events) for site, w in watchers.items()}
        after = len(agent.events)
        paused_at = time.time()
        if kind == "agent_cli":
            agent.proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(span)  # the pause itself
            finally:
                agent.proc.send_signal(signal.SIGCONT)
        else:
            agent.command(f"block {span}")
            agent.wait_for("BlockEnded", timeout=span + timeout, after=after)
        time.sleep(settle)  # what follows the pause: a window to observe, not a wait for a condition
        result = {"span_s": span, **judge(agent, agent_id, epoch, watchers, marks, after, paused_at)}
        if kind == "desktop":
            mark = len(agent.events)
            agent.command("report")
            report = agent.wait_for("Report", timeout=timeout, after=mark)
            banner = report.get("banner") or {}
            result["banner_shown"] = bool(result["agent_failover_phases"] or
                                          (banner.get("visible") and banner.get("kind") == "failover"))
            result["window"] = "main" if report["main_visible"] else "login" if report["login_visible"] else "none"
            result["survived"] = result["survived"] and not result["banner_shown"] and result["window"] == "main"
        return result
    finally:
        quit_agent(agent)


def summarize(trials: list[dict]) -> dict:
    by_span: dict[str, list[dict]] = collections.defaultdict(list)
    for t in trials:
        by_span[str(t["span_s"])].append(t)
    out = {}
    for span, ts in by_span.items():
        first_logout = [t["supervisor_logouts"][0]["after_ms"] for t in ts if t.get("supervisor_logouts")]
        first_login = [t["supervisor_logins"][0]["after_ms"] for t in ts if t.get("supervisor_logins")]
        out[span] = {
            "runs": len(ts),
            "survived": sum(1 for t in ts if t["survived"]),
            "with_logout_seen": sum(1 for t in ts if t.get("supervisor_logouts")),
            "with_failover_login_seen": sum(1 for t in ts
                                            if any(x["site"] == "B" for x in t.get("supervisor_logins", []))),
            "with_relogin_seen": sum(1 for t in ts if t.get("supervisor_logins")),
            "with_banner": sum(1 for t in ts if t.get("banner_shown")) if "banner_shown" in ts[0] else None,
            "setup_failed": sum(1 for t in ts if "setup_failed" in t),
            "first_logout_after_ms": spread(first_logout, 0),
            "first_login_after_ms": spread(first_login, 0),
            "trials": ts,
        }
    return out


def detection_trials(kind: str, trials: int, a: ServerProcess, b: ServerProcess, ids, timeout: float) -> dict:
    """Milliseconds from SIGKILL / SIGSTOP of the primary A to the agent's state shown on B."""
    times: list[float] = []
    failures: list[str] = []
    for _ in range(trials):
        agent_id = next(ids)
        agent = AgentProcess(agent_id, [a.url, b.url], password=PASSWORD)
        try:
            try:
                agent.wait_for("LoggedIn", timeout=timeout, endpoint="A")
                wait_until(lambda agent=agent: agent.role_of("B") == "secondary", timeout, message="standby at B")
            except AssertionError as exc:  # the product did not log in: a result, not a harness error
                failures.append(f"login: {str(exc)[-300:]}")
                continue
            mark = len(agent.events)
            t0 = time.monotonic()
            a.kill9() if kind == "kill9" else a.sigstop()
            try:
                moved = agent.wait_for("AgentStateChanged", timeout=timeout, after=mark, endpoint="B")
                times.append((moved["t"] - t0) * 1000)
            except AssertionError as exc:
                failures.append(str(exc)[-300:])
            finally:
                if kind == "sigstop":
                    a.sigcont()
        finally:
            quit_agent(agent)
            if not a.alive():
                a.start()
            wait_until(lambda: a.log_has("peer link from B"), 10, message="A peer-linked again")
    return {**(spread(times) or {"n": 0}), "failed": len(failures), "failures": failures[:3]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="tries per span and kind (default 3)")
    parser.add_argument("--spans", default="0,1,2,4,8", help="pauses in seconds, 0 the control (default 0,1,2,4,8)")
    parser.add_argument("--trials", type=int, default=20, help="kill -9 and SIGSTOP trials of the primary (default 20)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds watched after each pause (default 3)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a login or a failover may take")
    parser.add_argument("--no-desktop", action="store_true", help="skip the desktop's GUI-thread blocks")
    parser.add_argument("--no-agent-cli", action="store_true", help="skip agent-cli's SIGSTOP pauses")
    args = parser.parse_args()
    spans = [float(x) for x in args.spans.split(",") if x.strip()]
    if args.runs < 0 or args.trials < 0 or any(s < 0 for s in spans):
        parser.error("--runs, --trials and --spans must not be negative")
    exit_on_sigterm()
    kinds = [k for k, skip in (("agent_cli", args.no_agent_cli), ("desktop", args.no_desktop)) if not skip]
    load = [round(x, 2) for x in os.getloadavg()]
    started = time.monotonic()
    result: dict = {"runs": args.runs, "spans_s": spans, "settle_s": args.settle, "cpus": os.cpu_count(),
                    "loadavg_at_start": load}
    with tempfile.TemporaryDirectory(prefix="stall-") as tmp:
        n_ids = len(kinds) * len(spans) * args.runs + 2 * args.trials + 4
        agents_file = write_directory(Path(tmp), n_ids)
        # INFO: the peer link's lines say when a restarted A is linked again.
        a, b = start_pair(["--agents", str(agents_file), "--allow-weak-hashes"])
        settings_file = Path(tmp) / "sites.toml"
        settings_file.write_text(f'[[site]]\nname = "A"\nurl = "{a.url}"\n[[site]]\nname = "B"\nurl = "{b.url}"\n')
        ids = (f"st{i}" for i in itertools.count())
        watchers: dict[str, ReportingWatcher] = {}
        try:
            wait_until(lambda: a.log_has("peer link from B") and b.log_has("peer link from A"), 10,
                       message="peer link")
            watchers = {"A": ReportingWatcher(a.url), "B": ReportingWatcher(b.url)}
            for kind in kinds:
                trials = []
                for run in range(args.runs):
                    for span in spans:
                        trial = stall_trial(kind, span, next(ids), [a.url, b.url], watchers, args.settle,
                                            settings_file, tmp, args.timeout)
                        trials.append({"run": run, **trial})
                        print(f"[stall] {kind} span {span:g} s run {run + 1}: "
                              + ("survived" if trial["survived"] else
                                 f"NOT SURVIVED: logouts {trial.get('supervisor_logouts')}, logins "
                                 f"{trial.get('supervisor_logins')}, now {trial.get('agent_now')} "
                                 f"{trial.get('setup_failed', '')}"), file=sys.stderr, flush=True)
                result["agent_cli" if kind == "agent_cli" else "desktop_gui_block"] = summarize(trials)
            for w in watchers.values():
                w.close()
            watchers = {}
            result["sigstop_detected_ms"] = detection_trials("sigstop", args.trials, a, b, ids, args.timeout)
            result["kill9_failover_ms"] = detection_trials("kill9", args.trials, a, b, ids, args.timeout)
        finally:
            for w in watchers.values():
                w.close()
            a.stop(), b.stop()
    kill9, stopped = result["kill9_failover_ms"], result["sigstop_detected_ms"]
    result["targets"] = {
        "kill9_p99_ms_max": KILL9_P99_TARGET_MS,
        "kill9_met": kill9.get("p99") is not None and kill9["p99"] <= KILL9_P99_TARGET_MS and not kill9["failed"],
        "silent_primary_ms_max": SILENT_PRIMARY_TARGET_MS,
        "silent_primary_met": (stopped.get("p99") is not None and stopped["p99"] <= SILENT_PRIMARY_TARGET_MS
                               and not stopped["failed"]),
    }
    # The baseline of the same run: a dead server's detection against a stopped one's.
    result["sigstop_vs_kill9_median"] = (round(stopped["median"] / kill9["median"], 1)
                                         if stopped.get("median") and kill9.get("median") else None)
    paused = [t for kind in ("agent_cli", "desktop_gui_block") for span, s in result.get(kind, {}).items()
              if float(span) > 0 for t in s["trials"]]
    result["all_pauses_survived"] = all(t["survived"] for t in paused) if paused else None
    result["elapsed_s"] = round(time.monotonic() - started, 1)
    print(f"machine: {os.cpu_count()} cores, load average at start {load}")
    for kind in ("agent_cli", "desktop_gui_block"):
        for span, s in result.get(kind, {}).items():
            print(f"{kind} paused {span} s: {s['survived']}/{s['runs']} logins survived; supervisors saw a logout "
                  f"in {s['with_logout_seen']}, a login again in {s['with_relogin_seen']} (a failover login at B "
                  f"in {s['with_failover_login_seen']})"
                  + (f"; failover banner in {s['with_banner']}" if s["with_banner"] is not None else ""))
    print(f"kill -9 of the primary -> state on the backup: {kill9}")
    print(f"SIGSTOP of the primary -> state on the backup: {stopped}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
