"""Resource limits against real servers: too many sockets, and the peer link's own budget. Each
test reproduces the attack and asserts the bound; a legitimate agent keeps working wherever the
limit allows it (docs/protocol.md, "Limits")."""

from __future__ import annotations

import asyncio

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.server.wire import PASSWORD, WireClient, connect_registered, login, login_agent, run, still_works
from tests.support.servers import async_wait_until, linked, log_count, wait_until


def site_file(tmp_path, **settings) -> list[str]:
    path = tmp_path / "limits.toml"
    path.write_text("[server]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items()), encoding="utf-8")
    return ["--config", str(path)]


def test_sockets_that_do_not_log_in_are_limited_per_address(make_server, tmp_path):
    """Idle registered sockets used to lock a legitimate agent out once the process ran out of
    files. Now one address holds at most ``max_unauthenticated_per_source`` of them; the next
    handshake is refused with 503 and a reason, and logging in frees a slot."""
    server = make_server(site_file(tmp_path, max_unauthenticated_per_source=3))

    async def scenario():
        idle = [await connect_registered(server.url) for _ in range(3)]
        with pytest.raises(InvalidStatus) as refused:
            await WireClient.open(server.url)
        assert refused.value.response.status_code == 503
        assert b"have not logged in" in refused.value.response.body
        await login(idle[0], "1001")  # an authenticated socket no longer counts
        desk, ack, _ = await login_agent(server.url, "1002")
        await still_works(desk, ack["epoch"])

    run(scenario())
    assert server.log_has("refused a connection from 127.0.0.1: too many connections from 127.0.0.1 that have not")


def test_the_server_refuses_connections_beyond_its_limit(make_server, tmp_path):
    server = make_server(site_file(tmp_path, max_connections=16))

    async def scenario():
        held = [(await login_agent(server.url, f"{1001 + i}"))[0] for i in range(8)]
        held += [await connect_registered(server.url) for _ in range(8)]
        with pytest.raises(InvalidStatus) as refused:
            await WireClient.open(server.url)
        assert refused.value.response.status_code == 503 and b"limit of 16 connections" in refused.value.response.body
        held[-1].abort()  # one leaves: the next may come in
        await async_wait_until(lambda: log_count(server, "disconnected") >= 1, message="a socket gone")
        desk, ack, _ = await login_agent(server.url, "1009")
        await still_works(desk, ack["epoch"])

    run(scenario())


def test_the_peer_link_is_not_throttled_like_a_client(make_pair, tmp_path):
    """The peer link carries every login, logout and interaction of a site: at a client's rate
    budget its frames were dropped under load (and the link closed 4008). With a budget of 4
    frames/s per client socket, ten agents leaving at once still all reach the peer."""
    a, b = make_pair(site_file(tmp_path, rate_per_s=4.0, rate_burst=4))
    wait_until(lambda: linked(a, b), message="peer link up")
    agents = [f"{1001 + i}" for i in range(10)]

    async def scenario():
        desks = []
        for agent_id in agents:
            desk = await connect_registered(a.url, heartbeat=0.5)  # within its own budget
            await login(desk, agent_id)
            desks.append(desk)
        for desk in desks:  # ten logout deltas to the peer in a millisecond
            desk.abort()
        await async_wait_until(lambda: log_count(a, "logged out at epoch") == len(agents), message="A logs them out")
        # B heard every one: a password login there replaces nothing.
        for agent_id in agents:
            desk = await connect_registered(b.url, heartbeat=0.5)
            ack = await desk.request({"type": "RequestAgentLogin", "agent_id": agent_id, "password": PASSWORD})
            assert ack["type"] == "EventAck" and "replaced" not in ack, ack

    run(scenario())
    assert not b.log_has("flooding") and not a.log_has("flooding")
    assert not any("peer link from A" in line and "disconnected" in line for line in b.lines)


def test_a_logged_in_client_that_stops_reading_is_gone_and_logged_out_in_bounded_time(make_server, tmp_path):
    """The server's close used to wait in drain() before its close timeout applied: a socket closed
    for 4008 stayed open for as long as its client liked, and its agent stayed logged in as a ghost
    (still 20 s later). Now a close that does not complete in 2 s drops the connection, and the
    login ends as any disconnect."""
    import socket

    from websockets.asyncio.client import connect

    server = make_server(site_file(tmp_path, outbound_queue=16, rate_per_s=100000.0, rate_burst=100000))

    async def scenario():
        raw = socket.create_connection(("127.0.0.1", server.port))
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ghost = WireClient(await connect(server.url, sock=raw, ping_interval=None, compression=None, close_timeout=1,
                                         proxy=None), heartbeat=0.2)  # it keeps beating: it is not silent
        await ghost.request({"type": "RequestRegisterClient", "protocol_version": 1, "client_name": "ghost"})
        ack, _ = await login(ghost, "1001")
        ghost.ws.transport.pause_reading()
        for i in range(400):  # each is answered with an EventAck and a status it never reads
            if log_count(server, "outbound queue full"):
                break
            await ghost.send({"type": "RequestAgentNotReady", "request_id": f"nr-{i}", "epoch": ack["epoch"],
                              "reason": ("break", "lunch")[i % 2]})
        # Gone within the close wait (2 s) and a tick, though the client never answers the close.
        await async_wait_until(lambda: server.log_has("agent 1001 logged out at epoch 1 (disconnected)"), timeout=5,
                               message="the ghost logged out")
        desk, again, _ = await login_agent(server.url, "1001")
        assert "replaced" not in again, again  # no ghost login left to replace

    run(scenario())


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


@pytest.mark.server_processes  # its memory is measured
def test_a_ping_flood_that_never_reads_its_pongs_stays_within_the_memory_bound(make_server, tmp_path):
    """Pings answered with pongs the flooder never reads took a server from 30 to 737 MiB (6 sockets,
    30 s). Whatever the WebSocket layer does with them, what waits for one socket is bounded
    (max_outbound_bytes, pongs included) and the flooders cost the server little memory."""
    import socket

    from websockets.asyncio.client import connect

    server = make_server(site_file(tmp_path, max_outbound_bytes=1_048_576))
    assert server.proc is not None
    before = _rss_mib(server.proc.pid)

    async def scenario():
        flooders = []
        for _ in range(6):
            raw = socket.create_connection(("127.0.0.1", server.port))
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            ws = await connect(server.url, sock=raw, ping_interval=None, compression=None, proxy=None, close_timeout=1)
            ws.transport.pause_reading()
            flooders.append(ws)
        sent = 0
        for round_ in range(5000):
            for ws in flooders:
                try:
                    async with asyncio.timeout(0.01):  # a flooder whose writes block is not read either
                        await ws.ping(round_.to_bytes(4, "big") + b"x" * 121)
                    sent += 1
                except (TimeoutError, ConnectionClosed):
                    pass
        desk, ack, _ = await login_agent(server.url, "1001")
        await still_works(desk, ack["epoch"])
        return sent

    sent = run(scenario())
    assert sent > 0 and server.alive()
    assert _rss_mib(server.proc.pid) - before < 50, f"{sent} pings grew the server by more than 50 MiB"
