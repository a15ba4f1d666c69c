"""The supervisor's engine follows hold and transfers (EventInteraction kinds of docs/protocol.md,
"Hold and transfers"): the consulted agent rings while offered and stops ringing when the
consultation ends; the agent who transferred a call is no longer busy with it."""

from __future__ import annotations

from desktop.supervisor.model import handling_since, state_text
from server_stub import protocol as p
from tests.supervisor.test_engine import T0, engine, login  # noqa: F401 (engine: a fixture)


def step(seq: int, iid: str, event: p.InteractionEventKind, agent_id: str,
         reason: str | None = None) -> p.EventInteraction:
    return p.EventInteraction(server="A", seq=seq, interaction_id=iid, event=event, at_ms=T0 + seq,
                              queue="sales", media="voice", agent_id=agent_id, reason=reason)


def test_a_consultation_rings_the_consulted_agent_and_a_completed_transfer_moves_the_call(engine):  # noqa: F811
    engine.message("A", login("A", 1, "1001", 3), T0)
    engine.message("A", login("A", 2, "1002", 4), T0)
    engine.message("A", step(3, "call-1", "accepted", "1001"), T0)
    engine.message("A", step(4, "call-1", "on_hold", "1001"), T0)
    assert engine.rows["1001"].count_key == "busy", "on hold is still busy with the call"
    assert state_text(engine.rows["1001"]) == "On hold" and handling_since(engine.rows["1001"]) == T0 + 4
    engine.message("A", step(5, "call-1", "consult_offered", "1002"), T0)
    assert engine.rows["1002"].count_key == "ringing"
    engine.message("A", step(6, "call-1", "consult_ended", "1002", "refused"), T0)
    assert engine.rows["1002"].count_key == "ready"
    engine.message("A", step(7, "call-1", "consult_offered", "1002"), T0)
    engine.message("A", step(8, "call-1", "transferred", "1001"), T0)
    engine.message("A", step(9, "call-1", "accepted", "1002"), T0)
    assert engine.rows["1001"].interaction_id is None and engine.rows["1001"].count_key == "ready"
    assert state_text(engine.rows["1002"]) == "Busy", "the hold was the first agent's"
    assert engine.rows["1002"].interaction_id == "call-1" and engine.rows["1002"].count_key == "busy"
