"""Hold and transfers in the session core (docs/protocol.md, "Hold and transfers"), with the test
playing both servers: the hold time crosses a failover, a blind transfer leaves the agent's hands
on its ack, a consultation is followed on both desktops, and an accepted consultation is never
carried into the consulted agent's failover login (the first agent still holds the call)."""

from __future__ import annotations

import pytest

from desktop.core import events as ev
from server_stub import protocol as p
from tests.core.harness import WALL0, Bench, logged_in_on_a
from tests.core.test_interactions import fail_over_to_b, holding


def test_hold_and_resume_and_the_hold_time_carried_in_a_failover_login():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.hold, "call-1", True)
    hold = bench.one("A", p.RequestHold)
    bench.ack("A", hold, epoch=1, hold_since_ms=WALL0 + 500)
    [changed] = bench.take_events(ev.HoldChanged)
    assert changed.hold_since_ms == WALL0 + 500
    assert bench.session.snapshot().held[0].hold_since_ms == WALL0 + 500
    login = fail_over_to_b(bench, ack=False)
    assert [h.hold_since_ms for h in login.interactions] == [WALL0 + 500]


def test_resume_clears_the_hold():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.hold, "call-1", True)
    bench.ack("A", bench.one("A", p.RequestHold), epoch=1, hold_since_ms=WALL0)
    bench.feed(bench.session.hold, "call-1", False)
    bench.ack("A", bench.one("A", p.RequestResume), epoch=1)
    assert bench.session.snapshot().held[0].hold_since_ms is None


def test_a_blind_transfer_leaves_the_agents_hands_once_acknowledged():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.transfer, "call-1", "blind", to_queue="support", notes="refund")
    request = bench.one("A", p.RequestTransfer)
    assert (request.kind, request.to_queue, request.to_agent, request.notes) == ("blind", "support", None, "refund")
    assert bench.session.snapshot().held[0].notes == "refund"
    bench.ack("A", request, epoch=1)
    ended = bench.take_events(ev.InteractionEnded)
    assert [(e.interaction_id, e.reason) for e in ended] == [("call-1", "transferred")]
    assert bench.session.snapshot().held == ()


def test_a_transfer_in_flight_when_its_server_is_lost_is_carried_and_sent_again_after_the_adoption():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.transfer, "call-1", "blind", to_agent="1002")
    bench.one("A", p.RequestTransfer)
    login = fail_over_to_b(bench)
    assert [h.interaction.interaction_id for h in login.interactions] == ["call-1"]
    bench.deliver("B", p.EventCurrentAgentStatus(agent_id="1001", epoch=2, server="B", state="not_ready",
                                                 since_ms=WALL0, interaction_ids=["call-1"]))
    again = bench.one("B", p.RequestTransfer)
    assert (again.epoch, again.to_agent) == (2, "1002")


def test_the_first_agent_follows_its_consultation_and_completes_it():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.transfer, "call-1", "consult", to_agent="1002")
    request = bench.one("A", p.RequestTransfer)
    for status in ("offered", "accepted"):
        bench.deliver("A", p.EventTransfer(agent_id="1001", epoch=1, interaction_id="call-1", kind="consult",
                                           status=status, at_ms=WALL0, from_agent="1001", to_agent="1002"))
        assert bench.session.snapshot().held[0].transfer == ev.TransferInfo(status, "1002", None)
    bench.ack("A", request, epoch=1)
    assert bench.session.snapshot().held[0].transfer is not None
    bench.feed(bench.session.end_transfer, "call-1", True)
    bench.ack("A", bench.one("A", p.RequestCompleteTransfer), epoch=1)
    assert bench.session.snapshot().held == ()


@pytest.mark.parametrize("status", ["refused", "timeout", "cancelled", "lost"])
def test_a_consultation_that_ends_leaves_the_call_with_the_first_agent(status):
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.transfer, "call-1", "consult", to_agent="1002")
    bench.ack("A", bench.one("A", p.RequestTransfer), epoch=1)
    bench.deliver("A", p.EventTransfer(agent_id="1001", epoch=1, interaction_id="call-1", kind="consult",
                                       status="offered", at_ms=WALL0, from_agent="1001", to_agent="1002"))
    bench.deliver("A", p.EventTransfer(agent_id="1001", epoch=1, interaction_id="call-1", kind="consult",
                                       status=status, at_ms=WALL0, from_agent="1001", to_agent="1002"))
    [held] = bench.session.snapshot().held
    assert held.transfer is None and held.interaction.interaction_id == "call-1"
    assert [e.status for e in bench.take_events(ev.TransferChanged)][-1] == status


