""""Remember me" against a real Secret Service: gnome-keyring-daemon on a private D-Bus session
(dbus-run-session), through the login window, keyring's own backend choice and real servers."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys

from tests.support.servers import REPO

BINARIES = ("dbus-run-session", "gnome-keyring-daemon")

def test_keyring_secret_service_backend_comes_with_its_dependencies():
    """keyring's SecretService backend needs secretstorage (which needs jeepney) on Linux."""
    requires = " ".join(importlib.metadata.requires("keyring") or [])
    assert "SecretStorage" in requires and "jeepney" in requires.lower()
    assert importlib.util.find_spec("secretstorage") and importlib.util.find_spec("jeepney")


def test_remember_me_in_the_login_window_round_trips_through_a_real_secret_service(pair, tmp_path):
    """Tick "remember me" in the real login window, log in against real servers, find the secret in
    the Secret Service, and see the next start fill it in, with keyring choosing its own backend."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    # The test command installs them (.ci/setup --test): a machine without them is set up wrong.
    assert not missing, (
        f"no {', '.join(missing)} here: run `bash .ci/test`, whose set-up installs dbus, dbus-x11, gnome-keyring"
    )
    a, b = pair
    home, runtime = tmp_path / "home", tmp_path / "run"
    (home / ".cache").mkdir(parents=True)
    (home / ".local" / "share").mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_CONFIG_HOME": str(home / ".config"),
           "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen", "QT_FATAL_WARNINGS": "1",
           "SITE_A_URL": a.url, "SITE_B_URL": b.url, "DESKTOP_STORE": str(tmp_path / "user.ini")}
    result = subprocess.run(["dbus-run-session", "--", sys.executable, "-m", "tests.ui.secret_service_login"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "backend keyring.backends.SecretService", lines  # keyring's own choice
    assert lines[1:] == ["stored in the Secret Service", "next start fills in the password",
                         "remember me round trip done"], result.stdout + result.stderr
