"""Desktop start-up benchmark: cold start to the login window, and resident memory after login.

Each run is a fresh ``agent-desktop`` process (the console script, so interpreter start, imports,
QApplication and the first paint of the login window all count). Memory: the same process logs in
against a local demo pair and reports VmRSS once the standby is announced. Prints one JSON object.

    python bench/desktop_start.py [--runs 9] [--memory-runs 3] [--platform offscreen|xcb] [--app EXE ...]

``xcb`` needs a display: run it under ``xvfb-run -a``. ``--app EXE`` also times another
``agent-desktop`` executable, such as the frozen one the package installs
(``--app /usr/bin/agent-desktop``): its runs alternate with the virtualenv's, so both see the same
machine, and the JSON gives each app's figures and its ratio to the virtualenv.

The baseline, measured in the same run and alternating with the others: a bare ``QApplication``
process that shows a small login-like form (a label, two fields, a button) and reports its first
paint, and its resident memory at that point in the login runs. ``start_ratio_to_baseline`` and
``rss_ratio_to_baseline`` say what the desktop costs over Qt itself, a figure that holds from one
machine (or one load) to another where the seconds do not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from desktop.demo import DEMO_AGENT, DEMO_PASSWORD, DemoServers  # noqa: E402

APP = [str(Path(sys.executable).with_name("agent-desktop"))]
# The baseline: Qt's own start (interpreter, PySide6, QApplication, one small window's first paint).
BASELINE_CODE = """
import os, sys, time
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QFormLayout, QLineEdit, QPushButton, QWidget
app = QApplication(sys.argv[:1])
window = QWidget()
form = QFormLayout(window)
form.addRow("Agent", QLineEdit())
form.addRow("Password", QLineEdit())
form.addRow(QPushButton("Log in"))
def rss():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
class FirstPaint(QObject):
    done = False
    def eventFilter(self, watched, event):
        if event.type() == QEvent.Type.Paint and not self.done:
            self.done = True
            print(f"probe shown {time.time():.6f}", flush=True)
            if os.environ.get("AGENT_DESKTOP_PROBE") == "login":
                print(f"probe logged_in {time.time():.6f} rss_kb={rss()}", flush=True)
            QTimer.singleShot(0, app.quit)
        return False
first_paint = FirstPaint()
window.installEventFilter(first_paint)
window.show()
sys.exit(app.exec())
"""
BASELINE = [sys.executable, "-c", BASELINE_CODE]


def one_run(mode: str, platform: str, settings_file: Path | None, app: list[str] = APP) -> dict:
    with tempfile.TemporaryDirectory() as config:
        env = {**os.environ, "AGENT_DESKTOP_PROBE": mode, "QT_QPA_PLATFORM": platform, "XDG_CONFIG_HOME": config}
        args = app + (["--settings", str(settings_file)] if settings_file else [])
        if mode == "login":  # fill the login window as a returning agent would find it
            ini = Path(config) / "AgentDesktop" / "agent-desktop.conf"
            ini.parent.mkdir(parents=True)
            ini.write_text(f"[login]\nagent_id={DEMO_AGENT}\nplace=bench\n")
            env["AGENT_DESKTOP_BENCH_PASSWORD"] = DEMO_PASSWORD
        started = time.time()
        result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    probes = {line.split()[1]: line.split()[2:] for line in result.stdout.splitlines() if line.startswith("probe ")}
    if result.returncode != 0 or "shown" not in probes or (mode == "login" and "logged_in" not in probes):
        raise RuntimeError(
            f"agent-desktop did not report ({result.returncode}):\n{result.stdout}\n{result.stderr[-2000:]}"
        )
    out = {"shown_s": float(probes["shown"][0]) - started}
    if mode == "login":
        out["rss_kib"] = int(probes["logged_in"][1].split("=")[1])
    return out


def spread(values: Sequence[float], scale: float = 1.0, digits: int = 3) -> dict:
    return {"median": round(statistics.median(values) / scale, digits), "min": round(min(values) / scale, digits),
            "max": round(max(values) / scale, digits)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--platform", default="offscreen", choices=["offscreen", "xcb"])
    parser.add_argument("--app", action="append", default=[], metavar="EXE",
                        help="also time this agent-desktop executable (repeatable), alternating with the virtualenv's")
    parser.add_argument("--memory-runs", type=int,
                        help="logins measured for memory (default: a third of --runs, at least 3)")
    args = parser.parse_args()
    apps = {"venv": APP, "baseline": BASELINE, **{path: [path] for path in args.app}}
    for app in apps.values():
        one_run("shown", args.platform, None, app)  # warm the OS file cache once; "cold" = a new process
    starts: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(args.runs):
        for name, app in apps.items():
            starts[name].append(one_run("shown", args.platform, None, app)["shown_s"])
    servers = DemoServers()
    servers.start()
    memory: dict[str, list[int]] = {name: [] for name in apps}
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as it:
            it.write("".join(f'[[site]]\nname = "{name}"\nurl = "{s.url}"\n' for name, s in servers.sites.items()))
        memory_runs = args.memory_runs or max(3, args.runs // 3)
        for _ in range(memory_runs):
            for name, app in apps.items():
                memory[name].append(one_run("login", args.platform, Path(it.name), app)["rss_kib"])
    finally:
        servers.stop()
        os.unlink(it.name)
    venv_median = statistics.median(starts["venv"])
    baseline_start, baseline_rss = statistics.median(starts["baseline"]), statistics.median(memory["baseline"])
    others = {name: {"start_to_login_window_s": spread(starts[name]),
                     "start_ratio_to_venv": round(statistics.median(starts[name]) / venv_median, 2),
                     "start_ratio_to_baseline": round(statistics.median(starts[name]) / baseline_start, 2),
                     "rss_ratio_to_baseline": round(statistics.median(memory[name]) / baseline_rss, 2),
                     "rss_after_login_mib": {**spread(memory[name], 1024, 1), "runs": len(memory[name])}}
              for name in args.app}
    print(json.dumps({
        "platform": args.platform, "runs": args.runs, "cpus": os.cpu_count(),
        "start_to_login_window_s": spread(starts["venv"]),
        "rss_after_login_mib": {**spread(memory["venv"], 1024, 1), "runs": len(memory["venv"])},
        "baseline": {"start_to_window_s": spread(starts["baseline"]),
                     "rss_after_paint_mib": {**spread(memory["baseline"], 1024, 1), "runs": len(memory["baseline"])}},
        "start_ratio_to_baseline": round(venv_median / baseline_start, 2),
        "rss_ratio_to_baseline": round(statistics.median(memory["venv"]) / baseline_rss, 2),
        **({"apps": others} if others else {}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
