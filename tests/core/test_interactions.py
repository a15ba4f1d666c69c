"""Interactions in the session core: offers, the interaction in hand, and how both survive failover
(docs/protocol.md "Interactions"), with the test playing both servers."""

from __future__ import annotations

import dataclasses

import pytest

from desktop.core import events as ev
from server_stub import protocol as p
from tests.core.harness import CONFIG, WALL0, Bench, keep_alive, logged_in_on_a

TOKEN2 = "tok-epoch-2"


def fail_over_to_b(bench: Bench, ack: bool = True) -> p.RequestAgentLogin:
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    if ack:
        ack_login_on_b(bench, login)
    return login


def ack_login_on_b(bench: Bench, login: p.RequestAgentLogin) -> None:
    bench.ack("B", login, role="primary", epoch=2, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)


def holding(bench: Bench, interaction_id: str = "call-1", epoch: int = 1) -> None:
    """Offer ``interaction_id`` on A and accept it there."""
    bench.invite("A", epoch, interaction_id)
    bench.feed(bench.session.accept, interaction_id)
    bench.ack("A", bench.one("A", p.RequestAccept), epoch=epoch)
    bench.take_events()
    bench.take_sent()


def test_an_offer_from_the_primary_is_shown_and_accepting_puts_it_in_hand():
    bench = logged_in_on_a()
    bench.invite("A", 1)
    [offer] = bench.take_events(ev.OfferReceived)
    assert (offer.interaction.interaction_id, offer.endpoint, offer.epoch) == ("call-1", "A", 1)
    assert offer.expires_ms == offer.offered_ms + 30_000
    assert [o.interaction.interaction_id for o in bench.session.snapshot().offers] == ["call-1"]
    assert not bench.session.has_interaction

    bench.feed(bench.session.accept, "call-1")
    [pending] = bench.take_events(ev.InteractionPending)
    assert pending.queued is False
    accept = bench.one("A", p.RequestAccept)
    assert (accept.epoch, accept.interaction_id) == (1, "call-1")
    assert accept.request_id.startswith(pending.request_id + "/")
    bench.ack("A", accept, epoch=1)
    assert [type(e) for e in bench.take_events()] == [ev.InteractionApplied, ev.InteractionStarted]
    snap = bench.session.snapshot()
    assert snap.offers == () and snap.has_interaction
    [held] = snap.held
    assert (held.interaction.interaction_id, held.endpoint, held.epoch, held.notes) == ("call-1", "A", 1, "")
    assert [d.code for d in snap.dispositions] == ["resolved", "callback"]


def test_the_handling_time_counts_from_the_servers_accept_time():
    """The accept's EventAck says when the server took the interaction; the desktop's own clock
    (which may be off, or the click may have waited in the journal) does not decide it."""
    bench = logged_in_on_a()
    bench.invite("A", 1)
    bench.feed(bench.session.accept, "call-1")
    bench.ack("A", bench.one("A", p.RequestAccept), epoch=1, accepted_ms=WALL0 + 1234)
    [started] = bench.take_events(ev.InteractionStarted)
    assert started.accepted_ms == WALL0 + 1234
    [held] = bench.session.snapshot().held
    assert held.accepted_ms == WALL0 + 1234
    carried = fail_over_to_b(bench, ack=False).interactions
    assert [h.accepted_ms for h in carried] == [WALL0 + 1234]  # and it crosses a failover as it was


@pytest.mark.parametrize("failed_over", [False, True])
def test_offers_from_a_secondary_or_an_older_login_are_ignored(failed_over):
    bench = logged_in_on_a()
    if failed_over:  # B is primary at epoch 2; an offer there for epoch 1 is stale
        fail_over_to_b(bench)
        bench.take_events()
    bench.invite("B", 1)
    assert bench.take_events(ev.OfferReceived) == []
    assert [e.message_type for e in bench.take_events(ev.StaleEventIgnored)] == ["EventInvite"]
    bench.feed(bench.session.accept, "call-1")
    [failed] = bench.take_events(ev.InteractionFailed)
    assert failed.code == "unknown_interaction"
    assert bench.take_sent(kind=p.RequestAccept) == []


def test_rejecting_declines_the_offer_on_the_primary():
    bench = logged_in_on_a()
    bench.invite("A", 1)
    bench.feed(bench.session.reject, "call-1")
    reject = bench.one("A", p.RequestReject)
    bench.ack("A", reject, epoch=1)
    assert len(bench.take_events(ev.InteractionApplied)) == 1
    snap = bench.session.snapshot()
    assert snap.offers == () and snap.held == () and not snap.has_interaction


