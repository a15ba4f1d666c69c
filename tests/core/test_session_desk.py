"""The session core's share of the agent's desk (issue 15): "Extend wrap-up" goes to the primary,
which keeps the deadline, and the agent's own queues' figures come from the primary and survive a
failover until the new primary sends its own."""

from __future__ import annotations

import dataclasses

from desktop.core import events as ev
from server_stub import protocol as p
from tests.core.harness import CONFIG, TOKEN1, WALL0, logged_in_on_a

TOKEN2 = TOKEN1 + "2"


def figures(queue: str, waiting: int, longest_ms: int) -> p.QueueStatistics:
    return p.QueueStatistics(queue=queue, waiting=waiting, longest_wait_ms=longest_ms, offered=0, answered=0,
                             abandoned=0, service_level=None, service_level_target_ms=20_000)


def status_of(bench) -> ev.AgentStatus:
    status = bench.session.snapshot().agent
    assert status is not None
    return status


def test_every_login_asks_for_the_agents_queue_figures_and_keeps_them_over_a_failover():
    bench = logged_in_on_a(dataclasses.replace(CONFIG, queue_statistics=True))
    bench.deliver("A", p.EventAgentQueues(server="A", at_ms=WALL0, queues=[figures("billing", 3, 8400)]))
    snap = bench.session.snapshot()
    assert (snap.queues_from, [(q.queue, q.waiting) for q in snap.queues]) == ("A", [("billing", 3)])
    bench.deliver("B", p.EventAgentQueues(server="B", at_ms=WALL0, queues=[figures("billing", 9, 1)]))
    assert bench.session.snapshot().queues_from == "A"  # a standby's figures are not the agent's
    bench.kill("A")
    login = bench.one("B", p.RequestAgentLogin)
    assert login.queue_statistics is True
    assert bench.session.snapshot().queues[0].waiting == 3  # last known, while moving
    bench.ack("B", login, role="primary", epoch=2, resume_token=TOKEN2, token_expires_ms=WALL0 + 600_000)
    bench.deliver("B", p.EventAgentQueues(server="B", at_ms=WALL0, queues=[figures("billing", 1, 500)]))
    assert bench.session.snapshot().queues_from == "B" and bench.session.snapshot().queues[0].waiting == 1


def test_extend_wrap_up_is_sent_to_the_primary_only_while_the_server_says_one_is_left():
    bench = logged_in_on_a(state="ready", reason=None)
    bench.feed(bench.session.extend_after_call_work)
    assert bench.take_sent(kind=p.RequestExtendAfterCallWork) == []
    (refused,) = bench.take_events(ev.ErrorEvent)
    assert refused.code == "acw_not_extendable"
    bench.deliver("A", p.EventCurrentAgentStatus(agent_id="1001", epoch=1, server="A", state="after_call_work",
                                                 since_ms=WALL0, until_ms=WALL0 + 30_000, extends_left=1))
    assert status_of(bench).extends_left == 1
    bench.feed(bench.session.extend_after_call_work)
    request = bench.one("A", p.RequestExtendAfterCallWork)
    assert request.epoch == 1
    bench.ack("A", request, epoch=1)
    bench.deliver("A", p.EventCurrentAgentStatus(agent_id="1001", epoch=1, server="A", state="after_call_work",
                                                 since_ms=WALL0, until_ms=WALL0 + 60_000))
    status = status_of(bench)
    assert (status.until_ms, status.extends_left) == (WALL0 + 60_000, 0)
    bench.take_events()
    bench.feed(bench.session.extend_after_call_work)  # a second click: the server said none are left
    assert bench.take_sent(kind=p.RequestExtendAfterCallWork) == []
    assert [e.code for e in bench.take_events(ev.ErrorEvent)] == ["acw_not_extendable"]
    # A refusal from the server (the wrap-up ended meanwhile) reaches the agent as an error.
    bench.deliver("A", p.EventCurrentAgentStatus(agent_id="1001", epoch=1, server="A", state="after_call_work",
                                                 since_ms=WALL0, until_ms=WALL0 + 60_000, extends_left=1))
    bench.feed(bench.session.extend_after_call_work)
    bench.refuse("A", bench.one("A", p.RequestExtendAfterCallWork), "acw_not_extendable", "ended")
    assert [e.code for e in bench.take_events(ev.ErrorEvent)] == ["acw_not_extendable"]


def test_a_headless_agent_does_not_ask_for_queue_figures():
    """agent-cli and the benchmarks' agents: no EventAgentQueues traffic unless the config asks."""
    bench = logged_in_on_a()
    bench.kill("A")
    assert bench.one("B", p.RequestAgentLogin).queue_statistics is False
