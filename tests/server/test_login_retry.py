"""A failover login whose acknowledgement is lost with its link is retried by the desktop with the
same resume token. The server must let that retry through (only the token's holder can send it),
or a storm that loses links under load leaves agents asking for their passwords."""

from __future__ import annotations

import pytest

from tests.server.test_tokens import refused
from tests.server.wire import connect_registered, login, login_agent, run
from tests.support.servers import async_wait_until, linked


async def logged_in_on_a(a, b):
    """Agent 1001 logged in on A with the pair linked: (its socket, the login's EventAck)."""
    await async_wait_until(lambda: linked(a, b), message="peer link up")
    desk, ack, _ = await login_agent(a.url, "1001")
    return desk, ack


async def refused_as_stale(url: str, ack: dict, epoch: int | None = None) -> None:
    """A login on a fresh socket with the resume token of ``ack``: the server must refuse it as stale."""
    message = {"type": "RequestAgentLogin", "agent_id": "1001", "resume_token": ack["resume_token"]}
    if epoch is not None:
        message["epoch"] = epoch
    await refused(await connect_registered(url), message, "stale_epoch")


@pytest.mark.server_processes
def test_a_resumed_login_retried_with_the_same_token_is_accepted(pair):
    a, b = pair

    async def scenario():
        _, ack = await logged_in_on_a(a, b)
        a.kill9()
        # The failover login succeeds on B, but the desktop gives that link up before the ack arrives.
        lost, lost_ack, _ = await login_agent(b.url, "1001", token=ack["resume_token"], epoch=2)
        assert lost_ack["epoch"] == 2
        # The retry on a fresh link carries the same epoch-1 token and asks for the next epoch:
        # accepted, and the abandoned link's login ends as moved.
        retry, retry_ack, status = await login_agent(b.url, "1001", token=ack["resume_token"], epoch=3)
        assert retry_ack["epoch"] == 3 and status["server"] == "B"
        await lost.expect("EventForcedLogout", reason="moved", epoch=2)

    run(scenario())


@pytest.mark.server_processes
def test_a_late_original_never_displaces_the_retry_that_overtook_it(pair):
    a, b = pair

    async def scenario():
        _, ack = await logged_in_on_a(a, b)
        a.kill9()
        # The desktop's first failover attempt (epoch 2) is slow; its retry (epoch 3) logs in first.
        retry, retry_ack, _ = await login_agent(b.url, "1001", token=ack["resume_token"], epoch=3)
        assert retry_ack["epoch"] == 3
        await refused_as_stale(b.url, ack, epoch=2)
        # The live login is untouched: it still changes state at its epoch.
        ready = await retry.request({"type": "RequestAgentReady", "epoch": 3})
        assert ready["type"] == "EventAck", ready

    run(scenario())


def test_an_old_token_stays_stale_once_a_password_login_followed(pair):
    a, b = pair

    async def scenario():
        _, ack = await logged_in_on_a(a, b)
        moved = await connect_registered(b.url)
        await login(moved, "1001", token=ack["resume_token"], epoch=2)
        # Another desktop logs the agent in with the password: the epoch-1 token is history.
        await login_agent(b.url, "1001")
        await refused_as_stale(b.url, ack)

    run(scenario())


@pytest.mark.server_processes
def test_the_peer_takes_the_retry_when_the_server_that_made_the_login_died(pair):
    a, b = pair

    async def scenario():
        desk_a, ack = await logged_in_on_a(a, b)
        # A failover login on B whose ack is lost with its link; B tells A, which fences epoch 1.
        lost = await connect_registered(b.url)
        await login(lost, "1001", token=ack["resume_token"], epoch=2)
        await desk_a.expect("EventForcedLogout", reason="moved", epoch=1)
        b.kill9()
        # The desktop retries with the same token on the site still alive: accepted there.
        retry, retry_ack, status = await login_agent(a.url, "1001", token=ack["resume_token"], epoch=3)
        assert retry_ack["epoch"] == 3 and status["server"] == "A"
        # Anyone else holding that old token still cannot come in: it is the retry's, once.
        await refused_as_stale(a.url, ack, epoch=3)

    run(scenario())


@pytest.mark.server_processes
def test_once_the_login_shows_it_got_its_ack_an_old_token_copy_cannot_take_it_over(pair):
    a, b = pair

    async def scenario():
        _, ack = await logged_in_on_a(a, b)
        a.kill9()
        desk, moved, _ = await login_agent(b.url, "1001", token=ack["resume_token"], epoch=2)
        # The desktop acts at its new epoch: it has the ack, so no lost-ack retry can follow.
        assert (await desk.request({"type": "RequestAgentReady", "epoch": moved["epoch"]}))["type"] == "EventAck"
        await desk.expect("EventCurrentAgentStatus", state="ready")
        await refused_as_stale(b.url, ack, epoch=moved["epoch"] + 1)
        assert (await desk.request({"type": "RequestAgentNotReady", "epoch": moved["epoch"], "reason": "lunch"}))[
            "type"
        ] == "EventAck"

    run(scenario())


def test_an_absurd_epoch_is_refused_and_the_pair_keeps_its_peer_sync(pair):
    a, b = pair

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        greedy = await connect_registered(a.url)
        refused = await greedy.request({"type": "RequestAgentLogin", "agent_id": "1002", "password": "demo",
                                        "epoch": 2**53})
        assert refused["type"] == "EventError" and refused["code"] == "bad_message", refused
        assert "above the newest epoch" in refused["message"], refused
        # A normal failover still works across the pair: the peer link carries sane epochs.
        _, ack, _ = await login_agent(a.url, "1002")
        on_b = await connect_registered(b.url)
        moved, _ = await login(on_b, "1002", token=ack["resume_token"], epoch=ack["epoch"] + 1)
        assert moved["epoch"] == ack["epoch"] + 1

    run(scenario())
