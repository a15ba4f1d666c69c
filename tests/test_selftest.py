"""``--self-test``: each check on its own (good and bad input), the exit code IT scripts read, and
the commands end to end against real servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import trustme

from desktop import selftest as ds
from server_stub import selftest as ss
from tests.support.servers import REPO, reserve_port


def test_a_failed_required_check_makes_exit_1_and_a_warning_does_not():
    lines: list[str] = []
    warned = [ss.Check("a", True, "fine"), ss.Check("b", False, "no backend", required=False)]
    assert ss.report(warned, lines.append, program="t") == 0
    assert lines == ["ok    a: fine", "warn  b: no backend", "t: passed; 2 checks, 0 failed, 1 warnings"]
    lines.clear()
    assert ss.report([*warned, ss.Check("c", False, "broken")], lines.append, program="t") == 1
    assert lines[2] == "FAIL  c: broken"
    assert lines[-1] == "t: FAILED (c); 3 checks, 1 failed, 1 warnings"


def test_a_check_that_raises_fails_with_the_error_instead_of_stopping_the_report():
    @ss.guarded("exploding")
    def exploding() -> ss.Check:
        raise ValueError("bad value")

    assert exploding() == ss.Check("exploding", False, "ValueError: bad value")


def test_a_reachable_site_answers_a_register_with_its_name_and_protocol(make_server):
    server = make_server(name="B")
    check = ss.check_site("B", server.url, timeout=5)
    assert check.ok, check.detail
    assert "as server B, protocol 1, no TLS (ws://)" in check.detail


def test_an_unreachable_site_fails():
    port = reserve_port()  # nothing listens there
    check = ss.check_site("A", f"ws://127.0.0.1:{port}", timeout=5)
    assert (check.status, check.name) == ("FAIL", "site A")
    assert f"ws://127.0.0.1:{port}: unreachable" in check.detail


def test_a_site_that_accepts_but_never_answers_fails_within_the_timeout():
    with socket.socket() as silent:  # listens, never speaks: the WebSocket handshake hangs
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}"
        check = ss.check_site("A", url, timeout=0.5)
    assert check.status == "FAIL" and check.detail == f"{url}: no answer within 0.5 s"


@pytest.fixture
def tls_server(make_server, tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(key)
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    ca.cert_pem.write_to_path(ca_file)
    return make_server(["--tls-cert", str(chain), "--tls-key", str(key)]), ca_file


def test_a_wss_site_is_verified_with_the_configured_ca_and_refused_without_it(tls_server):
    server, ca_file = tls_server
    trusted = ss.check_site("A", server.url, ca_file=ca_file, timeout=5)
    assert trusted.ok and trusted.detail.endswith("TLS verified"), trusted.detail
    untrusted = ss.check_site("A", server.url, timeout=5)  # the system store does not know the test CA
    assert untrusted.status == "FAIL" and "TLS not verified" in untrusted.detail


def test_tls_trust_loads_a_ca_file_and_rejects_one_without_certificates(tmp_path):
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(ca_file)
    assert ss.check_tls_trust(ca_file, required=True) == ss.Check("TLS trust", True, f"{ca_file}: 1 CA certificates")
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    assert ss.check_tls_trust(empty, required=True).status == "FAIL"
    assert ss.check_tls_trust(empty, required=False).status == "warn"  # no wss:// site needs it


def test_machine_settings_parse_or_say_what_is_wrong(tmp_path):
    good = tmp_path / "settings.toml"
    good.write_text('preferred_site = "B"\n[[site]]\nname = "A"\nurl = "ws://a:1"\n[[site]]\nname = "B"\nurl = "ws://b:1"\n')
    check, path = ds.check_machine_settings(good)
    assert (check.ok, path) == (True, good) and check.detail == f"{good}: sets preferred_site, sites"
    bad = tmp_path / "bad.toml"
    bad.write_text("preferred_site = \n")
    check, _ = ds.check_machine_settings(bad)
    assert check.status == "FAIL" and "not valid TOML" in check.detail


def test_user_settings_that_are_not_a_settings_file_fail(tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings

    conf = tmp_path / "agent-desktop.conf"
    conf.write_text("[login]\nagent_id=1001\n")
    assert ds.check_user_settings(QSettings(str(conf), QSettings.Format.IniFormat)).ok
    conf.write_bytes(b"[login\n\x00\xff=\n")
    check = ds.check_user_settings(QSettings(str(conf), QSettings.Format.IniFormat))
    assert check.status == "FAIL" and check.detail == f"{conf} is not a valid settings file"


def test_platform_plugins_load_or_are_reported_missing():
    assert ds.check_platform_plugin("offscreen").ok
    missing = ds.check_platform_plugin("nosuchplatform")
    assert missing.status == "FAIL" and missing.detail == "not found on the Qt plugin path"


def test_without_a_keyring_backend_the_check_says_why_and_is_not_required(monkeypatch):
    monkeypatch.setattr("desktop.credentials.keyring_unavailable_reason", lambda: "No keyring here.")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    check = ds.check_keyring()
    assert check.status == "warn" and check.detail.startswith("no backend: No keyring here.")


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return subprocess.run([sys.executable, *args], cwd=REPO, env={**environ, **env}, capture_output=True, text=True,
                          timeout=60)


def test_agent_desktop_self_test_passes_with_both_sites_up_and_fails_when_one_is_down(make_server, tmp_path):
    a = make_server(name="A")
    dead = f"ws://127.0.0.1:{reserve_port()}"
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[[site]]\nname = "A"\nurl = "{a.url}"\n[[site]]\nname = "B"\nurl = "{dead}"\n')
    result = run("-m", "desktop.app", "--self-test", "--settings", str(settings), XDG_CONFIG_HOME=str(tmp_path))
    lines = result.stdout.splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert any(line.startswith("ok    Qt platform plugin xcb") for line in lines), result.stdout
    assert any(line.startswith("ok    site A: ") for line in lines), result.stdout
    assert any(line.startswith(f"FAIL  site B: {dead}: unreachable") for line in lines), result.stdout
    assert lines[-1].startswith("agent-desktop self-test: FAILED (site B)")

    settings.write_text(f'[[site]]\nname = "A"\nurl = "{a.url}"\n')
    result = run("-m", "desktop.app", "--self-test", "--settings", str(settings), XDG_CONFIG_HOME=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("agent-desktop self-test: passed")


def test_the_install_scope_needs_no_site_and_no_user(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[[site]]\nname = "A"\nurl = "ws://127.0.0.1:{reserve_port()}"\n')
    result = run("-m", "desktop.app", "--self-test", "install", "--settings", str(settings))
    assert result.returncode == 0, result.stdout + result.stderr
    names = [line[6:].split(":")[0] for line in result.stdout.splitlines()[:-1]]
    assert "site A" not in names and "user settings" not in names and "keyring" not in names
    assert {"resources", "Qt platform plugin xcb", "Qt", "icons", "machine settings", "TLS trust"} <= set(names)


def test_interaction_server_self_test_fails_without_a_secret_and_warns_about_a_dead_peer(tmp_path):
    missing = run("-m", "server_stub", "--self-test", INTERACTION_SERVER_SECRET="")
    assert missing.returncode == 1
    assert "FAIL  settings: a shared secret is required" in missing.stdout
    peer = f"ws://127.0.0.1:{reserve_port()}"
    result = run("-m", "server_stub", "--self-test", "--port", "0", "--peer", peer,
                 INTERACTION_SERVER_SECRET="s3cret-0123456789abcdef")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"warn  site peer: {peer}: unreachable" in result.stdout
    empty = tmp_path / "agents.toml"
    empty.write_text("# nobody yet\n")
    result = run("-m", "server_stub", "--self-test", "--port", "0", "--agents", str(empty),
                 INTERACTION_SERVER_SECRET="s" * 16)
    assert result.returncode == 0 and f"warn  agent directory: {empty}: no users yet" in result.stdout, result.stdout