def consult_offer(bench: Bench) -> None:
    interaction = p.Interaction(interaction_id="call-1", media="voice", queue="sales", created_ms=WALL0,
                                notes="VIP")
    bench.deliver("A", p.EventInvite(agent_id="1001", epoch=1, interaction=interaction, offered_ms=WALL0,
                                     expires_ms=WALL0 + 30_000, consult_from="1002"))


def test_the_consulted_agent_waits_for_the_hand_over_then_holds_the_call_with_the_latest_notes():
    bench = logged_in_on_a()
    consult_offer(bench)
    [offer] = bench.session.snapshot().offers
    assert offer.consult_from == "1002" and offer.interaction.notes == "VIP"
    bench.feed(bench.session.accept, "call-1")
    bench.ack("A", bench.one("A", p.RequestAccept), epoch=1)
    snap = bench.session.snapshot()
    assert snap.held == () and snap.offers[0].consulting, "not in hand until the hand-over"
    bench.take_events()
    bench.deliver("A", p.EventTransfer(agent_id="1001", epoch=1, interaction_id="call-1", kind="consult",
                                       status="completed", at_ms=WALL0 + 9_000, from_agent="1002",
                                       to_agent="1001", notes="VIP, address checked"))
    [started] = bench.take_events(ev.InteractionStarted)
    assert started.accepted_ms == WALL0 + 9_000
    [held] = bench.session.snapshot().held
    assert held.notes == "VIP, address checked" and bench.session.snapshot().offers == ()


def test_an_accepted_consultation_is_not_carried_into_a_failover_login():
    bench = logged_in_on_a()
    consult_offer(bench)
    bench.feed(bench.session.accept, "call-1")
    bench.one("A", p.RequestAccept)  # unanswered when A is lost
    login = fail_over_to_b(bench, ack=False)
    assert login.interactions == [], "the first agent holds the call: the consulted one must not adopt it"
    assert bench.session.snapshot().offers == ()


def test_a_repeated_accept_answered_after_the_hand_over_does_not_start_the_call_twice():
    bench = logged_in_on_a()
    consult_offer(bench)
    bench.feed(bench.session.accept, "call-1")
    bench.ack("A", bench.one("A", p.RequestAccept), epoch=1)
    bench.feed(bench.session.accept, "call-1")  # the agent clicks Accept again while it waits
    again = bench.one("A", p.RequestAccept)
    bench.take_events()
    bench.deliver("A", p.EventTransfer(agent_id="1001", epoch=1, interaction_id="call-1", kind="consult",
                                       status="completed", at_ms=WALL0 + 5_000, from_agent="1002", to_agent="1001"))
    bench.ack("A", again, epoch=1)
    assert len(bench.take_events(ev.InteractionStarted)) == 1
    [held] = bench.session.snapshot().held
    assert held.accepted_ms == WALL0 + 5_000


def test_the_transfer_targets_are_asked_of_the_primary_and_listed_and_a_refusal_is_an_error():
    bench = logged_in_on_a()
    bench.feed(bench.session.request_transfer_targets)
    request = bench.one("A", p.RequestTransferTargets)
    assert request.epoch == 1
    targets = p.TransferTargets(queues=["sales"], agents=[
        p.TransferTargetAgent(agent_id="1002", site="B", state="ready", available=True, name="Bruno Keller")])
    bench.ack("A", request, epoch=1, transfer_targets=targets)
    [listed] = bench.take_events(ev.TransferTargetsListed)
    assert (listed.targets, listed.endpoint) == (targets, "A")
    bench.feed(bench.session.request_transfer_targets)
    again = bench.one("A", p.RequestTransferTargets)
    bench.deliver("A", p.EventError(request_id=again.request_id, code="stale_epoch", message="stale"))
    assert [e.code for e in bench.take_events(ev.ErrorEvent)] == ["stale_epoch"]
    assert bench.take_events(ev.TransferTargetsListed) == []
