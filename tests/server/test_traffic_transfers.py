"""The simulated carrier's ledger and transfers: a transferred interaction waits again (no desktop
carries it through a failover) at the site that reported the transfer, so that site's loss has
the carrier re-submit it; the next agent's accept puts it back in hand."""

from __future__ import annotations

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
