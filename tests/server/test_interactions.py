"""Interactions over the wire on a real server: routing, offers, answers, completion, statistics."""

from __future__ import annotations

import json

from tests.server.interaction_steps import (
    agent,
    agent_request,
    answer,
    carrier,
    event,
    invite,
    new_interaction,
    site_config,
    submit,
    until,
)
from tests.server.wire import connect_registered, login_agent, run, subscribe


def test_offers_go_to_the_longest_idle_agent_of_the_best_penalty_then_to_the_next_tier(make_server, tmp_path):
    server = make_server(site_config(tmp_path))

    async def scenario():
        feed = await carrier(server.url)
        backup, _ = await agent(server.url, "1007")  # penalty 1: idle longest, yet served last
        first, _ = await agent(server.url, "1001")
        second, _ = await agent(server.url, "1003")
        calls = [new_interaction() for _ in range(3)]
        for call in calls:
            assert (await submit(feed, call))["type"] == "EventAck"
        for desk, call in ((first, calls[0]), (second, calls[1]), (backup, calls[2])):
            offer = await invite(desk)
            assert offer["interaction"] == call, offer
            assert offer["expires_ms"] - offer["offered_ms"] == 30_000
        await event(feed, "offered", calls[2]["interaction_id"], agent_id="1007")

    run(scenario())


def statuses_before(desk, ack: dict, mark: int) -> list[dict]:
    """The status updates the agent received from ``mark`` (when it sent the request) until ``ack``."""
    frames = [json.loads(f) for f in desk.received[mark:]]
    end = next(i for i, m in enumerate(frames) if m.get("request_id") == ack["request_id"])
    return [m for m in frames[:end] if m["type"] == "EventCurrentAgentStatus"]


def test_accept_notes_complete_then_after_call_work_ends_into_ready(make_server, tmp_path):
    server = make_server(site_config(tmp_path, acw=0.5))

    async def scenario():
        feed = await carrier(server.url)
        sup, _, _ = await subscribe(server.url)
        desk, epoch = await agent(server.url, "1001")
        call = new_interaction()
        iid = call["interaction_id"]
        await submit(feed, call)
        await invite(desk)
        mark = len(desk.received)
        accepted = await agent_request(desk, "RequestAccept", epoch, interaction_id=iid)
        assert accepted["type"] == "EventAck", accepted
        assert accepted["accepted_ms"] >= call["created_ms"], accepted  # the server's time of the accept
        assert statuses_before(desk, accepted, mark) == [], "the status follows the answer (docs/protocol.md)"
        status = await until(desk, lambda m: m["type"] == "EventCurrentAgentStatus")
        assert status["interaction_ids"] == [iid]
        await event(sup, "accepted", iid, agent_id="1001", epoch=epoch)

        assert (await agent_request(desk, "RequestUpdateNotes", epoch, interaction_id=iid, notes="call back"))[
            "type"
        ] == "EventAck"
        bad = await agent_request(desk, "RequestCompleteInteraction", epoch, interaction_id=iid, disposition="nope")
        assert bad["code"] == "invalid_disposition" and "resolved" in bad["message"], bad
        mark = len(desk.received)
        done = await agent_request(desk, "RequestCompleteInteraction", epoch, interaction_id=iid,
                                   disposition="resolved", notes="done")
        assert done["type"] == "EventAck", done
        assert statuses_before(desk, done, mark) == [], "EventAck first, then the status"
        acw = await until(desk, lambda m: m["type"] == "EventCurrentAgentStatus" and m["state"] == "after_call_work")
        assert "interaction_ids" not in acw, acw
        assert acw["until_ms"] - acw["since_ms"] == 500, acw  # the desktop counts down to this
        completed = await event(sup, "completed", iid, agent_id="1001", disposition="resolved")
        assert completed["media"] == "voice" and completed["queue"] == "sales"
        back = await until(desk, lambda m: m["type"] == "EventCurrentAgentStatus" and m["state"] == "ready")
        assert back["since_ms"] - acw["since_ms"] >= 450, (acw, back)
        assert sum(1 for m in map(json.loads, desk.received) if m.get("state") == "after_call_work") == 1, \
            "one status for the After Call Work, not one before the answer and one after"
        assert "until_ms" not in back, back
        await until(sup, lambda m: m["type"] == "EventAgentStateChanged" and m["state"] == "ready")
        # Completing again (a retry with a new request id) is a repeat: acknowledged, not reported.
        again = await agent_request(
            desk, "RequestCompleteInteraction", epoch, interaction_id=iid, disposition="resolved"
        )
        assert again["type"] == "EventAck"
        marker = new_interaction()
        await submit(feed, marker)
        await event(sup, "queued", marker["interaction_id"])
        assert sum(1 for f in sup.received if '"completed"' in f and iid in f) == 1

    run(scenario())


