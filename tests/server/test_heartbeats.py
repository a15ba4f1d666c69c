"""Application heartbeats: quiet sockets get Heartbeat frames, silent ones are closed 4000; a
silent login is reported unreachable after the heartbeat timeout and disconnected after the client
timeout (docs/protocol.md, "Heartbeats"), not minutes; one heard again within it just goes on."""

from __future__ import annotations

import asyncio

from server_stub.protocol import CloseCode
from tests.server.wire import WireClient, login, register, run, subscribe
from tests.support.servers import async_wait_until


def site_config(tmp_path, **server) -> str:
    lines = ["[server]"] + [f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"'
                            for key, value in server.items()]
    path = tmp_path / "site.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def test_server_sends_heartbeats_on_a_quiet_socket(pair):
    a, _ = pair

    async def scenario():
        client = await WireClient.open(a.url, heartbeat=0.1)  # we stay alive, but send nothing else
        ack = await register(client, heartbeat_interval_ms=200)
        assert ack["heartbeat_interval_ms"] == 200
        assert ack["heartbeat_timeout_ms"] == 1500  # max(server timeout, 3 x interval)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(3):
            await client.wait_heartbeat(timeout=1.0)
        assert loop.time() - start >= 0.3  # paced by the interval, not a burst
        slow = await WireClient.open(a.url)
        ack = await register(slow, heartbeat_interval_ms=1000)
        assert (ack["heartbeat_interval_ms"], ack["heartbeat_timeout_ms"]) == (1000, 3000)
        # A client asking for 60 s (three minutes of silence before anyone acts) gets the ceiling.
        lazy = await WireClient.open(a.url)
        ack = await register(lazy, heartbeat_interval_ms=60_000)
        assert (ack["heartbeat_interval_ms"], ack["heartbeat_timeout_ms"]) == (5000, 15000)

    run(scenario())


def test_silent_registered_client_is_closed_4000(make_server):
    server = make_server(["--heartbeat-interval", "200", "--heartbeat-timeout", "600"])

    async def scenario():
        client = await WireClient.open(server.url, heartbeat=None)
        ack = await register(client)
        assert (ack["heartbeat_interval_ms"], ack["heartbeat_timeout_ms"]) == (200, 600)
        loop = asyncio.get_running_loop()
        start = loop.time()
        code, seen = await client.expect_close(timeout=5, allow_messages=False)
        elapsed = loop.time() - start
        assert code == CloseCode.HEARTBEAT
        assert elapsed >= 0.55, f"closed after {elapsed:.2f} s, before the 0.6 s timeout"
        assert client.heartbeats >= 1  # the server kept beating while we were silent
        await async_wait_until(lambda: server.log_has("silent for"), message="timeout logged")

    run(scenario())


def test_silent_logged_in_client_is_reported_disconnected(make_server):
    """A hung desktop (sends nothing, reads nothing, never answers the close) is reported
    unreachable after the heartbeat timeout and logged out after the client timeout."""
    server = make_server(["--heartbeat-interval", "200", "--heartbeat-timeout", "600", "--client-timeout", "2000"])

    async def scenario():
        sup, _, snap = await subscribe(server.url)
        desk = await WireClient.open(server.url)
        await register(desk)
        ack, _ = await login(desk, "1001")
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        desk.stop_heartbeats()
        desk.ws.transport.pause_reading()  # the process hangs: nothing read, nothing answered
        loop = asyncio.get_running_loop()
        start = loop.time()
        await sup.expect("EventAgentStateChanged", timeout=5, seq=snap["seq"] + 2, agent_id="1001",
                         epoch=ack["epoch"], reachable=False)
        suspect = loop.time() - start
        event = await sup.expect("EventAgentLogout", timeout=5, seq=snap["seq"] + 3, agent_id="1001",
                                 epoch=ack["epoch"], reason="disconnected")
        elapsed = loop.time() - start
        assert event["server"] == "A"
        assert suspect < elapsed, (suspect, elapsed)
        # Timed from when we stopped beating; the server last heard us up to one beat (0.2 s) before.
        assert 1.7 <= elapsed < 4.5, f"silent login reported after {elapsed:.1f} s (client timeout 2 s)"
        _, _, snap2 = await subscribe(server.url)
        assert snap2["agents"] == []

    run(scenario())


def test_a_silent_login_is_suspect_and_goes_on_when_heard_again(pair):
    """Default figures: a desktop that stops sending for longer than the heartbeat timeout is
    reported unreachable but keeps its login and its socket; its next frame makes it reachable
    again, with no logout and no login reported."""
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        desk = await WireClient.open(a.url)
        ack = await register(desk)
        assert ack["client_timeout_ms"] == 20_000
        ack, _ = await login(desk, "1002")
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        desk.stop_heartbeats()
        suspect = await sup.expect("EventAgentStateChanged", timeout=4, seq=snap["seq"] + 2, agent_id="1002",
                                   epoch=ack["epoch"], reachable=False)
        assert suspect["state"] == "not_ready"
        _, _, seen = await subscribe(a.url)
        assert [(x["agent_id"], x["reachable"]) for x in seen["agents"]] == [("1002", False)]
        await desk.send({"type": "Heartbeat"})
        back = await sup.expect("EventAgentStateChanged", timeout=4, seq=snap["seq"] + 3, agent_id="1002",
                                epoch=ack["epoch"])
        assert "reachable" not in back  # true: omitted
        await desk.assert_open()
        _, _, seen = await subscribe(a.url)
        assert [(x["agent_id"], x.get("reachable", True)) for x in seen["agents"]] == [("1002", True)]

    run(scenario())


def test_unregistered_socket_is_closed_after_the_open_timeout(make_server, tmp_path):
    server = make_server(["--config", site_config(tmp_path, register_timeout_ms=500)])

    async def scenario():
        silent = await WireClient.open(server.url, heartbeat=None)
        # Heartbeats are accepted before registering, but they do not stand in for registering.
        beating = await WireClient.open(server.url, heartbeat=0.1)
        registered = await WireClient.open(server.url, heartbeat=0.1)
        await register(registered)
        code, seen = await silent.expect_close(timeout=4, allow_messages=False)
        assert code == CloseCode.HEARTBEAT
        code, seen = await beating.expect_close(timeout=4, allow_messages=False)
        assert code == CloseCode.HEARTBEAT
        assert registered.ws.close_code is None
        await registered.request({"type": "RequestAgentNotAvailable"})  # still served

    run(scenario())
