"""The chaos ledger's judgements on hand-made histories: it must be able to see each failure it
claims to rule out, or the chaos test proves nothing."""

from tests.chaos.harness import Ledger


def ev(server, seq, iid, event, at_ms, agent="2001", **extra):
    return {"type": "EventInteraction", "server": server, "seq": seq, "interaction_id": iid, "event": event,
            "at_ms": at_ms, "queue": "chaos", "media": "voice", "agent_id": agent, **extra}


def ledger(streams, agents=None, kills=(), submitted=("i1",), carrier=None, queue_stats=(), freezes=()):
    result = Ledger(submitted=list(submitted), carrier=carrier or {}, streams=streams, agents=agents or {},
                    kills=list(kills), queue_stats=list(queue_stats), freezes=list(freezes))
    return result.compute()


def test_a_clean_history_with_an_adoption_after_a_kill_is_counted_once():
    f = ledger([ev("A", 1, "i1", "queued", 0), ev("A", 2, "i1", "offered", 10), ev("A", 3, "i1", "accepted", 20),
                ev("B", 1, "i1", "adopted", 600), ev("B", 2, "i1", "completed", 900, disposition="resolved")],
               kills=[("A", 500)])
    assert (f["completed"], f["lost"], f["completed_twice"], f["double_offers"], f["adopted"]) == (1, 0, 0, 0, 1)


def test_a_second_completion_at_the_other_server_is_completed_twice():
    f = ledger([ev("A", 1, "i1", "completed", 100), ev("B", 7, "i1", "completed", 200)])
    assert f["completed_twice"] == 1 and f["completed_twice_ids"] == ["i1"]


def test_an_interaction_that_never_ends_is_lost_and_an_abandoned_one_ended_with_a_reason():
    f = ledger([ev("A", 1, "i1", "queued", 0), ev("A", 2, "i2", "abandoned", 50, reason="caller hung up")],
               submitted=("i1", "i2", "i3"))
    assert (f["lost"], f["ended_with_reason"], f["lost_ids"]) == (2, 1, ["i1", "i3"])


def test_an_offer_while_the_other_server_holds_it_is_a_double_offer_unless_that_server_died():
    held_at_a = [ev("A", 1, "i1", "offered", 0), ev("A", 2, "i1", "accepted", 10)]
    offered_at_b = [ev("B", 1, "i1", "offered", 100, agent="2002")]
    assert ledger(held_at_a + offered_at_b)["double_offers"] == 1
    assert ledger(held_at_a + offered_at_b, kills=[("A", 50)])["double_offers"] == 0


def test_a_frozen_servers_copy_ended_untouched_after_the_thaw_ends_at_the_freeze_but_one_acted_on_is_a_double():
    offered_at_a = [ev("A", 1, "i1", "offered", 0)]
    offered_at_b = [ev("B", 1, "i1", "offered", 3000, agent="2002")]
    frozen = [("A", 100, 8000)]  # A stopped from 100 ms to 8 s: B offered the carrier's re-submission meanwhile
    withdrawn = ledger(offered_at_a + offered_at_b + [ev("A", 2, "i1", "withdrawn", 8010)], freezes=frozen)
    assert (withdrawn["double_offers"], withdrawn["copies_ended_after_thaw"], withdrawn["freezes"]) == (0, 1, 1)
    assert withdrawn["stream_double_offers_uncut"] > 0  # uncut, the two copies overlap
    # Thawed, A first put it back in its queue (its agent's login had moved), then withdrew it.
    thawed = [ev("A", 2, "i1", "queued", 8010), ev("A", 3, "i1", "withdrawn", 8100)]
    requeued = ledger(offered_at_a + offered_at_b + thawed, freezes=frozen)
    assert (requeued["double_offers"], requeued["copies_ended_after_thaw"]) == (0, 1)
    # Thawed, A let its stale offer be accepted while B had the interaction offered.
    accepted = ledger(offered_at_a + offered_at_b + [ev("A", 2, "i1", "accepted", 8010)], freezes=frozen)
    assert accepted["double_offers"] > 0 and accepted["copies_ended_after_thaw"] == 0


