"""Hold, resume and transfers (blind and consultative) over real server cores, in-process, on a
fake clock (docs/protocol.md, "Hold and transfers"): one site, and the pair with a failover in the
middle of a transfer. Each test plays the desktops' frames and reads what they and the carrier see."""

from __future__ import annotations

from server_stub.config import QueueConfig
from server_stub.core.routing import HELD, OFFERED, QUEUED
from tests.server.core_driver import CoreDriver
from tests.server.pair_driver import Mesh, SiteDriver

QUEUES = (QueueConfig(name="sales", accept_timeout_ms=1_000), QueueConfig(name="support", members=(("1002", 0),)))


def linked_pair() -> Mesh:
    sites = Mesh(names=("A", "B"), settings={"A": {"queues": QUEUES}, "B": {"queues": QUEUES}})
    sites.link_all()
    return sites


def site() -> SiteDriver:
    """Site A of a linked pair (its peer confirms accepts and transfers)."""
    return linked_pair().a


def in_hand(s: SiteDriver, carrier: int, desk: int, epoch: int, iid: str = "call-1") -> None:
    """The carrier submits ``iid`` (a call from Dana) and the agent of ``desk`` takes it."""
    assert s.request(carrier, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": iid, "media": "voice", "queue": "sales", "created_ms": 1,
        "customer": {"name": "Dana"}}})["type"] == "EventAck"
    assert [i["interaction"]["interaction_id"] for i in s.invites(desk)][-1] == iid
    assert s.request(desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": iid})["type"] == "EventAck"


def of(s: SiteDriver, conn: int, kind: str) -> list[dict]:
    return [m for m in s.received.get(conn, []) if m["type"] == kind]


def test_hold_and_resume_are_reported_with_the_hold_time_and_a_repeat_keeps_it():
    s = site()
    carrier = s.carrier()
    desk, epoch = s.agent("1001")
    in_hand(s, carrier, desk, epoch)
    s.mono += 2
    first = s.request(desk, {"type": "RequestHold", "epoch": epoch, "interaction_id": "call-1"})
    s.mono += 1
    again = s.request(desk, {"type": "RequestHold", "epoch": epoch, "interaction_id": "call-1"})
    assert first["type"] == again["type"] == "EventAck" and first["hold_since_ms"] == again["hold_since_ms"]
    assert len(s.events(carrier, "on_hold", "call-1")) == 1
    assert s.request(desk, {"type": "RequestResume", "epoch": epoch, "interaction_id": "call-1"})["type"] == "EventAck"
    assert len(s.events(carrier, "resumed", "call-1")) == 1
    answer = s.request(desk, {"type": "RequestHold", "epoch": epoch, "interaction_id": "nope"})
    assert answer["code"] == "unknown_interaction"


def test_a_chat_cannot_be_put_on_hold():
    s = site()
    carrier = s.carrier()
    desk, epoch = s.agent("1001")
    CoreDriver.request(s, carrier, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": "chat-1", "media": "chat", "queue": "sales", "created_ms": 1}})
    s.request(desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": "chat-1"})
    answer = s.request(desk, {"type": "RequestHold", "epoch": epoch, "interaction_id": "chat-1"})
    assert answer["code"] == "invalid_state" and "calls" in answer["message"]


def test_blind_transfer_to_a_queue_goes_ahead_of_new_work_with_its_notes_and_is_completed_once():
    s = site()
    carrier = s.carrier()
    first, e1 = s.agent("1001")
    in_hand(s, carrier, first, e1)
    s.submit(carrier, "call-2")  # waits: nobody free
    second, e2 = s.agent("1002", ready=False)
    # The first agent goes on a break once the call is gone (else it would be offered it back, as
    # the only free member, once nobody else was).
    assert s.request(first, {"type": "RequestAgentNotReady", "epoch": e1, "reason": "break"})["type"] == "EventAck"
    answer = s.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1", "kind": "blind",
                               "to_queue": "sales", "notes": "wants a refund"})
    assert answer["type"] == "EventAck"
    assert s.core.engine.interactions["call-1"].status == QUEUED
    assert s.core.engine.held_by("1001") == []
    assert s.request(second, {"type": "RequestAgentReady", "epoch": e2})["type"] == "EventAck"
    invite = s.invites(second)[-1]["interaction"]
    assert invite["interaction_id"] == "call-1", "a transferred interaction goes before new work"
    assert invite["notes"] == "wants a refund"
    assert invite["transfers"][0]["from_agent"] == "1001" and invite["transfers"][0]["kind"] == "blind"
    assert s.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})["type"] == "EventAck"
    assert s.request(second, {"type": "RequestCompleteInteraction", "epoch": e2, "interaction_id": "call-1",
                              "disposition": "resolved"})["type"] == "EventAck"
    done = s.events(carrier, "completed", "call-1")
    assert len(done) == 1 and done[0]["agent_id"] == "1002"
    assert [t["to_queue"] for t in done[0]["transfers"]] == ["sales"]
    assert len(s.events(carrier, "transferred", "call-1")) == 1


