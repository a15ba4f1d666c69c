"""Authorization and order: what a socket may ask at each stage, epochs, reasons, credentials, and
idempotent retries (the original answer again, no second effect)."""

from __future__ import annotations

from tests.server.wire import (
    WireClient,
    available,
    connect_registered,
    login,
    login_agent,
    register,
    run,
    state_request,
    still_works,
    subscribe,
)
from tests.support.servers import async_wait_until, socket_log_count


async def expect_refusal(client: WireClient, message: dict, code: str, server=None) -> dict:
    """The documented refusal; with ``server``, also the server's log line for it."""
    def times_logged() -> int:
        return socket_log_count(server, client.ws.local_address[1], f": {code}: ")

    before = times_logged() if server is not None else 0
    answer = await client.request(message)
    assert answer["type"] == "EventError" and answer["code"] == code, f"expected {code}, got {answer}"
    if server is not None:
        await async_wait_until(lambda: times_logged() > before, message=f"{code} logged")
    return answer


def test_nothing_but_register_before_registering(pair):
    a, _ = pair

    async def scenario():
        bystander, by_ack, _ = await login_agent(a.url, "1009")
        client = await WireClient.open(a.url)
        await client.send({"type": "Heartbeat"})  # accepted silently before registering
        for message in ({"type": "RequestAgentLogin", "agent_id": "1001", "password": "demo"},
                        {"type": "RequestAgentAvailable", "agent_id": "1001", "password": "demo"},
                        {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": "demo"},
                        {"type": "RequestAgentReady", "epoch": 1},
                        {"type": "RequestAgentLogout", "epoch": 1}):
            await expect_refusal(client, message, "not_registered", a)
        await still_works(bystander, by_ack["epoch"])
        ack = await register(client)
        assert ack["server"] == "A"
        await expect_refusal(client, {"type": "RequestRegisterClient", "protocol_version": 1, "client_name": "x"},
                             "already_registered")
        await login(client, "1001")  # and now it works
        await still_works(bystander, by_ack["epoch"])

    run(scenario())


def test_state_requests_need_a_login_on_this_socket(pair):
    a, _ = pair

    async def scenario():
        bystander, by_ack, _ = await login_agent(a.url, "1009")
        client = await connect_registered(a.url)
        for kind, extra in (("RequestAgentReady", {}), ("RequestAgentNotReady", {"reason": "break"}),
                            ("RequestAgentAfterCallWork", {}), ("RequestAgentLogout", {})):
            await expect_refusal(client, {"type": kind, "epoch": 1, **extra}, "not_authenticated", a)
        await still_works(bystander, by_ack["epoch"])
        assert (await available(client, "1001"))["role"] == "secondary"
        for kind in ("RequestAgentReady", "RequestAgentLogout"):
            await expect_refusal(client, {"type": kind, "epoch": 1}, "not_logged_in", a)
        await still_works(bystander, by_ack["epoch"])
        # Another agent's login on the same server does not lend this socket a login.
        await login_agent(a.url, "1002")
        await expect_refusal(client, {"type": "RequestAgentReady", "epoch": 1}, "not_logged_in")
        # A socket that belongs to 1001 cannot speak for 1002.
        await expect_refusal(client, {"type": "RequestAgentLogin", "agent_id": "1002", "password": "demo"}, "forbidden")
        await expect_refusal(
            client, {"type": "RequestAgentAvailable", "agent_id": "1002", "password": "demo"}, "forbidden"
        )

    run(scenario())


def test_wrong_epoch_and_unknown_reason_have_no_effect(pair):
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        desk, ack, status = await login_agent(a.url, "1001")
        epoch = ack["epoch"]
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        for wrong in (epoch + 1, epoch + 1000):
            await expect_refusal(desk, {"type": "RequestAgentReady", "epoch": wrong}, "stale_epoch")
            await expect_refusal(desk, {"type": "RequestAgentLogout", "epoch": wrong}, "stale_epoch")
        error = await expect_refusal(
            desk, {"type": "RequestAgentNotReady", "epoch": epoch, "reason": "nap"}, "invalid_reason"
        )
        assert "lunch" in error["message"]  # tells the known reasons
        other = await connect_registered(a.url)
        await expect_refusal(other, {"type": "RequestAgentLogin", "agent_id": "1002", "password": "demo",
                                     "state": {"state": "not_ready", "reason": "nap", "since_ms": 1}}, "invalid_reason")
        # Nothing changed: the stream's next event is the one we cause now.
        answer = await state_request(desk, "RequestAgentNotReady", epoch, reason="training")
        assert answer["type"] == "EventAck"
        await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 2, reason="training", epoch=epoch)

    run(scenario())


