"""The server's side of "a stall is not a failure" (docs/failover.md), in-process over the core: the
client timeout is range-checked like every setting, and a resume-token login whose ack was lost
can be retried as long as its token lives, so a desktop that could not reach any site for a while
(a storm, a starved machine) is not asked for its password because of timing alone."""

from __future__ import annotations

import pytest

from server_stub import protocol as p
from server_stub.config import ConfigError, ServerConfig
from tests.server.core_driver import PASSWORD, CoreDriver, core


@pytest.mark.parametrize(("settings", "complaint"), [
    ({"client_timeout_ms": 1000}, "client_timeout_ms (1000) must be at least heartbeat_timeout_ms (1500)"),
    ({"client_timeout_ms": 300_001}, "client_timeout_ms must be at most 300000"),
    ({"client_timeout_ms": 100, "heartbeat_timeout_ms": 200, "heartbeat_interval_ms": 100},
     "client_timeout_ms must be at least 200"),
])
def test_the_client_timeout_is_range_checked(settings, complaint):
    with pytest.raises(ConfigError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        ServerConfig(secret=b"0123456789abcdef0123").with_overrides(**settings).validate()


def test_the_default_client_timeout_keeps_an_8_s_pause_and_the_slowest_heartbeat_a_client_may_ask():
    config = ServerConfig()
    assert config.client_timeout_ms > 8_000
    driver = CoreDriver(core())
    conn = driver.open()
    ack = driver.request(conn, {"type": "RequestRegisterClient", "protocol_version": p.PROTOCOL_VERSION,
                                "client_name": "slow", "heartbeat_interval_ms": 60_000})
    assert (ack["heartbeat_timeout_ms"], ack["client_timeout_ms"]) == (15_000, 20_000)


def login(driver: CoreDriver, conn: int, **credential: object) -> dict:
    return driver.request(conn, {"type": "RequestAgentLogin", "agent_id": "1001", **credential})


def test_a_lost_ack_retry_is_taken_long_after_30_s_while_its_token_lives():
    driver = CoreDriver(core())
    first = login(driver, driver.registered(), password=PASSWORD)
    assert first["epoch"] == 1
    # The failover login, made with the token of epoch 1, whose ack the desktop never read: it gave
    # the link up (the core sees the socket close, and the login end with it).
    lost = driver.registered()
    made = login(driver, lost, resume_token=first["resume_token"], epoch=2)
    assert made["epoch"] == 2
    driver.run(driver.core.disconnected(lost, driver.now()))
    for _ in range(90):  # a minute and a half without reaching any site
        driver.mono += 1.0
        driver.run(driver.core.tick(driver.now()))
    retry = login(driver, driver.registered(), resume_token=first["resume_token"], epoch=3)
    assert (retry["type"], retry.get("epoch")) == ("EventAck", 3), retry


def heartbeats(driver: CoreDriver, conn: int) -> int:
    return sum(1 for m in driver.received.get(conn, []) if m["type"] == "Heartbeat")


def test_a_quiet_standby_socket_is_heartbeated_every_5_s_and_a_login_every_interval():
    """A standby only has to notice a dead backup eventually (and the server keeps it for the
    client timeout): both ends heartbeat it every STANDBY_HEARTBEAT_MS, half a storm's frames.
    A login's socket keeps the negotiated 0.5 s, and so does a standby once a login is made on it."""
    driver = CoreDriver(core())
    primary = driver.registered()
    token = login(driver, primary, password=PASSWORD)["resume_token"]
    standby = driver.registered()
    ack = driver.request(standby, {"type": "RequestAgentAvailable", "agent_id": "1001", "resume_token": token})
    assert ack["type"] == "EventAck", ack
    start = {conn: heartbeats(driver, conn) for conn in (primary, standby)}
    for _ in range(100):  # 10 s; the desktop heartbeats both sockets as the protocol says
        driver.mono += 0.1
        if round(driver.mono * 10) % 5 == 0:
            driver.run(driver.core.received(primary, '{"type": "Heartbeat"}', driver.now()))
        if round(driver.mono * 10) % 50 == 0:
            driver.run(driver.core.received(standby, '{"type": "Heartbeat"}', driver.now()))
        driver.run(driver.core.tick(driver.now()))
    assert heartbeats(driver, primary) - start[primary] >= 18
    assert 1 <= heartbeats(driver, standby) - start[standby] <= 10_000 // p.STANDBY_HEARTBEAT_MS  # not 20
    assert standby not in driver.closed and primary not in driver.closed
    # The failover login on the standby socket: from then on it is a primary, heartbeated fast.
    driver.run(driver.core.disconnected(primary, driver.now()))
    moved = login(driver, standby, resume_token=token, epoch=2)
    assert moved["type"] == "EventAck", moved
    before = heartbeats(driver, standby)
    for _ in range(20):
        driver.mono += 0.1
        driver.run(driver.core.tick(driver.now()))
    assert heartbeats(driver, standby) - before >= 3