def test_blind_transfer_to_an_agent_not_available_is_refused_and_the_interaction_stays():
    s = site()
    carrier = s.carrier()
    first, e1 = s.agent("1001")
    in_hand(s, carrier, first, e1)
    s.agent("1002", ready=False)
    answer = s.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1", "kind": "blind",
                               "to_agent": "1002"})
    assert answer["code"] == "target_unavailable"
    assert s.core.engine.held_by("1001") == ["call-1"]
    for bad in ({"to_agent": "1002", "to_queue": "sales"}, {}):
        answer = s.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                   "kind": "blind", **bad})
        assert answer["code"] == "bad_message"
    answer = s.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1", "kind": "blind",
                               "to_queue": "nowhere"})
    assert answer["code"] == "unknown_queue"


def test_consultative_transfer_shows_the_notes_then_the_first_agent_completes_the_hand_over():
    s = site()
    carrier = s.carrier()
    first, e1 = s.agent("1001")
    in_hand(s, carrier, first, e1)
    s.request(first, {"type": "RequestUpdateNotes", "epoch": e1, "interaction_id": "call-1", "notes": "VIP"})
    second, e2 = s.agent("1002")
    answer = s.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                               "kind": "consult", "to_agent": "1002"})
    assert answer["type"] == "EventAck"
    offer = s.invites(second)[-1]
    assert offer["consult_from"] == "1001" and offer["interaction"]["notes"] == "VIP"
    assert s.core.engine.held_by("1001") == ["call-1"], "still with the first agent while consulting"
    assert of(s, first, "EventTransfer")[-1]["status"] == "offered"
    # Completing before the consulted agent accepted is refused.
    early = s.request(first, {"type": "RequestCompleteTransfer", "epoch": e1, "interaction_id": "call-1"})
    assert early["code"] == "invalid_state"
    assert s.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})["type"] == "EventAck"
    assert of(s, first, "EventTransfer")[-1]["status"] == "accepted"
    assert s.core.engine.held_by("1001") == ["call-1"]
    done = s.request(first, {"type": "RequestCompleteTransfer", "epoch": e1, "interaction_id": "call-1"})
    assert done["type"] == "EventAck"
    assert s.core.engine.held_by("1001") == [] and s.core.engine.held_by("1002") == ["call-1"]
    assert of(s, second, "EventTransfer")[-1]["status"] == "completed"
    assert of(s, second, "EventCurrentAgentStatus")[-1]["interaction_ids"] == ["call-1"]
    assert s.request(second, {"type": "RequestCompleteInteraction", "epoch": e2, "interaction_id": "call-1",
                              "disposition": "resolved"})["type"] == "EventAck"
    done_events = s.events(carrier, "completed", "call-1")
    assert len(done_events) == 1 and [t["kind"] for t in done_events[0]["transfers"]] == ["consult"]
    # The queue's figures count each reported accept (the first agent's, the consulted one's).
    (sales,) = [q for q in s.core.engine.statistics(0) if q.queue == "sales"]
    assert sales.answered == len(s.events(carrier, "accepted", "call-1")) == 2


