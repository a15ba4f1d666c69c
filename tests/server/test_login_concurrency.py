"""Credentialed requests in flight: each socket has at most one being verified (a different one
meanwhile is refused with `login_in_progress`), a retried copy waits for and gets the original
answer (one effect), and a socket that closes gives its queued password check up, so a flood of
password logins cannot delay another client's login. Orderings, not timings, are asserted."""

from __future__ import annotations

import asyncio
import json

import pytest

from server_stub.protocol import CloseCode
from tests.server.wire import (
    PASSWORD,
    WireClient,
    connect_registered,
    login_agent,
    new_request_id,
    ready,
    run,
    still_works,
    subscribe,
)
from tests.support.servers import async_wait_until, log_count, socket_log_count, socket_logged


def login_frame(agent_id: str, request_id: str, password: str = PASSWORD) -> str:
    return json.dumps(
        {"type": "RequestAgentLogin", "request_id": request_id, "agent_id": agent_id, "password": password}
    )


async def answers_for(client: WireClient, request_ids: set[str], extra: int = 0) -> tuple[list[str], list[dict]]:
    """Raw answers to ``request_ids`` (until each is answered at least once and ``extra`` more
    answers came), and the other messages meanwhile."""
    answers: list[str] = []
    others: list[dict] = []
    while not (
        request_ids <= {json.loads(f).get("request_id") for f in answers} and len(answers) >= len(request_ids) + extra
    ):
        frame = await client.recv_raw()
        message = json.loads(frame)
        if message["type"] in ("EventAck", "EventError"):
            answers.append(frame)
        else:
            others.append(message)
    return answers, others


def test_a_second_login_while_one_is_verified_is_refused(server):
    async def scenario():
        desk, ack, _ = await login_agent(server.url, "1009")
        client = await connect_registered(server.url)
        await client.send_raw(login_frame("1002", "first", password="wrong"))
        await client.send_raw(login_frame("1002", "second"))
        # The second is refused at once; the first is answered when its check is done.
        await client.expect_error("login_in_progress", request_id="second")
        await client.expect_error("bad_credentials", request_id="first")
        await async_wait_until(lambda: socket_logged(server, client, ": login_in_progress: "), message="refusal logged")
        await client.request({"type": "RequestAgentLogin", "agent_id": "1002", "password": PASSWORD})  # then it works
        await client.expect("EventCurrentAgentStatus", agent_id="1002")
        await still_works(desk, ack["epoch"], "1009")

    run(scenario())


@pytest.mark.parametrize("kind", ["RequestAgentLogin", "RequestAgentAvailable"])
def test_a_retry_in_flight_gets_the_original_answer_and_no_second_effect(server, kind):
    async def scenario():
        sup, _, snap = await subscribe(server.url)
        client = await connect_registered(server.url)
        request = json.dumps({"type": kind, "request_id": f"twice-{kind}", "agent_id": "1003", "password": PASSWORD})
        await client.send_raw(request)
        await client.send_raw(request)  # the desktop's retry, while the first is still being verified
        answers, others = await answers_for(client, {f"twice-{kind}"}, extra=1)
        assert len(answers) == 2 and answers[0] == answers[1], answers  # the same answer, byte for byte
        assert json.loads(answers[0])["type"] == "EventAck", answers
        if kind == "RequestAgentLogin" and not others:
            others.append(await client.recv())  # the status follows the answers
        # One effect: a marker request is answered next, with nothing else in between.
        if kind == "RequestAgentLogin":
            assert [m["type"] for m in others] == ["EventCurrentAgentStatus"], others
            await ready(client, json.loads(answers[0])["epoch"])
            await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
            await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 2, state="ready")  # no second login between
            await client.request({"type": "RequestAgentLogout", "epoch": json.loads(answers[0])["epoch"]})
        else:
            marker = await client.request({"type": "RequestAgentNotAvailable"})
            assert marker["type"] == "EventAck", marker
            me = f"127.0.0.1:{client.ws.local_address[1]} [1003]: agent 1003"
            await async_wait_until(lambda: log_count(server, f"{me} not available"), message="the marker logged")
            assert others == [] and log_count(server, f"{me} available (secondary)") == 1  # logged before the marker

    run(scenario())


