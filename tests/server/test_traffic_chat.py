"""The traffic source plays the customer of its chats (server_stub/traffic_chat.py): scripted lines
once an agent has the chat, answers to the agent's lines, and a ledger that checks the final
transcript line by line."""

from __future__ import annotations

import json

from server_stub import protocol as p
from server_stub.traffic_chat import ChatLedger
from tests.server.interaction_steps import agent, agent_request, invite, site_config, until
from tests.server.test_traffic import traffic
from tests.server.wire import run
from tests.support.servers import async_wait_until, linked


def chat_line(seq: int, line_id: str, sender: p.ChatSender = "customer") -> p.ChatLine:
    return p.ChatLine(seq=seq, line_id=line_id, sender=sender, text="t", at_ms=1)


def test_the_ledger_counts_lines_lost_duplicated_and_out_of_order_in_the_final_transcript():
    ledger = ChatLedger()
    first, second = ledger.type("c1", "hello"), ledger.type("c1", "where is it?")
    ledger.answered("c1", first, 1, None)
    ledger.answered("c1", second, 3, None)
    assert ledger.agent_line("c1", chat_line(2, "agent-1", "agent"))
    assert not ledger.agent_line("c1", chat_line(2, "agent-1", "agent"))  # delivered twice: answered once
    ledger.final("c1", [chat_line(1, first), chat_line(2, "agent-1", "agent"), chat_line(3, second)])
    good = ledger.summary()
    assert (good["chat_lines_lost"], good["chat_lines_duplicated"], good["chat_lines_out_of_order"]) == (0, 0, 0)
    assert (good["chat_customer_lines"], good["chat_agent_lines"], good["chat_transcripts_checked"]) == (2, 1, 1)
    ledger.final("c1", [chat_line(1, second), chat_line(2, first), chat_line(3, first)])
    bad = ledger.summary()
    assert (bad["chat_lines_lost"], bad["chat_lines_duplicated"], bad["chat_lines_out_of_order"]) == (1, 1, 1)


def test_the_ledger_says_which_lines_were_lost_where_they_were_acked_and_what_the_final_transcript_held():
    ledger = ChatLedger()
    first, second = ledger.type("c1", "hello"), ledger.type("c1", "where is it?")
    ledger.answered("c1", first, 1, None, "A", 1_000)
    ledger.answered("c1", second, 3, None, "B", 2_000)
    ledger.agent_line("c1", chat_line(2, "agent-1", "agent"), "B", 1_500)
    ledger.final("c1", [chat_line(1, first), chat_line(2, "agent-1", "agent")], "B", 3_000)
    summary = ledger.summary()
    assert summary["chat_lines_lost"] == 1
    assert summary["chat_lost_samples"] == [{
        "chat": "c1", "line_id": second, "sender": "customer", "seq": 3, "site": "B", "at_ms": 2_000,
        "final_from": "B", "final_at_ms": 3_000, "final": [[1, first, "customer"], [2, "agent-1", "agent"]]}]
    assert summary["chat_disorder_samples"] == [{"chat": "c1", "typed": [first, second],
                                                 "final": [[1, first, "customer"], [2, "agent-1", "agent"]]}]


def test_the_customer_types_and_answers_and_the_ledger_checks_the_final_transcript(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        desk, epoch = await agent(a.url, "1001")
        proc = traffic("--site", f"A={a.url}", "--site", f"B={b.url}", "--count", "1", "--media", "chat",
                       "--queues", "sales", "--drain", "20", "--prefix", "chatty", "--chat-lines", "2",
                       "--chat-interval", "0.1", "--chat-reply-delay", "0.05", "--chat-replies", "1")
        try:
            iid = (await invite(desk, timeout=10))["interaction"]["interaction_id"]
            assert (await agent_request(desk, "RequestAccept", epoch, interaction_id=iid))["type"] == "EventAck"
            seen: list[dict] = []
            for _ in range(2):  # the customer's two scripted lines, in order
                seen.append((await until(desk, lambda m: m["type"] == "EventChatMessage", 10, "a line"))["line"])
            said = await agent_request(desk, "RequestSendChatMessage", epoch, interaction_id=iid, line_id="agent-1",
                                       text="Let me check.")
            assert said["type"] == "EventAck", said
            seen.append((await until(desk, lambda m: m["type"] == "EventChatMessage", 10, "the answer"))["line"])
            assert [(line["seq"], line["sender"]) for line in seen] == [(1, "customer"), (2, "customer"),
                                                                        (4, "customer")]
            done = await agent_request(desk, "RequestCompleteInteraction", epoch, interaction_id=iid,
                                       disposition="resolved")
            assert done["type"] == "EventAck", done
            await async_wait_until(lambda: proc.poll() is not None, timeout=25, message="traffic to finish")
        finally:
            if proc.poll() is None:
                proc.kill()
        out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        ledger = json.loads(out.strip().splitlines()[-1])
        assert ledger["completed"] == 1, ledger
        assert (ledger["chats"], ledger["chat_customer_lines"], ledger["chat_agent_lines"]) == (1, 3, 1), ledger
        assert ledger["chat_transcripts_checked"] == 1, ledger
        assert (ledger["chat_lines_lost"], ledger["chat_lines_duplicated"], ledger["chat_lines_out_of_order"]) == (
            0, 0, 0), ledger

    run(scenario(), timeout=60)