def test_a_refused_or_timed_out_or_cancelled_consultation_leaves_the_interaction_with_the_first_agent():
    s = site()
    carrier = s.carrier()
    first, e1 = s.agent("1001")
    in_hand(s, carrier, first, e1)
    second, e2 = s.agent("1002")

    def consult() -> None:
        assert s.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                 "kind": "consult", "to_queue": "support"})["type"] == "EventAck"
        assert s.invites(second)[-1]["consult_from"] == "1001"

    consult()
    assert s.request(second, {"type": "RequestReject", "epoch": e2, "interaction_id": "call-1"})["type"] == "EventAck"
    assert of(s, first, "EventTransfer")[-1]["status"] == "refused"
    assert [e["reason"] for e in s.events(carrier, "consult_ended", "call-1")] == ["refused"]
    consult()
    assert s.mesh is not None
    s.mesh.advance(1.2)
    assert of(s, first, "EventTransfer")[-1]["status"] == "timeout"
    assert of(s, second, "EventInviteRevoked")[-1]["reason"] == "timeout"
    for desk in (first, second):
        s.run(s.core.received(desk, '{"type": "Heartbeat"}', s.now()))
    consult()
    s.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})
    assert s.request(first, {"type": "RequestCancelTransfer", "epoch": e1,
                             "interaction_id": "call-1"})["type"] == "EventAck"
    assert of(s, first, "EventTransfer")[-1]["status"] == "cancelled"
    assert of(s, second, "EventInviteRevoked")[-1]["reason"] == "withdrawn"
    assert s.core.engine.held_by("1001") == ["call-1"] and s.core.engine.held_by("1002") == []
    # The consulted agent is free again: new work reaches it.
    s.submit(carrier, "call-2")
    assert s.invites(second)[-1]["interaction"]["interaction_id"] == "call-2"


def test_blind_transfer_to_an_agent_logged_in_at_the_other_site_goes_through_the_pool():
    sites = linked_pair()
    carrier = sites.a.carrier()
    first, e1 = sites.a.agent("1001")
    in_hand(sites.a, carrier, first, e1)
    sites.a.request(first, {"type": "RequestUpdateNotes", "epoch": e1, "interaction_id": "call-1",
                            "notes": "called twice"})
    second, e2 = sites.b.agent("1002")
    answer = sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                     "kind": "blind", "to_agent": "1002"})
    assert answer["type"] == "EventAck", answer
    offer = sites.b.invites(second)[-1]["interaction"]
    assert offer["interaction_id"] == "call-1" and offer["notes"] == "called twice"
    assert offer["customer"] == {"name": "Dana"} and offer["transfers"][0]["to_agent"] == "1002"
    assert sites.b.request(second, {"type": "RequestAccept", "epoch": e2,
                                    "interaction_id": "call-1"})["type"] == "EventAck"
    assert sites.b.request(second, {"type": "RequestCompleteInteraction", "epoch": e2, "interaction_id": "call-1",
                                    "disposition": "resolved"})["type"] == "EventAck"
    sites.pump()
    b_carrier = sites.b.carrier()
    assert sites.b.core.engine.interactions["call-1"].status == "completed"
    assert not sites.a.events(carrier, "completed", "call-1"), "completed once, at B"
    assert sites.b.submit(b_carrier, "call-1")["code"] == "duplicate_interaction"


def test_a_blind_transfer_survives_the_death_of_its_site_and_is_offered_once_at_the_survivor():
    sites = linked_pair()
    carrier = sites.a.carrier()
    first, e1 = sites.a.agent("1001")
    in_hand(sites.a, carrier, first, e1)
    assert sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                   "kind": "blind", "to_queue": "support", "notes": "n"})["type"] == "EventAck"
    assert sites.a.core.engine.interactions["call-1"].status == QUEUED  # nobody of support is free at A
    sites.restart("A")  # A dies with it waiting: B has the whole interaction and routes it
    b_carrier = sites.b.carrier()
    second, e2 = sites.b.agent("1002")
    invites = [i for i in sites.b.invites(second) if i["interaction"]["interaction_id"] == "call-1"]
    assert len(invites) == 1 and invites[0]["interaction"]["notes"] == "n"
    assert sites.b.submit(b_carrier, "call-1")["code"] == "duplicate_interaction", "a carrier re-submission"
    assert sites.b.request(second, {"type": "RequestAccept", "epoch": e2,
                                    "interaction_id": "call-1"})["type"] == "EventAck"
    assert sites.b.core.engine.interactions["call-1"].status == HELD