def test_reject_and_timeout_put_it_back_at_the_head_and_timeouts_in_a_row_set_not_ready(make_server, tmp_path):
    server = make_server(site_config(tmp_path, accept_timeout=0.4, max_timeouts=2))

    async def scenario():
        feed = await carrier(server.url)
        sleepy, sleepy_epoch = await agent(server.url, "1001")
        call = new_interaction()
        iid = call["interaction_id"]
        await submit(feed, call)
        await invite(sleepy)
        revoked = await until(sleepy, lambda m: m["type"] == "EventInviteRevoked", 2)
        assert (revoked["interaction_id"], revoked["reason"]) == (iid, "timeout")
        await event(feed, "offer_timeout", iid, agent_id="1001")
        await invite(sleepy)  # alone in the queue: offered again
        await until(sleepy, lambda m: m["type"] == "EventInviteRevoked", 2)
        status = await until(sleepy, lambda m: m["type"] == "EventCurrentAgentStatus", 2)
        assert (status["state"], status["reason"]) == ("not_ready", "system"), status

        other, other_epoch = await agent(server.url, "1003")
        offer = await invite(other)
        assert offer["interaction"]["interaction_id"] == iid
        rejected = await agent_request(other, "RequestReject", other_epoch, interaction_id=iid)
        assert rejected["type"] == "EventAck"
        await event(feed, "rejected", iid, agent_id="1003")
        # Back at the head: offered again (only 1003 is Ready) before a newer interaction.
        newer = new_interaction()
        await submit(feed, newer)
        again = await invite(other)
        assert again["interaction"]["interaction_id"] == iid
        wrong = await agent_request(sleepy, "RequestAccept", sleepy_epoch, interaction_id=iid)
        assert wrong["code"] == "unknown_interaction", wrong

    run(scenario())


def test_queue_statistics_are_published_and_in_the_snapshot(make_server, tmp_path):
    server = make_server(site_config(tmp_path, abandon=0.6, accept_timeout=5))

    async def scenario():
        feed = await carrier(server.url)
        desk, epoch = await agent(server.url, "1001")
        answered, waiting, abandoned = new_interaction(), new_interaction(), new_interaction()
        for call in (answered, waiting, abandoned):
            await submit(feed, call)
        await invite(desk)
        await agent_request(desk, "RequestAccept", epoch, interaction_id=answered["interaction_id"])
        await event(feed, "abandoned", waiting["interaction_id"], timeout=3)
        await event(feed, "abandoned", abandoned["interaction_id"], timeout=3)
        stats = await until(feed, lambda m: m["type"] == "EventQueueStatistics" and
                            next(q for q in m["queues"] if q["queue"] == "sales")["abandoned"] == 2, 3)
        sales = next(q for q in stats["queues"] if q["queue"] == "sales")
        assert sales == {"queue": "sales", "waiting": 0, "longest_wait_ms": 0, "offered": 1, "answered": 1,
                         "abandoned": 2, "service_level": round(1 / 3, 4), "service_level_target_ms": 20_000}, sales
        _, _, snapshot = await subscribe(server.url)
        assert next(q for q in snapshot["queues"] if q["queue"] == "sales") == sales
        assert (
            next(a for a in snapshot["agents"] if a["agent_id"] == "1001")["interaction_id"]
            == answered["interaction_id"]
        )

    run(scenario())


def test_bad_submissions_and_requests_get_clear_errors(make_server, tmp_path):
    server = make_server(site_config(tmp_path))

    async def scenario():
        feed = await carrier(server.url)
        call = new_interaction()
        assert (await submit(feed, call))["type"] == "EventAck"
        dup = await submit(feed, call)
        assert dup["code"] == "duplicate_interaction" and call["interaction_id"] in dup["message"], dup
        unknown = await submit(feed, new_interaction(queue="nowhere"))
        assert unknown["code"] == "unknown_queue" and "sales" in unknown["message"], unknown
        bad = await submit(feed, {**new_interaction(), "media": "fax"})
        assert bad["code"] == "bad_message", bad

        desk, epoch = await agent(server.url, "1002", ready=False)
        refused = await submit(desk, new_interaction())
        assert refused["code"] == "forbidden", refused
        bare = await connect_registered(server.url)
        refused = await submit(bare, new_interaction())
        assert refused["code"] == "not_authenticated", refused
        for type_, extra in (("RequestAccept", {}), ("RequestReject", {}), ("RequestUpdateNotes", {"notes": "x"}),
                             ("RequestCompleteInteraction", {"disposition": "resolved"})):
            refused = await agent_request(desk, type_, epoch, interaction_id="never-offered", **extra)
            assert refused["code"] == "unknown_interaction", (type_, refused)
        stale = await agent_request(desk, "RequestAccept", epoch + 5, interaction_id=call["interaction_id"])
        assert stale["code"] == "stale_epoch", stale
        # A carrier cannot use supervisor actions.
        await feed.send({"type": "RequestForceLogout", "request_id": "carrier-force", "agent_id": "1002"})
        refused = await answer(feed, "carrier-force")
        assert refused["code"] == "forbidden", refused
        sup, _, _ = await subscribe(server.url)  # a supervisor may submit too
        assert (await submit(sup, new_interaction(queue="support")))["type"] == "EventAck"

    run(scenario())


def test_logout_with_an_offer_gives_it_to_the_next_agent(make_server, tmp_path):
    server = make_server(site_config(tmp_path))

    async def scenario():
        feed = await carrier(server.url)
        leaving, epoch = await agent(server.url, "1001")
        staying, _ = await agent(server.url, "1003")
        call = new_interaction()
        await submit(feed, call)
        await invite(leaving)
        assert (await agent_request(leaving, "RequestAgentLogout", epoch))["type"] == "EventAck"
        offer = await invite(staying)
        assert offer["interaction"]["interaction_id"] == call["interaction_id"]

    run(scenario())


def test_register_lists_the_dispositions(make_server, tmp_path):
    server = make_server(site_config(tmp_path))

    async def scenario():
        client, _, _ = await login_agent(server.url, "1001")
        raw = [m for m in client.received if '"dispositions"' in m]
        assert raw and '"resolved"' in raw[0]

    run(scenario())
