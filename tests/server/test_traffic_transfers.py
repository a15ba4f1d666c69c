"""The simulated carrier's ledger and transfers: a transferred interaction waits again (no desktop
carries it through a failover) at the site that reported the transfer, so that site's loss has
the carrier re-submit it; the next agent's accept puts it back in hand."""

from __future__ import annotations

import msgspec

from server_stub import protocol as p
from server_stub.traffic import Ledger

CALL = p.Interaction(interaction_id="call-1", media="voice", queue="sales", created_ms=1)


def step(server: str, seq: int, event: p.InteractionEventKind, agent: str | None = None) -> p.EventInteraction:
    return p.EventInteraction(server=server, seq=seq, interaction_id="call-1", event=event, at_ms=seq, queue="sales",
                              media="voice", agent_id=agent)


def test_a_transfer_at_the_other_site_makes_that_sites_loss_re_submit_it():
    ledger = Ledger()
    ledger.submitted(CALL, "A")
    ledger.event(step("A", 1, "accepted", "1001"))
    assert ledger.to_resubmit("A") == [] and ledger.to_resubmit("B") == []
    ledger.event(step("B", 2, "adopted", "1001"))  # A died; the agent brought it to B
    ledger.event(step("B", 3, "transferred", "1001"))
    assert ledger.to_resubmit("B") == [CALL] and ledger.to_resubmit("A") == []
    ledger.event(step("B", 4, "accepted", "1002"))
    assert ledger.to_resubmit("B") == [] and ledger.entries["call-1"].agent_id == "1002"


def test_a_re_submission_after_both_sites_died_brings_back_the_notes_and_the_transfer_history():
    """Blind to a queue with notes; both sites die before another agent takes it; the carrier's
    ledger re-submits it to the restarted pair, and the next agent reads what the first one wrote
    and who handed it on (before: the interaction as first submitted, bare)."""
    from tests.server.test_transfers_core import in_hand, linked_pair

    sites = linked_pair()
    carrier = sites.a.carrier()
    ledger = Ledger()
    ledger.submitted(CALL, "A")
    first, e1 = sites.a.agent("1001")
    in_hand(sites.a, carrier, first, e1)
    not_ready = {"type": "RequestAgentNotReady", "epoch": e1, "reason": "break"}
    assert sites.a.request(first, not_ready)["type"] == "EventAck"
    assert sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1", "kind": "blind",
                                   "to_queue": "support", "notes": "Wants a refund; account verified."}
                           )["type"] == "EventAck"
    for reported in sites.a.received[carrier]:
        if reported["type"] == "EventInteraction":
            ledger.event(msgspec.convert(reported, p.EventInteraction))
    [transferred] = sites.a.events(carrier, "transferred", "call-1")
    assert transferred["notes"] == "Wants a refund; account verified."
    assert [(t["from_agent"], t["to_queue"]) for t in transferred["transfers"]] == [("1001", "support")]

    for name in ("A", "B"):  # both die, and come back with empty memories
        sites.restart(name)
    sites.link_all()
    [again] = ledger.to_resubmit("A")
    assert again.notes == "Wants a refund; account verified." and again.transfers[0].from_agent == "1001"
    carrier = sites.a.carrier()
    assert sites.a.request(carrier, {"type": "RequestSubmitInteraction",
                                     "interaction": msgspec.to_builtins(again)})["type"] == "EventAck"
    second, _ = sites.a.agent("1002")
    offer = sites.a.invites(second)[-1]["interaction"]
    assert offer["interaction_id"] == "call-1" and offer["notes"] == "Wants a refund; account verified."
    assert [(t["kind"], t["from_agent"], t["to_queue"]) for t in offer["transfers"]] == [("blind", "1001", "support")]


def test_a_transfer_report_without_notes_keeps_what_the_ledger_had():
    ledger = Ledger()
    ledger.submitted(CALL, "A")
    ledger.event(step("A", 1, "accepted", "1001"))
    ledger.event(step("A", 2, "transferred", "1001"))
    assert ledger.to_resubmit("A") == [CALL]
