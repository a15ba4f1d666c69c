"""The main job: ``agent-desktop --demo`` with a display (offscreen here) and without one."""

from __future__ import annotations

import os
import re
import socket
import subprocess

import pytest
from PySide6.QtCore import Qt

from desktop.demo import DEMO_AGENT, DEMO_PASSWORD
from tests.support.servers import REPO, reserve_adjacent_ports, wait_until
from tests.ui.test_display_probe import unused_display_number

pytestmark = pytest.mark.slow
WAIT = 10_000


def test_demo_window_fills_in_the_agent_and_simulates_failure_and_restart(demo_servers, make_desktop, qtbot):
    desktop = make_desktop(list(demo_servers.sites.values()))
    demo_servers.attach(desktop)
    login, main = desktop.login_window, desktop.main_window
    assert (login.agent_edit.text(), login.password_edit.text()) == (DEMO_AGENT, DEMO_PASSWORD)
    qtbot.mouseClick(login.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "secondary, standby"
                    and main.connections.role_of("A") == "primary, logged in", timeout=WAIT)
    actions = {a.text(): a for a in main.demo_menu.actions()}
    assert set(actions) == {"Simulate site A failure", "Restart site A", "Simulate site B failure", "Restart site B"}

    actions["Simulate site A failure"].trigger()
    qtbot.waitUntil(lambda: main.banner.headline.text().startswith("Moved to site B"), timeout=WAIT)
    assert not demo_servers.sites["A"].running()
    actions["Restart site A"].trigger()
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "secondary, standby", timeout=WAIT)
    assert main.connections.role_of("B") == "primary, logged in"


@pytest.fixture
def demo_desktop(demo_servers, qloop, user_store):
    """The app's own wiring for ``--demo`` (controller + Settings window), on the demo's free ports."""
    from desktop.app import build_parser, open_desktop
    from desktop.ui.settings import resolve

    args = build_parser().parse_args(["--demo"])
    controller, settings_window = open_desktop(args, user_store, resolve(user_store, None), demo_servers)
    controller.show()
    yield controller, settings_window
    controller.shutdown()
    for window in (controller.login_window, controller.main_window, settings_window):
        window.close()
        window.deleteLater()


def test_saving_settings_during_the_demo_keeps_the_demo_sites(demo_servers, demo_desktop, user_store, qtbot):
    controller, settings_window = demo_desktop
    demo_urls = [server.url for server in demo_servers.sites.values()]
    assert all(not url.endswith((":8701", ":8702")) for url in demo_urls)  # not the shipped sites.toml
    qtbot.mouseClick(controller.login_window.settings_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(settings_window.isVisible, timeout=WAIT)
    table = settings_window.sites_table
    assert [table.item(row, 1).text() for row in range(table.rowCount())] == demo_urls
    assert not table.isEnabled() and "demo" in table.toolTip()
    settings_window.timeout_spin.setValue(3.0)
    with qtbot.waitSignal(settings_window.applied):
        qtbot.mouseClick(settings_window.save_button, Qt.MouseButton.LeftButton)
    assert [site.url for site in controller.settings.sites] == demo_urls
    assert user_store.value("sites/urls") is None, "the demo's ports were saved as the user's sites"
    combo = controller.login_window.site_combo
    assert [combo.itemData(i) for i in range(combo.count())] == ["A", "B"]

    # The user's heartbeat timeout reaches the session core, and the login works on the demo sites.
    qtbot.mouseClick(controller.login_window.login_button, Qt.MouseButton.LeftButton)
    main = controller.main_window
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "primary, logged in"
                    and main.connections.role_of("B") == "secondary, standby", timeout=WAIT)
    assert controller.bridge.session.config.heartbeat_timeout == 3.0
    assert [e.url for e in controller.bridge.session.config.endpoints] == demo_urls


