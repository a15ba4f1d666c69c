"""A primary stopped (SIGSTOP) past the heartbeat timeout with an agent's request on its socket: the
desktop fails over to the other site and does the same thing there; the stopped server must not do
it too when it thaws. Deterministic runs of the world (tests/world/world.py), whose checks also
hold throughout (a second completion reported fails them at once)."""

from __future__ import annotations

from tests.world.desk import Desk
from tests.world.steps import completing, holding_a_call, holding_a_call_at_b, offered, two_sites
from tests.world.world import World


def failed_over_while_a_is_stopped(world: World, desk: Desk) -> None:
    """What the desktop just sent is on A's socket; A stops before reading it. The desktop gives A
    up after the heartbeat timeout and logs in at B, which takes over what the agent holds."""
    world.freeze(world.sites["A"])
    world.run_for(6.0)
    snap = desk.session.snapshot()
    assert (snap.status, snap.primary, snap.epoch) == ("logged_in", "B", 2), snap


def test_a_completion_a_stopped_primary_reads_after_the_desktop_completed_at_the_peer_is_not_counted_again():
    world, desk, iid = holding_a_call()
    desk.complete(0, final_notes=True)
    failed_over_while_a_is_stopped(world, desk)
    assert [e.reason for e in desk.ended[iid]] == ["completed"]  # sent again to B, which completed it
    world.thaw(world.sites["A"])
    world.run_for(5.0)
    assert [(c.site, c.agent_id) for c in world.reports.completions[iid]] == [("B", desk.agent_id)]
    world.settle()


def test_an_accept_a_stopped_primary_reads_after_the_agent_moved_the_call_to_the_peer_is_not_applied():
    world = two_sites()
    desk = world.desks[0]
    iid = offered(world, desk)
    desk.answer(0, take=True)
    failed_over_while_a_is_stopped(world, desk)
    assert [h.interaction.interaction_id for h in desk.session.snapshot().held] == [iid]  # adopted by B
    desk.complete(0, final_notes=False)
    world.run_for(1.0)
    world.thaw(world.sites["A"])
    world.run_for(5.0)
    taken = [(site, event) for site, event, _ in world.reports.history[iid] if event in ("accepted", "adopted")]
    assert taken == [("B", "adopted")], world.reports.history[iid]
    assert [(c.site, c.agent_id) for c in world.reports.completions[iid]] == [("B", desk.agent_id)]
    world.settle()


def test_a_completion_confirmed_while_its_server_was_stopped_is_not_reported_after_the_peer_reported_it():
    world, desk, iid = holding_a_call_at_b()
    world.run_for(3.0)
    completing(world, desk, peer_latency=0.05, wait=0.01)  # B applied it and asked A, which confirms it...
    b = world.sites["B"]
    world.freeze(b)  # ... but B stops before the answer is back
    world.run_for(4.0)  # the desktop logs in at A and sends the completion again; A reports it, B being gone
    assert (desk.session.snapshot().primary, [e.reason for e in desk.ended[iid]]) == ("A", ["completed"])
    world.thaw(b)  # B reads A's answer: it must not report the completion too
    world.run_for(5.0)
    assert [c.site for c in world.reports.completions[iid]] == ["A"], world.reports.history[iid]
    world.settle()


def test_a_stopped_server_does_not_go_ahead_on_the_peer_state_it_had_on_its_socket_from_before():
    world, desk, iid = holding_a_call_at_b()
    world.peer_latency = 0.05
    a, b = world.sites["A"], world.sites["B"]
    while a.dialer is None or not a.dialer.up:  # A's link to B is up: A's hello and whole state are on their way
        world.run_for(0.001)
    desk.complete(0, final_notes=True)
    world.freeze(b)  # B stops before reading them, or the completion
    world.run_for(4.0)  # the desktop logs in at A, which adopts the call and completes it
    assert (desk.session.snapshot().primary, [e.reason for e in desk.ended[iid]]) == ("A", ["completed"])
    world.thaw(b)  # A's state from before the stall must not let B apply the completion it parked
    world.run_for(5.0)
    assert [c.site for c in world.reports.completions[iid]] == ["A"], world.reports.history[iid]
    world.settle()


def test_a_call_its_agent_took_along_and_transferred_is_not_dropped_for_the_copy_the_stopped_site_still_holds():
    """Seen in the chaos run's freeze mode: B stops with the call in the agent's hands; the desktop
    moves to A with it, and the agent transfers it to a queue there. B thaws and tells A it holds the
    call for that agent (its login from before the stall): A must not give its live copy up for
    that one, which nobody holds any more."""
    world, desk, iid = holding_a_call_at_b()
    world.run_for(3.0)  # A linked to B again
    b = world.sites["B"]
    world.freeze(b)
    world.partition()  # A's adoption does not reach B
    world.run_for(4.0)  # the desktop logs in at A, which adopts the call
    snap = desk.session.snapshot()
    assert (snap.primary, [h.interaction.interaction_id for h in snap.held]) == ("A", [iid]), snap
    desk.act(desk.session.transfer, iid, "blind", to_queue="q")
    world.run_for(0.1)
    a = world.sites["A"].core
    assert a is not None and a.engine.interactions[iid].status != "held"
    world.thaw(b)  # B still holds the call for the agent (its login there timed out since)
    world.run_for(15.0)
    world.end_partition()  # B's sync says so
    world.run_for(3.0)
    a = world.sites["A"].core
    assert a is not None and a.engine.interactions[iid].status not in ("withdrawn", "ended"), \
        world.reports.history[iid]
    world.settle()
    assert [c.site for c in world.reports.completions[iid]] == ["A"], world.reports.history[iid]