def test_a_revoked_offer_disappears_and_a_late_accept_is_refused_locally():
    bench = logged_in_on_a()
    bench.invite("A", 1)
    bench.revoke("A", 1, reason="timeout")
    [revoked] = bench.take_events(ev.OfferRevoked)
    assert (revoked.interaction_id, revoked.reason, revoked.endpoint) == ("call-1", "timeout", "A")
    bench.feed(bench.session.accept, "call-1")
    assert bench.take_events(ev.InteractionFailed)[0].code == "unknown_interaction"
    assert bench.take_sent(kind=p.RequestAccept) == []


def test_an_accept_refused_because_the_offer_expired_drops_the_offer():
    bench = logged_in_on_a()
    bench.invite("A", 1)
    bench.feed(bench.session.accept, "call-1")
    bench.refuse("A", bench.one("A", p.RequestAccept), "unknown_interaction")
    assert bench.take_events(ev.InteractionFailed)[0].code == "unknown_interaction"
    assert bench.take_events(ev.OfferRevoked)[0].reason == "unknown_interaction"
    assert bench.session.snapshot().offers == ()


def test_notes_go_to_the_primary_and_completion_ends_the_interaction():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.update_notes, "call-1", "Wants the invoice")
    notes = bench.one("A", p.RequestUpdateNotes)
    assert (notes.epoch, notes.interaction_id, notes.notes) == (1, "call-1", "Wants the invoice")
    bench.ack("A", notes, epoch=1)
    bench.feed(bench.session.complete, "call-1", "resolved")
    done = bench.one("A", p.RequestCompleteInteraction)
    assert (done.disposition, done.notes) == ("resolved", "Wants the invoice")  # the notes so far
    bench.ack("A", done, epoch=1)
    [ended] = bench.take_events(ev.InteractionEnded)
    assert (ended.interaction_id, ended.reason, ended.disposition, ended.endpoint) == (
        "call-1",
        "completed",
        "resolved",
        "A",
    )
    assert not bench.session.has_interaction and bench.session.snapshot().held == ()
    bench.feed(bench.session.complete, "call-1", "resolved")  # twice: refused locally, nothing sent
    assert bench.take_events(ev.InteractionFailed)[-1].code == "unknown_interaction"
    assert bench.take_sent(kind=p.RequestCompleteInteraction) == []


def test_an_invalid_disposition_keeps_the_interaction_in_hand():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.complete, "call-1", "nonsense")
    bench.refuse("A", bench.one("A", p.RequestCompleteInteraction), "invalid_disposition")
    assert bench.take_events(ev.InteractionFailed)[0].code == "invalid_disposition"
    assert bench.take_events(ev.InteractionEnded) == []
    assert bench.session.has_interaction
    bench.feed(bench.session.complete, "call-1", "resolved")
    bench.ack("A", bench.one("A", p.RequestCompleteInteraction), epoch=1)
    assert bench.take_events(ev.InteractionEnded)[0].reason == "completed"


def test_an_interaction_in_hand_abandoned_by_the_customer_leaves_the_agents_hands():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.update_notes, "call-1", "x")
    bench.revoke("A", 1, reason="abandoned")
    [ended] = bench.take_events(ev.InteractionEnded)
    assert (ended.reason, ended.endpoint) == ("abandoned", "A")
    assert bench.take_events(ev.InteractionFailed)[0].code == "abandoned"  # the notes in flight
    assert not bench.session.has_interaction


def test_the_failover_login_carries_the_interaction_in_hand_with_its_latest_notes():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.update_notes, "call-1", "first")
    bench.one("A", p.RequestUpdateNotes)  # in flight when A dies
    bench.kill("A")
    [revoked_nothing] = [bench.take_events(ev.OfferRevoked)]
    assert revoked_nothing == []
    assert bench.session.has_interaction  # still in hand during the failover
    login = bench.one("B", p.RequestAgentLogin)
    [carried] = login.interactions
    assert (carried.interaction.interaction_id, carried.notes, carried.accepted_ms) == ("call-1", "first", WALL0)
    assert carried.interaction.customer == {"name": "Dana Ortiz"}
    ack_login_on_b(bench, login)
    [adopted] = bench.take_events(ev.InteractionAdopted)
    assert (adopted.interaction_id, adopted.endpoint, adopted.epoch, adopted.notes) == ("call-1", "B", 2, "first")
    assert len(bench.take_events(ev.InteractionApplied)) == 1  # the notes: delivered by the login
    assert bench.take_sent("B", p.RequestUpdateNotes) == []  # nothing to send again
    [held] = bench.session.snapshot().held
    assert (held.endpoint, held.epoch) == ("B", 2)