def run_demo(env: dict) -> tuple[int, subprocess.CompletedProcess]:
    """``agent-desktop --demo --base-port P`` with P and P + 1 reserved; P and the finished run."""
    base = reserve_adjacent_ports(2)
    result = subprocess.run([str(REPO / ".venv/bin/agent-desktop"), "--demo", "--base-port", str(base)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=90)
    return base, result


def test_the_real_demo_command_opens_the_window_and_logs_the_demo_agent_in(tmp_path):
    """``agent-desktop --demo`` as a newcomer runs it (offscreen; the probe clicks Log in with what
    the demo filled in, waits for the standby, then closes): any Qt warning is fatal here."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "QT_QPA_PLATFORM": "offscreen", "QT_FATAL_WARNINGS": "1",
           "AGENT_DESKTOP_PROBE": "login"}
    env.pop("AGENT_DESKTOP_BENCH_PASSWORD", None)
    base, result = run_demo(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probe logged_in" in result.stdout, result.stdout + result.stderr
    saved = (tmp_path / "AgentDesktop" / "agent-desktop.conf").read_text()
    assert f"agent_id={DEMO_AGENT}" in saved and "sites" not in saved
    for port in (base, base + 1):  # the demo stopped its servers on the way out
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


@pytest.mark.parametrize("display", ["unset", "stale"])
def test_without_a_display_the_main_job_says_so_and_prints_the_failover_timeline(display):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    reason = "no DISPLAY or WAYLAND_DISPLAY is set"
    if display == "stale":  # an X display that is gone: Qt would abort, so it must be probed
        env.update(DISPLAY=f":{unused_display_number()}", QT_QPA_PLATFORM="xcb")
        reason = f"DISPLAY={env['DISPLAY']} does not answer"
    base, result = run_demo(env)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"agent-desktop: no display available ({reason}), so the demo runs headless (same core, "
                        f"no windows); failover timeline follows.")
    assert lines[1] == f"Sites: A ws://127.0.0.1:{base}, B ws://127.0.0.1:{base + 1}"
    text = result.stdout
    order = ["Site A: primary, logged in", "Site B: secondary, standby", "Failover: site A lost, detecting",
             "Failover: logging in on site B", "Failover: restored on site B", "Banner: Moved to site B in",
             "Site A: secondary, standby", "Logged out (logout)"]
    positions = [text.find(marker) for marker in order]
    assert -1 not in positions and positions == sorted(positions), text
    assert re.search(r"Banner: Moved to site B in \d+ ms; Not Ready – Lunch, 00:0[2-9], kept", text), text


def test_base_port_needs_the_demo():
    result = subprocess.run([str(REPO / ".venv/bin/agent-desktop"), "--base-port", "9001"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--base-port needs --demo" in result.stderr


def test_the_real_app_starts_logs_in_logs_out_and_exits_cleanly(pair, tmp_path):
    """The console script end to end (probe mode: log in with the filled-in fields, then close):
    no Qt warning (fatal here), no crash at exit, the servers see a logout."""
    a, b = pair
    settings = tmp_path / "it.toml"
    settings.write_text(f'[[site]]\nname = "A"\nurl = "{a.url}"\n[[site]]\nname = "B"\nurl = "{b.url}"\n')
    config = tmp_path / "config" / "AgentDesktop"
    config.mkdir(parents=True)
    (config / "agent-desktop.conf").write_text("[login]\nagent_id=1001\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "QT_QPA_PLATFORM": "offscreen",
           "QT_FATAL_WARNINGS": "1", "AGENT_DESKTOP_PROBE": "login", "AGENT_DESKTOP_BENCH_PASSWORD": "demo"}
    result = subprocess.run([str(REPO / ".venv/bin/agent-desktop"), "--settings", str(settings)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probe logged_in" in result.stdout
    assert "geometry" in (config / "agent-desktop.conf").read_text()  # remembered for the next start
    wait_until(lambda: a.log_has("agent 1001 logged out at epoch 1 (logout)"), message="the logout on site A")
