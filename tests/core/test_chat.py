"""Chats and email drafts in the session core (docs/protocol.md, "Chat and email"), with the test
playing both servers: the agent's lines journalled and sent once per primary, in order, again
after a failover; customer lines shown once each; the draft carried like the notes."""

from __future__ import annotations

from desktop.core import events as ev
from server_stub import protocol as p
from tests.core.harness import WALL0, Bench, logged_in_on_a
from tests.core.test_interactions import ack_login_on_b


def holding_chat(bench: Bench, iid: str = "chat-1", media: p.Media = "chat") -> None:
    interaction = p.Interaction(interaction_id=iid, media=media, queue="web", created_ms=WALL0 - 5_000,
                                body="Where is my parcel?" if media == "email" else None)
    bench.deliver("A", p.EventInvite(agent_id="1001", epoch=1, interaction=interaction, offered_ms=bench.wall,
                                     expires_ms=bench.wall + 30_000))
    bench.feed(bench.session.accept, iid)
    bench.ack("A", bench.one("A", p.RequestAccept), epoch=1)
    bench.take_events()
    bench.take_sent()


def line(seq: int, line_id: str, text: str, sender: p.ChatSender = "customer") -> p.ChatLine:
    return p.ChatLine(seq=seq, line_id=line_id, sender=sender, text=text, at_ms=WALL0)


def transcript(bench: Bench, iid: str = "chat-1") -> list[tuple[int, str, str]]:
    chat = next(c for c in bench.session.snapshot().chats if c.interaction_id == iid)
    return [(ln.seq, ln.sender, ln.text) for ln in chat.lines]


def test_a_line_goes_to_the_primary_and_a_customer_line_is_shown_once():
    bench = logged_in_on_a()
    holding_chat(bench)
    bench.feed(bench.session.send_chat, "chat-1", "Hello, how can I help?")
    [pending] = bench.take_events(ev.ChatLinePending)
    assert pending.queued is False
    sent = bench.one("A", p.RequestSendChatMessage)
    assert (sent.epoch, sent.interaction_id, sent.line_id, sent.text) == (1, "chat-1", pending.line_id,
                                                                          "Hello, how can I help?")
    bench.ack("A", sent, epoch=1, line_seq=1)
    bench.deliver("A", p.EventChatMessage(interaction_id="chat-1", line=line(2, "c-1", "My parcel is late")))
    bench.deliver("A", p.EventChatMessage(interaction_id="chat-1", line=line(2, "c-1", "My parcel is late")))
    assert [e.line.seq for e in bench.take_events(ev.ChatLineAdded)] == [1, 2]
    assert transcript(bench) == [(1, "agent", "Hello, how can I help?"), (2, "customer", "My parcel is late")]


def test_lines_typed_during_a_failover_are_sent_after_the_adoption_in_order_and_the_missing_tail_is_shown():
    bench = logged_in_on_a()
    holding_chat(bench)
    bench.deliver("A", p.EventChatMessage(interaction_id="chat-1", line=line(1, "c-1", "Hi")))
    bench.feed(bench.session.send_chat, "chat-1", "one")
    first = bench.one("A", p.RequestSendChatMessage)  # in flight when A dies
    bench.kill("A")
    bench.feed(bench.session.send_chat, "chat-1", "two")
    assert bench.take_events(ev.ChatLinePending)[-1].queued is True
    login = bench.one("B", p.RequestAgentLogin)
    [carried] = login.interactions
    assert [(ln.seq, ln.line_id) for ln in carried.transcript] == [(1, "c-1")]
    ack_login_on_b(bench, login)
    # B had A's copy: "one" was committed there as 2 before A died, and a customer line came after.
    bench.deliver("B", p.EventChatTranscript(interaction_id="chat-1", lines=[
        line(1, "c-1", "Hi"), line(2, first.line_id, "one", "agent"), line(3, "c-2", "Anyone?")]))
    # Sent again at once after the login's answer, before the transcript came: B knows "one" by its
    # line id and answers with its number; it is shown once.
    resent = bench.take_sent("B", p.RequestSendChatMessage)
    assert [(m.text, m.line_id) for m in resent][0] == ("one", first.line_id)
    assert [m.text for m in resent] == ["one", "two"]
    bench.ack("B", resent[0], epoch=2, line_seq=2)
    bench.ack("B", resent[1], epoch=2, line_seq=4)
    assert [e.line.seq for e in bench.take_events(ev.ChatLineAdded)] == [1, 2, 3, 4]
    assert [t for _, _, t in transcript(bench)] == ["Hi", "one", "Anyone?", "two"]
    assert bench.session.snapshot().chats[0].sending == ()


def test_a_line_in_flight_when_the_primary_dies_is_sent_again_with_the_same_line_id():
    bench = logged_in_on_a()
    holding_chat(bench)
    bench.feed(bench.session.send_chat, "chat-1", "one")
    first = bench.one("A", p.RequestSendChatMessage)
    bench.kill("A")
    ack_login_on_b(bench, bench.one("B", p.RequestAgentLogin))
    again = bench.one("B", p.RequestSendChatMessage)
    assert again.line_id == first.line_id and again.request_id != first.request_id
    bench.ack("B", again, epoch=2, line_seq=1)
    assert transcript(bench) == [(1, "agent", "one")]


def test_a_completion_waits_for_the_last_lines_and_a_refused_line_is_reported():
    bench = logged_in_on_a()
    holding_chat(bench)
    bench.feed(bench.session.send_chat, "chat-1", "Bye!")
    bye = bench.one("A", p.RequestSendChatMessage)
    bench.feed(bench.session.complete, "chat-1", "resolved")
    assert bench.take_sent("A", p.RequestCompleteInteraction) == []
    bench.ack("A", bye, epoch=1, line_seq=1)
    bench.one("A", p.RequestCompleteInteraction)
    bench.feed(bench.session.send_chat, "chat-1", "x" * 1001)
    [failed] = bench.take_events(ev.ChatLineFailed)
    assert failed.code == "chat_line_too_long"


def test_the_email_draft_is_saved_and_carried_by_the_failover_login():
    bench = logged_in_on_a()
    holding_chat(bench, "mail-1", media="email")
    assert bench.session.snapshot().held[0].interaction.body == "Where is my parcel?"
    bench.feed(bench.session.update_draft, "mail-1", "Dear Dana,")
    save = bench.one("A", p.RequestUpdateDraft)
    assert (save.interaction_id, save.draft) == ("mail-1", "Dear Dana,")
    bench.ack("A", save, epoch=1)
    bench.feed(bench.session.update_draft, "mail-1", "Dear Dana, your parcel")
    bench.one("A", p.RequestUpdateDraft)  # in flight when A dies
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    assert login.interactions[0].draft == "Dear Dana, your parcel"
    ack_login_on_b(bench, login)
    bench.deliver("B", p.EventChatTranscript(interaction_id="mail-1", lines=[], draft="Dear Dana, your parcel"))
    assert bench.take_sent("B", p.RequestUpdateDraft) == []  # the login delivered it
    bench.feed(bench.session.send_chat, "mail-1", "hi")
    assert bench.take_events(ev.ChatLineFailed)[0].code == "not_a_chat"


def test_agent_cli_says_a_chat_line_and_drafts_an_email_reply():
    from desktop.agent_cli import parse_command

    session = Bench().session
    assert parse_command("say chat-1 Hello there", session) == (session.send_chat, ("chat-1", "Hello there"))
    assert parse_command("draft mail-1 Dear Dana,", session) == (session.update_draft, ("mail-1", "Dear Dana,"))
