"""Password guessing is throttled per account and per address (docs/protocol.md, "Limits"); the
password checks are shared in turn between addresses."""

from __future__ import annotations

import asyncio
import json
import socket

from websockets.asyncio.client import connect

from server_stub.core.throttle import Throttle
from tests.server.core_driver import PASSWORD, CoreDriver
from tests.server.wire import WireClient, login_agent, register, run


def login(driver: CoreDriver, conn: int, agent_id: str, password: str) -> dict:
    return driver.request(conn, {"type": "RequestAgentLogin", "agent_id": agent_id, "password": password})


def test_guesses_beyond_a_few_wait_longer_and_longer_and_the_right_password_waits_too():
    """Before: ~14 guesses a second per server, no lockout, the right password accepted at once."""
    driver = CoreDriver()
    for agent_id in ("1001", "nobody"):  # a known and an unknown id are treated alike
        conn = driver.registered()
        answers = [login(driver, conn, agent_id, f"guess{i}")["code"] for i in range(6)]
        assert answers == ["bad_credentials"] * 6  # five free failures, the sixth locks for 1 s
        locked = login(driver, conn, agent_id, PASSWORD)
        assert locked["code"] == "too_many_attempts" and 0 < locked["retry_after_ms"] <= 1000, locked
        assert "try again in 1 s" in locked["message"]
    driver.mono += 1.0
    conn = driver.registered()
    assert login(driver, conn, "1001", "guess6")["code"] == "bad_credentials"  # and the next lock is 2 s
    driver.mono += 1.0
    assert login(driver, conn, "1001", PASSWORD)["code"] == "too_many_attempts"
    driver.mono += 1.0
    assert login(driver, conn, "1001", PASSWORD)["type"] == "EventAck"  # a success clears the count
    other = driver.registered()
    assert login(driver, other, "1002", PASSWORD)["type"] == "EventAck"  # other accounts never waited


def test_an_address_failing_for_many_accounts_is_slowed_as_a_whole():
    driver = CoreDriver()
    answers = []
    for batch in range(11):  # new sockets now and then: each has its own error budget (4001)
        conn = driver.registered()
        answers += [login(driver, conn, f"user{batch}-{i}", "x")["code"] for i in range(10 if batch < 10 else 1)]
    assert answers == ["bad_credentials"] * 101
    assert login(driver, driver.registered(), "1002", PASSWORD)["code"] == "too_many_attempts"


def test_the_throttle_forgets_quiet_keys_and_stays_bounded():
    throttle = Throttle(free=1, base_ms=100, max_ms=400, forget_after_ms=1_000, capacity=3)
    throttle.failed("a", 0)
    throttle.failed("a", 0)
    assert throttle.wait_ms("a", 0) == 100
    for _n in range(3, 6):
        throttle.failed("a", 0)
    assert throttle.wait_ms("a", 0) == 400  # doubling, up to the ceiling
    assert throttle.wait_ms("a", 2_000) == 0  # quiet for longer than forget_after_ms
    for key in "bcde":
        throttle.failed(key, 0)
    assert len(throttle._keys) == 3


def test_a_login_flood_from_one_address_does_not_hold_up_a_login_from_another(make_server):
    """50 sockets sending logins for unknown ids pushed a real login from ~80 ms to 4.6 s: the
    checks were served first come, first served. Now addresses take turns: the real login is
    answered while most of the flood still waits (checked by order, not by time)."""
    server = make_server()

    async def flooder(index: int) -> WireClient:
        raw = socket.socket()
        raw.bind(("127.0.0.2", 0))  # the attacker's address (loopback, this machine)
        raw.connect(("127.0.0.1", server.port))
        client = WireClient(await connect(server.url, sock=raw, ping_interval=None, compression=None, proxy=None,
                                          close_timeout=1), heartbeat=0.2)
        await register(client)
        await client.send({"type": "RequestAgentLogin", "request_id": f"flood-{index}", "agent_id": f"nobody{index}",
                           "password": "guess"})
        return client

    async def scenario():
        flood = [await flooder(i) for i in range(50)]
        await login_agent(server.url, "1001")
        answered = sum(1 for c in flood if any(json.loads(f).get("request_id", "").startswith("flood-")
                                               for f in c.received))
        assert answered < 25, f"{answered} of the flood's 50 checks went before the real login"
        await asyncio.gather(*(c.expect_error("bad_credentials", timeout=30) for c in flood))

    run(scenario(), timeout=90)
