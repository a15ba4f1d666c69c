"""A stall is not a failure (docs/failover.md, "Asymmetric liveness"): a desktop stopped (SIGSTOP,
a VDI host's hiccup) past the heartbeat timeout is only suspect at its primary, which offers it
nothing and reports it unreachable; its login ends only after the client timeout. Deterministic
runs of the world (tests/world/world.py), whose checks hold throughout; each ends healed and
converged (World.settle), where the supervisor must see nobody unreachable any more."""

from __future__ import annotations

import pytest

from desktop.core.config import SessionConfig
from server_stub import protocol as p
from server_stub.config import ServerConfig
from tests.world.desk import Desk
from tests.world.steps import offered, two_sites
from tests.world.world import World

CLIENT_TIMEOUT_S = ServerConfig().client_timeout_ms / 1000
# The reference desktop beats its primary every client_heartbeat_interval (1.5 s) and the server
# suspects it after three of them (asymmetric terms, docs/protocol.md "Heartbeats").
BEAT_S = SessionConfig.client_heartbeat_interval
SUSPECT_S = 3 * BEAT_S


def reachability(world: World, agent_id: str, since: float) -> list[tuple[str, bool]]:
    """(site, reachable) of every report of the agent's reachability since ``since``, as published."""
    return [(site, m.reachable) for when, site, m in world.reports.log
            if when >= since and isinstance(m, p.EventAgentStateChanged) and m.agent_id == agent_id]


def frozen_for(world: World, desk: Desk, seconds: float) -> float:
    """The desktop's process is stopped for ``seconds``, then continued; returns when it stopped."""
    started = world.loop.now
    world.freeze(desk)
    world.run_for(seconds)
    world.thaw(desk)
    return started


@pytest.mark.parametrize("seconds", [2.0, 4.0, 8.0])
def test_a_desktop_stopped_up_to_8_s_keeps_its_login_and_nobody_reports_a_logout_or_a_failover(seconds):
    world = two_sites()
    desk = world.desks[0]
    desk.intent("not_ready", "lunch")
    world.run_for(1.0)
    before = desk.session.snapshot()
    login = world.sites["A"].login_of(desk.agent_id)
    assert login is not None and (login.state, login.reason) == ("not_ready", "lunch")
    since = login.since_ms
    stopped = frozen_for(world, desk, seconds)
    # While it was stopped past A's suspect threshold (three of its beats after the last one heard),
    # A said it could not reach the agent, and says so no more once heard; a shorter stop goes unseen.
    world.run_for(2.0)
    flags = reachability(world, desk.agent_id, stopped)
    if seconds > SUSPECT_S:
        assert flags == [("A", False), ("A", True)], flags
    elif seconds < SUSPECT_S - BEAT_S:
        assert flags == [], flags
    else:
        assert flags in ([], [("A", False), ("A", True)]), flags
    assert world.reports.logins_and_logouts(desk.agent_id, stopped) == []  # at A and at B
    after = desk.session.snapshot()
    assert (after.status, after.primary, after.epoch) == ("logged_in", "A", before.epoch)
    # Both links as it left them: the primary's and the standby's (B kept it too, silently).
    assert [(i.link, i.role) for i in after.links] == [(i.link, i.role) for i in before.links]
    login = world.sites["A"].login_of(desk.agent_id)
    assert login is not None and (login.epoch, login.state, login.reason, login.since_ms) == (
        before.epoch, "not_ready", "lunch", since)
    assert desk.session.snapshot().phase == "idle" and desk.login_failures == 0
    assert desk.agent_id not in world.supervisor.feeds["A"].unreachable
    world.settle()