def test_notes_typed_during_the_failover_reach_the_new_primary_once_each_text():
    bench = logged_in_on_a()
    holding(bench)
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)  # sent before the agent typed: carries ""
    assert login.interactions[0].notes == ""
    bench.feed(bench.session.update_notes, "call-1", "typed")
    bench.feed(bench.session.update_notes, "call-1", "typed during failover")
    assert len(bench.take_events(ev.InteractionSuperseded)) == 1  # the first text never leaves
    assert all(e.queued for e in bench.take_events(ev.InteractionPending))
    assert bench.take_sent(kind=p.RequestUpdateNotes) == []
    ack_login_on_b(bench, login)
    notes = bench.one("B", p.RequestUpdateNotes)
    assert (notes.epoch, notes.notes) == (2, "typed during failover")
    bench.ack("B", notes, epoch=2)
    assert bench.take_events(ev.InteractionApplied)[0].intent.notes == "typed during failover"
    assert bench.session.snapshot().held[0].notes == "typed during failover"


def test_a_completion_clicked_during_failover_is_sent_once_after_the_adoption():
    bench = logged_in_on_a()
    holding(bench)
    bench.kill("A")
    bench.feed(bench.session.complete, "call-1", "resolved", notes="all done")
    assert bench.take_events(ev.InteractionPending)[0].queued
    login = bench.one("B", p.RequestAgentLogin)
    assert login.interactions[0].notes == ""  # the failover login left before the click
    ack_login_on_b(bench, login)
    done = bench.one("B", p.RequestCompleteInteraction)
    assert (done.epoch, done.disposition, done.notes) == (2, "resolved", "all done")
    keep_alive(bench, 3.0, "B")
    assert bench.take_sent(kind=p.RequestCompleteInteraction) == []
    bench.ack("B", done, epoch=2)
    assert [e.reason for e in bench.take_events(ev.InteractionEnded)] == ["completed"]
    assert not bench.session.has_interaction


def test_a_completion_in_flight_when_the_primary_dies_is_sent_again_on_the_new_primary():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.complete, "call-1", "callback", notes="ring back at 5")
    first = bench.one("A", p.RequestCompleteInteraction)
    login = fail_over_to_b(bench, ack=False)
    assert login.interactions[0].notes == "ring back at 5"  # still in hand: the answer never came
    ack_login_on_b(bench, login)
    again = bench.one("B", p.RequestCompleteInteraction)
    assert again.request_id != first.request_id
    assert again.request_id.rpartition("/")[0] == first.request_id.rpartition("/")[0]  # the same intent
    assert (again.disposition, again.notes) == ("callback", "ring back at 5")
    bench.ack("B", again, epoch=2)  # B answers an id completed at A with an ack as well
    assert len(bench.take_events(ev.InteractionEnded)) == 1
    assert len(bench.take_events(ev.InteractionApplied)) == 1
    bench.ack("B", again, epoch=2)  # a duplicate answer changes nothing
    assert bench.take_events(ev.InteractionEnded) == []


def test_an_offer_pending_when_the_primary_dies_is_dropped_not_carried():
    bench = logged_in_on_a()
    bench.invite("A", 1)
    bench.feed(bench.session.reject, "call-1")
    bench.take_sent()
    bench.invite("A", 1, "call-2")
    bench.kill("A")
    revoked = bench.take_events(ev.OfferRevoked)
    assert sorted((r.interaction_id, r.reason) for r in revoked) == [
        ("call-1", "primary_lost"),
        ("call-2", "primary_lost"),
    ]
    assert bench.take_events(ev.InteractionFailed)[0].code == "primary_lost"  # the reject in flight
    login = bench.one("B", p.RequestAgentLogin)
    assert login.interactions == []
    ack_login_on_b(bench, login)
    bench.feed(bench.session.accept, "call-2")
    assert bench.take_events(ev.InteractionFailed)[0].code == "unknown_interaction"
    assert bench.take_sent(kind=p.RequestAccept) == []


@pytest.mark.parametrize("adopted", [True, False])
def test_an_accept_unanswered_when_the_primary_dies_is_carried_and_the_new_primary_decides(adopted):
    bench = logged_in_on_a()
    bench.invite("A", 1)
    bench.feed(bench.session.accept, "call-1")
    bench.one("A", p.RequestAccept)
    bench.take_events()
    bench.kill("A")
    assert bench.take_events(ev.OfferRevoked) == []
    assert bench.session.has_interaction  # A may have put it in the agent's hands
    login = bench.one("B", p.RequestAgentLogin)
    assert [h.interaction.interaction_id for h in login.interactions] == ["call-1"]
    ack_login_on_b(bench, login)
    assert [type(e) for e in bench.take_events() if "Interaction" in type(e).__name__] == [
        ev.InteractionApplied, ev.InteractionStarted]
    bench.deliver("B", p.EventCurrentAgentStatus(agent_id="1001", epoch=2, server="B", state="not_ready",
                                                 since_ms=WALL0, interaction_ids=["call-1"] if adopted else []))
    ended = bench.take_events(ev.InteractionEnded)
    if adopted:
        assert ended == [] and bench.session.has_interaction
    else:
        assert [e.reason for e in ended] == ["not_adopted"] and not bench.session.has_interaction


