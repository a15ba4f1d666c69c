"""Failover against real process faults: server processes killed, stopped and restarted under a
headless agent process, checked from the agent's event stream and the servers' reporting streams."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from desktop.core.config import SessionConfig
from server_stub import protocol as p
from tests.support.agents import AgentProcess
from tests.support.reporting import ReportingWatcher
from tests.support.servers import REPO, wait_until

pytestmark = pytest.mark.slow

# Detection of a hung primary: agent-cli runs with the default heartbeat settings. The link is
# declared dead HEARTBEAT_TIMEOUT after the last frame heard, and the last heartbeat came at most
# one server interval (our heartbeat_interval, which the server adopts) before the hang. MARGIN
# covers the lazy link timer and two processes sharing a loaded 2-core machine.
_DEFAULTS = SessionConfig(endpoints=(p.Site("A", "ws://a"),))
HEARTBEAT_TIMEOUT, HEARTBEAT_INTERVAL = _DEFAULTS.heartbeat_timeout, _DEFAULTS.heartbeat_interval
MARGIN = 0.5


@pytest.fixture
def watchers():
    opened: list[ReportingWatcher] = []

    def watch(url: str) -> ReportingWatcher:
        opened.append(ReportingWatcher(url))
        return opened[-1]

    yield watch
    for w in opened:
        w.close()


@pytest.fixture
def agents():
    started: list[AgentProcess] = []

    def start(agent_id: str, a, b, *extra: str) -> AgentProcess:
        started.append(AgentProcess(agent_id, [a.url, b.url], *extra))
        return started[-1]

    yield start
    for agent in started:
        agent.stop()


def logged_in_on_a(agents, a, b, agent_id="1001", state="not_ready:lunch", *extra: str) -> tuple[AgentProcess, dict]:
    agent = agents(agent_id, a, b, "--state", state, *extra)
    status = agent.wait_for("AgentStateChanged", endpoint="A")
    agent.wait_for("LinkRoleChanged", endpoint="B", role="secondary")
    return agent, status


@pytest.mark.server_processes
def test_kill9_primary_moves_login_to_backup_with_state(pair, agents, watchers):
    a, b = pair
    report_a, report_b = watchers(a.url), watchers(b.url)
    agent, before = logged_in_on_a(agents, a, b)
    assert (before["state"], before["reason"], before["epoch"]) == ("not_ready", "lunch", 1)
    report_a.wait_for("EventAgentLogin", "1001", epoch=1)
    mark = len(agent.events)

    a.kill9()

    assert report_a.closed.wait(5), "the dead server's reporting stream did not end"
    after = agent.wait_for("AgentStateChanged", endpoint="B", after=mark)
    assert (after["state"], after["reason"], after["epoch"]) == ("not_ready", "lunch", 2)
    assert after["since_ms"] == before["since_ms"], "time in state was reset by the failover"
    agent.wait_for("FailoverPhase", phase="restored", after=mark, to_endpoint="B")
    login = report_b.wait_for("EventAgentLogin", "1001", epoch=2)
    assert (login["agent"]["state"], login["agent"]["reason"], login["agent"]["since_ms"]) == (
        "not_ready", "lunch", before["since_ms"])


@pytest.mark.server_processes
def test_sigstop_primary_is_detected_and_fenced_after_sigcont(pair, agents, watchers):
    a, b = pair
    # Watching A from before the hang: anything A reports once it resumes is seen.
    report_a, report_b = watchers(a.url), watchers(b.url)
    agent, before = logged_in_on_a(agents, a, b, state="ready")
    report_a.wait_for("EventAgentLogin", "1001", epoch=1)
    mark = len(agent.events)

    a.sigstop()
    stopped_at = time.monotonic()
    try:
        detecting = agent.wait_for("FailoverPhase", phase="detecting", after=mark, timeout=10)
        after = agent.wait_for("AgentStateChanged", endpoint="B", after=mark, timeout=10)
    finally:
        a.sigcont()
    detected_in = detecting["t"] - stopped_at
    assert HEARTBEAT_TIMEOUT - HEARTBEAT_INTERVAL <= detected_in <= HEARTBEAT_TIMEOUT + MARGIN, (
        f"hang detected after {detected_in:.2f} s; the heartbeat timeout is {HEARTBEAT_TIMEOUT} s")
    assert (after["state"], after["epoch"]) == ("ready", 2)
    assert after["since_ms"] == before["since_ms"], "time in state was reset by the failover"
    report_b.wait_for("EventAgentLogin", "1001", epoch=2)

    # The resumed old primary must not take the agent back nor report it logged in: its epoch-1
    # login ends (the link was given up; the peer reports epoch 2) and nothing else is reported.
    mark = len(agent.events)
    agent.wait_for("LinkRoleChanged", endpoint="A", role="secondary", after=mark, timeout=15)
    report_a.wait_for("EventAgentLogout", "1001", epoch=1)
    assert not report_a.closed.is_set(), "A's reporting stream ended: the check below would prove nothing"
    assert [e["agent"]["epoch"] for e in report_a.of("EventAgentLogin", "1001")] == [1]
    assert agent.role_of("B") == "primary"
    assert not watchers(a.url).wait_for("EventReportingSnapshot")["agents"]


@pytest.mark.server_processes
def test_restarted_primary_becomes_secondary(pair, agents, watchers):
    a, b = pair
    agent, _ = logged_in_on_a(agents, a, b)
    mark = len(agent.events)
    a.kill9()
    agent.wait_for("LoggedIn", endpoint="B", after=mark)
    mark = len(agent.events)

    a.start()

    agent.wait_for("LinkRoleChanged", endpoint="A", role="secondary", after=mark, timeout=15)
    assert agent.role_of("B") == "primary"
    report_a = watchers(a.url)
    assert "1001" not in [x["agent_id"] for x in report_a.wait_for("EventReportingSnapshot")["agents"]]
    assert a.log_has("agent 1001 available (secondary)")


STANDBY_ONLY = textwrap.dedent(
    """
    import asyncio, json, sys
    from websockets.asyncio.client import connect
    async def main():
        async with connect(sys.argv[1], proxy=None, ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "RequestRegisterClient", "request_id": "1", "protocol_version": 1,
                                      "client_name": "standby-only"}))
            await ws.send(json.dumps({"type": "RequestAgentAvailable", "request_id": "2", "agent_id": "1003",
                                      "password": "demo"}))
            while True:
                message = json.loads(await ws.recv())
                if message.get("request_id") == "2":
                    print(message["type"], flush=True)
                await ws.send('{"type":"Heartbeat"}')
    asyncio.run(main())
    """
)


def test_killed_agent_is_reported_logged_out_but_standby_only_client_is_not(pair, agents, watchers):
    a, b = pair
    report_a = watchers(a.url)
    standby = subprocess.Popen([sys.executable, "-c", STANDBY_ONLY, a.url], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert standby.stdout.readline().strip() == "EventAck"
        standby.kill()
        standby.wait(5)
    finally:
        standby.kill()
    agent, _ = logged_in_on_a(agents, a, b)

    agent.kill9()

    logout = report_a.wait_for("EventAgentLogout", "1001")
    assert logout["reason"] == "disconnected"
    # The standby-only client died before the agent: anything it caused would already be there.
    assert not report_a.of("EventAgentLogout", "1003")
    assert [e["agent_id"] for e in report_a.of("EventAgentLogout")] == ["1001"]


def test_normal_logout_reports_and_withdraws_the_standby(pair, agents, watchers):
    a, b = pair
    report_a, report_b = watchers(a.url), watchers(b.url)
    agent, _ = logged_in_on_a(agents, a, b, "1001", "not_ready:lunch", "--trace-wire")

    agent.command("logout")

    logout = report_a.wait_for("EventAgentLogout", "1001")
    assert logout["reason"] == "logout"
    agent.wait_for("LoggedOut", reason="logout")
    wait_until(lambda: b.log_has("agent 1001 not available"), 5, message="RequestAgentNotAvailable at B")
    assert agent.proc.wait(5) == 0
    assert not report_b.of("EventAgentLogin", "1001") and not report_b.of("EventAgentLogout", "1001")
    # The standby is withdrawn only once A has acknowledged the logout, i.e. after A logged the
    # agent out and reported it: in the agent's own wire trace, the ack comes first.
    wire = [e for e in agent.events if e["event"] == "Wire"]
    (request,) = [e for e in wire if e["type"] == "RequestAgentLogout"]
    assert request["endpoint"] == "A"
    ack = next(
        i for i, e in enumerate(wire) if e["direction"] == "received" and e["request_id"] == request["request_id"]
    )
    withdraw = [i for i, e in enumerate(wire) if e["type"] == "RequestAgentNotAvailable"]
    assert [wire[i]["endpoint"] for i in withdraw] == ["B"]
    assert wire[ack]["type"] == "EventAck" and ack < withdraw[0], wire[-6:]


@pytest.mark.server_processes
@pytest.mark.parametrize("span", [2.0, 8.0])
def test_a_stopped_agent_keeps_its_login_and_nobody_reports_a_logout_or_a_failover(pair, agents, watchers, span):
    """agent-cli stopped (SIGSTOP) for 2 s and for 8 s, then continued: its primary holds the login
    through the pause (suspect, reported unreachable, offered nothing), the agent's own lateness
    check reads what its servers sent before judging them, and no reporting stream shows a logout
    or a failover login (docs/failover.md, "Asymmetric liveness")."""
    a, b = pair
    report_a, report_b = watchers(a.url), watchers(b.url)
    agent, before = logged_in_on_a(agents, a, b)
    report_a.wait_for("EventAgentLogin", "1001", epoch=1)
    mark = len(agent.events)

    agent.proc.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    try:
        if span > 2.0:  # long enough for A to report it, however loaded the machine
            report_a.wait_for("EventAgentStateChanged", "1001", timeout=span, epoch=1, reachable=False)
        time.sleep(max(0.0, span - (time.monotonic() - stopped_at)))  # the fault itself: a pause this long
    finally:
        agent.proc.send_signal(signal.SIGCONT)

    # A marker that went through the same login after the pause: everything before it is reported.
    agent.command("notready meeting")
    changed = report_a.wait_for("EventAgentStateChanged", "1001", timeout=10, reason="meeting")
    assert changed["epoch"] == 1 and "reachable" not in changed
    after = agent.wait_for("AgentStateChanged", reason="meeting", after=mark)
    assert (after["endpoint"], after["epoch"]) == ("A", 1)
    assert [e["agent"]["epoch"] for e in report_a.of("EventAgentLogin", "1001")] == [1]
    assert report_a.of("EventAgentLogout", "1001") == []
    assert report_b.of("EventAgentLogin", "1001") == [] and report_b.of("EventAgentLogout", "1001") == []
    moved = [e for e in agent.events[mark:] if e["event"] in ("FailoverPhase", "LoggedIn", "LoginFailed")]
    assert moved == [], moved
    assert agent.role_of("A") == "primary"


@pytest.mark.server_processes
def test_an_agent_that_cannot_hear_its_live_primary_for_a_while_keeps_its_login(pair, agents, watchers):
    """A false suspicion between two live servers (docs/failover.md, "Overload"): for 2.5 s nothing
    A sends reaches agent-cli (held in a relay, as frames stuck behind a starved reader), while A
    hears the agent and B hears A. At the heartbeat timeout the agent asks B, its standby, first
    (RequestPrimaryCheck); B asks A over the peer link, A vouches, and the login stays: no failover,
    no login at B, no logout at A."""
    from types import SimpleNamespace

    from tests.support.tcp_relay import TcpRelay

    a, b = pair
    relay = TcpRelay(a.port)
    try:
        report_a, report_b = watchers(a.url), watchers(b.url)
        agent, _ = logged_in_on_a(agents, SimpleNamespace(url=relay.url), b)
        report_a.wait_for("EventAgentLogin", "1001", epoch=1)
        mark = len(agent.events)
        relay.hold_to_client()
        time.sleep(2.5)  # the fault itself: A unheard this long
        relay.release()
        agent.command("notready meeting")  # a marker through the same login, after the fault
        changed = report_a.wait_for("EventAgentStateChanged", "1001", timeout=10, reason="meeting")
        assert changed["epoch"] == 1
        assert [e["agent"]["epoch"] for e in report_a.of("EventAgentLogin", "1001")] == [1]
        assert report_a.of("EventAgentLogout", "1001") == []
        assert report_b.of("EventAgentLogin", "1001") == []
        moved = [e for e in agent.events[mark:] if e["event"] in ("FailoverPhase", "LoggedIn", "LoginFailed")]
        assert moved == [], moved
        assert agent.role_of("A") == "primary"
    finally:
        relay.stop()
