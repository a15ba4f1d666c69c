"""Bad input, one kind per test. Each time: the offending socket gets the documented answer (error
code, close code), the server logs it, and a well-behaved logged-in client on the same server keeps
working. One pair serves the whole module; every test brings its own sockets."""

from __future__ import annotations

import asyncio
import json

from websockets.exceptions import ConnectionClosed

from server_stub.protocol import CloseCode
from tests.server.wire import WireClient, connect_registered, login, login_agent, register, run, still_works
from tests.support.servers import async_wait_until, socket_logged


async def good_client(server):
    desk, ack, _ = await login_agent(server.url, "1001")
    return desk, ack["epoch"]


async def check_offence(server, frame, code: str, *, request_id: str | None = None, registered: bool = True):
    """Send one bad frame and check the documented answer, the log line, and the bystander."""
    desk, epoch = await good_client(server)
    bad = await (connect_registered(server.url) if registered else WireClient.open(server.url))
    await bad.send_raw(frame)
    error = await bad.expect_error(code)
    assert error.get("request_id") == request_id, error
    await async_wait_until(lambda: socket_logged(server, bad, f": {code}: "), message=f"{code} logged")
    # The offender is answered but not disconnected for one mistake ...
    probe = await bad.request({"type": "RequestAgentNotAvailable"})
    assert probe["code"] in ("invalid_state", "not_registered"), probe
    # ... and the bystander is untouched.
    await still_works(desk, epoch)
    assert server.alive()


def test_malformed_json(server):
    run(check_offence(server, '{"type": "RequestAgentReady", "epoch": 1,', "bad_json"))


def test_a_byte_order_mark_is_bad_json(server):
    """Valid UTF-8, but JSON text never starts with a BOM."""
    run(check_offence(server, "\ufeff{}", "bad_json"))


def test_deeply_nested_json_is_bad_json_without_a_traceback(server):
    """30,000 nested arrays (within the 64 KiB frame limit) exhausted the decoder's stack:
    answered `internal`, a traceback logged per frame. Now it is refused before decoding, like any
    frame that is not protocol JSON."""
    run(check_offence(server, '{"type": "Heartbeat", "x": ' + "[" * 30_000 + "]" * 30_000 + "}", "bad_json"))
    assert not server.log_has("Traceback") and not server.log_has("internal error")


def test_deeply_nested_json_in_a_burst_closes_4001_and_logs_little(server):
    async def scenario():
        bad = await connect_registered(server.url)
        frame = "[" * 50_000
        lines_before = len(server.lines)
        for _ in range(25):
            await bad.send_raw(frame)
        code, _ = await bad.expect_close()
        assert code == 4001, code
        assert len(server.lines) - lines_before < 60  # one line per refusal, not a traceback each

    run(scenario())


def test_invalid_utf8_text_frame_closes_1007(server):
    """Not valid UTF-8 in a text frame: the WebSocket layer closes with 1007 (no EventError)."""

    async def scenario():
        desk, epoch = await good_client(server)
        bad = await connect_registered(server.url)
        await bad.ws.send(b'{"type": "Heartbeat", "x": "\xff\xfe"}', text=True)  # Latin-1 bytes, not UTF-8
        code, seen = await bad.expect_close(allow_messages=False)
        assert code == CloseCode.INVALID_DATA, code
        await async_wait_until(lambda: socket_logged(server, bad, "disconnected (code 1007"), message="1007 logged")
        await still_works(desk, epoch)
        assert server.alive()

    run(scenario())


def test_unknown_type(server):
    frame = json.dumps({"type": "RequestTeleport", "request_id": "u-1", "to": "mars"})
    run(check_offence(server, frame, "unknown_type", request_id="u-1"))


def test_missing_field(server):
    frame = json.dumps({"type": "RequestAgentNotReady", "request_id": "m-1", "epoch": 1})  # no reason
    run(check_offence(server, frame, "bad_message", request_id="m-1"))


def test_missing_request_id(server):
    run(check_offence(server, json.dumps({"type": "RequestAgentReady", "epoch": 1}), "bad_message"))


def test_mistyped_field(server):
    frame = json.dumps({"type": "RequestAgentReady", "request_id": "t-1", "epoch": "one"})
    run(check_offence(server, frame, "bad_message", request_id="t-1"))


def test_mistyped_request_id_is_not_echoed(server):
    frame = json.dumps({"type": "RequestAgentReady", "request_id": 12, "epoch": 1})
    run(check_offence(server, frame, "bad_message"))


