"""Invariant 2 against real servers (processes where one dies or hangs): an interaction survives
the death of its server in the agent's hands, is adopted by the survivor, is completed (and
reported) once, and is never held by two agents of two servers."""

from __future__ import annotations

import json

import pytest

from tests.server.interaction_steps import (
    agent,
    agent_request,
    carrier,
    count_events,
    event,
    invite,
    new_interaction,
    site_config,
    submit,
    until,
)
from tests.server.wire import available, connect_registered, run
from tests.support.servers import async_wait_until, linked


def peer_conn_closed(server, peer_name: str) -> bool:
    """The server has handled the loss of the inbound peer link from ``peer_name``."""
    lines = list(server.lines)
    ids = [line.split("conn#", 1)[1].split(" ", 1)[0] for line in lines if f": peer link from {peer_name}" in line]
    return bool(ids) and any(f"conn#{ids[-1]} " in line and "disconnected" in line for line in lines)


async def hold(url: str, feed, desk, epoch: int, call: dict | None = None) -> dict:
    """Submit an interaction and have ``desk`` accept it; returns the interaction."""
    call = call or new_interaction()
    assert (await submit(feed, call))["type"] == "EventAck"
    offer = await invite(desk)
    assert offer["interaction"]["interaction_id"] == call["interaction_id"]
    ack = await agent_request(desk, "RequestAccept", epoch, interaction_id=call["interaction_id"])
    assert ack["type"] == "EventAck", ack
    return call


async def failover_login(url: str, agent_id: str, token: str, epoch: int, held: list[dict]) -> tuple:
    """The desktop's failover login, bringing what it holds: (client, EventAck, status)."""
    desk = await connect_registered(url, f"desktop-{agent_id}")
    message = {
        "type": "RequestAgentLogin",
        "request_id": f"fo-{agent_id}-{epoch}",
        "agent_id": agent_id,
        "resume_token": token,
        "epoch": epoch,
        "state": {"state": "ready", "since_ms": 1},
        "interactions": [{"interaction": c, "accepted_ms": c["created_ms"] + 1, "notes": "so far"} for c in held],
    }
    ack = await desk.request(message)
    assert ack["type"] == "EventAck", ack
    status = await desk.expect("EventCurrentAgentStatus", epoch=ack["epoch"])
    return desk, ack, status


@pytest.mark.server_processes
def test_interaction_in_hand_survives_kill_9_and_is_completed_once_at_the_survivor(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        desk, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, desk.received) if m.get("resume_token"))["resume_token"]
        call = await hold(a.url, feed_a, desk, epoch)
        iid = call["interaction_id"]
        await event(feed_a, "accepted", iid, agent_id="1001")
        a.kill9()

        # The carrier re-submits what it believes A had not handed over: B knows better.
        dup = await submit(feed_b, call)
        assert dup["code"] == "duplicate_interaction", dup

        moved, ack, status = await failover_login(b.url, "1001", token, epoch + 1, [call])
        assert status["interaction_ids"] == [iid] and status["state"] == "ready", status
        await event(feed_b, "adopted", iid, agent_id="1001", epoch=ack["epoch"])
        # Offered nothing while it holds one.
        other = new_interaction()
        await submit(feed_b, other)
        await event(feed_b, "queued", other["interaction_id"])
        notes = await agent_request(
            moved, "RequestUpdateNotes", ack["epoch"], interaction_id=iid, notes="after failover"
        )
        assert notes["type"] == "EventAck", notes
        done = await agent_request(
            moved, "RequestCompleteInteraction", ack["epoch"], interaction_id=iid, disposition="resolved"
        )
        assert done["type"] == "EventAck", done
        await event(feed_b, "completed", iid, agent_id="1001")
        offer = await invite(moved)  # free again: the waiting one comes
        assert offer["interaction"]["interaction_id"] == other["interaction_id"]
        assert count_events(feed_a, "completed", iid) + count_events(feed_b, "completed", iid) == 1

    run(scenario())


