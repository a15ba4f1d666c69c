"""The routing engine on its own, with a fake clock: who gets the offer, what happens after it."""

from __future__ import annotations

import pytest

from server_stub import protocol as p
from server_stub.config import QueueConfig
from server_stub.core.routing import EngineRefusal, HeldChanged, Offer, Report, Revoke, RoutingEngine, SetState

T0 = 1_767_255_000_000


def interaction(iid: str, queue: str = "sales", created: int = T0, media: p.Media = "voice") -> p.Interaction:
    return p.Interaction(interaction_id=iid, media=media, queue=queue, created_ms=created)


def offers(effects) -> list[tuple[str, str]]:
    return [(e.agent_id, e.interaction.interaction_id) for e in effects if isinstance(e, Offer)]


def reports(effects) -> list[tuple]:
    return [(e.event, e.interaction.interaction_id, e.agent_id) for e in effects if isinstance(e, Report)]


def engine(**queue) -> RoutingEngine:
    return RoutingEngine([QueueConfig("sales", **queue), QueueConfig("support")], max_offer_timeouts=2)


def test_longest_idle_ready_agent_of_the_best_penalty_gets_the_offer():
    e = engine()
    e.login("tier1-old", {"sales": 1}, "ready", T0)  # idle longest, but a worse penalty
    e.login("a-old", {"sales": 0}, "ready", T0 + 10)
    e.login("a-new", {"sales": 0}, "ready", T0 + 20)
    e.login("not-ready", {"sales": 0}, "not_ready", T0)
    e.login("other-queue", {"support": 0}, "ready", T0)
    assert offers(e.submit(interaction("c1"), T0 + 30)) == [("a-old", "c1")]
    assert offers(e.submit(interaction("c2"), T0 + 31)) == [("a-new", "c2")]
    # Every penalty-0 member is busy now: the penalty-1 tier is used.
    assert offers(e.submit(interaction("c3"), T0 + 32)) == [("tier1-old", "c3")]
    # Nobody left: the fourth waits.
    effects = e.submit(interaction("c4"), T0 + 33)
    assert offers(effects) == [] and reports(effects) == [("queued", "c4", None)]
    for _ in range(3):  # the server counts each offer as it publishes its "offered" report
        e.offer_reported("sales")
    (stats, _) = e.statistics(T0 + 1033)
    assert (stats.waiting, stats.longest_wait_ms, stats.offered) == (1, 1033, 3)


def test_a_waiting_interaction_goes_to_the_first_agent_who_becomes_ready():
    e = engine()
    e.login("a", {"sales": 0}, "not_ready", T0)
    e.submit(interaction("c1"), T0)
    assert offers(e.set_state("a", "ready", T0 + 5)) == [("a", "c1")]


def test_reject_puts_the_interaction_back_at_the_head_and_the_next_agent_gets_it():
    e = engine()
    e.login("a", {"sales": 0}, "ready", T0)
    e.login("b", {"sales": 0}, "ready", T0 + 1)
    e.login("c", {"sales": 0}, "not_ready", T0)
    e.submit(interaction("first"), T0 + 2)  # -> a
    e.submit(interaction("second"), T0 + 3)  # -> b
    e.submit(interaction("third"), T0 + 4)  # waits
    effects = e.reject("a", "first", T0 + 5)
    # a is at the back of the idle order, but nobody else is free: a gets the head again, which is
    # the rejected one, not the third that waited behind it.
    assert reports(effects)[0] == ("rejected", "first", "a")
    assert offers(effects) == [("a", "first")]
    effects = e.set_state("c", "ready", T0 + 6)
    assert offers(effects) == [("c", "third")]


def test_rejecting_agent_goes_to_the_back_of_the_idle_order():
    e = engine()
    e.login("a", {"sales": 0}, "ready", T0)
    e.login("b", {"sales": 0}, "not_ready", T0)
    e.submit(interaction("x"), T0 + 1)
    e.set_state("b", "ready", T0 + 2)  # b idle since +2, a since 0 but offered
    assert offers(e.reject("a", "x", T0 + 3)) == [("b", "x")]