def test_a_retried_subscription_in_flight_gets_one_snapshot(server):
    async def scenario():
        client = await connect_registered(server.url)
        request = json.dumps({"type": "RequestSubscribeReporting", "request_id": "sub-twice", "user_id": "sup1",
                              "password": PASSWORD})
        await client.send_raw(request)
        await client.send_raw(request)
        answers, others = await answers_for(client, {"sub-twice"}, extra=1)
        assert answers[0] == answers[1], answers  # the same stream id and resume token
        # The next event after the one snapshot is a login we make now, not a second snapshot.
        desk, ack, _ = await login_agent(server.url, "1005")
        while len(others) < 2:
            others.append(await client.recv())
        assert [m["type"] for m in others] == ["EventReportingSnapshot", "EventAgentLogin"], others
        await desk.request({"type": "RequestAgentLogout", "epoch": ack["epoch"]})

    run(scenario())


def test_a_login_flood_on_one_socket_does_not_delay_another_clients_login(server):
    async def scenario():
        flooder = await connect_registered(server.url)
        bystander = await connect_registered(server.url)
        arrivals: list[tuple[str, dict]] = []  # (who, message) in arrival order across both sockets

        async def read(name: str, client: WireClient, until) -> None:
            while True:
                message = await client.recv()
                arrivals.append((name, message))
                if until(message):
                    return

        flood_ids = [new_request_id("flood") for _ in range(15)]  # under the error budget (20)
        for request_id in flood_ids:
            await flooder.send_raw(login_frame("1006", request_id, password="wrong"))
        await bystander.send_raw(login_frame("1007", "bystander"))
        answered: set[str] = set()

        def all_flood_answered(message: dict) -> bool:
            answered.add(message.get("request_id", ""))
            return answered >= set(flood_ids)

        await asyncio.gather(
            read("flooder", flooder, all_flood_answered),
            read("bystander", bystander, lambda m: m["type"] == "EventAck"))
        flood_codes = [m.get("code") for who, m in arrivals if who == "flooder"]
        assert flood_codes.count("bad_credentials") == 1, flood_codes  # only one was ever checked ...
        assert flood_codes.count("login_in_progress") == len(flood_ids) - 1, flood_codes  # ... the rest refused
        ack_at = next(i for i, (who, m) in enumerate(arrivals) if who == "bystander" and m["type"] == "EventAck")
        checked_before = [m for who, m in arrivals[:ack_at] if who == "flooder" and m.get("code") == "bad_credentials"]
        assert len(checked_before) <= 1, arrivals  # the bystander waited for at most the one check in progress
        await flooder.assert_open()

    run(scenario())


def test_a_socket_closed_for_errors_gives_up_its_queued_login(server):
    async def scenario():
        desk, ack, _ = await login_agent(server.url, "1009")
        flooder = await connect_registered(server.url)
        port = flooder.ws.local_address[1]
        for _ in range(30):  # the first is checked; the others are refused until the error budget closes it
            await flooder.send_raw(login_frame("1006", new_request_id("flood"), password="wrong"))
        code, seen = await flooder.expect_close()
        assert code == CloseCode.TOO_MANY_ERRORS and {m.get("code") for m in seen} == {"login_in_progress"}, (
            code,
            seen,
        )
        await async_wait_until(
            lambda: socket_logged(server, flooder, "RequestAgentLogin abandoned: the socket is closing"),
            message="the queued login given up",
        )
        assert socket_log_count(server, port, "bad_credentials") == 0
        await still_works(desk, ack["epoch"], "1009")

    run(scenario())


def test_sockets_that_close_with_a_login_queued_give_it_up(server):
    async def scenario():
        desk, ack, _ = await login_agent(server.url, "1009")
        ports = []
        for i in range(8):
            client = await connect_registered(server.url)
            ports.append(client.ws.local_address[1])
            await client.send_raw(login_frame("1008", f"gone-{i}", password="wrong"))
            client.abort()  # gone before its password was checked
        for port in ports:
            await async_wait_until(lambda port=port: socket_log_count(server, port, "abandoned"),
                                   message=f"socket {port} gave up")
        late = {port: socket_log_count(server, port, "bad_credentials") for port in ports}
        assert set(late.values()) == {0}, late  # none of them was answered into a closed socket
        await still_works(desk, ack["epoch"], "1009")

    run(scenario())