def test_a_consultation_lost_with_its_site_leaves_the_interaction_with_the_first_agent_at_the_survivor():
    sites = linked_pair()
    carrier = sites.a.carrier()
    first, e1 = sites.a.agent("1001")
    in_hand(sites.a, carrier, first, e1)
    second, e2 = sites.a.agent("1002")
    sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1", "kind": "consult",
                            "to_agent": "1002"})
    sites.a.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})
    sites.cut("A")
    # The first agent's desktop fails over to B with the call in hand; the consulted one with nothing.
    conn = sites.b.registered()
    held = {"interaction": {"interaction_id": "call-1", "media": "voice", "queue": "sales", "created_ms": 1},
            "accepted_ms": 1, "notes": "", "hold_since_ms": 5}
    ack = sites.b.request(conn, {"type": "RequestAgentLogin", "agent_id": "1001", "password": "pw",
                                 "epoch": e1 + 1, "interactions": [held]})
    assert ack["type"] == "EventAck"
    assert sites.b.core.engine.held_by("1001") == ["call-1"]
    assert sites.b.core.engine.interactions["call-1"].hold_since == 5, "still on hold after the failover"
    assert sites.b.core.engine.interactions["call-1"].status != OFFERED


def consult_across(sites: Mesh) -> tuple[int, int, int, int, int]:
    """1001 at A holds call-1 (notes "VIP") and consults 1002, logged in at B: (carrier, first,
    e1, second, e2)."""
    carrier = sites.a.carrier()
    first, e1 = sites.a.agent("1001")
    in_hand(sites.a, carrier, first, e1)
    sites.a.request(first, {"type": "RequestUpdateNotes", "epoch": e1, "interaction_id": "call-1", "notes": "VIP"})
    second, e2 = sites.b.agent("1002")
    answer = sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                     "kind": "consult", "to_agent": "1002"})
    assert answer["type"] == "EventAck", answer
    return carrier, first, e1, second, e2


def test_a_consultation_with_an_agent_at_the_other_site_is_completed_and_reported_once():
    sites = linked_pair()
    carrier, first, e1, second, e2 = consult_across(sites)
    offer = sites.b.invites(second)[-1]
    assert offer["consult_from"] == "1001" and offer["interaction"]["notes"] == "VIP"
    assert offer["interaction"]["customer"] == {"name": "Dana"}
    assert sites.a.core.engine.held_by("1001") == ["call-1"]
    assert sites.b.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})["type"] \
        == "EventAck"
    sites.pump()
    assert of(sites.a, first, "EventTransfer")[-1]["status"] == "accepted"
    assert sites.a.request(first, {"type": "RequestCompleteTransfer", "epoch": e1,
                                   "interaction_id": "call-1"})["type"] == "EventAck"
    sites.pump()
    assert sites.a.core.engine.held_by("1001") == [] and sites.b.core.engine.held_by("1002") == ["call-1"]
    assert of(sites.b, second, "EventTransfer")[-1]["status"] == "completed"
    assert not sites.a.core.engine.interactions["call-1"].custody, "B told A its agent holds it"
    assert sites.b.request(second, {"type": "RequestCompleteInteraction", "epoch": e2, "interaction_id": "call-1",
                                    "disposition": "resolved"})["type"] == "EventAck"
    sites.pump()
    b_carrier = sites.b.carrier()
    assert not sites.a.events(carrier, "completed", "call-1")
    assert sites.a.submit(carrier, "call-1")["code"] == "duplicate_interaction"
    assert sites.b.submit(b_carrier, "call-1")["code"] == "duplicate_interaction"
    assert sites.b.core.engine.interactions["call-1"].interaction.transfers[0].site == "A"


def test_a_cross_site_consultation_refused_or_lost_with_the_other_site_leaves_the_call_with_the_first_agent():
    sites = linked_pair()
    carrier, first, e1, second, e2 = consult_across(sites)
    sites.b.request(second, {"type": "RequestReject", "epoch": e2, "interaction_id": "call-1"})
    sites.pump()
    assert of(sites.a, first, "EventTransfer")[-1]["status"] == "refused"
    assert sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                   "kind": "consult", "to_agent": "1002"})["type"] == "EventAck"
    sites.b.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})
    sites.pump()
    sites.cut("B")  # B dies with the consulted agent: the consultation is lost, the call stays at A
    assert of(sites.a, first, "EventTransfer")[-1]["status"] == "lost"
    assert sites.a.core.engine.held_by("1001") == ["call-1"]
    early = sites.a.request(first, {"type": "RequestCompleteTransfer", "epoch": e1, "interaction_id": "call-1"})
    assert early["code"] == "invalid_state"