@pytest.mark.server_processes
def test_completion_known_to_the_peer_is_not_counted_again_when_the_agent_resends_it(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        desk, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, desk.received) if m.get("resume_token"))["resume_token"]
        call = await hold(a.url, feed_a, desk, epoch)
        iid = call["interaction_id"]
        done = await agent_request(
            desk, "RequestCompleteInteraction", epoch, interaction_id=iid, disposition="resolved"
        )
        assert done["type"] == "EventAck"
        await event(feed_a, "completed", iid)
        a.kill9()
        # As if the acknowledgement had been lost with A: the desktop still holds it and re-sends.
        moved, ack, status = await failover_login(b.url, "1001", token, epoch + 1, [call])
        assert status.get("interaction_ids", []) == [], status
        again = await agent_request(
            moved, "RequestCompleteInteraction", ack["epoch"], interaction_id=iid, disposition="resolved"
        )
        assert again["type"] == "EventAck", again
        marker = new_interaction()
        await submit(feed_b, marker)
        await event(feed_b, "queued", marker["interaction_id"])
        assert count_events(feed_b, "completed", iid) == 0 and count_events(feed_b, "adopted", iid) == 0
        assert count_events(feed_a, "completed", iid) == 1
        assert (await submit(feed_b, call))["code"] == "duplicate_interaction"

    run(scenario())


@pytest.mark.server_processes
def test_adoption_withdraws_a_resubmitted_copy_offered_to_another_agent(make_server, tmp_path):
    """Without a peer link (the worst case), the carrier's copy reaches B before the agent does."""
    a = make_server(site_config(tmp_path), name="A")
    b = make_server(site_config(tmp_path), name="B")

    async def scenario():
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        desk, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, desk.received) if m.get("resume_token"))["resume_token"]
        call = await hold(a.url, feed_a, desk, epoch)
        iid = call["interaction_id"]
        a.kill9()
        other, _ = await agent(b.url, "1003")
        assert (await submit(feed_b, call))["type"] == "EventAck"  # B could not know
        await invite(other)
        _, ack, status = await failover_login(b.url, "1001", token, epoch + 1, [call])
        assert status["interaction_ids"] == [iid]
        revoked = await until(other, lambda m: m["type"] == "EventInviteRevoked")
        assert (revoked["interaction_id"], revoked["reason"]) == (iid, "taken_elsewhere"), revoked
        withdrawn = await event(feed_b, "withdrawn", iid, agent_id="1003")
        assert withdrawn["reason"]
        await event(feed_b, "adopted", iid, agent_id="1001")

    run(scenario())


def test_the_first_taker_keeps_an_interaction_offered_at_both_sites(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        at_a, epoch_a = await agent(a.url, "1001")
        at_b, epoch_b = await agent(b.url, "1003")
        call = new_interaction()
        iid = call["interaction_id"]
        await submit(feed_a, call)
        await submit(feed_b, call)  # both sites queued it (a carrier re-submitted too early)
        await invite(at_a)
        try:
            await invite(at_b, timeout=1.0)
        except AssertionError:
            # B still saw 1001 free at A (its presence is as old as the link's latency) and handed
            # its copy over to A, which kept its own: offered once, no first-taker race to settle
            # (docs/multisite.md). The race below needs B to have heard of the offer at A first.
            withdrawn = await event(feed_b, "withdrawn", iid)
            assert "handed over to agent 1001 at site A" in withdrawn["reason"], withdrawn
            return
        taken = await agent_request(at_b, "RequestAccept", epoch_b, interaction_id=iid)
        assert taken["type"] == "EventAck", taken
        revoked = await until(at_a, lambda m: m["type"] == "EventInviteRevoked")
        assert (revoked["interaction_id"], revoked["reason"]) == (iid, "taken_elsewhere")
        late = await agent_request(at_a, "RequestAccept", epoch_a, interaction_id=iid)
        assert late["code"] == "unknown_interaction", late
        await event(feed_a, "withdrawn", iid, agent_id="1001")
        await event(feed_b, "accepted", iid, agent_id="1003")

    run(scenario())


def test_agent_moving_with_its_interaction_while_the_old_server_lives_leaves_one_holder(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        desk, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, desk.received) if m.get("resume_token"))["resume_token"]
        call = await hold(a.url, feed_a, desk, epoch)
        iid = call["interaction_id"]
        desk.abort()  # the desktop lost A (it believes A is dead) and moves with what it holds
        _, ack, status = await failover_login(b.url, "1001", token, epoch + 1, [call])
        assert status["interaction_ids"] == [iid]
        await event(feed_b, "adopted", iid, agent_id="1001")
        withdrawn = await event(feed_a, "withdrawn", iid, agent_id="1001")
        assert "peer" in withdrawn["reason"], withdrawn
        assert (await submit(feed_a, call))["code"] == "duplicate_interaction"

    run(scenario())


