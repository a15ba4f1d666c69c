"""docs/protocol.md's sequence diagrams, one by one, against two peer-linked servers (processes where one dies).

Each test watches the agent's sockets *and* a supervisor's reporting socket on each server, and
asserts the exact events both see. "Reports nothing" is checked with a positive marker: after the
action, a known later event is triggered and must be the very next event on the stream.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.server.wire import (
    WireClient,
    available,
    connect_registered,
    login,
    login_agent,
    ready,
    register,
    run,
    state_request,
    subscribe,
)
from tests.support.servers import async_wait_until, linked, log_count, socket_logged


def now_ms() -> int:
    return int(time.time() * 1000)


async def marker_login(url: str, agent_id: str) -> WireClient:
    client, _, _ = await login_agent(url, agent_id)
    return client


async def expect_marker(sup: WireClient, agent_id: str, seq: int) -> None:
    """The reporting stream's next event is the marker login (so nothing was reported before it)."""
    event = await sup.expect("EventAgentLogin", seq=seq)
    assert event["agent"]["agent_id"] == agent_id, event


def test_normal_start(pair):
    a, b = pair

    async def scenario():
        sup_a, sub_ack, snap_a = await subscribe(a.url)
        sup_b, _, snap_b = await subscribe(b.url)
        assert sub_ack["server"] == "A" and sub_ack["resume_token"]
        assert snap_a["agents"] == [] and snap_b["agents"] == []

        desk_a = await WireClient.open(a.url)
        reg = await register(desk_a, "desktop-1001")
        assert reg["server"] == "A" and reg["protocol_version"] == 1
        assert reg["heartbeat_interval_ms"] == 500 and reg["heartbeat_timeout_ms"] == 1500
        assert "lunch" in {r["code"] for r in reg["reasons"]}
        desk_b = await WireClient.open(b.url)
        assert (await register(desk_b, "desktop-1001"))["server"] == "B"

        before = now_ms()
        ack, status = await login(desk_a, "1001", place="desk-7")
        assert ack["server"] == "A" and ack["epoch"] == 1 and ack["token_expires_ms"] > before
        assert status["server"] == "A" and status["state"] == "not_ready" and "reason" not in status
        assert before - 1000 <= status["since_ms"] <= now_ms() and status["place"] == "desk-7"

        event = await sup_a.expect("EventAgentLogin", server="A", seq=snap_a["seq"] + 1)
        assert event["agent"] == {
            "agent_id": "1001", "name": "Alice Martin", "epoch": 1, "state": "not_ready",
            "since_ms": status["since_ms"], "login_ms": event["agent"]["login_ms"], "place": "desk-7",
        }

        standby = await available(desk_b, "1001", token=ack["resume_token"])
        assert standby["type"] == "EventAck" and standby["role"] == "secondary" and standby["server"] == "B"
        assert "epoch" not in standby
        # The standby socket itself gets nothing more: the next message answers our next request.
        probe = await desk_b.request({"type": "RequestRegisterClient", "protocol_version": 1, "client_name": "x"})
        assert probe["type"] == "EventError" and probe["code"] == "already_registered", probe

        # B reports nothing for the secondary: its stream's next event is a later, unrelated login.
        marker = await marker_login(b.url, "1002")
        await expect_marker(sup_b, "1002", snap_b["seq"] + 1)
        # ... and A's stream has nothing after the login either.
        marker_a = await marker_login(a.url, "1003")
        await expect_marker(sup_a, "1003", snap_a["seq"] + 2)
        for c in (sup_a, sup_b, desk_a, desk_b, marker, marker_a):
            await c.close()

    run(scenario())