def test_a_completion_racing_the_adoption_check_is_left_to_its_answer():
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.complete, "call-1", "resolved")
    bench.one("A", p.RequestCompleteInteraction)
    fail_over_to_b(bench)
    done = bench.one("B", p.RequestCompleteInteraction)
    # B knows the id as completed (A told it): not in hand there, but the completion gets its ack
    bench.deliver("B", p.EventCurrentAgentStatus(agent_id="1001", epoch=2, server="B", state="not_ready",
                                                 since_ms=WALL0, interaction_ids=[]))
    assert bench.take_events(ev.InteractionEnded) == []
    bench.ack("B", done, epoch=2)
    assert [e.reason for e in bench.take_events(ev.InteractionEnded)] == ["completed"]


def test_failback_when_idle_waits_for_the_interaction_to_be_completed():
    config = dataclasses.replace(CONFIG, failback="when-idle", failback_hold=2.0)
    bench = logged_in_on_a(config)
    holding(bench)
    fail_over_to_b(bench)
    bench.take_sent()
    bench.timers.pop(("retry", "A"))
    bench.feed(bench.session.timer_fired, ("retry", "A"))
    bench.register("A")
    bench.ack("A", bench.one("A", p.RequestAgentAvailable), role="secondary")
    keep_alive(bench, 5.0, "A", "B")
    assert bench.take_sent("B", p.RequestAgentLogout) == []  # held: no failback
    bench.feed(bench.session.complete, "call-1", "resolved")
    bench.ack("B", bench.one("B", p.RequestCompleteInteraction), epoch=2)
    keep_alive(bench, 2.5, "A", "B")
    assert len(bench.take_sent("B", p.RequestAgentLogout)) == 1


def test_logout_ends_what_is_in_hand_and_voids_offers():
    bench = logged_in_on_a()
    holding(bench)
    bench.invite("A", 1, "call-2")
    bench.feed(bench.session.logout)
    bench.ack("A", bench.one("A", p.RequestAgentLogout), epoch=1)
    assert [(e.interaction_id, e.reason) for e in bench.take_events(ev.InteractionEnded)] == [("call-1", "logged_out")]
    assert [(e.interaction_id, e.reason) for e in bench.take_events(ev.OfferRevoked)] == [("call-2", "logged_out")]
    bench.feed(bench.session.update_notes, "call-1", "late")
    assert bench.take_events(ev.InteractionFailed)[0].code == "logged_out"


def test_set_has_interaction_still_works_for_older_drivers():
    bench = logged_in_on_a()
    bench.feed(bench.session.set_has_interaction, True)
    assert bench.session.has_interaction and bench.session.snapshot().has_interaction
    bench.feed(bench.session.set_has_interaction, False)
    assert not bench.session.has_interaction


@pytest.mark.parametrize("call", [
    lambda s, kw: s.accept("bad id!", **kw),
    lambda s, kw: s.update_notes("call-1", "x" * 8001, **kw),
    lambda s, kw: s.complete("call-1", "", **kw),
])
def test_bad_interaction_input_is_a_clear_value_error(call):
    bench = logged_in_on_a()
    with pytest.raises(ValueError):
        call(bench.session, {"now": bench.now, "wall_ms": bench.wall})


def test_notes_in_flight_when_the_primary_dies_are_not_sent_again_over_newer_ones():
    """Found by the failover model: the older of two texts in flight was re-sent after the adoption
    and overwrote the newer one at the new primary."""
    bench = logged_in_on_a()
    holding(bench)
    bench.feed(bench.session.update_notes, "call-1", "older")
    bench.feed(bench.session.update_notes, "call-1", "newer")
    assert len(bench.take_sent("A", p.RequestUpdateNotes)) == 2  # both in flight, unanswered
    login = fail_over_to_b(bench, ack=False)
    assert login.interactions[0].notes == "newer"
    ack_login_on_b(bench, login)
    assert bench.take_sent("B", p.RequestUpdateNotes) == []
    assert [e.intent.notes for e in bench.take_events(ev.InteractionApplied)] == ["newer"]
    assert [e.intent.notes for e in bench.take_events(ev.InteractionSuperseded)] == ["older"]
    assert bench.session.snapshot().interaction_pending == ()
