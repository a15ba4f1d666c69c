"""Chat and email drafts in the server core (docs/protocol.md, "Chat and email"): lines numbered
and committed once per line id, replicated to the peer before they are answered, handed back in
full after a failover login, bounded with their own error codes."""

from __future__ import annotations

import json

from server_stub import protocol as p
from server_stub.core.chat import MAX_CHAT_LINE_CHARS, MAX_TRANSCRIPT_LINES
from tests.server.core_driver import PASSWORD, WALL0
from tests.server.pair_driver import Mesh, SiteDriver, pair, url


def chat_in_hand(site: SiteDriver, iid: str = "c1", media: str = "chat") -> tuple[int, int, int, dict]:
    """A carrier and an agent at ``site``; the agent accepted ``iid``: (carrier, desk, epoch, login ack)."""
    carrier = site.carrier()
    desk = site.registered()
    login = site.request(desk, {"type": "RequestAgentLogin", "agent_id": "1001", "password": PASSWORD})
    epoch = login["epoch"]
    assert site.request(desk, {"type": "RequestAgentReady", "epoch": epoch})["type"] == "EventAck"
    assert site.request(carrier, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": iid, "media": media, "queue": "sales", "created_ms": WALL0,
        **({"body": "My order has not arrived."} if media == "email" else {})}})["type"] == "EventAck"
    assert site.invites(desk), "the agent was offered the chat"
    assert site.request(desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": iid})["type"] == "EventAck"
    return carrier, desk, epoch, login


def customer(site: SiteDriver, carrier: int, line_id: str, text: str, iid: str = "c1") -> dict:
    return site.request(carrier, {"type": "RequestSendChatMessage", "interaction_id": iid, "line_id": line_id,
                                  "text": text})


def agent_line(site: SiteDriver, desk: int, epoch: int, line_id: str, text: str, iid: str = "c1") -> dict:
    return site.request(desk, {"type": "RequestSendChatMessage", "epoch": epoch, "interaction_id": iid,
                               "line_id": line_id, "text": text})


def chat_events(site: SiteDriver, conn: int, kind: str = "EventChatMessage") -> list[dict]:
    return [m for m in site.received.get(conn, []) if m["type"] == kind]


def linked_pair() -> Mesh:
    sites = pair()
    sites.link_all()
    return sites


def test_lines_are_numbered_delivered_to_the_other_side_and_a_resent_line_id_is_the_same_line():
    sites = linked_pair()
    a = sites.a
    carrier, desk, epoch, _ = chat_in_hand(a)
    first = customer(a, carrier, "cust-1", "Hello, my order is late")
    assert first["type"] == "EventAck" and first["line_seq"] == 1
    reply = agent_line(a, desk, epoch, "agent-1", "Sorry to hear that. Order number?")
    assert reply["type"] == "EventAck" and reply["line_seq"] == 2
    again = customer(a, carrier, "cust-1", "Hello, my order is late")  # a retry after a lost answer
    assert again["type"] == "EventAck" and again["line_seq"] == 1
    to_agent = [m["line"] for m in chat_events(a, desk)]
    to_carrier = [m["line"] for m in chat_events(a, carrier)]
    assert [(line["seq"], line["sender"], line["text"]) for line in to_agent] == [
        (1, "customer", "Hello, my order is late")]
    assert [(line["seq"], line["sender"]) for line in to_carrier] == [(2, "agent")]
    # The peer holds a copy of the transcript, line for line.
    copy = sites.b.core.chat.get("c1")
    assert copy is not None and [line.line_id for line in copy.lines] == ["cust-1", "agent-1"]


def test_a_failover_login_gets_the_whole_transcript_and_customer_lines_resume_at_the_survivor():
    sites = linked_pair()
    a, b = sites.a, sites.b
    carrier, desk, epoch, login = chat_in_hand(a)
    assert customer(a, carrier, "cust-1", "Hi")["line_seq"] == 1
    assert agent_line(a, desk, epoch, "agent-1", "Hello!")["line_seq"] == 2
    assert customer(a, carrier, "cust-2", "Where is my parcel?")["line_seq"] == 3
    sites.restart("A")  # A dies; its desktop had seen line 1 only
    b_carrier = b.carrier()
    # Before the agent is back, B does not hold the chat: the carrier keeps the line and retries.
    early = customer(b, b_carrier, "cust-3", "Hello?")
    assert early["type"] == "EventError" and early["code"] == "unknown_interaction"
    new_desk = b.registered()
    carried = [{"seq": 1, "line_id": "cust-1", "sender": "customer", "text": "Hi", "at_ms": WALL0}]
    ack = b.request(new_desk, {
        "type": "RequestAgentLogin", "agent_id": "1001", "resume_token": login["resume_token"], "epoch": epoch + 1,
        "interactions": [{"interaction": {"interaction_id": "c1", "media": "chat", "queue": "sales",
                                          "created_ms": WALL0}, "accepted_ms": WALL0, "transcript": carried}]})
    assert ack["type"] == "EventAck", ack
    transcript = chat_events(b, new_desk, "EventChatTranscript")
    assert [line["line_id"] for line in transcript[-1]["lines"]] == ["cust-1", "agent-1", "cust-2"]
    assert [line["seq"] for line in transcript[-1]["lines"]] == [1, 2, 3]
    # The agent's line in flight on A when it died is sent again: known, not added twice.
    again = agent_line(b, new_desk, ack["epoch"], "agent-1", "Hello!")
    assert again["type"] == "EventAck" and again["line_seq"] == 2
    late = customer(b, b_carrier, "cust-3", "Hello?")
    assert late["type"] == "EventAck" and late["line_seq"] == 4
    assert [m["line"]["line_id"] for m in chat_events(b, new_desk)] == ["cust-3"]


def test_bounds_and_who_may_send_have_their_own_error_codes():
    sites = linked_pair()
    a = sites.a
    carrier, desk, epoch, _ = chat_in_hand(a)
    too_long = agent_line(a, desk, epoch, "long", "x" * (MAX_CHAT_LINE_CHARS + 1))
    assert too_long["code"] == "chat_line_too_long" and str(MAX_CHAT_LINE_CHARS) in too_long["message"]
    for n in range(MAX_TRANSCRIPT_LINES):
        assert customer(a, carrier, f"l{n}", "ok")["type"] == "EventAck"
    full = customer(a, carrier, "one-more", "still there?")
    assert full["code"] == "transcript_full"
    no_epoch = a.request(desk, {"type": "RequestSendChatMessage", "interaction_id": "c1", "line_id": "x",
                                "text": "hi"})
    assert no_epoch["code"] == "bad_message"
    supervisor = a.registered()
    assert a.request(supervisor, {"type": "RequestSubscribeReporting", "user_id": "sup1",
                                  "password": PASSWORD})["type"] == "EventAck"
    assert customer(a, supervisor, "sup-1", "hi")["code"] == "forbidden"
    stranger = customer(a, carrier, "c2-1", "hi", iid="c2")
    assert stranger["code"] == "unknown_interaction"


def test_a_voice_call_has_no_chat_and_an_email_keeps_its_body_and_draft_at_the_peer():
    sites = linked_pair()
    a = sites.a
    carrier, desk, epoch, _ = chat_in_hand(a, "e1", media="email")
    assert a.invites(desk)[-1]["interaction"]["body"] == "My order has not arrived."
    assert customer(a, carrier, "x1", "hi", iid="e1")["code"] == "not_a_chat"
    saved = a.request(desk, {"type": "RequestUpdateDraft", "epoch": epoch, "interaction_id": "e1",
                             "draft": "Dear customer, ..."})
    assert saved["type"] == "EventAck"
    copy = sites.b.core.chat.get("e1")
    assert copy is not None and copy.draft == "Dear customer, ..."


def test_the_carrier_gets_the_final_transcript_when_the_chat_is_completed():
    sites = linked_pair()
    a = sites.a
    carrier, desk, epoch, _ = chat_in_hand(a)
    customer(a, carrier, "cust-1", "Thanks, bye")
    agent_line(a, desk, epoch, "agent-1", "Bye!")
    done = a.request(desk, {"type": "RequestCompleteInteraction", "epoch": epoch, "interaction_id": "c1",
                            "disposition": a.core.config.dispositions[0].code})
    assert done["type"] == "EventAck", done
    final = chat_events(a, carrier, "EventChatTranscript")
    assert final and final[-1]["final"] is True
    assert [line["line_id"] for line in final[-1]["lines"]] == ["cust-1", "agent-1"]
    assert a.core.chat.get("c1") is None
    assert sites.b.core.chat.get("c1") is None  # the peer's copy goes with the completion


def test_a_peer_refusing_one_copy_of_a_line_after_another_copy_was_answered_does_not_remove_it():
    """bench/chaos.py --freeze lost a customer line this way: B holds the chat and the customer's
    line reaches it twice (a retry); each copy asks the peer. A, thawed and still believing the
    agent holds the chat there, refuses the first copy late, after the second was confirmed,
    answered (seq 1) and followed by an agent line. B used to take the refused line out of the
    transcript: the customer had it answered, the final transcript lacked it."""
    sites = linked_pair()
    b = sites.b
    carrier, desk, epoch, _ = chat_in_hand(b)
    line = {"type": "RequestSendChatMessage", "interaction_id": "c1", "line_id": "cust-1", "text": "Still there?"}
    b.run(b.core.received(carrier, json.dumps({**line, "request_id": "first"}), sites.now()))
    held_back = [f for f in sites.wire if f.to == "A" and '"PeerChat"' in f.frame]
    assert len(held_back) == 1
    sites.wire.remove(held_back[0])  # A is slow to answer the first copy
    again = b.request(carrier, {**line, "request_id": "again"})
    assert again["type"] == "EventAck" and again["line_seq"] == 1
    assert agent_line(b, desk, epoch, "agent-1", "Yes, one moment")["line_seq"] == 2
    ack_id = json.loads(held_back[0].frame)["ack_id"]
    b.run(b.core.peer_link_message(p.PeerInteractionsAck(server="A", ack_id=ack_id, refused=["c1"]), sites.now(),
                                   url("A")))
    first = next(m for m in b.received[carrier] if m.get("request_id") == "first")
    assert (first["type"], first.get("line_seq")) == ("EventAck", 1), first  # the line stays answered
    done = b.request(desk, {"type": "RequestCompleteInteraction", "epoch": epoch, "interaction_id": "c1",
                            "disposition": b.core.config.dispositions[0].code})
    assert done["type"] == "EventAck", done
    final = chat_events(b, carrier, "EventChatTranscript")[-1]
    assert [(line["seq"], line["line_id"]) for line in final["lines"]] == [(1, "cust-1"), (2, "agent-1")]