def test_normal_logout(pair):
    a, b = pair

    async def scenario():
        sup_a, _, snap_a = await subscribe(a.url)
        sup_b, _, snap_b = await subscribe(b.url)
        desk_a, ack, _ = await login_agent(a.url, "1001")
        desk_b = await connect_registered(b.url)
        assert (await available(desk_b, "1001", token=ack["resume_token"]))["role"] == "secondary"
        await sup_a.expect("EventAgentLogin", seq=snap_a["seq"] + 1)

        out = await state_request(desk_a, "RequestAgentLogout", ack["epoch"])
        assert out["type"] == "EventAck" and out["epoch"] == 1 and out["server"] == "A"
        await sup_a.expect("EventAgentLogout", server="A", seq=snap_a["seq"] + 2, agent_id="1001", epoch=1,
                           reason="logout")

        gone = await desk_b.request({"type": "RequestAgentNotAvailable"})
        assert gone["type"] == "EventAck" and gone["server"] == "B", gone
        again = await desk_b.request({"type": "RequestAgentNotAvailable"})
        assert again["type"] == "EventError" and again["code"] == "invalid_state", again

        # The logged-out socket stays registered: a state request now lacks a login, not a register.
        after = await state_request(desk_a, "RequestAgentReady", 1)
        assert after["type"] == "EventError" and after["code"] == "not_logged_in", after
        snap = (await subscribe(a.url))[2]
        assert snap["agents"] == []

        # Neither server reported anything more: the next events are markers.
        marker_b = await marker_login(b.url, "1002")
        await expect_marker(sup_b, "1002", snap_b["seq"] + 1)
        marker_a = await marker_login(a.url, "1003")
        await expect_marker(sup_a, "1003", snap_a["seq"] + 3)
        for c in (sup_a, sup_b, desk_a, desk_b, marker_a, marker_b):
            await c.close()

    run(scenario())


def test_agent_disconnect_reports_only_logged_in_sockets(pair):
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        desk, ack, _ = await login_agent(a.url, "1001")
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        registered_only = await connect_registered(a.url)
        standby = await connect_registered(a.url)
        assert (await available(standby, "1002"))["role"] == "secondary"

        for client in (registered_only, standby):
            await client.close()
            await async_wait_until(lambda c=client: socket_logged(a, c, "disconnected"), message="disconnect handled")

        await desk.close()  # the agent's desktop goes away while logged in
        await sup.expect("EventAgentLogout", seq=snap["seq"] + 2, agent_id="1001", epoch=ack["epoch"],
                         reason="disconnected")
        snap2 = (await subscribe(a.url))[2]
        assert snap2["agents"] == []
        await sup.close()

    run(scenario())


async def _fail_over_to_b(a, b):
    """Agent 1001 primary on A (Not Ready, lunch), standby on B; A is killed; the desktop logs in
    on B with its resume token. Returns what the later steps need."""
    sup_a, _, snap_a = await subscribe(a.url)
    sup_b, _, snap_b = await subscribe(b.url)
    desk_a, ack, _ = await login_agent(a.url, "1001")
    await sup_a.expect("EventAgentLogin", seq=snap_a["seq"] + 1)
    lunch = await state_request(desk_a, "RequestAgentNotReady", ack["epoch"], reason="lunch")
    assert lunch["type"] == "EventAck", lunch
    status = await desk_a.expect("EventCurrentAgentStatus", state="not_ready", reason="lunch")
    desk_b = await connect_registered(b.url)
    assert (await available(desk_b, "1001", token=ack["resume_token"]))["role"] == "secondary"

    a.kill9()
    code, _ = await sup_a.expect_close(timeout=3)
    assert code is None  # no close frame: the server died (1006 on our side)
    await desk_a.expect_close(timeout=3)

    snapshot = {"state": "not_ready", "reason": "lunch", "since_ms": status["since_ms"]}
    ack_b, status_b = await login(desk_b, "1001", token=ack["resume_token"], epoch=ack["epoch"] + 1, state=snapshot)
    return sup_b, snap_b, desk_b, ack, ack_b, status, status_b


