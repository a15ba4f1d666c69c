"""The reporting stream: supervisors only; numbered events; resume replays exactly what was missed,
and anything it cannot replay gets a fresh snapshot instead."""

from __future__ import annotations

import json

from tests.server.test_heartbeats import site_config
from tests.server.wire import (
    connect_registered,
    login,
    login_agent,
    ready,
    run,
    state_request,
    subscribe,
)


async def produce_events(url: str) -> None:
    """Three reporting events: a login, a state change, a logout."""
    desk, ack, _ = await login_agent(url, "1001")
    await ready(desk, ack["epoch"])
    out = await state_request(desk, "RequestAgentLogout", ack["epoch"])
    assert out["type"] == "EventAck", out
    await desk.close()


async def marker(url: str, agent_id: str = "1009"):
    client, ack, _ = await login_agent(url, agent_id)
    return client


def test_non_supervisor_cannot_subscribe(pair):
    a, _ = pair

    async def scenario():
        client = await connect_registered(a.url)
        answer = await client.request({"type": "RequestSubscribeReporting", "user_id": "1001", "password": "demo"})
        assert answer["type"] == "EventError" and answer["code"] == "forbidden", answer
        # No snapshot follows the refusal: the next message answers our next request.
        probe = await client.request({"type": "RequestAgentNotAvailable"})
        assert probe["type"] == "EventError" and probe["code"] == "invalid_state"
        # A socket logged in as an agent cannot become a supervisor's either.
        desk, _, _ = await login_agent(a.url, "1002")
        answer = await desk.request({"type": "RequestSubscribeReporting", "user_id": "sup1", "password": "demo"})
        assert answer["type"] == "EventError" and answer["code"] == "forbidden", answer
        # Wrong password for the supervisor: bad_credentials, like an unknown user.
        answer = await client.request({"type": "RequestSubscribeReporting", "user_id": "sup1", "password": "nope"})
        assert answer["type"] == "EventError" and answer["code"] == "bad_credentials", answer
        answer = await client.request({"type": "RequestSubscribeReporting", "user_id": "nobody", "password": "demo"})
        assert answer["type"] == "EventError" and answer["code"] == "bad_credentials", answer

    run(scenario())


def test_resume_replays_exactly_the_missed_events(pair):
    a, _ = pair

    async def scenario():
        live, ack, snap = await subscribe(a.url)  # stays subscribed: the reference copy of the stream
        gone, ack2, snap2 = await subscribe(a.url)
        assert ack2["stream_id"] == ack["stream_id"] and snap2["seq"] == snap["seq"]
        start = snap2["seq"]
        await gone.close()

        await produce_events(a.url)
        originals = [await live.recv_raw() for _ in range(3)]

        resumed = []
        for resume_seq, expected in ((start, originals), (start + 1, originals[1:]), (start + 3, [])):
            sup, _, none = await subscribe(a.url, resume={"stream_id": ack["stream_id"], "seq": resume_seq})
            assert none is None
            replayed = [await sup.recv_raw() for _ in expected]
            assert replayed == expected  # the same frames, byte for byte, in order
            seqs = [json.loads(f)["seq"] for f in replayed]
            assert seqs == list(range(resume_seq + 1, start + 4))
            resumed.append(sup)
        # Then live events continue at the next seq for everyone: no snapshot, nothing twice.
        await marker(a.url, "1009")
        for sup in resumed + [live]:
            event = await sup.expect("EventAgentLogin", seq=start + 4)
            assert event["agent"]["agent_id"] == "1009"

    run(scenario())


