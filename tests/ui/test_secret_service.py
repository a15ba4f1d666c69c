""""Remember me" against a real Secret Service: gnome-keyring-daemon on a private D-Bus session
(dbus-run-session), through keyring's SecretService backend and desktop.credentials."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.support.servers import REPO

BINARIES = ("dbus-run-session", "gnome-keyring-daemon")

HELPER = textwrap.dedent(
    """
    import subprocess, sys
    # Unlock (creating it if needed) the login keyring with a password on stdin; the daemon then
    # owns org.freedesktop.secrets on this private session bus.
    daemon = subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"],
                            input=b"keyring-test-password", capture_output=True, timeout=30)
    assert daemon.returncode == 0, daemon.stderr

    import keyring
    from keyring.backends import SecretService
    keyring.set_keyring(SecretService.Keyring())
    from desktop import credentials

    assert credentials.keyring_unavailable_reason() is None, credentials.keyring_unavailable_reason()
    assert credentials.store_password("1001", "s3cret-pw") is None
    assert credentials.load_password("1001") == "s3cret-pw"

    # Read it back independently of keyring, straight from the Secret Service collection.
    import secretstorage
    connection = secretstorage.dbus_init()
    items = list(secretstorage.get_default_collection(connection).search_items(
        {"service": credentials.SERVICE, "username": "1001"}))
    assert [item.get_secret() for item in items] == [b"s3cret-pw"], items

    credentials.forget_password("1001")
    assert credentials.load_password("1001") is None
    print("round trip through", type(keyring.get_keyring()).__module__)
    """
)


def test_keyring_secret_service_backend_comes_with_its_dependencies():
    """keyring's SecretService backend needs secretstorage (which needs jeepney) on Linux."""
    requires = " ".join(importlib.metadata.requires("keyring") or [])
    assert "SecretStorage" in requires and "jeepney" in requires.lower()
    assert importlib.util.find_spec("secretstorage") and importlib.util.find_spec("jeepney")


def test_remember_me_round_trips_through_a_real_secret_service(tmp_path):
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide {missing} (.ci/setup --test installs dbus, dbus-x11, gnome-keyring)")
        pytest.skip(f"no {', '.join(missing)} on this machine")
    home, runtime = tmp_path / "home", tmp_path / "run"
    (home / ".cache").mkdir(parents=True)
    (home / ".local" / "share").mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    script = tmp_path / "secret_service_helper.py"
    script.write_text(HELPER)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
           "XDG_DATA_HOME": str(home / ".local" / "share"), "PYTHONPATH": str(REPO)}
    result = subprocess.run(["dbus-run-session", "--", sys.executable, str(script)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "round trip through keyring.backends.SecretService" in result.stdout
