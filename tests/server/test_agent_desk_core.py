"""What the server tells and allows an agent's desktop (issue 15): server-only Not Ready reasons,
an extendable After Call Work, and the figures of the agent's own queues. In-process, fake clock."""

from __future__ import annotations

from server_stub import protocol as p
from tests.server.core_driver import PASSWORD, CoreDriver, core


def logged_in(driver: CoreDriver, agent: str = "1001") -> tuple[int, int]:
    conn = driver.registered()
    ack = driver.request(conn, {"type": "RequestAgentLogin", "agent_id": agent, "password": PASSWORD})
    assert ack["type"] == "EventAck", ack
    return conn, ack["epoch"]


def register_ack(driver: CoreDriver) -> dict:
    conn = driver.open()
    return driver.request(conn, {"type": "RequestRegisterClient", "protocol_version": p.PROTOCOL_VERSION,
                                 "client_name": "core-test"})


def test_the_missed_offer_reason_is_flagged_server_only_and_refused_from_an_agent():
    driver = CoreDriver()
    reasons = {r["code"]: r for r in register_ack(driver)["reasons"]}
    assert reasons["system"].get("server_only") is True
    assert "server_only" not in reasons["lunch"]  # omitted when false
    conn, epoch = logged_in(driver)
    assert driver.request(conn, {"type": "RequestAgentReady", "epoch": epoch})["type"] == "EventAck"
    error = driver.request(conn, {"type": "RequestAgentNotReady", "epoch": epoch, "reason": "system"})
    assert error["type"] == "EventError" and error["code"] == "server_only_reason"
    assert "system" in error["message"]
    assert driver.core.sessions["1001"].state == "ready"  # refused: no effect
    # An ordinary reason is still taken, and a failover login may carry the server-only one.
    assert driver.request(conn, {"type": "RequestAgentNotReady", "epoch": epoch, "reason": "lunch"})["type"] == "EventAck"
    other = driver.registered()
    ack = driver.request(other, {"type": "RequestAgentLogin", "agent_id": "1002", "password": PASSWORD,
                                 "state": {"state": "not_ready", "reason": "system", "since_ms": 1}})
    assert ack["type"] == "EventAck", ack


def test_a_site_may_flag_further_reasons_server_only_and_the_flag_follows_the_offer_timeout_reason():
    reasons = (p.ReasonInfo(code="lunch", label="Lunch"), p.ReasonInfo(code="auto", label="Auto"),
               p.ReasonInfo(code="quality", label="Quality check", server_only=True),
               p.ReasonInfo(code="system", label="System"))
    driver = CoreDriver(core=core(reasons=reasons, offer_timeout_reason="auto"))
    flagged = {r["code"] for r in register_ack(driver)["reasons"] if r.get("server_only")}
    assert flagged == {"auto", "quality"}
    conn, epoch = logged_in(driver)
    for code in ("auto", "quality"):
        assert driver.request(conn, {"type": "RequestAgentNotReady", "epoch": epoch,
                                     "reason": code})["code"] == "server_only_reason"
    assert driver.request(conn, {"type": "RequestAgentNotReady", "epoch": epoch,
                                 "reason": "system"})["type"] == "EventAck"