@pytest.mark.server_processes
def test_primary_server_disconnect_moves_login_with_state(pair):
    a, b = pair

    async def scenario():
        sup_b, snap_b, desk_b, ack, ack_b, status, status_b = await _fail_over_to_b(a, b)
        assert ack_b["role"] == "primary" and ack_b["epoch"] == 2 and ack_b["server"] == "B"
        assert ack_b["resume_token"] != ack["resume_token"]
        assert (status_b["state"], status_b["reason"], status_b["since_ms"]) == (
            "not_ready",
            "lunch",
            status["since_ms"],
        )
        assert status_b["server"] == "B"
        event = await sup_b.expect("EventAgentLogin", seq=snap_b["seq"] + 1)
        agent = event["agent"]
        assert (agent["agent_id"], agent["epoch"], agent["state"], agent["reason"], agent["since_ms"]) == (
            "1001", 2, "not_ready", "lunch", status["since_ms"])
        # B serves the agent at the new epoch from now on.
        await ready(desk_b, 2)
        await sup_b.expect("EventAgentStateChanged", seq=snap_b["seq"] + 2, epoch=2, state="ready")
        await sup_b.close()
        await desk_b.close()

    run(scenario())


@pytest.mark.server_processes
def test_old_primary_restarts_as_secondary(pair):
    a, b = pair

    async def scenario():
        sup_b, snap_b, desk_b, ack, ack_b, _, _ = await _fail_over_to_b(a, b)
        await asyncio.to_thread(a.start)  # same port, fresh process; our heartbeats go on meanwhile
        desk_a = await connect_registered(a.url, "desktop-1001")
        standby = await available(desk_a, "1001", token=ack_b["resume_token"])
        assert standby["type"] == "EventAck" and standby["role"] == "secondary" and standby["server"] == "A", standby
        sup_a, sub_ack, snap_a = await subscribe(a.url)
        assert [x["agent_id"] for x in snap_a["agents"]] == []
        # B still holds the login at epoch 2 and reported nothing about A's return.
        await ready(desk_b, 2)
        await sup_b.expect("EventAgentLogin", seq=snap_b["seq"] + 1, server="B")
        await sup_b.expect("EventAgentStateChanged", seq=snap_b["seq"] + 2, state="ready", epoch=2)
        for c in (sup_a, sup_b, desk_a, desk_b):
            await c.close()

    run(scenario())


@pytest.mark.server_processes
def test_sigstopped_primary_is_fenced_when_it_resumes(pair):
    a, b = pair

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        sup_a, _, snap_a = await subscribe(a.url)
        desk_a, ack, _ = await login_agent(a.url, "1001")
        await sup_a.expect("EventAgentLogin", seq=snap_a["seq"] + 1, server="A")
        silent_before = log_count(b, "silent for")

        a.sigstop()
        try:
            # The desktop (like B) notices A's silence, then logs in on B with its token.
            await async_wait_until(lambda: log_count(b, "silent for") > silent_before, timeout=5,
                                   message="B notices that A went silent")
            desk_b, ack_b, _ = await login_agent(b.url, "1001", token=ack["resume_token"], epoch=ack["epoch"] + 1)
            assert ack_b["epoch"] == 2
        finally:
            a.sigcont()

        forced = await desk_a.expect("EventForcedLogout", timeout=8, agent_id="1001", epoch=1, reason="moved")
        assert forced["by"] == "B"
        code, _ = await desk_a.expect_close(timeout=3, allow_messages=False)
        assert code == 4009
        await sup_a.expect("EventAgentLogout", seq=snap_a["seq"] + 2, agent_id="1001", epoch=1, reason="moved")
        _, _, snap = await subscribe(a.url)
        assert snap["agents"] == []

        stale = await connect_registered(a.url)
        refused = await stale.request(
            {"type": "RequestAgentLogin", "agent_id": "1001", "resume_token": ack["resume_token"]}
        )
        assert refused["type"] == "EventError" and refused["code"] == "stale_epoch", refused
        # The login that moved to B is untouched.
        await ready(desk_b, 2)
        for c in (sup_a, desk_b, stale):
            await c.close()

    run(scenario())
