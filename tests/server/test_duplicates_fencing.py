"""Duplicate logins (force-logout and deny policies) and peer fencing: an agent is never logged in
twice, and the old login learns why it ended (reason, close 4009), as does reporting."""

from __future__ import annotations

import pytest

from server_stub.protocol import CloseCode
from tests.server.wire import (
    available,
    connect_registered,
    login,
    login_agent,
    ready,
    run,
    state_request,
    subscribe,
)
from tests.support.servers import async_wait_until, linked


def peer_conn_closed(server, peer_name: str) -> bool:
    """The server has handled the loss of the inbound link from ``peer_name``."""
    lines = list(server.lines)
    ids = [line.split("conn#", 1)[1].split(" ", 1)[0] for line in lines if f": peer link from {peer_name}" in line]
    return bool(ids) and any(f"conn#{ids[-1]} " in line and "disconnected" in line for line in lines)


def test_duplicate_login_forces_the_old_socket_out(pair):
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        old, ack1, _ = await login_agent(a.url, "1001")
        assert "replaced" not in ack1  # nothing was ended
        lunch = await state_request(old, "RequestAgentNotReady", 1, reason="lunch")
        assert lunch["type"] == "EventAck"
        await old.expect("EventCurrentAgentStatus", reason="lunch")

        new = await connect_registered(a.url)
        ack2, status = await login(new, "1001")
        assert ack2["epoch"] == 2
        assert ack2["replaced"] == {"server": "A", "epoch": 1}  # the new desktop learns what it ended
        # A new login (password): default state, no reason inherited or invented.
        assert status["state"] == "not_ready" and "reason" not in status, status

        forced = await old.expect("EventForcedLogout", agent_id="1001", epoch=1, reason="duplicate_login")
        assert forced["message"]
        code, _ = await old.expect_close(allow_messages=False)
        assert code == CloseCode.SUPERSEDED

        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 2, reason="lunch")
        await sup.expect("EventAgentLogout", seq=snap["seq"] + 3, agent_id="1001", epoch=1, reason="duplicate_login")
        login_event = await sup.expect("EventAgentLogin", seq=snap["seq"] + 4)
        assert login_event["agent"]["epoch"] == 2 and login_event["agent"].get("reason") is None, login_event
        # The old epoch is dead, the new one works.
        stale = await state_request(new, "RequestAgentReady", 1)
        assert stale["type"] == "EventError" and stale["code"] == "stale_epoch"
        await ready(new, 2)
        # The same socket logging in again is refused, whatever the policy.
        again = await new.request({"type": "RequestAgentLogin", "agent_id": "1001", "password": "demo"})
        assert again["type"] == "EventError" and again["code"] == "already_logged_in", again

    run(scenario())


def test_resume_token_on_the_same_server_keeps_no_stale_reason(pair):
    """A resume-token login on the server that holds the login moves it (reason moved), and the new
    session takes the state it was given, nothing else."""
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        old, ack1, _ = await login_agent(a.url, "1001")
        new = await connect_registered(a.url)
        ack2, status = await login(new, "1001", token=ack1["resume_token"])
        assert status["state"] == "not_ready" and "reason" not in status, status
        await old.expect("EventForcedLogout", reason="moved", epoch=1)
        assert (await old.expect_close(allow_messages=False))[0] == CloseCode.SUPERSEDED
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        await sup.expect("EventAgentLogout", seq=snap["seq"] + 2, reason="moved", epoch=1)
        event = await sup.expect("EventAgentLogin", seq=snap["seq"] + 3)
        assert event["agent"]["epoch"] == 2 and event["agent"].get("reason") is None, event

    run(scenario())


def test_deny_policy_refuses_duplicates_here_and_across_the_pair(make_pair):
    a, b = make_pair(["--duplicate-policy", "deny"])

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        sup_a, _, snap_a = await subscribe(a.url)
        first, ack, _ = await login_agent(a.url, "1001")
        await sup_a.expect("EventAgentLogin", seq=snap_a["seq"] + 1)

        second = await connect_registered(a.url)
        answer = await second.request({"type": "RequestAgentLogin", "agent_id": "1001", "password": "demo"})
        assert answer["type"] == "EventError" and answer["code"] == "already_logged_in", answer
        on_b = await connect_registered(b.url)
        answer = await on_b.request({"type": "RequestAgentLogin", "agent_id": "1001", "password": "demo"})
        assert answer["type"] == "EventError" and answer["code"] == "already_logged_in", answer
        await ready(first, 1)  # the first login is untouched
        await sup_a.expect("EventAgentStateChanged", seq=snap_a["seq"] + 2, state="ready")

        # The same desktop moving with its resume token at the current epoch is not a duplicate.
        ack_b, status_b = await login(on_b, "1001", token=ack["resume_token"], epoch=2)
        assert ack_b["epoch"] == 2 and status_b["server"] == "B"
        await first.expect("EventForcedLogout", reason="moved", epoch=1)
        assert (await first.expect_close(allow_messages=False))[0] == CloseCode.SUPERSEDED
        await sup_a.expect("EventAgentLogout", seq=snap_a["seq"] + 3, reason="moved", epoch=1)

    run(scenario())


