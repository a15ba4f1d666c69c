"""Password guessing is throttled per account and per address (docs/protocol.md, "Limits"); the
password checks are shared in turn between addresses."""

from __future__ import annotations

import asyncio
import json
import socket

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from server_stub.core import CheckPassword, Output
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


def lock_the_address(driver: CoreDriver) -> None:
    """101 wrong passwords for as many unknown ids from one address (the driver's sockets share
    127.0.0.1): over the address's free failures, so it is locked."""
    answers = []
    for batch in range(11):  # new sockets now and then: each has its own error budget (4001)
        conn = driver.registered()
        answers += [login(driver, conn, f"user{batch}-{i}", "x")["code"] for i in range(10 if batch < 10 else 1)]
    assert answers == ["bad_credentials"] * 101


class CountingDriver(CoreDriver):
    """Counts the password checks (scrypt work) the core asks for."""

    checks = 0

    def run(self, outputs: list[Output]) -> None:
        self.checks += sum(isinstance(out, CheckPassword) for out in outputs)
        super().run(outputs)


def test_an_address_failing_for_many_accounts_is_slowed_as_a_whole():
    driver = CountingDriver()
    lock_the_address(driver)
    checks_before, refused = driver.checks, []
    for batch in range(20):  # the flood goes on: 200 more guesses in 2 s
        conn = driver.registered()
        for i in range(10):
            answer = login(driver, conn, f"more{batch}-{i}", "x")
            if answer["code"] == "too_many_attempts":
                refused.append(answer)
    assert len(refused) >= 180, "a locked address has only a few password checks a second"
    assert all(0 < a["retry_after_ms"] <= 1000 and "try again in 1 s" in a["message"] for a in refused), refused[:3]
    assert driver.checks - checks_before <= 10


def test_a_locked_address_still_lets_the_right_password_in_within_seconds():
    """One infected PC behind a floor's NAT locked the address for up to 5 minutes: every agent of
    the floor was refused, the right password too (only resume tokens still worked). Now a locked
    address gets a few password checks a second; the PC retrying its own agent id is held by that
    id's throttle, so another agent's right password goes in within seconds."""
    driver = CoreDriver()
    lock_the_address(driver)
    pc, agent = driver.registered(), driver.registered()
    started, answer = driver.mono, {}
    while driver.mono - started < 5.0:
        for _ in range(5):  # the PC keeps guessing for its own agent, ~50 times a second
            assert login(driver, pc, "1001", "guess")["code"] in ("bad_credentials", "too_many_attempts")
            if len(driver.received[pc]) > 15:  # near its socket's error budget: it opens another
                pc = driver.registered()
        answer = login(driver, agent, "1002", PASSWORD)
        if answer["type"] == "EventAck":
            break
        assert answer["code"] == "too_many_attempts" and answer["retry_after_ms"] > 0, answer
        driver.mono += answer["retry_after_ms"] / 1000  # the user tries again when told
    assert answer["type"] == "EventAck", f"still refused after {driver.mono - started:.1f} s: {answer}"


def test_an_agent_who_logged_in_from_the_address_lately_is_not_held_up_by_a_flood_that_goes_on():
    """A flood of guesses for ever new ids takes a locked address's few checks as they come; the
    agents who logged in from that address this week are not rationed by its lock at all."""
    driver = CoreDriver()
    yesterday = driver.registered()
    assert login(driver, yesterday, "1002", PASSWORD)["type"] == "EventAck"
    driver.run(driver.core.disconnected(yesterday, driver.now()))  # logged off (socket closed)
    driver.mono += 24 * 3600.0
    lock_the_address(driver)
    for second in range(10):  # the flood goes on, 10 guesses a second
        driver.mono += 0.9
        conn = driver.registered()
        for i in range(10):
            assert login(driver, conn, f"flood{second}-{i}", "x")["code"] in ("bad_credentials", "too_many_attempts")
    assert login(driver, driver.registered(), "nobody", PASSWORD)["code"] == "too_many_attempts"  # the ration is spent
    assert login(driver, driver.registered(), "1002", PASSWORD)["type"] == "EventAck"  # at once, first try
    assert login(driver, driver.registered(), "1002", "guess")["code"] == "bad_credentials"  # checked, not waved in