def test_credentials(pair):
    a, _ = pair

    async def scenario():
        client = await connect_registered(a.url)
        wrong = await expect_refusal(client, {"type": "RequestAgentLogin", "agent_id": "1001", "password": "wrong"},
                                     "bad_credentials")
        unknown = await expect_refusal(client, {"type": "RequestAgentLogin", "agent_id": "9999", "password": "demo"},
                                       "bad_credentials")
        assert wrong["message"] == unknown["message"]  # never told apart
        both = {"type": "RequestAgentLogin", "agent_id": "1001", "password": "demo", "resume_token": "x.y"}
        await expect_refusal(client, both, "bad_message")
        await expect_refusal(client, {"type": "RequestAgentLogin", "agent_id": "1001"}, "bad_message")
        await expect_refusal(client, {"type": "RequestAgentAvailable", "agent_id": "1001"}, "bad_message")
        await expect_refusal(client, {"type": "RequestSubscribeReporting", "user_id": "sup1"}, "bad_message")
        await login(client, "1001")  # the refusals left the socket usable

    run(scenario())


def test_retried_request_gets_the_original_answer_once(pair):
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        desk, ack, _ = await login_agent(a.url, "1001")
        epoch = ack["epoch"]
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)

        ready_request = {"type": "RequestAgentReady", "epoch": epoch, "request_id": "retry-me"}
        await desk.send(ready_request)
        original = await desk.recv_raw()
        await desk.expect("EventCurrentAgentStatus", state="ready")
        await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 2, state="ready")
        # The desktop did not see the answer and retries, twice; then it sends Not Ready under
        # the same id by mistake: all three get the original answer and change nothing.
        for retry in (ready_request, ready_request,
                      {"type": "RequestAgentNotReady", "epoch": epoch, "reason": "lunch", "request_id": "retry-me"}):
            await desk.send(retry)
            assert await desk.recv_raw() == original
        # The agent's other socket (its standby here) retrying the same id gets it too.
        standby = await connect_registered(a.url)
        assert (await available(standby, "1001"))["role"] == "secondary"
        await standby.send(ready_request)
        assert await standby.recv_raw() == original

        # One reporting event for all of that: the next is the change we make now.
        answer = await state_request(desk, "RequestAgentNotReady", epoch, reason="break")
        assert answer["type"] == "EventAck"
        await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 3, state="not_ready", reason="break")

        # A retried login on the same socket is answered from the cache, not logged in again ...
        register_again = {
            "type": "RequestRegisterClient",
            "protocol_version": 1,
            "client_name": "x",
            "request_id": "reg",
        }
        other = await WireClient.open(a.url)
        await other.send(register_again)
        reg = await other.recv_raw()
        await other.send(register_again)
        assert await other.recv_raw() == reg
        login_request = {"type": "RequestAgentLogin", "agent_id": "1002", "password": "demo", "request_id": "login-1"}
        await other.send(login_request)
        first = await other.recv_raw()
        await other.expect("EventCurrentAgentStatus", agent_id="1002")
        await other.send(login_request)
        assert await other.recv_raw() == first
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 4)
        # ... but the same request id on a new socket is a new login (at the next epoch).
        third = await connect_registered(a.url)
        await third.send(login_request)
        again = await third.recv()
        assert again["type"] == "EventAck" and again["epoch"] == 2, again
        await sup.expect("EventAgentLogout", seq=snap["seq"] + 5, agent_id="1002", reason="duplicate_login")
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 6)

    run(scenario())