def test_the_supervisor_sees_a_silent_agent_unreachable_at_its_site_until_it_is_heard_again():
    world = two_sites()
    desk = world.desks[0]
    feed = world.supervisor.feeds["A"]
    world.freeze(desk)
    world.run_for(SUSPECT_S - BEAT_S - 0.1)
    assert desk.agent_id not in feed.unreachable  # within the suspect threshold: nothing to say
    world.run_for(BEAT_S + 0.2)
    assert desk.agent_id in feed.unreachable and desk.agent_id in feed.agents  # logged in, unreachable
    world.thaw(desk)
    world.run_for(1.0)
    assert desk.agent_id not in feed.unreachable and desk.agent_id in feed.agents
    world.settle()


def test_a_silent_agent_is_offered_nothing_until_it_is_heard_again():
    world = two_sites(agents=1)
    desk = world.desks[0]
    desk.ready()
    world.run_for(1.0)
    world.freeze(desk)
    world.run_for(SUSPECT_S + 0.2)  # suspect at A now
    world.carrier.new_interaction()
    world.run_for(3.0)
    offers = [m for _, _, m in world.reports.log if isinstance(m, p.EventInteraction) and m.event == "offered"]
    assert offers == []  # the only agent is Ready, but A cannot reach it: the call waits
    world.thaw(desk)
    world.run_for(1.0)
    (offer,) = desk.session.snapshot().offers  # heard again: offered at once
    assert offer.endpoint == "A"
    world.settle()


def test_an_offer_made_before_the_silence_keeps_its_own_timeout():
    world = two_sites(agents=1)
    desk = world.desks[0]
    iid = offered(world, desk)
    world.freeze(desk)
    world.run_for(4.0)  # suspect, but the offer is not taken back for that (its timeout is 8 s)
    assert [event for _, event, _ in world.reports.history[iid]] == ["queued", "offered"]
    world.run_for(5.0)  # then it times out as any offer does, and the call waits for an agent A can reach
    assert [event for _, event, _ in world.reports.history[iid]] == ["queued", "offered", "offer_timeout"]
    world.thaw(desk)
    world.settle()


def test_a_desktop_stopped_past_the_client_timeout_is_logged_out_and_comes_back_without_the_password():
    world = two_sites()
    desk = world.desks[0]
    epoch = desk.session.snapshot().epoch
    stopped = frozen_for(world, desk, CLIENT_TIMEOUT_S + 5.0)
    world.run_for(3.0)
    moves = world.reports.logins_and_logouts(desk.agent_id, stopped)
    assert moves[0] == ("A", "EventAgentLogout", epoch), moves
    logout = next(m for _, _, m in world.reports.log if isinstance(m, p.EventAgentLogout))
    assert logout.reason == "disconnected"
    snap = desk.session.snapshot()
    assert snap.status == "logged_in" and snap.epoch is not None and snap.epoch > (epoch or 0)
    assert desk.login_failures == 0  # with its resume token: nobody asked for the password
    world.settle()


def test_a_suspect_login_that_moves_to_the_other_site_ends_before_the_new_one_is_reported():
    """The desktop is cut off from A only: it fails over to B. Asked by B whether it still hears
    the desktop (the witness, docs/failover.md "Overload"), A, which only suspects it, says no and
    ends its login then (``disconnected``), before B makes the new one: never reported logged in at
    both, and not kept until the client timeout."""
    world = two_sites(agents=1)
    desk = world.desks[0]
    start = world.loop.now
    world.cut("A", "hold", desk)
    world.run_for(5.0)
    snap = desk.session.snapshot()
    assert (snap.status, snap.primary, snap.epoch) == ("logged_in", "B", 2)
    assert world.reports.logins_and_logouts(desk.agent_id, start) == [
        ("A", "EventAgentLogout", 1), ("B", "EventAgentLogin", 2)]
    logout = next(m for _, _, m in world.reports.log if isinstance(m, p.EventAgentLogout))
    assert logout.reason == "disconnected"
    world.settle()