def test_resume_with_unknown_stream_or_future_seq_gets_a_snapshot(pair):
    a, b = pair

    async def scenario():
        _, ack, snap = await subscribe(a.url)
        desk, login_ack, _ = await login_agent(a.url, "1001")
        _, ack_b, _ = await subscribe(b.url)
        assert ack_b["stream_id"] != ack["stream_id"]
        for resume in ({"stream_id": "no-such-stream", "seq": snap["seq"]},
                       {"stream_id": ack_b["stream_id"], "seq": snap["seq"]},  # B's stream, asked of A
                       {"stream_id": ack["stream_id"], "seq": snap["seq"] + 1000}):
            client = await connect_registered(a.url)
            answer = await client.request({"type": "RequestSubscribeReporting", "user_id": "sup1",
                                           "password": "demo", "resume": resume})
            assert answer["type"] == "EventAck" and answer["stream_id"] == ack["stream_id"], answer
            fresh = await client.expect("EventReportingSnapshot", stream_id=ack["stream_id"], seq=snap["seq"] + 1)
            assert [x["agent_id"] for x in fresh["agents"]] == ["1001"]
            assert fresh["agents"][0]["epoch"] == login_ack["epoch"]

    run(scenario())


def test_resume_older_than_the_replay_buffer_gets_a_snapshot(make_server, tmp_path):
    server = make_server(["--config", site_config(tmp_path, replay_buffer=3)])

    async def scenario():
        _, ack, snap = await subscribe(server.url)
        start = snap["seq"]
        await produce_events(server.url)
        desk, _, _ = await login_agent(server.url, "1002")  # 4 events now: the buffer holds the last 3
        stream = ack["stream_id"]
        # Still in the buffer: replay of the last three.
        sup, _, _ = await subscribe(server.url, resume={"stream_id": stream, "seq": start + 1})
        got = [await sup.recv() for _ in range(3)]
        assert [e["seq"] for e in got] == [start + 2, start + 3, start + 4]
        assert [e["type"] for e in got] == ["EventAgentStateChanged", "EventAgentLogout", "EventAgentLogin"]
        # One too old: a snapshot of the present instead.
        client = await connect_registered(server.url)
        answer = await client.request({"type": "RequestSubscribeReporting", "user_id": "sup1", "password": "demo",
                                       "resume": {"stream_id": stream, "seq": start}})
        assert answer["type"] == "EventAck", answer
        fresh = await client.expect("EventReportingSnapshot", seq=start + 4)
        assert [x["agent_id"] for x in fresh["agents"]] == ["1002"]

    run(scenario())


def test_state_changes_are_reported_with_their_fields(pair):
    a, _ = pair

    async def scenario():
        sup, _, snap = await subscribe(a.url)
        desk, ack, _ = await login_agent(a.url, "1005")
        await sup.expect("EventAgentLogin", seq=snap["seq"] + 1)
        answer = await state_request(desk, "RequestAgentNotReady", ack["epoch"], reason="meeting")
        assert answer["type"] == "EventAck"
        status = await desk.expect("EventCurrentAgentStatus", state="not_ready", reason="meeting")
        event = await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 2, agent_id="1005", epoch=ack["epoch"],
                                 state="not_ready", reason="meeting", server="A")
        assert event["since_ms"] == status["since_ms"]
        answer = await state_request(desk, "RequestAgentAfterCallWork", ack["epoch"])
        assert answer["type"] == "EventAck"
        await desk.expect("EventCurrentAgentStatus", state="after_call_work")
        event = await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 3, state="after_call_work")
        assert "reason" not in event
        # The same state again is no change: acked, since_ms kept, nothing reported.
        answer = await state_request(desk, "RequestAgentAfterCallWork", ack["epoch"])
        assert answer["type"] == "EventAck"
        same = await desk.expect("EventCurrentAgentStatus", state="after_call_work")
        assert same["since_ms"] == event["since_ms"]
        await ready(desk, ack["epoch"])
        await sup.expect("EventAgentStateChanged", seq=snap["seq"] + 4, state="ready")
        # A second login elsewhere in the demo directory shows in a fresh snapshot with its state.
        other = await connect_registered(a.url)
        await login(other, "1006", state={"state": "ready", "since_ms": 1})
        _, _, snap2 = await subscribe(a.url)
        agents = {x["agent_id"]: x for x in snap2["agents"]}
        assert agents["1005"]["state"] == "ready" and agents["1006"]["state"] == "ready"
        assert agents["1006"]["since_ms"] == 1

    run(scenario())