@pytest.mark.server_processes
def test_peer_fencing_and_losing_the_peer(pair):
    a, b = pair

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        sup_a, _, snap_a = await subscribe(a.url)
        desk_a, ack, _ = await login_agent(a.url, "1001")
        await sup_a.expect("EventAgentLogin", seq=snap_a["seq"] + 1)

        desk_b, ack_b, _ = await login_agent(b.url, "1001", token=ack["resume_token"], epoch=2)
        assert ack_b["epoch"] == 2 and "replaced" not in ack_b  # the same desktop moving ended nobody else's
        forced = await desk_a.expect("EventForcedLogout", agent_id="1001", epoch=1, reason="moved")
        assert forced["by"] == "B"
        code, _ = await desk_a.expect_close(allow_messages=False)
        assert code == CloseCode.SUPERSEDED
        await sup_a.expect("EventAgentLogout", seq=snap_a["seq"] + 2, agent_id="1001", epoch=1, reason="moved")

        b.kill9()
        await async_wait_until(lambda: peer_conn_closed(a, "B"), message="A handles the loss of B")
        # A keeps serving: a new login works and reporting goes on.
        desk2, ack2, _ = await login_agent(a.url, "1002")
        event = await sup_a.expect("EventAgentLogin", seq=snap_a["seq"] + 3)
        assert event["agent"]["agent_id"] == "1002"
        await ready(desk2, ack2["epoch"])
        # A still knows epoch 2 exists: the epoch-1 token stays stale even with the peer gone ...
        stale = await connect_registered(a.url)
        refused = await stale.request(
            {"type": "RequestAgentLogin", "agent_id": "1001", "resume_token": ack["resume_token"]}
        )
        assert refused["type"] == "EventError" and refused["code"] == "stale_epoch", refused
        # ... while the desktop that moved to B comes back with its epoch-2 token.
        back, ack3, _ = await login_agent(a.url, "1001", token=ack_b["resume_token"], epoch=3)
        assert ack3["epoch"] == 3

    run(scenario())


def test_password_duplicate_across_the_pair_is_reported_as_duplicate(pair):
    a, b = pair

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        sup_a, _, snap_a = await subscribe(a.url)
        desk_a, ack_a, _ = await login_agent(a.url, "1001")
        _, ack_b, _ = await login_agent(b.url, "1001")  # password: a second desktop, not the same one moving
        assert ack_b["replaced"] == {"server": "A", "epoch": ack_a["epoch"]}, ack_b
        await desk_a.expect("EventForcedLogout", reason="duplicate_login")
        await sup_a.expect("EventAgentLogin", seq=snap_a["seq"] + 1)
        await sup_a.expect("EventAgentLogout", seq=snap_a["seq"] + 2, reason="duplicate_login")

    run(scenario())


def test_standby_socket_cannot_also_hold_the_login_and_vice_versa(pair):
    a, _ = pair

    async def scenario():
        desk, ack, _ = await login_agent(a.url, "1001")
        answer = await available(desk, "1001")
        assert answer["type"] == "EventError" and answer["code"] == "invalid_state", answer
        # A standby socket may take the login (promotion); it is then no longer a standby.
        standby = await connect_registered(a.url)
        assert (await available(standby, "1002"))["role"] == "secondary"
        await login(standby, "1002")
        answer = await standby.request({"type": "RequestAgentNotAvailable"})
        assert answer["type"] == "EventError" and answer["code"] == "invalid_state", answer

    run(scenario())


@pytest.mark.slow
@pytest.mark.server_processes
def test_restarted_server_never_ends_up_holding_the_same_login_as_its_peer(pair):
    a, b = pair

    async def holders() -> list[str]:
        held = []
        for server in (a, b):
            sup, _, snap = await subscribe(server.url)
            if any(x["agent_id"] == "1001" for x in snap["agents"]):
                held.append(server.name)
            sup.abort()
        return held

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        _, ack, _ = await login_agent(a.url, "1001")
        a.kill9()
        await login_agent(b.url, "1001", token=ack["resume_token"], epoch=2)
        a.start()
        stale = await connect_registered(a.url)
        await stale.request({"type": "RequestAgentLogin", "agent_id": "1001", "resume_token": ack["resume_token"]})
        await async_wait_until(lambda: linked(a, b), timeout=5, message="peer link up again")
        async def at_most_one_holder() -> bool:
            return len(await holders()) <= 1

        await async_wait_until(at_most_one_holder, timeout=3, interval=0.05, message="1001 held by one server only")

    run(scenario())