def test_an_interaction_whose_agent_never_comes_back_ends_abandoned_with_a_reason(make_server, tmp_path):
    server = make_server(site_config(tmp_path, orphan_ms=500))

    async def scenario():
        feed = await carrier(server.url)
        desk, epoch = await agent(server.url, "1001")
        call = await hold(server.url, feed, desk, epoch)
        desk.abort()
        ended = await event(feed, "abandoned", call["interaction_id"], timeout=4)
        assert "1001" in ended["reason"], ended

    run(scenario())


def test_a_standby_login_is_not_offered_anything(make_pair, tmp_path):
    """Offers go only to agents logged in at that server, never to a standby socket: an interaction
    submitted where the agent is only a standby is handed over to the agent's own server, which
    offers it (docs/multisite.md)."""
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_b = await carrier(b.url)
        desk, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, desk.received) if m.get("resume_token"))["resume_token"]
        standby = await connect_registered(b.url)
        assert (await available(standby, "1001", token=token))["role"] == "secondary"
        call = new_interaction()
        await submit(feed_b, call)
        await event(feed_b, "queued", call["interaction_id"])
        offered = await invite(desk)
        assert offered["interaction"]["interaction_id"] == call["interaction_id"]
        withdrawn = await event(feed_b, "withdrawn", call["interaction_id"])
        assert "handed over to agent 1001 at site A" in withdrawn["reason"], withdrawn
        await standby.expect_quiet(0.2)

    run(scenario())


@pytest.mark.server_processes
def test_a_stalled_server_offers_nothing_to_an_agent_that_moved_while_it_was_stopped(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a = await carrier(a.url)
        old, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, old.received) if m.get("resume_token"))["resume_token"]
        a.sigstop()
        try:
            call = new_interaction()
            # Lands in A's socket buffer: A reads it first thing after SIGCONT, before its timers run.
            await feed_a.send({"type": "RequestSubmitInteraction", "request_id": "while-stopped", "interaction": call})
            # The desktop fails over once A has been silent for a heartbeat timeout, as B sees it too.
            await async_wait_until(lambda: peer_conn_closed(b, "A"), timeout=6, message="B to drop A's silent link")
            await failover_login(b.url, "1001", token, epoch + 1, [])
        finally:
            a.sigcont()
        forced = await until(old, lambda m: m["type"] in ("EventForcedLogout", "EventInvite"), 6)
        assert forced["type"] == "EventForcedLogout" and forced["reason"] == "moved", forced
        await event(feed_a, "queued", call["interaction_id"], timeout=6)
        assert count_events(feed_a, "offered", call["interaction_id"]) == 0
        assert not any('"EventInvite"' in frame for frame in old.received)

    run(scenario())


