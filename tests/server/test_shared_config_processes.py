"""One configuration across sites with real processes (issue 13): ``add-agent`` at site A's files
lets the new agent log in at site B, which was not restarted and whose files now hold it; a
supervisor at A sets an agent logged in at B Not Ready."""

from __future__ import annotations

import json
import shutil

import pytest

from server_stub.directory import Directory
from tests.server.test_cli import cli
from tests.server.wire import PASSWORD, connect_registered, login, run
from tests.support.servers import REPO, ServerProcess, linked, reserve_port, wait_until


def site_files(tmp_path, name: str) -> list[str]:
    config, agents = tmp_path / f"{name}-site.toml", tmp_path / f"{name}-agents.toml"
    shutil.copy(REPO / "resources" / "sites.toml", config)
    shutil.copy(REPO / "resources" / "demo_agents.toml", agents)
    return ["--config", str(config), "--agents", str(agents)]


def start_sites(tmp_path) -> tuple[ServerProcess, ServerProcess]:
    pa, pb = reserve_port(), reserve_port()
    a = ServerProcess("A", pa, pb, site_files(tmp_path, "A")).start()
    try:
        return a, ServerProcess("B", pb, pa, site_files(tmp_path, "B")).start()
    except BaseException:
        a.stop()
        raise


@pytest.mark.server_processes
def test_an_agent_added_at_site_a_logs_in_at_site_b_without_a_restart(tmp_path):
    a, b = start_sites(tmp_path)
    try:
        wait_until(lambda: linked(a, b), timeout=10, message="the peer links")
        assert cli("add-agent", str(tmp_path / "A-agents.toml"), "--id", "3001", "--name", "Newcomer",
                   "--queue", "sales", "--stdin", stdin="pw-new\n").returncode == 0
        # No signal: A sees its directory file change, and B takes the change from A.
        wait_until(lambda: b.log_has("taking shared configuration version 1@A"), timeout=10,
                   message="B taking A's change")
        wait_until(lambda: b.log_has("shared configuration 1@A stored"), timeout=10, message="B storing it")
        stored = Directory.load(tmp_path / "B-agents.toml")
        newcomer = stored.get("3001")
        assert newcomer is not None and newcomer.name == "Newcomer"
        # B's own watch reads the files it wrote: no change of its own (nothing bounces back to A).
        wait_until(lambda: b.log_has("site files read again: no change"), timeout=10, message="B's re-read")
        assert not b.log_has("shared configuration changed here")
        version = json.loads((tmp_path / "B-agents.toml.version").read_text())
        assert (version["generation"], version["origin"]) == (1, "A")

        async def scenario():
            supervisor = await connect_registered(a.url, "supervisor-view")
            subscribed = await supervisor.request({"type": "RequestSubscribeReporting", "user_id": "sup1",
                                                   "password": PASSWORD, "scope": "center"})
            assert subscribed["type"] == "EventAck", subscribed
            desk = await connect_registered(b.url)
            ack, status = await login(desk, "3001", password="pw-new")
            assert ack["epoch"] == 1 and status["server"] == "B"
            # The supervisor, connected to A only, sees the agent at B and sets it Not Ready.
            while True:
                event = await supervisor.recv(timeout=5)
                if event["type"] == "EventAgentLogin" and event["agent"]["agent_id"] == "3001":
                    break
            answer = await supervisor.request({"type": "RequestForceNotReady", "agent_id": "3001",
                                               "reason": "break"})
            assert answer["type"] == "EventAck" and answer["epoch"] == 1, answer
            forced = await desk.expect("EventCurrentAgentStatus", forced_by="sup1@A")
            assert forced["state"] == "not_ready" and forced["reason"] == "break"

        run(scenario())
        assert not any("Traceback" in line for line in a.lines + b.lines)
    finally:
        a.stop()
        b.stop()