def test_not_an_object(server):
    run(check_offence(server, json.dumps(["RequestAgentReady", 1]), "bad_message"))


def test_server_to_client_type(server):
    frame = json.dumps({"type": "EventAck", "request_id": "s-1", "server": "A"})
    run(check_offence(server, frame, "not_a_request", request_id="s-1"))


def test_binary_frame(server):
    run(check_offence(server, json.dumps({"type": "Heartbeat"}).encode(), "bad_message"))


def test_unregistered_socket_gets_the_same_answers(server):
    run(check_offence(server, "nope", "bad_json", registered=False))


def test_oversized_frame_closes_1009(server):
    async def scenario():
        desk, epoch = await good_client(server)
        bad = await connect_registered(server.url)
        big = json.dumps({"type": "RequestAgentReady", "request_id": "big", "epoch": 1, "pad": "x" * 70_000})
        assert len(big) > 64 * 1024
        assert await bad.send_expecting_close(big) == CloseCode.MESSAGE_TOO_BIG
        await async_wait_until(lambda: socket_logged(server, bad, "disconnected (code 1009"), message="1009 logged")
        await still_works(desk, epoch)
        # Just under the limit is fine.
        ok = await connect_registered(server.url)
        answer = await ok.request({"type": "RequestAgentNotAvailable", "pad": "x" * 60_000})
        assert answer["code"] == "invalid_state"

    run(scenario())


def test_unsupported_protocol_version(server):
    async def scenario():
        desk, epoch = await good_client(server)
        bad = await WireClient.open(server.url)
        await bad.send(
            {"type": "RequestRegisterClient", "request_id": "v2", "protocol_version": 2, "client_name": "future"}
        )
        error = await bad.expect_error("unsupported_version", request_id="v2")
        assert "1" in error["message"]
        code, _ = await bad.expect_close(allow_messages=False)
        assert code == CloseCode.UNSUPPORTED_VERSION
        await async_wait_until(lambda: socket_logged(server, bad, "disconnected (code 4002"), message="4002 logged")
        await still_works(desk, epoch)

    run(scenario())


def test_too_many_errors_closes_4001(server):
    async def scenario():
        desk, epoch = await good_client(server)
        bad = await WireClient.open(server.url)
        for i in range(20):
            await bad.send_raw(f"garbage {i}")
        for _ in range(20):
            await bad.expect_error("bad_json")
        await register(bad)  # twenty errors are tolerated: the socket still works
        await bad.send_raw("one too many")
        await bad.expect_error("bad_json")
        code, seen = await bad.expect_close(allow_messages=False)
        assert code == CloseCode.TOO_MANY_ERRORS
        await async_wait_until(lambda: socket_logged(server, bad, "disconnected (code 4001"), message="4001 logged")
        await still_works(desk, epoch)

    run(scenario())


def test_flood_is_rate_limited_then_closed_4008(server):
    async def scenario():
        desk, epoch = await good_client(server)
        bad = await connect_registered(server.url)
        heartbeat = json.dumps({"type": "Heartbeat"})
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def flood():
            try:
                while loop.time() - start < 8:
                    await bad.ws.send(heartbeat)
                    await asyncio.sleep(0)  # let the reader and the bystander run too
            except ConnectionClosed:
                pass

        flooder = asyncio.create_task(flood())
        await still_works(desk, epoch)  # during the flood
        code, seen = await bad.expect_close(timeout=8)
        elapsed = loop.time() - start
        flooder.cancel()
        assert code == CloseCode.RATE_LIMITED, f"closed with {code} after {elapsed:.1f} s"
        errors = [m["code"] for m in seen]
        assert errors and set(errors) == {"rate_limited"}, errors
        assert len(errors) <= elapsed + 1  # at most one notice per second
        await async_wait_until(lambda: socket_logged(server, bad, "flooding, closing"), message="flood logged")
        await still_works(desk, epoch)

    run(scenario())


def test_short_burst_is_not_a_flood(server):
    """Within the burst allowance (200 frames) nothing is refused or closed."""

    async def scenario():
        client = await connect_registered(server.url)
        for _ in range(150):
            await client.send({"type": "Heartbeat"})
        answer = await client.request({"type": "RequestAgentNotAvailable"})
        assert answer["code"] == "invalid_state", answer  # answered, not rate_limited
        await client.assert_open()

    run(scenario())


