"""Words for hold and transfers (desktop/ui/transfer_presenter.py) and the "On hold" state line,
without a window: labels, never codes."""

from __future__ import annotations

from desktop.core import events as ev
from desktop.ui import interaction_presenter as ip
from desktop.ui import transfer_presenter as tp
from server_stub import protocol as p

T0 = 1_767_254_400_000
CALL = p.Interaction(interaction_id="call-1", media="voice", queue="sales", created_ms=T0,
                     customer={"name": "Dana"}, notes="Wants a refund.",
                     transfers=[p.TransferStep(kind="blind", from_agent="1001", at_ms=T0, to_agent="1002")])


def held(hold_since: int | None = None, transfer: ev.TransferInfo | None = None) -> ev.HeldInfo:
    return ev.HeldInfo(CALL, T0, "", "A", 1, False, hold_since, transfer)


def test_the_hold_time_and_the_state_line_on_hold():
    assert tp.hold_text(held(), T0) == ""
    assert tp.hold_text(held(T0), T0 + 12_000) == "On hold 00:12"
    status = ev.AgentStatus(state="ready", reason=None, since_ms=T0, epoch=1, endpoint="A")
    line = ip.handling_state(status, (), (held(T0 + 1_000),), None, T0 + 31_000)
    assert (line.kind, line.text, line.clock) == ("on_hold", "On hold – Voice call", "00:30")
    assert ip.handling_state(status, (), (held(),), None, T0 + 31_000).text == "Talking – Voice call"


def test_a_consultation_in_words_for_the_first_agent():
    assert tp.consult_text(None) == ""
    assert tp.consult_text(ev.TransferInfo("offered", "1002", None)) == "Consulting agent 1002: waiting for an answer"
    assert tp.consult_text(ev.TransferInfo("accepted", "1002", "support")) == \
        "Consulting agent 1002 (queue support): accepted: complete the transfer or take it back"


def test_the_offer_of_a_transferred_or_consulted_call_names_who_hands_it_on_and_shows_the_notes():
    blind = ev.OfferInfo(CALL, T0, T0 + 30_000, "A", 1)
    assert tp.offer_text("Name: Dana", blind) == "Name: Dana\nTransferred by agent 1001\nNotes: Wants a refund."
    consult = ev.OfferInfo(CALL, T0, T0 + 30_000, "A", 1, consult_from="1003", consulting=True)
    assert tp.offer_text("Name: Dana", consult).splitlines()[1] == "Agent 1003 asks you to take this over"
    assert tp.consulting_text(consult) == "Accepted: waiting for agent 1003 to hand it over"
    plain = ev.OfferInfo(p.Interaction(interaction_id="c", media="chat", queue="q", created_ms=T0), T0, T0, "A", 1)
    assert tp.offer_text("No customer data", plain) == "No customer data"


def test_transfer_events_and_refusals_in_words():
    changed = ev.TransferChanged("call-1", "refused", "1001", "1002", None, "agent 1002 declined", "A")
    assert tp.transfer_event_text(changed) == \
        "Transfer of call-1 to agent 1002: declined; the interaction stays with you (agent 1002 declined)"
    intent = ev.InteractionIntent("transfer", "call-1", kind="blind", to_agent="1002")
    failed = ev.InteractionFailed("r1", intent, "target_unavailable", "agent 1002 is not available now")
    assert tp.failed_text(failed) == "Transfer refused: agent 1002 is not available now"
    assert ip.ended_text(ev.InteractionEnded("call-1", "transferred", None, "", "A")) == \
        "Interaction call-1 ended: you transferred it"


def test_the_pickers_rows_list_queues_then_available_agents_first_each_with_its_site():
    listed = ev.TransferTargetsListed(p.TransferTargets(queues=["billing", "sales"], agents=[
        p.TransferTargetAgent(agent_id="1002", site="B", state="not_ready", available=False, name="Bruno Keller"),
        p.TransferTargetAgent(agent_id="1005", site="A", state="ready", available=True, name="1005"),
        p.TransferTargetAgent(agent_id="1003", site="B", state="ready", available=True)]), "A")
    assert [(i.text, i.target_kind, i.target, i.available) for i in tp.target_items(listed)] == [
        ("Queue billing", "queue", "billing", True), ("Queue sales", "queue", "sales", True),
        ("1003 · site B · available", "agent", "1003", True), ("1005 · site A · available", "agent", "1005", True),
        ("1002 Bruno Keller · site B · not available", "agent", "1002", False)]
