"""What the server tells and allows an agent's desktop (issue 15): server-only Not Ready reasons,
an extendable After Call Work, and the figures of the agent's own queues. In-process, fake clock."""

from __future__ import annotations

import pytest

from server_stub import protocol as p
from server_stub.config import ConfigError, QueueConfig, load_site_config
from tests.server.core_driver import PASSWORD, CoreDriver, core


def logged_in(driver: CoreDriver, agent: str = "1001", **login: object) -> tuple[int, int]:
    conn = driver.registered()
    ack = driver.request(conn, {"type": "RequestAgentLogin", "agent_id": agent, "password": PASSWORD, **login})
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
    lunch = driver.request(conn, {"type": "RequestAgentNotReady", "epoch": epoch, "reason": "lunch"})
    assert lunch["type"] == "EventAck"
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


def statuses(driver: CoreDriver, conn: int) -> list[dict]:
    return [m for m in driver.received.get(conn, []) if m["type"] == "EventCurrentAgentStatus"]


def tick(driver: CoreDriver, seconds: float) -> None:
    """Time passes in half-second steps (a longer gap reads as a stalled process), the desktop heard."""
    end = driver.mono + seconds
    while driver.mono < end:
        driver.mono = min(end, driver.mono + 0.5)
        for conn in list(driver.core.conns):
            driver.core.heard(conn, driver.now())
        driver.run(driver.core.tick(driver.now()))


def completed_call(driver: CoreDriver, conn: int, epoch: int, iid: str = "call-1") -> None:
    """A call submitted by a carrier, offered to the Ready agent, accepted and completed."""
    carrier = driver.registered()
    assert driver.request(carrier, {"type": "RequestSubscribeReporting", "user_id": "carrier1",
                                    "password": PASSWORD})["type"] == "EventAck"
    assert driver.request(conn, {"type": "RequestAgentReady", "epoch": epoch})["type"] == "EventAck"
    interaction = {"interaction_id": iid, "media": "voice", "queue": "sales", "created_ms": 1}
    submitted = driver.request(carrier, {"type": "RequestSubmitInteraction", "interaction": interaction})
    assert submitted["type"] == "EventAck"
    assert any(m["type"] == "EventInvite" for m in driver.received[conn])
    assert driver.request(conn, {"type": "RequestAccept", "epoch": epoch, "interaction_id": iid})["type"] == "EventAck"
    assert driver.request(conn, {"type": "RequestCompleteInteraction", "epoch": epoch, "interaction_id": iid,
                                 "disposition": "resolved"})["type"] == "EventAck"


def test_extend_wrap_up_moves_the_servers_deadline_as_often_as_the_queue_allows():
    queue = QueueConfig(name="sales", acw_ms=5000, acw_extend_ms=10_000, acw_max_extends=2)
    driver = CoreDriver(core=core(queues=(queue,)))
    conn, epoch = logged_in(driver)
    completed_call(driver, conn, epoch)
    acw = statuses(driver, conn)[-1]
    assert acw["state"] == "after_call_work" and acw["extends_left"] == 2
    first_end = acw["until_ms"]
    assert driver.request(conn, {"type": "RequestExtendAfterCallWork", "epoch": epoch})["type"] == "EventAck"
    extended = statuses(driver, conn)[-1]
    assert extended["until_ms"] == first_end + 10_000 and extended["extends_left"] == 1
    assert extended["since_ms"] == acw["since_ms"]  # the same wrap-up, longer
    tick(driver, 6.0)  # past the first end: the old timer no longer ends it
    assert statuses(driver, conn)[-1]["state"] == "after_call_work"
    assert driver.request(conn, {"type": "RequestExtendAfterCallWork", "epoch": epoch})["type"] == "EventAck"
    last = statuses(driver, conn)[-1]
    assert "extends_left" not in last  # none left
    refused = driver.request(conn, {"type": "RequestExtendAfterCallWork", "epoch": epoch})
    assert refused["code"] == "acw_not_extendable"
    tick(driver, (last["until_ms"] - driver.now().wall_ms) / 1000 + 0.1)
    assert statuses(driver, conn)[-1]["state"] == "ready"
    # Outside After Call Work there is nothing to extend.
    assert driver.request(conn, {"type": "RequestExtendAfterCallWork", "epoch": epoch})["code"] == "acw_not_extendable"


def test_a_queue_without_extend_refuses_it_and_the_desktop_is_told_none_are_left():
    driver = CoreDriver(core=core(queues=(QueueConfig(name="sales", acw_ms=5000),)))
    conn, epoch = logged_in(driver)
    completed_call(driver, conn, epoch)
    assert "extends_left" not in statuses(driver, conn)[-1]
    assert driver.request(conn, {"type": "RequestExtendAfterCallWork", "epoch": epoch})["code"] == "acw_not_extendable"


@pytest.mark.parametrize("table, complaint", [
    ({"after_call_work_extend": 0}, "after_call_work_extend"),
    ({"after_call_work_extend": 4000}, "after_call_work_extend"),
    ({"after_call_work": 5, "after_call_work_extend": 10, "after_call_work_max_extends": 11},
     "after_call_work_max_extends"),
    ({"after_call_work_extend": 10}, "after_call_work"),  # an extension of no wrap-up
])
def test_the_extend_settings_are_range_checked(tmp_path, table, complaint):
    body = "\n".join(f"{key} = {value}" for key, value in table.items())
    path = tmp_path / "site.toml"
    path.write_text(f'[[queue]]\nname = "sales"\n{body}\n')
    with pytest.raises(ConfigError, match=complaint):
        load_site_config(path)


def test_an_agent_gets_the_figures_of_its_own_queues_on_its_login_socket():
    queues = (QueueConfig(name="sales"), QueueConfig(name="support", members=(("1002", 0),)))
    driver = CoreDriver(core=core(queues=queues))
    quiet, _ = logged_in(driver, "1002")  # did not ask: never sent any
    conn, epoch = logged_in(driver, queue_statistics=True)
    first = [m for m in driver.received[conn] if m["type"] == "EventAgentQueues"]
    assert [[q["queue"] for q in m["queues"]] for m in first] == [["sales"]]  # not support: not a member
    carrier = driver.registered()
    assert driver.request(carrier, {"type": "RequestSubscribeReporting", "user_id": "carrier1",
                                    "password": PASSWORD})["type"] == "EventAck"
    for i in range(2):
        interaction = {"interaction_id": f"w-{i}", "media": "chat", "queue": "sales", "created_ms": 1}
        assert driver.request(carrier, {"type": "RequestSubmitInteraction", "interaction": interaction})["type"] \
            == "EventAck"
    tick(driver, 1.5)
    latest = [m for m in driver.received[conn] if m["type"] == "EventAgentQueues"][-1]
    assert latest["queues"][0]["waiting"] == 2 and latest["queues"][0]["longest_wait_ms"] > 0
    sent = len([m for m in driver.received[conn] if m["type"] == "EventAgentQueues"])
    tick(driver, 0.1)  # within the second: nothing new
    assert len([m for m in driver.received[conn] if m["type"] == "EventAgentQueues"]) == sent
    assert not [m for m in driver.received[quiet] if m["type"] == "EventAgentQueues"]