def test_offer_timeout_revokes_requeues_and_n_in_a_row_set_not_ready_with_the_system_reason():
    e = engine(accept_timeout_ms=1000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    assert e.tick(T0 + 999) == []
    effects = e.tick(T0 + 1000)
    assert [ef for ef in effects if isinstance(ef, Revoke)] == [Revoke("a", "x", "timeout", "not answered within 1 s")]
    assert reports(effects) == [("offer_timeout", "x", "a"), ("offered", "x", "a")]
    effects = e.tick(T0 + 2000)  # second timeout in a row: max_offer_timeouts=2
    assert SetState("a", "not_ready", "system", at_ms=T0 + 2000) in effects
    assert offers(effects) == []
    assert e.statistics(T0 + 2000)[0].waiting == 1


def test_an_answer_resets_the_timeout_count():
    e = engine(accept_timeout_ms=1000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.tick(T0 + 1000)  # one timeout, offered again
    e.reject("a", "x", T0 + 1500)  # an answer: count back to 0, offered again
    effects = e.tick(T0 + 2500)
    assert not any(isinstance(ef, SetState) for ef in effects)


def test_complete_enters_after_call_work_which_ends_into_ready():
    e = engine(acw_ms=5000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.accept("a", "x", T0 + 100)
    e.submit(interaction("y"), T0 + 200)  # waits: a holds x
    effects = e.complete("a", "x", "resolved", "done", T0 + 300)
    assert reports(effects) == [("completed", "x", "a")]
    assert SetState("a", "after_call_work", at_ms=T0 + 300) in effects and offers(effects) == []  # ACW counts from here
    assert e.tick(T0 + 5299) == []
    effects = e.tick(T0 + 5300)
    assert SetState("a", "ready", at_ms=T0 + 5300) in effects and offers(effects) == [("a", "y")]


def test_a_failover_login_keeps_the_end_of_a_timed_after_call_work_capped_by_the_queues_here():
    e = engine(acw_ms=5000)
    e.login("a", {"sales": 0}, "after_call_work", T0, acw_until=T0 + 2000)
    e.login("b", {"sales": 0}, "after_call_work", T0, acw_until=T0 + 60_000)  # longer than any queue here
    assert (e.acw_until("a"), e.acw_until("b")) == (T0 + 2000, T0 + 5000)
    assert e.tick(T0 + 1999) == []
    assert SetState("a", "ready", at_ms=T0 + 2000) in e.tick(T0 + 2000)
    assert SetState("b", "ready", at_ms=T0 + 5000) in e.tick(T0 + 5000)


def test_a_carried_after_call_work_end_is_ignored_where_no_queue_times_one():
    e = engine()
    e.login("a", {"sales": 0}, "after_call_work", T0, acw_until=T0 + 2000)
    assert e.acw_until("a") is None and e.tick(T0 + 10_000) == []


def test_after_call_work_left_early_by_the_agent_does_not_end_later():
    e = engine(acw_ms=5000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.accept("a", "x", T0)
    e.complete("a", "x", "resolved", "", T0)
    e.set_state("a", "not_ready", T0 + 100)
    assert e.tick(T0 + 6000) == []


def test_without_after_call_work_the_agent_is_offered_the_next_at_once():
    e = engine()
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.submit(interaction("y"), T0)
    e.accept("a", "x", T0)
    assert offers(e.complete("a", "x", "resolved", "", T0 + 10)) == [("a", "y")]


def test_accept_and_complete_repeated_are_harmless_and_other_agents_are_refused():
    e = engine()
    e.login("a", {"sales": 0}, "ready", T0)
    e.login("b", {"sales": 0}, "not_ready", T0)
    e.submit(interaction("x"), T0)
    with pytest.raises(EngineRefusal) as refused:
        e.accept("b", "x", T0)
    assert refused.value.code == "unknown_interaction"
    assert reports(e.accept("a", "x", T0)) == [("accepted", "x", "a")]
    assert e.accept("a", "x", T0) == []
    e.update_notes("a", "x", "notes")
    assert e.interactions["x"].notes == "notes"
    assert reports(e.complete("a", "x", "resolved", "", T0))[0] == ("completed", "x", "a")
    assert e.complete("a", "x", "resolved", "", T0) == []
    with pytest.raises(EngineRefusal):
        e.update_notes("a", "x", "too late")
    with pytest.raises(EngineRefusal):
        e.complete("b", "x", "resolved", "", T0)


def test_duplicates_and_unknown_queues_are_refused():
    e = engine()
    e.submit(interaction("x"), T0)
    for bad, code in ((interaction("x"), "duplicate_interaction"), (interaction("y", queue="nope"), "unknown_queue")):
        with pytest.raises(EngineRefusal) as refused:
            e.submit(bad, T0)
        assert refused.value.code == code


def test_abandon_after_ends_waiting_and_offered_interactions_with_a_reason():
    e = engine(abandon_after_ms=10_000, accept_timeout_ms=60_000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("offered", created=T0 - 5000), T0)
    e.submit(interaction("waiting", created=T0), T0)
    effects = e.tick(T0 + 5000)
    assert Revoke("a", "offered", "abandoned", "the customer hung up") in effects
    assert ("abandoned", "offered", None) in reports(effects)
    assert offers(effects) == [("a", "waiting")]  # a is free again
    e.accept("a", "waiting", T0 + 6000)
    e.confirm("waiting")
    assert e.tick(T0 + 20_000) == []  # in hand: the customer is talking, never abandoned
    stats = e.statistics(T0 + 20_000)[0]
    assert (stats.abandoned, stats.answered, stats.service_level) == (1, 1, 0.5)


def test_service_level_counts_answers_within_the_target():
    e = engine(service_level_target_ms=1000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("fast"), T0)
    e.accept("a", "fast", T0 + 999)
    e.confirm("fast")
    e.complete("a", "fast", "resolved", "", T0 + 1000)
    e.submit(interaction("slow", created=T0), T0 + 1000)
    e.accept("a", "slow", T0 + 1001)
    e.confirm("slow")  # later than the target, yet the answer counts from the accept
    assert e.statistics(T0 + 2000)[0].service_level == 0.5


def test_logout_requeues_an_offer_and_keeps_interactions_in_hand_until_the_orphan_timeout():
    e = RoutingEngine([QueueConfig("sales")], orphan_timeout_ms=60_000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.login("b", {"sales": 0}, "not_ready", T0)
    e.submit(interaction("held"), T0)
    e.accept("a", "held", T0)
    e.login("c", {"sales": 0}, "ready", T0)
    e.submit(interaction("offered"), T0)  # -> c
    effects = e.logout("c", T0 + 1)
    assert ("queued", "offered", "c") in reports(effects)
    e.logout("a", T0 + 2)
    assert e.interactions["held"].status == "held"
    effects = e.tick(T0 + 60_002)
    assert reports(effects) == [("abandoned", "held", "a")]


def test_failover_login_adopts_and_withdraws_the_local_copy_offered_to_someone_else():
    e = engine()
    e.login("b", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)  # the carrier re-submitted it here; offered to b
    held = p.HeldInteraction(interaction=interaction("x"), accepted_ms=T0 - 100, notes="so far")
    adopted, effects = e.login("a", {"sales": 0}, "ready", T0 + 10, [held])
    assert adopted == ["x"]
    assert Revoke("b", "x", "taken_elsewhere", "adopted by agent a") in effects
    assert reports(effects) == [("withdrawn", "x", "b"), ("adopted", "x", "a")]
    assert e.held_by("a") == ["x"] and e.interactions["x"].notes == "so far"
    assert reports(e.complete("a", "x", "resolved", "", T0 + 20))[0] == ("completed", "x", "a")
    with pytest.raises(EngineRefusal) as refused:
        e.submit(interaction("x"), T0 + 30)
    assert refused.value.code == "duplicate_interaction"


def test_adoption_beats_an_agent_here_who_accepted_the_resubmitted_copy():
    e = engine()
    e.login("b", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.accept("b", "x", T0 + 1)
    _, effects = e.login(
        "a", {"sales": 0}, "ready", T0 + 10, [p.HeldInteraction(interaction=interaction("x"), accepted_ms=T0)]
    )
    assert Revoke("b", "x", "taken_elsewhere", "adopted by agent a") in effects
    assert HeldChanged("b") in effects
    assert e.held_by("b") == [] and e.held_by("a") == ["x"]


def test_adopting_what_was_completed_is_not_a_second_copy():
    e = engine()
    e.peer_record("done-at-peer", "completed", "a", "sales", "voice", "complete", T0)
    e.peer_record("done-at-peer", "completed", "a", "sales", "voice", "reported", T0)  # and reported there
    adopted, effects = e.login(
        "a", {"sales": 0}, "ready", T0, [p.HeldInteraction(interaction=interaction("done-at-peer"), accepted_ms=T0)]
    )
    assert adopted == [] and reports(effects) == []
    assert e.complete("a", "done-at-peer", "resolved", "", T0) == []  # the re-sent completion is a repeat
    adopted, effects = e.login(
        "z", {"sales": 0}, "ready", T0, [p.HeldInteraction(interaction=interaction("done-at-peer"), accepted_ms=T0)]
    )
    assert adopted == [] and isinstance(effects[0], Revoke) and effects[0].reason == "taken_elsewhere"


def test_peer_claims_withdraw_copies_not_in_hand_and_refuse_accepts_of_what_an_agent_here_holds():
    e = engine()
    e.login("b", {"sales": 0}, "ready", T0)
    e.submit(interaction("offered-here"), T0)  # -> b
    e.submit(interaction("queued-here"), T0)
    agreed, effects = e.peer_record("offered-here", "held", "a", "sales", "voice", "accept", T0)
    assert agreed and Revoke("b", "offered-here", "taken_elsewhere", "held at the peer site by agent a") in effects
    assert offers(effects) == [("b", "queued-here")]
    e.accept("b", "queued-here", T0)
    agreed, _ = e.peer_record("queued-here", "held", "a", "sales", "voice", "accept", T0)
    assert not agreed and e.held_by("b") == ["queued-here"]
    with pytest.raises(EngineRefusal) as refused:
        e.submit(interaction("offered-here"), T0)
    assert refused.value.code == "duplicate_interaction"


def test_held_interactions_stop_offers_until_completed():
    e = engine()
    e.login("a", {"sales": 0, "support": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.accept("a", "x", T0)
    assert offers(e.submit(interaction("y", queue="support"), T0)) == []


def test_a_hold_after_a_stall_delays_offers_and_timeouts():
    e = engine(accept_timeout_ms=1000)
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.hold(T0 + 5000)
    assert e.tick(T0 + 2000) == []
    assert offers(e.submit(interaction("y"), T0 + 2000)) == []
    e.hold(0)
    assert reports(e.tick(T0 + 2001))[0] == ("offer_timeout", "x", "a")


def test_what_a_reconnected_peer_is_told_is_what_agents_hold_and_completed():
    e = engine()
    e.login("a", {"sales": 0}, "ready", T0)
    e.login("b", {"sales": 0}, "ready", T0)
    for iid in ("held", "done", "queued-1", "queued-2"):
        e.submit(interaction(iid), T0)
    e.accept("a", "held", T0)
    e.accept("b", "done", T0)
    e.complete("b", "done", "resolved", "", T0)
    e.peer_record("done-at-peer", "completed", "z", "sales", "voice", "complete", T0)
    e.peer_record("held-at-peer", "held", "z", "sales", "voice", "accept", T0)
    e.mark_reported("done")
    assert sorted((iid, status) for iid, status, *_ in e.peer_records()) == [
        ("done", "completed"), ("done-at-peer", "completed"), ("held", "held")]
    assert len(e.peer_records(completed_limit=0)) == 1


def test_accepts_crossing_on_the_peer_link_leave_exactly_one_holder():
    """Both sites offered the same id and both agents accepted before either heard of the other:
    each side gets the other's claim while its own is unconfirmed. The same rule on both sides
    (the name that sorts first wins) keeps one holder, never zero or two."""
    site_a, site_b = engine(), engine()
    site_a.login("a1", {"sales": 0}, "ready", T0)
    site_b.login("b1", {"sales": 0}, "ready", T0)
    site_a.submit(interaction("x"), T0)
    site_b.submit(interaction("x"), T0)
    site_a.accept("a1", "x", T0)
    site_b.accept("b1", "x", T0)
    a_agrees, _ = site_a.peer_record("x", "held", "b1", "sales", "voice", "accept", T0, peer_wins_ties=False)  # B > A
    b_agrees, b_effects = site_b.peer_record("x", "held", "a1", "sales", "voice", "accept", T0, peer_wins_ties=True)
    assert (a_agrees, b_agrees) == (False, True)
    assert Revoke("b1", "x", "taken_elsewhere", "held at the peer site by agent a1") in b_effects
    assert site_a.held_by("a1") == ["x"] and site_b.held_by("b1") == []
    # Once confirmed, a holder is never displaced by a later accept claim.
    site_a.confirm("x")
    assert site_a.peer_record("x", "held", "b1", "sales", "voice", "accept", T0, peer_wins_ties=True)[0] is False
    # One answer in all: at the site whose accept stood, not at the one whose accept was refused.
    site_b.accept_refused("b1", "x", T0, "taken by an agent at the peer site")
    assert (site_a.statistics(T0)[0].answered, site_b.statistics(T0)[0].answered) == (1, 0)


def test_an_accept_is_answered_once_confirmed_and_counted_once():
    e = engine()
    e.login("a", {"sales": 0}, "ready", T0)
    e.submit(interaction("x"), T0)
    e.accept("a", "x", T0 + 100)
    assert e.statistics(T0 + 100)[0].answered == 0  # the peer may still refuse it
    e.confirm("x")
    e.confirm("x")
    assert e.statistics(T0 + 100)[0].answered == 1


def test_what_a_lost_peer_held_ends_abandoned_unless_brought_back_or_still_held_there():
    e = RoutingEngine([QueueConfig("sales")], orphan_timeout_ms=10_000)
    e.login("p", {"sales": 0}, "ready", T0)
    for iid in ("brought-back", "still-held", "vanished"):
        e.peer_record(iid, "held", "p", "sales", "voice", "accept", T0)
    e.peer_record("done", "completed", "p", "sales", "voice", "complete", T0)
    e.peer_lost(T0 + 1)
    e.logout("p", T0 + 2)
    e.login(
        "p", {"sales": 0}, "ready", T0 + 3, [p.HeldInteraction(interaction=interaction("brought-back"), accepted_ms=T0)]
    )
    e.peer_record("still-held", "held", "q", "sales", "voice", "sync", T0 + 4)  # the peer is back and says so
    assert e.tick(T0 + 10_000) == []
    effects = e.tick(T0 + 10_001)
    assert reports(effects) == [("abandoned", "vanished", "p")]
    assert isinstance(effects[0], Report) and "lost peer" in (effects[0].reason or "")
    with pytest.raises(EngineRefusal):
        e.submit(interaction("vanished"), T0 + 10_002)  # ended, still a duplicate


def test_a_completion_the_peer_did_not_live_to_report_is_reported_here_once():
    e = engine()
    e.peer_record("x", "completed", "a", "sales", "voice", "complete", T0)  # told, then the peer died
    adopted, _ = e.login(
        "a", {"sales": 0}, "ready", T0, [p.HeldInteraction(interaction=interaction("x"), accepted_ms=T0)]
    )
    assert adopted == []
    effects = e.complete("a", "x", "resolved", "", T0)  # the desktop re-sends its unanswered completion
    assert reports(effects) == [("completed", "x", "a")]
    assert isinstance(effects[0], Report) and effects[0].disposition == "resolved"
    assert e.complete("a", "x", "resolved", "", T0) == []
    assert [(iid, claim) for iid, *_, claim in e.peer_records()] == [("x", "sync")]


def test_a_full_queue_refuses_submissions_with_queue_full():
    """The carrier's queues had no bound (5,898 waiting with large customer data took 422 MiB).
    Each queue, the server's waiting total and the bytes of open interactions are bounded; the
    refusal says what to do, and room made by an offer taken is room again."""
    e = RoutingEngine([QueueConfig("sales"), QueueConfig("support")], max_waiting_per_queue=3, max_waiting=5)
    for i in range(3):
        e.submit(interaction(f"s{i}"), T0)
    with pytest.raises(EngineRefusal) as full:
        e.submit(interaction("s3"), T0)
    assert full.value.code == "queue_full" and "'sales'" in full.value.message and "later" in full.value.message
    e.submit(interaction("t0", queue="support"), T0)
    e.submit(interaction("t1", queue="support"), T0)
    with pytest.raises(EngineRefusal) as total:
        e.submit(interaction("t2", queue="support"), T0)
    assert total.value.code == "queue_full" and "server's limit" in total.value.message
    e.login("a", {"sales": 0}, "ready", T0)  # takes s0 off the queue: room for one more
    e.submit(interaction("s3"), T0 + 1)

    e = RoutingEngine([QueueConfig("sales")], max_live_bytes=10_000)
    big = [p.Interaction(interaction_id=f"big{i}", media="voice", queue="sales", created_ms=T0,
                         customer={f"k{k}": "x" * 200 for k in range(20)}) for i in range(3)]
    e.submit(big[0], T0)
    e.submit(big[1], T0)  # two of about 4.5 kB each
    with pytest.raises(EngineRefusal) as heavy:
        e.submit(big[2], T0)
    assert heavy.value.code == "queue_full" and "bytes" in heavy.value.message
    e.login("a", {"sales": 0}, "ready", T0)
    e.accept("a", "big0", T0 + 1)
    e.complete("a", "big0", "resolved", "", T0 + 2)  # an ended interaction frees its bytes
    e.submit(big[2], T0 + 3)


def test_an_ended_interaction_keeps_only_what_duplicate_checks_need():
    """Completed interactions used to keep their full customer data until 200,000 had ended."""
    e = engine()
    e.login("a", {"sales": 0}, "ready", T0)
    call = p.Interaction(interaction_id="c1", media="chat", queue="sales", created_ms=T0,
                         customer={"name": "Dana Ortiz", "account": "88-1203"}, subject="Invoice")
    e.submit(call, T0)
    before = e.live_bytes
    assert before > 0
    e.accept("a", "c1", T0 + 1)
    e.update_notes("a", "c1", "long notes " * 100)
    e.complete("a", "c1", "resolved", "final", T0 + 2)
    kept = e.interactions["c1"]
    assert (kept.interaction.customer, kept.interaction.subject, kept.notes) == ({}, None, "final")
    assert (kept.interaction.queue, kept.interaction.media) == ("sales", "chat") and e.live_bytes == 0
    with pytest.raises(EngineRefusal) as again:
        e.submit(call, T0 + 3)
    assert again.value.code == "duplicate_interaction"