def test_the_first_site_dying_right_after_the_hand_over_leaves_the_call_with_the_consulted_agent_only():
    sites = linked_pair()
    carrier, first, e1, second, e2 = consult_across(sites)
    sites.b.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})
    sites.pump()
    sites.a.request(first, {"type": "RequestCompleteTransfer", "epoch": e1, "interaction_id": "call-1"})
    sites.pump()
    sites.restart("A")
    sites.advance(1.0)
    # The first agent's desktop fails over to B with nothing in hand (its completion was answered).
    conn = sites.b.registered()
    assert sites.b.request(conn, {"type": "RequestAgentLogin", "agent_id": "1001", "password": "pw",
                                  "epoch": e1 + 1})["type"] == "EventAck"
    assert sites.b.core.engine.held_by("1002") == ["call-1"] and sites.b.core.engine.held_by("1001") == []
    assert sites.b.request(second, {"type": "RequestCompleteInteraction", "epoch": e2, "interaction_id": "call-1",
                                    "disposition": "resolved"})["type"] == "EventAck"
    b_carrier = sites.b.carrier()
    assert sites.b.submit(b_carrier, "call-1")["code"] == "duplicate_interaction"


def test_a_call_handed_to_the_other_site_comes_back_when_its_agent_there_transfers_it_back():
    """A hands call-1 to 1001's site B; 1001 transfers it blind to 1002, logged in at A: A, which
    once handed it on, takes it again and offers it (it is not "ended here")."""
    sites = linked_pair()
    carrier = sites.a.carrier()
    b_desk, b_epoch = sites.b.agent("1001")
    assert sites.a.submit(carrier, "call-1")["type"] == "EventAck"
    assert sites.b.request(b_desk, {"type": "RequestAccept", "epoch": b_epoch, "interaction_id": "call-1"})["type"] \
        == "EventAck"
    sites.pump()
    a_desk, a_epoch = sites.a.agent("1002")
    answer = sites.b.request(b_desk, {"type": "RequestTransfer", "epoch": b_epoch, "interaction_id": "call-1",
                                      "kind": "blind", "to_agent": "1002", "notes": "back to you"})
    assert answer["type"] == "EventAck", answer
    sites.pump()
    offer = sites.a.invites(a_desk)[-1]["interaction"]
    assert offer["interaction_id"] == "call-1" and offer["notes"] == "back to you"
    assert sites.a.request(a_desk, {"type": "RequestAccept", "epoch": a_epoch, "interaction_id": "call-1"})["type"] \
        == "EventAck"
    assert sites.a.request(a_desk, {"type": "RequestCompleteInteraction", "epoch": a_epoch,
                                    "interaction_id": "call-1", "disposition": "resolved"})["type"] == "EventAck"
    sites.pump()
    assert len(sites.a.events(carrier, "completed", "call-1")) == 1


def test_a_consultation_by_queue_reaches_a_free_member_at_the_other_site_when_none_is_free_here():
    sites = linked_pair()
    carrier = sites.a.carrier()
    first, e1 = sites.a.agent("1001")
    in_hand(sites.a, carrier, first, e1)
    second, e2 = sites.b.agent("1002")  # the support queue's one member, at B
    answer = sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                     "kind": "consult", "to_queue": "support"})
    assert answer["type"] == "EventAck", answer
    offer = sites.b.invites(second)[-1]
    assert offer["consult_from"] == "1001" and offer["interaction"]["transfers"][-1]["to_queue"] == "support"
    sites.b.request(second, {"type": "RequestAccept", "epoch": e2, "interaction_id": "call-1"})
    sites.pump()
    assert of(sites.a, first, "EventTransfer")[-1]["status"] == "accepted"
    assert of(sites.a, first, "EventTransfer")[-1]["to_queue"] == "support"