@pytest.mark.server_processes
def test_a_thawed_server_drops_its_copy_of_what_an_agent_at_the_peer_took_meanwhile(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        idle, idle_epoch = await agent(a.url, "1001", ready=False)
        call = new_interaction()
        iid = call["interaction_id"]
        await submit(feed_a, call)
        await event(feed_a, "queued", iid)
        a.sigstop()
        try:
            await async_wait_until(lambda: peer_conn_closed(b, "A"), timeout=6, message="B to drop A's silent link")
            # The carrier gave A up and re-submitted; an agent at B takes it.
            assert (await submit(feed_b, call))["type"] == "EventAck"
            taker, taker_epoch = await agent(b.url, "1003")
            await invite(taker)
            assert (await agent_request(taker, "RequestAccept", taker_epoch, interaction_id=iid))["type"] == "EventAck"
        finally:
            a.sigcont()
        withdrawn = await event(feed_a, "withdrawn", iid, timeout=8)
        assert "peer" in withdrawn["reason"], withdrawn
        later = new_interaction()
        await submit(feed_a, later)
        assert (await agent_request(idle, "RequestAgentReady", idle_epoch))["type"] == "EventAck"
        offer = await invite(idle)
        assert offer["interaction"]["interaction_id"] == later["interaction_id"], offer

    run(scenario())


@pytest.mark.server_processes
def test_what_an_agent_held_at_a_dead_site_ends_abandoned_at_the_survivor_if_never_brought_back(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path, orphan_ms=800))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        desk, epoch = await agent(a.url, "1001")
        call = await hold(a.url, feed_a, desk, epoch)
        iid = call["interaction_id"]
        desk.abort()  # the desktop dies with its server: nobody will bring the interaction back
        a.kill9()
        ended = await event(feed_b, "abandoned", iid, timeout=6, agent_id="1001")
        assert "lost peer" in ended["reason"], ended
        assert (await submit(feed_b, call))["code"] == "duplicate_interaction"

    run(scenario())


@pytest.mark.server_processes
def test_a_completion_buffered_at_a_frozen_server_is_not_applied_after_the_agent_completed_at_the_peer(
        make_pair, tmp_path):
    """SIGSTOP of the primary while the agent's completion is in flight: the desktop fails over and
    completes at the survivor; the thawed server must not complete (and report) it a second time."""
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        feed_a, feed_b = await carrier(a.url), await carrier(b.url)
        desk, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, desk.received) if m.get("resume_token"))["resume_token"]
        call = await hold(a.url, feed_a, desk, epoch)
        iid = call["interaction_id"]
        a.sigstop()
        try:
            late = {"type": "RequestCompleteInteraction", "request_id": "done-at-a", "epoch": epoch,
                    "interaction_id": iid, "disposition": "resolved"}
            await desk.send(late)  # waits in A's socket buffer
            await async_wait_until(lambda: peer_conn_closed(b, "A"), timeout=6, message="B to drop A's silent link")
            moved, ack, _ = await failover_login(b.url, "1001", token, epoch + 1, [call])
            done = await agent_request(moved, "RequestCompleteInteraction", ack["epoch"], interaction_id=iid,
                                       disposition="resolved")
            assert done["type"] == "EventAck", done
            await event(feed_b, "completed", iid, agent_id="1001")
        finally:
            a.sigcont()
        # The thawed server heard B first: the login moved, so the old socket is told so and closed;
        # the parked completion goes with it, never applied (a refusal if the socket had stayed).
        forced = await until(desk, lambda m: m["type"] == "EventForcedLogout" or m.get("request_id") == "done-at-a", 8,
                             "the thawed server's word on the old login")
        assert forced["type"] == "EventForcedLogout" and forced["reason"] == "moved", forced
        marker = new_interaction()  # A's stream has caught up once this is reported
        await submit(feed_a, marker)
        await event(feed_a, "queued", marker["interaction_id"], timeout=6)
        assert count_events(feed_a, "completed", iid) == 0, "completed again by the thawed server"
        assert count_events(feed_b, "completed", iid) == 1

    run(scenario())
