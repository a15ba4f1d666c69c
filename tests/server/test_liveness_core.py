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


def registered_with(driver: CoreDriver, **terms: object) -> tuple[int, dict]:
    conn = driver.open()
    ack = driver.request(conn, {"type": "RequestRegisterClient", "protocol_version": p.PROTOCOL_VERSION,
                                "client_name": "desk", **terms})
    return conn, ack


def reachable_after(driver: CoreDriver, conn: int, silence: float) -> bool:
    """The login on ``conn`` goes silent for ``silence`` seconds: is it still reachable (offerable)?"""
    for _ in range(round(silence * 10)):
        driver.mono += 0.1
        driver.run(driver.core.tick(driver.now()))
    return driver.core.sessions["1001"].reachable


@pytest.mark.parametrize(("terms", "suspect_s"), [
    ({}, 1.5),  # a client written from the protocol as it was: symmetric terms
    ({"heartbeat_interval_ms": 500}, 1.5),
    ({"client_heartbeat_interval_ms": 1500}, 4.5),  # the reference desktop
    ({"client_heartbeat_interval_ms": 200}, 1.5),  # never below the heartbeat interval's terms
    ({"client_heartbeat_interval_ms": 60_000}, 15.0),  # at most 5 s: silent 15 s is suspect
])
def test_a_client_may_beat_rarer_than_the_server_and_is_suspected_after_three_of_its_beats(terms, suspect_s):
    """Asymmetric terms (docs/protocol.md, "Heartbeats"): the server keeps beating every 0.5 s (the
    client still finds it dead after 1.5 s) and judges the client by the beats it said it sends."""
    driver = CoreDriver(core())
    conn, ack = registered_with(driver, **terms)
    assert (ack["heartbeat_interval_ms"], ack["heartbeat_timeout_ms"]) == (500, 1500)
    assert ack["suspect_timeout_ms"] == suspect_s * 1000 and ack["client_timeout_ms"] == 20_000
    assert login(driver, conn, password=PASSWORD)["type"] == "EventAck"
    beats = heartbeats(driver, conn)
    assert reachable_after(driver, conn, suspect_s - 0.2)
    assert heartbeats(driver, conn) - beats >= int((suspect_s - 0.2) / 0.6)  # the server's own, every 0.5 s
    assert not reachable_after(driver, conn, 0.4)  # suspect: offered nothing, the login kept
    assert conn not in driver.closed and "1001" in driver.core.sessions
    driver.run(driver.core.received(conn, '{"type": "Heartbeat"}', driver.now()))
    assert reachable_after(driver, conn, 0.1)  # heard again: simply goes on


def test_a_primary_vouches_for_a_rarely_beating_desktop_only_if_it_heard_it_lately():
    """The witness asks the primary whether it hears the desktop: within its heartbeat timeout plus
    what the desktop's rarer beat adds (1.5 + 1.0 s), not the whole suspect threshold (4.5 s) of a
    desktop that beats every 1.5 s (and beats its primary before it asks). Not heard that long, the
    login is ended at once (the desktop is moving it), though it was not even suspect yet."""
    driver = CoreDriver(core())
    conn, _ = registered_with(driver, client_heartbeat_interval_ms=1500)
    epoch = login(driver, conn, password=PASSWORD)["epoch"]
    peer = driver.open()
    driver.core.conns[peer].kind = "peer"  # what a proven PeerHello makes of it

    def asked(ask_id: int) -> bool:
        driver.run(driver.core.received(peer, p.encode(p.PeerWitness(server="B", agent_id="1001", epoch=epoch,
                                                                      ask_id=ask_id)), driver.now()))
        (answer,) = [m for m in driver.received.get(peer, []) if m.get("ask_id") == ask_id]
        return answer["alive"]

    assert reachable_after(driver, conn, 2.3)
    assert asked(1)  # its last beat 2.3 s ago: within 2.5 s
    driver.run(driver.core.received(conn, '{"type": "Heartbeat"}', driver.now()))
    assert reachable_after(driver, conn, 2.7)  # not suspect (4.5 s) ...
    assert not asked(2)  # ... but not heard for 2.7 s: not vouched for, and the login ends now
    assert "1001" not in driver.core.sessions