def test_an_agent_shown_offers_from_two_servers_at_once_is_a_double_offer():
    def offer(endpoint, iid):
        return {"event": "OfferReceived", "endpoint": endpoint, "interaction": {"interaction_id": iid}}
    revoked = {"event": "OfferRevoked", "interaction_id": "i1", "reason": "primary_lost"}
    assert ledger([], agents={"2001": [offer("A", "i1"), offer("B", "i2")]})["double_offers"] == 1
    assert ledger([], agents={"2001": [offer("A", "i1"), revoked, offer("B", "i2")]})["double_offers"] == 0


def test_a_completion_the_agent_was_told_of_but_no_stream_showed_is_unreported_not_lost():
    agent_events = [{"event": "InteractionEnded", "interaction_id": "i1", "reason": "completed"}]
    f = ledger([ev("A", 1, "i1", "accepted", 10)], agents={"2001": agent_events})
    assert (f["completed"], f["lost"], f["unreported"], f["unreported_ids"]) == (1, 0, 1, ["i1"])


def carrier_entry(status, ended_at="A", agent_id="2001", disposition="resolved"):
    return {"status": status, "ended_at": ended_at, "agent_id": agent_id, "disposition": disposition}


def reconciled(streams, carrier_entries, submitted=("i1",)):
    return ledger(streams, submitted=submitted, carrier={"interactions": carrier_entries})


def test_the_carrier_must_agree_on_each_end_and_may_only_miss_ends_the_streams_show():
    done = [ev("A", 1, "i1", "completed", 100, disposition="resolved")]
    assert reconciled(done, {"i1": carrier_entry("completed")})["carrier_disagreements"] == 0
    # Completed elsewhere, by someone else, or with another disposition: the ledgers disagree.
    for wrong in (carrier_entry("completed", ended_at="B"), carrier_entry("completed", agent_id="2002"),
                  carrier_entry("completed", disposition="sale"), carrier_entry("abandoned")):
        assert reconciled(done, {"i1": wrong})["carrier_disagreements"] == 1, wrong
    # The carrier never saw the end: fine if the streams did, a disagreement if nobody did.
    missed = reconciled(done, {"i1": carrier_entry("in_hand")})
    assert (missed["carrier_open"], missed["carrier_disagreements"], missed["carrier_open_ids"]) == (1, 0, ["i1"])
    nobody = reconciled([ev("A", 1, "i1", "accepted", 10)], {"i1": carrier_entry("in_hand")})
    assert (nobody["carrier_open"], nobody["carrier_disagreements"]) == (0, 1)
    # The carrier claims an end the streams never showed.
    assert (
        reconciled([ev("A", 1, "i1", "accepted", 10)], {"i1": carrier_entry("completed")})["carrier_disagreements"] == 1
    )


def stats(seq, offered, answered, abandoned, snapshot=False, stream="sA"):
    return {"server": "A", "stream": stream, "seq": seq, "snapshot": snapshot, "queues": [
        {"queue": "chaos", "offered": offered, "answered": answered, "abandoned": abandoned}]}


def test_queue_statistics_must_equal_the_events_of_their_stream_since_its_snapshot():
    events = [{**ev("A", seq, f"i{seq}", kind, seq), "stream": "sA"}
              for seq, kind in ((11, "offered"), (12, "accepted"), (13, "offered"), (15, "abandoned"), (16, "adopted"))]
    # The snapshot (seq 10) already counted 3 offers and 2 answers the tap never saw as events.
    right = ledger(events, submitted=(),
                   queue_stats=[stats(10, 3, 2, 0, snapshot=True), stats(14, 5, 3, 0), stats(17, 5, 3, 1)])
    assert (right["queue_stats_checked"], right["queue_stats_with_events"], right["queue_stats_mismatches"]) == (
        2,
        2,
        0,
    )
    # One answer too many, or a figure compared with another stream's events: a mismatch each.
    wrong = ledger(events, submitted=(),
                   queue_stats=[stats(10, 3, 2, 0, snapshot=True), stats(14, 5, 4, 0),
                                stats(1, 0, 0, 0, snapshot=True, stream="sB"), stats(20, 2, 1, 0, stream="sB")])
    assert (wrong["queue_stats_checked"], wrong["queue_stats_mismatches"]) == (2, 2)