def test_peer_messages_need_an_authenticated_peer_link(server):
    async def scenario():
        desk, epoch = await good_client(server)
        # Without PeerHello, a client cannot tell the server what the peer holds (no fencing by fiat).
        client = await connect_registered(server.url)
        await client.send({"type": "PeerAgentEpochs", "server": "B", "epochs": {"1001": 99}, "full": True})
        await client.expect_error("forbidden")
        await still_works(desk, epoch)  # 1001 was not fenced
        # A PeerHello is challenged; a wrong proof is closed 4003 and logged.
        impostor = await WireClient.open(server.url)
        await impostor.send({"type": "PeerHello", "server": "B", "nonce": "0" * 32})
        challenge = await impostor.expect("PeerChallenge", server="A")
        assert len(challenge["nonce"]) == 32 and challenge["proof"]
        await impostor.send({"type": "PeerProof", "proof": "00" * 32})
        code, _ = await impostor.expect_close(allow_messages=False)
        assert code == CloseCode.PEER_AUTH
        await async_wait_until(lambda: socket_logged(server, impostor, "failed authentication"), message="4003 logged")
        await still_works(desk, epoch)

    run(scenario())


def test_a_client_that_stops_reading_is_closed_4008(make_server, tmp_path):
    """The outbound queue (here 64 frames) fills when a client does not read its answers: the
    server drops that socket with 4008 instead of buffering without end."""
    import socket

    from websockets.asyncio.client import connect

    config = tmp_path / "site.toml"
    config.write_text("[server]\noutbound_queue = 64\nrate_per_s = 100000.0\nrate_burst = 100000\n", encoding="utf-8")
    slow_server = make_server(["--config", str(config)])

    async def scenario():
        desk, ack, _ = await login_agent(slow_server.url, "1001")
        raw = socket.create_connection(("127.0.0.1", slow_server.port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # so the kernel buffers little for it
        slow = WireClient(await connect(slow_server.url, sock=raw, ping_interval=None, compression=None,
                                        close_timeout=1, proxy=None), heartbeat=None)
        await register(slow)
        slow_ack, _ = await login(slow, "1002")
        slow.ws.transport.pause_reading()  # stops reading; keeps sending
        request = {"type": "RequestAgentReady", "epoch": slow_ack["epoch"]}
        for i in range(20_000):
            if socket_logged(slow_server, slow, "outbound queue full"):
                break
            await slow.send({**request, "request_id": f"{i:08d}-" + "x" * 50})
            if i % 100 == 0:
                await asyncio.sleep(0)  # let the log reader thread and the bystander run
        await async_wait_until(
            lambda: socket_logged(slow_server, slow, "outbound queue full, closing"), message="queue full"
        )
        slow.ws.transport.resume_reading()
        code, seen = await slow.expect_close(timeout=5)
        assert code == CloseCode.RATE_LIMITED, code
        assert len(seen) < 20_000  # the backlog was dropped, not delivered
        await still_works(desk, ack["epoch"])

    run(scenario())


def test_a_sniffed_peer_handshake_cannot_be_replayed(server):
    """On plain ws:// the old PeerHello carried a proof that depended only on the secret and the
    name: a copy fenced agents at will. Now each link is a fresh challenge: a proof seen on one
    link is refused on the next (4003), and nothing it sends counts."""
    from server_stub.tokens import peer_proof
    from tests.support.servers import SECRET

    async def scenario():
        desk, epoch = await good_client(server)
        hello = {"type": "PeerHello", "server": "B", "nonce": "1" * 32}
        genuine = await WireClient.open(server.url)  # a real peer's handshake, as an eavesdropper sees it
        await genuine.send(hello)
        challenge = await genuine.expect("PeerChallenge")
        sniffed = {"type": "PeerProof", "proof": peer_proof(SECRET.encode(), "dial", "B", "A", challenge["nonce"])}
        await genuine.send(sniffed)
        await genuine.expect("PeerAgentEpochs", full=True)  # accepted: the link is up
        await genuine.close()
        replay = await WireClient.open(server.url)
        await replay.send(hello)
        again = await replay.expect("PeerChallenge")
        assert again["nonce"] != challenge["nonce"]
        await replay.send(sniffed)
        await replay.send({"type": "PeerAgentEpochs", "server": "B", "epochs": {"1001": epoch + 1}})
        code, _ = await replay.expect_close(allow_messages=False)
        assert code == 4003
        await still_works(desk, epoch)  # not fenced by the replay

    run(scenario())
