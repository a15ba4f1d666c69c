"""A completion sent to both sites: the agent's link to its primary dies while the primary waits for
its peer's confirmation of the completion, and the desktop sends the completion again to the peer
after its failover. Each server then asks the other to confirm; one completion must count."""

from __future__ import annotations

import pytest

from server_stub import protocol as p
from server_stub.core.routing import RoutingEngine
from tests.world.site import site_config
from tests.world.steps import completing, holding_a_call, offered, two_sites


@pytest.mark.parametrize("cut", ["close", "reset"])
def test_two_completions_of_one_call_that_cross_between_the_sites_count_once(cut):
    world, desk, iid = holding_a_call()
    completing(world, desk, peer_latency=0.05, wait=0.01)  # A applied it and asked B
    world.cut("A", cut)  # the desktop's link to A dies: it logs in at B and sends the completion again
    world.run_for(3.0)
    assert desk.session.snapshot().primary == "B"
    assert [e.reason for e in desk.ended[iid]] == ["completed"]
    # B adopted the call and completed it too: the two claims crossed, A's counts (the tie rule).
    events = [(site, event) for site, event, _ in world.reports.history[iid]][-3:]
    assert events == [("B", "adopted"), ("A", "completed"), ("B", "withdrawn")], world.reports.history[iid]
    world.settle()


@pytest.mark.parametrize("cut", ["close", "reset"])
def test_a_completion_sent_again_to_the_peer_that_confirmed_it_is_reported_by_the_first_server_only(cut):
    world, desk, iid = holding_a_call()
    # A applied it and asked B, which confirmed; A reports it when B's answer is back
    completing(world, desk, peer_latency=0.01, wait=0.01)
    world.cut("A", cut)  # meanwhile the desktop logs in at B and sends the completion again
    world.run_for(3.0)
    assert desk.session.snapshot().primary == "B"
    assert [e.reason for e in desk.ended[iid]] == ["completed"]  # B answers it as a repeat
    assert [(c.site, c.notes) for c in world.reports.completions[iid]] == [("A", f"final {iid}")]
    world.settle()


def test_a_completion_its_agent_sent_again_to_the_peer_is_reported_there_if_the_first_server_dies_unreported():
    world, desk, iid = holding_a_call()
    completing(world, desk, peer_latency=0.05, wait=0.06)  # B confirmed A's completion; A has not reported it yet
    world.cut("A", "reset")  # the desktop logs in at B and sends the completion again: a repeat there
    world.run_for(0.02)
    world.kill("A")  # A dies before B's answer arrives: it never reports it
    world.run_for(3.0)
    assert [e.reason for e in desk.ended[iid]] == ["completed"]
    assert [c.site for c in world.reports.completions[iid]] == ["B"]  # B, once A is gone
    world.settle()


def test_a_server_owing_the_peer_s_report_waits_while_its_own_link_to_the_peer_is_up():
    world, desk, iid = holding_a_call()
    # B confirmed A's completion; its answer is on A's link, on the way back
    completing(world, desk, peer_latency=0.05, wait=0.06)
    world.cut("A", "reset")  # the desktop sends the completion again to B: a repeat there, A reports it
    world.run_for(0.02)
    dialer = world.sites["A"].dialer
    assert dialer is not None and dialer.link is not None
    dialer.link.reset()  # A's link to B resets: A goes ahead without B's answer; B's link to A is still up
    world.run_for(3.0)
    assert [c.site for c in world.reports.completions[iid]] == ["A"], world.reports.history[iid]
    world.settle()


def test_a_completion_of_a_peer_that_died_before_reporting_it_is_reported_though_it_restarted_at_once():
    world, desk, iid = holding_a_call()
    completing(world, desk, peer_latency=0.05, wait=0.06)  # B confirmed A's completion; A has not reported it yet
    world.freeze(desk)  # (the desktop is slow to notice)
    world.kill("A")  # A dies with it...
    world.restart("A")  # ... and is back at once, linked to B again before the desktop sends it to B
    world.peer_latency = 0.002
    world.run_for(0.5)
    world.thaw(desk)
    world.run_for(3.0)
    assert [e.reason for e in desk.ended[iid]] == ["completed"]
    assert [c.site for c in world.reports.completions[iid]] == ["B"], world.reports.history[iid]
    world.settle()


def test_a_completion_of_a_peer_that_died_before_reporting_it_is_reported_where_the_copy_had_ended():
    world = two_sites(agents=1)
    desk = world.desks[0]
    iid = offered(world, desk)
    desk.answer(0, take=True)
    world.freeze(world.sites["A"])  # A stops before reading the accept: the desktop moves the call to B
    world.run_for(4.0)
    world.thaw(world.sites["A"])  # A drops its copy (the call is at B)
    world.run_for(3.0)
    assert ("A", "withdrawn") in [(site, event) for site, event, _ in world.reports.history[iid]]
    world.peer_latency = 0.05
    world.run_for(0.5)
    desk.complete(0, final_notes=True)
    world.run_for(0.06)  # A confirmed B's completion; B has not reported it yet
    world.kill("B")  # B dies with it; the desktop logs in at A and sends it again
    world.restart("B")
    world.run_for(3.0)
    assert [e.reason for e in desk.ended[iid]] == ["completed"]
    assert [c.site for c in world.reports.completions[iid]] == ["A"], world.reports.history[iid]
    world.settle()


def test_the_next_offer_decided_with_a_completion_is_not_made_once_the_agent_has_left():
    world, desk, iid = holding_a_call()
    world.carrier.new_interaction()  # the next call waits for the agent
    world.run_for(0.1)
    (waiting,) = [i for i in world.carrier.ledger.entries if i != iid]
    completing(world, desk, peer_latency=0.3, wait=0.01)  # A completes it, routes the next one to the agent...
    world.cut("A", "close")  # ... but the agent leaves A before B's confirmation is back
    world.run_for(3.0)
    at_a = [(event, agent) for site, event, agent in world.reports.history[waiting] if site == "A"]
    # Put back at A when the agent left (never offered there again); then, the agent being logged in
    # at B now, handed over to B (docs/multisite.md) instead of waiting at A.
    requeued = at_a.index(("queued", desk.agent_id))
    assert ("offered", desk.agent_id) not in at_a[requeued:] and ("A", waiting) not in world.reports.offers, at_a
    assert at_a[requeued + 1:] in ([], [("withdrawn", None)]), at_a
    # The queue's figures agree with the stream: an offer never made is not counted as offered.
    reported = sum(1 for history in world.reports.history.values()
                   for site, event, _ in history if (site, event) == ("A", "offered"))
    core = world.sites["A"].core
    assert core is not None
    (sales,) = core.engine.statistics(0)
    assert sales.offered == reported, (sales.offered, reported)
    world.settle()


def test_a_failover_login_does_not_adopt_a_call_the_peer_completed_when_the_copy_here_ended():
    engine = RoutingEngine(site_config("B", "A").queues)
    call = p.Interaction(interaction_id="call-1", media="voice", queue="q", created_ms=0)
    engine.submit(call, 0)
    engine.peer_record("call-1", "held", "1001", "q", "voice", "adopt", 10)  # taken at A: the copy here ends
    engine.peer_record("call-1", "completed", "1001", "q", "voice", "complete", 20)  # and completed there
    adopted, effects = engine.login("1001", {"q": 0}, "ready", 30, [p.HeldInteraction(interaction=call, accepted_ms=5)])
    assert adopted == [] and engine.held_by("1001") == []
