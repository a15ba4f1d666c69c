"""The link helper (server_stub.link): reconnect pacing with jitter, and one link against a real
server: registered with the server's heartbeat terms, kept alive by heartbeats past the server's
timeout, and declared lost after the timeout when the server stops answering."""

from __future__ import annotations

import asyncio
import random

import pytest

from server_stub import link
from server_stub import protocol as p
from tests.server.wire import run
from tests.support.servers import async_wait_until, single_server

# The server's silence limit for these tests: a client that stops sending is closed after 0.4 s.
FAST = ["--heartbeat-interval", "100", "--heartbeat-timeout", "400"]


@pytest.fixture(scope="module")
def fast_server():
    server = single_server("A", FAST).start()
    yield server
    assert server.stop() == 0


# --------------------------------------------------------------------------- backoff


def test_backoff_doubles_up_to_the_cap_and_starts_again_after_a_reset():
    backoff = link.Backoff(first=0.1, cap=2.0, jitter=0.0)
    assert [round(backoff.next(), 6) for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    backoff.reset()
    assert backoff.next() == 0.1


def test_backoff_jitter_stays_within_its_share_and_a_seed_repeats_it():
    def delays(seed: int) -> list[float]:
        backoff = link.Backoff(first=0.25, cap=5.0, jitter=0.5, rng=random.Random(seed))
        return [backoff.next() for _ in range(200)]

    first = delays(7)
    assert first == delays(7)  # deterministic with a seeded Random
    assert first != delays(8)
    ceilings = [min(5.0, 0.25 * 2 ** n) for n in range(200)]
    assert all(c / 2 <= d <= c for d, c in zip(first, ceilings, strict=True))
    # Spread: clients that lost a site together do not come back in lockstep.
    capped = first[10:]
    assert max(capped) - min(capped) > 1.5


def test_backoff_survives_a_link_down_for_ever_and_refuses_nonsense():
    backoff = link.Backoff(first=0.1, cap=2.0, jitter=0.0)
    backoff.failures = 10_000  # 0.1 * 2 ** 10000 would overflow a float
    assert backoff.next() == 2.0
    for bad in (dict(first=0), dict(first=3, cap=2), dict(factor=0.5), dict(jitter=1.5)):
        with pytest.raises(ValueError):
            link.Backoff(**bad)


# --------------------------------------------------------------------------- against a real server


def test_register_adopts_the_servers_heartbeat_terms(fast_server):
    async def scenario():
        conn = link.Link(await link.connect(fast_server.url, open_timeout=3))
        ack = await conn.register("link-reg-1", "link test", heartbeat_interval=0.12)
        assert (ack.server, ack.heartbeat_interval_ms, ack.heartbeat_timeout_ms) == ("A", 120, 400)
        assert (conn.heartbeat_interval, conn.heartbeat_timeout) == (0.12, 0.4)
        conn.abort()

    run(scenario())


def test_keepalive_holds_the_link_past_the_servers_timeout(fast_server):
    """Without heartbeats the server closes a silent client after 0.4 s (4000); with keepalive()
    the link stays open while the server's own heartbeats keep arriving."""

    async def scenario():
        conn = link.Link(await link.connect(fast_server.url))
        await conn.register("link-reg-2", "link test", heartbeat_interval=0.1)
        keepalive = asyncio.create_task(conn.keepalive())
        heard = 0

        async def read():
            nonlocal heard
            async for frame in conn.frames():
                heard += isinstance(p.decode_server(frame), p.Heartbeat)

        reader = asyncio.create_task(read())
        await async_wait_until(lambda: heard >= 15, timeout=5, message="1.5 s of the server's heartbeats")
        assert conn.ws.close_code is None and not keepalive.done() and not conn.silent
        keepalive.cancel()
        # Now silent: the server gives the socket up with 4000 (the reader ends without an error).
        await asyncio.wait_for(reader, 3)
        assert conn.ws.close_code == p.CloseCode.HEARTBEAT and conn.end_reason() == "closed 4000"

    run(scenario())


def test_a_server_that_stops_answering_is_declared_lost_after_the_timeout():
    server = single_server("A", FAST).start()
    try:
        async def scenario():
            conn = link.Link(await link.connect(server.url))
            await conn.register("link-reg-3", "link test", heartbeat_interval=0.1)
            loop = asyncio.get_running_loop()
            server.sigstop()  # hung, not dead: the TCP connection stays up
            stopped = loop.time()
            await asyncio.wait_for(conn.keepalive(), 3)
            assert conn.silent and conn.end_reason() == "silent"
            assert 0.3 <= loop.time() - stopped < 1.0  # the negotiated 0.4 s, not TCP's minutes

        run(scenario())
    finally:
        server.sigcont()
        server.stop()


def test_a_refused_request_raises_with_the_servers_code(fast_server):
    async def scenario():
        conn = link.Link(await link.connect(fast_server.url))
        await conn.register("link-reg-4", "link test")
        # Heartbeats while the password is checked: on a loaded machine that can outlast the 0.4 s.
        keepalive = asyncio.create_task(conn.keepalive())
        with pytest.raises(link.Refused) as refused:
            await conn.request(p.RequestSubscribeReporting(request_id="link-sub-1", user_id="sup1", password="nope"))
        assert refused.value.code == "bad_credentials"
        keepalive.cancel()
        conn.abort()

    run(scenario())


def test_an_unreachable_server_raises_a_link_error():
    server = single_server("A")  # never started: nothing listens on its port

    async def scenario():
        with pytest.raises(link.LINK_ERRORS):
            await link.connect(server.url, open_timeout=2)

    run(scenario())
