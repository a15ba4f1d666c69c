"""The reporting stream's resume, in-process over the server core."""

from __future__ import annotations

from tests.server.core_driver import PASSWORD, CoreDriver, core


def subscribe(driver: CoreDriver, resume: dict | None = None) -> tuple[int, dict]:
    conn = driver.registered()
    message: dict[str, object] = {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": PASSWORD}
    if resume is not None:
        message["resume"] = resume
    ack = driver.request(conn, message)
    assert ack["type"] == "EventAck", ack
    return conn, ack


def state_changes(driver: CoreDriver, count: int) -> None:
    desk = driver.registered()
    epoch = driver.request(desk, {"type": "RequestAgentLogin", "agent_id": "1001", "password": PASSWORD})["epoch"]
    for i in range(count):
        reason = ("break", "lunch")[i % 2]
        assert driver.request(desk, {"type": "RequestAgentNotReady", "epoch": epoch, "reason": reason})["type"] \
            == "EventAck"


def test_a_replay_longer_than_half_the_outbound_queue_is_a_snapshot_instead():
    """With the defaults, resuming 10,000 missed events was answered and then closed 4008 with
    nothing sent, again on every retry: the replay could not fit the socket's queue. Now such a
    resume gets a snapshot, and a short one still gets the replay."""
    driver = CoreDriver(core=core(outbound_queue=16, replay_buffer=1000))
    first, ack = subscribe(driver)
    stream = ack["stream_id"]
    state_changes(driver, 12)  # a login and 12 changes: 13 events
    _, _ = subscribe(driver, {"stream_id": stream, "seq": 0})
    long_resume = driver.received[max(driver.received)]
    assert [m["type"] for m in long_resume[2:]] == ["EventReportingSnapshot"], long_resume
    assert long_resume[2]["seq"] == 13 and [a["agent_id"] for a in long_resume[2]["agents"]] == ["1001"]
    assert not driver.closed
    _, _ = subscribe(driver, {"stream_id": stream, "seq": 10})
    short_resume = driver.received[max(driver.received)]
    assert [m["seq"] for m in short_resume[2:]] == [11, 12, 13]  # the missed events, not a snapshot
