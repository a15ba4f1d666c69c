"""The ``supervisor-view`` program as a process: bad input is a clear error; it runs and quits."""

import os
import signal
import subprocess
import sys

from tests.support.servers import REPO, log_count, wait_until


def run_app(*args, env=None):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "desktop.supervisor_app", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_missing_sites_file_is_a_clear_error(tmp_path):
    proc = run_app("--sites", str(tmp_path / "nope.toml"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "cannot read the site list" in err and "nope.toml" in err


def test_the_program_subscribes_to_every_site_and_quits_on_sigterm(pair):
    a, b = pair
    proc = run_app("--servers", f"{a.url},{b.url}", "--user", "sup1", "--password-source", "env",
                   env={"AGENT_PASSWORD": "demo"})
    try:
        wait_until(lambda: log_count(a, "supervisor sup1 subscribed") and log_count(b, "supervisor sup1 subscribed"),
                   timeout=20, message="both servers see the supervisor")
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
