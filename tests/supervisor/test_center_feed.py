"""CenterFeed (sans-I/O): one center-scope stream feeds every site's records of the engine; a gap
asks for a resubscribe; a new server's snapshot replaces what the lost one said."""

from desktop.reporting import ReportingEngine
from desktop.reporting.center import CenterFeed
from desktop.reporting.engine import Resubscribe
from server_stub import protocol as p


def report(agent_id: str, epoch: int, server: str | None = None) -> p.AgentReport:
    return p.AgentReport(agent_id=agent_id, name=agent_id, epoch=epoch, state="not_ready", since_ms=0, login_ms=0,
                         server=server)


def subscribed_at_a(seq: int) -> tuple[ReportingEngine, CenterFeed]:
    """A view subscribed at A whose snapshot lists 1001 at A and 1002 at B."""
    engine = ReportingEngine(["A", "B"])
    feed = CenterFeed(engine)
    feed.opened("A", "s1.center", 0)
    feed.message(p.EventReportingSnapshot(server="A", stream_id="s1.center", seq=seq,
                                          agents=[report("1001", 1), report("1002", 2, "B")]), 1)
    return engine, feed


def test_one_stream_feeds_both_sites_and_a_gap_asks_for_a_resume():
    engine, feed = subscribed_at_a(3)
    assert engine.logged_in_server("1001") == "A" and engine.logged_in_server("1002") == "B"
    feed.message(p.EventAgentStateChanged(server="B", seq=4, agent_id="1002", epoch=2, state="ready", since_ms=5), 2)
    assert engine.rows["1002"].state == "ready"
    feed.message(p.EventAgentLogin(server="B", seq=5, agent=report("1003", 1, "B")), 3)
    assert engine.logged_in_server("1003") == "B"
    assert feed.resume_point("A") == ("s1.center", 5)
    assert feed.message(p.EventAgentLogout(server="B", seq=7, agent_id="1003", epoch=1, reason="logout"), 4) \
        == [Resubscribe("A")]
    assert engine.logged_in_server("1003") == "B", "nothing applied across the gap"


def test_the_lost_server_leaves_every_agent_server_lost_until_the_next_servers_snapshot():
    engine, feed = subscribed_at_a(1)
    feed.lost("closed", 2)
    assert engine.rows["1002"].presence == "server_lost" and engine.rows["1001"].presence == "server_lost"
    assert feed.resume_point("B") is None, "another server's stream: a snapshot"
    feed.opened("B", "s2.center", 3)
    feed.message(p.EventReportingSnapshot(server="B", stream_id="s2.center", seq=9,
                                          agents=[report("1001", 3, "A"), report("1002", 2)]), 4)
    assert engine.logged_in_server("1001") == "A" and engine.logged_in_server("1002") == "B"
    assert engine.rows["1001"].epoch == 3
