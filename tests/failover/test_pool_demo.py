"""The stranded-calls scenario of issue 13, with real processes (docs/multisite.md).

Following the README as a new user: agents log in at A with B as their backup, A is killed, the
agents fail over to B and stay there (failback: never), A is restarted, and the carrier goes on
submitting at A. Before the agent pool, every one of those calls waited at A while the agents sat
Ready at B; now A hands each over to B, whose agents are offered it and complete it."""

from __future__ import annotations

import pytest

from tests.server.interaction_steps import carrier, new_interaction, site_config
from tests.server.wire import run
from tests.support.agents import AgentProcess
from tests.support.servers import linked, wait_until

AGENTS = ("1001", "1003")  # both in queue "sales" (tests/server/interaction_steps.py)


async def events_until(feed, enough, timeout: float = 30.0) -> list[dict]:
    """The reporting stream's EventInteraction messages, read until ``enough(seen)``."""
    seen: list[dict] = []
    while not enough(seen):
        try:
            message = await feed.recv(timeout)
        except AssertionError:
            got = [(m["interaction_id"], m["event"]) for m in seen]
            raise AssertionError(f"not there yet after {timeout} s: {got}") from None
        assert message["type"] != "EventError", message
        if message["type"] == "EventInteraction":
            seen.append(message)
    return seen


@pytest.mark.server_processes
def test_calls_submitted_at_a_restarted_site_are_completed_by_the_agents_that_moved_away(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))
    agents = [AgentProcess(agent_id, [a.url, b.url], "--state", "ready", "--auto-answer", "--talk-time", "0.3",
                           "--wrap-time", "0.1") for agent_id in AGENTS]
    try:
        for agent in agents:
            agent.wait_for("AgentStateChanged", endpoint="A", state="ready")
            agent.wait_for("LinkRoleChanged", endpoint="B", role="secondary")
        marks = [len(agent.events) for agent in agents]
        a.kill9()
        for agent, mark in zip(agents, marks, strict=True):
            agent.wait_for("FailoverPhase", phase="restored", after=mark, to_endpoint="B", timeout=15)
        a.start()
        wait_until(lambda: linked(a, b), timeout=10, message="the restarted A linked with B again")

        async def scenario() -> None:
            feed_a, feed_b = await carrier(a.url), await carrier(b.url)
            # A learns B's agents' presence from B's answer to its new peer link.
            calls = [new_interaction() for _ in range(4)]
            for call in calls:  # answers read below: a helper waiting for each would skip the events between
                await feed_a.send({"type": "RequestSubmitInteraction", "request_id": f"submit-{call['interaction_id']}",
                                   "interaction": call})
            ids = {call["interaction_id"] for call in calls}
            at_a = await events_until(feed_a, lambda seen: ids <= {m["interaction_id"] for m in seen
                                                                  if m["event"] == "withdrawn"})
            at_b = await events_until(feed_b, lambda seen: ids <= {m["interaction_id"] for m in seen
                                                                  if m["event"] == "completed"})
            for iid in ids:
                moved = [m for m in at_a if m["interaction_id"] == iid and m["event"] == "withdrawn"]
                assert len(moved) == 1 and "at site B" in moved[0]["reason"], moved
                assert not [m for m in at_a if m["interaction_id"] == iid and m["event"] in ("offered", "completed")]
                done = [m for m in at_b if m["interaction_id"] == iid and m["event"] == "completed"]
                assert len(done) == 1 and done[0]["agent_id"] in AGENTS, done

        run(scenario())
    finally:
        for agent in agents:
            agent.stop()