def test_during_a_partition_the_supervisor_sees_the_agent_unreachable_at_the_site_it_left():
    """The desktop loses A while A loses B: A cannot hear the login moved, so it reports the agent
    logged in but unreachable until the client timeout, then disconnected."""
    world = two_sites(agents=1)
    desk = world.desks[0]
    world.partition()
    world.cut("A", "hold", desk)
    world.run_for(5.0)
    assert desk.session.snapshot().primary == "B"
    feeds = world.supervisor.feeds
    assert desk.agent_id in feeds["A"].agents and desk.agent_id in feeds["A"].unreachable
    assert desk.agent_id in feeds["B"].agents and desk.agent_id not in feeds["B"].unreachable
    world.run_for(CLIENT_TIMEOUT_S)
    assert desk.agent_id not in feeds["A"].agents
    logout = next(m for _, site, m in world.reports.log if isinstance(m, p.EventAgentLogout) and site == "A")
    assert logout.reason == "disconnected"
    world.settle()


def test_a_failover_login_whose_ack_was_lost_is_taken_again_after_a_long_stall_without_the_password():
    """Convergence under starvation: the desktop's failover login at B succeeds but its ack dies
    with the link, and the desktop, stalled, reaches no site for 35 s. Its only credential is the
    old token, whose epoch both sites know to be stale; they take it all the same (the login at the
    newest epoch was made from it and never acknowledged), so the agent is not asked for its
    password because of timing alone (docs/failover.md)."""
    world = two_sites(agents=1)
    desk = world.desks[0]
    world.cut("A", "hold", desk)  # the desktop loses A and fails over to B with its token
    b = world.sites["B"]
    while b.login_of(desk.agent_id) is None:
        world.run_for(0.001)
    world.cut("B", "reset", desk)  # B made the login, but its ack is lost with the link
    world.freeze(desk)
    world.run_for(35.0)
    world.thaw(desk)
    world.run_for(10.0)
    snap = desk.session.snapshot()
    assert (snap.status, desk.login_failures) == ("logged_in", 0), (snap.status, snap.epoch)
    assert snap.epoch is not None and snap.epoch >= 3
    world.settle()


def test_the_standby_links_carry_a_tenth_of_the_heartbeats_and_a_kill_still_fails_over_at_once(monkeypatch):
    """Overload (docs/failover.md): a quiet standby is heartbeated every STANDBY_HEARTBEAT_MS both
    ways, not every 0.5 s, which halves the heartbeat frames a pair carries; the primary's stay at
    0.5 s, and a failover over the quiet standby is as fast as before."""
    from tests.world.net import Link

    counts: dict[tuple[str, str], int] = {}

    def counting(direction, original):
        def wrapper(self, payload, *args, **kwargs):
            if self.kind == "desk" and ("Heartbeat" in payload if isinstance(payload, str)
                                        else isinstance(payload, p.Heartbeat)):
                key = (self.site.name, direction)
                counts[key] = counts.get(key, 0) + 1
            return original(self, payload, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(Link, "send", counting("up", Link.send))
    monkeypatch.setattr(Link, "deliver", counting("down", Link.deliver))
    world = two_sites(agents=2)
    world.run_for(1.0)
    counts.clear()
    world.run_for(10.0)
    # 2 desks x 10 s: the primary's server beats every 0.5 s (about 20 per desk), the desktop every
    # 1.5 s (about 7 per desk: asymmetric terms); the standby's at most 2 each way.
    assert counts.get(("A", "down"), 0) >= 30 and 12 <= counts.get(("A", "up"), 0) <= 16, counts
    assert counts.get(("B", "up"), 0) <= 4 and counts.get(("B", "down"), 0) <= 4, counts
    assert all(d.session.snapshot().links[1].role == "secondary" for d in world.desks)
    killed = world.loop.now
    world.kill("A")
    world.run_for(0.5)
    assert [d.session.snapshot().primary for d in world.desks] == ["B", "B"]
    assert all(world.sites["B"].login_of(d.agent_id) is not None for d in world.desks), killed
    world.settle()