def test_a_long_guessing_flood_from_a_locked_address_costs_a_bounded_number_of_checks():
    """Ten minutes of guesses for fresh ids, 50 a second, from one address: the password checks
    (0.1 s of CPU each) stay a few a second, however many guesses come."""
    driver = CountingDriver()
    lock_the_address(driver)
    checks_before, started, guesses = driver.checks, driver.mono, 0
    while driver.mono - started < 600:
        conn = driver.registered()
        for _ in range(10):
            answer = login(driver, conn, f"guess{guesses}", "x")
            guesses += 1
            assert answer["code"] in ("bad_credentials", "too_many_attempts"), answer
        driver.mono += 0.1
    assert guesses >= 25_000
    assert driver.checks - checks_before <= 2 * 600 + 10


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


def test_a_locked_key_with_a_ration_gets_a_few_checks_a_second():
    throttle = Throttle(free=0, base_ms=60_000, max_ms=60_000, forget_after_ms=600_000, ration_per_s=2, ration_burst=3)
    throttle.failed("floor", 0)
    assert [throttle.admit("floor", 0) for _ in range(4)] == [0, 0, 0, 500]  # the burst, then the next token
    assert throttle.admit("floor", 499) == 2 and throttle.admit("floor", 500) == 0
    assert throttle.admit("floor", 100) == 500  # a wall clock stepped back refills nothing
    assert throttle.admit("floor", 10_000_000) == 0  # long quiet: forgotten, no longer locked
    trusting = Throttle(free=0, base_ms=60_000, max_ms=60_000, forget_after_ms=600_000, ration_per_s=2,
                        ration_burst=1, trust_ms=1_000, capacity=2)
    trusting.vouch("floor", "1002", 0)
    trusting.failed("floor", 0)
    assert trusting.admit("floor", 0) == 0 and trusting.admit("floor", 0) == 500  # its one check, then none
    assert trusting.admit("floor", 0, "1002") == 0 and trusting.admit("floor", 1_000, "1002") == 0  # vouched for
    assert trusting.admit("floor", 1_001) == 0 and trusting.admit("floor", 1_001, "1002") > 0  # for trust_ms
    for account in ("a", "b", "c"):
        trusting.vouch("floor", account, 0)
    assert len(trusting._trusted) == 2  # bounded
    plain = Throttle(free=0, base_ms=60_000, max_ms=60_000, forget_after_ms=600_000)
    plain.failed("account", 0)
    assert plain.admit("account", 0) == 60_000  # no ration: locked outright


@settings(deadline=None)  # pure and quick, but the machine is shared: no timing verdict
@given(gaps=st.lists(st.integers(min_value=0, max_value=700), max_size=300), window=st.integers(1, 5_000))
def test_a_locked_key_never_gets_more_checks_than_its_ration(gaps, window):
    """However the attempts come (bursts, gaps), a locked key gets at most burst + rate x time
    checks in any span of time, and is told a wait of at most one refill when refused."""
    throttle = Throttle(free=0, base_ms=600_000, max_ms=600_000, forget_after_ms=600_000, ration_per_s=2,
                        ration_burst=4)
    throttle.failed("floor", 0)
    now, admitted = 0, []
    for gap in gaps:
        now += gap
        wait = throttle.admit("floor", now)
        assert 0 <= wait <= 500
        if not wait:
            admitted.append(now)
    for i, start in enumerate(admitted):
        within = sum(1 for t in admitted[i:] if t - start <= window)
        assert within <= 4 + 2 * window / 1000 + 1e-9, (start, window, admitted)


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
