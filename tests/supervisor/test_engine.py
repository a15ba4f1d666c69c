"""The Qt-free reporting engine: what a supervisor would see after each stream event or fault."""

import msgspec
import pytest

from desktop.reporting import ReportingEngine, Resubscribe
from desktop.reporting.messages import UnknownReportingEvent, decode_frame
from server_stub import protocol as p

T0 = 1_767_254_400_000


def report(agent_id, epoch, state="ready", since=T0, reason=None, name=None, **extra):
    return p.AgentReport(agent_id=agent_id, name=name or f"Agent {agent_id}", epoch=epoch, state=state,
                         since_ms=since, login_ms=since, reason=reason, **extra)


def snapshot(server, seq, *agents, stream="s-" ):
    return p.EventReportingSnapshot(server=server, stream_id=stream + server, seq=seq, agents=list(agents))


def login(server, seq, agent_id, epoch, **kw):
    return p.EventAgentLogin(server=server, seq=seq, agent=report(agent_id, epoch, **kw))


def logout(server, seq, agent_id, epoch, reason="logout"):
    return p.EventAgentLogout(server=server, seq=seq, agent_id=agent_id, epoch=epoch, reason=reason)


def changed(server, seq, agent_id, epoch, state, since=T0 + 5000, reason=None, forced_by=None):
    return p.EventAgentStateChanged(server=server, seq=seq, agent_id=agent_id, epoch=epoch, state=state,
                                    since_ms=since, reason=reason, forced_by=forced_by)


@pytest.fixture
def engine():
    """Both servers subscribed, each with an empty snapshot at seq 0."""
    e = ReportingEngine(["A", "B"])
    for name in "AB":
        e.stream_opened(name, "s-" + name, T0)
        e.message(name, snapshot(name, 0), T0)
    e.take_changes()
    return e


def test_snapshot_then_live_events_build_the_rows(engine):
    engine.message("A", login("A", 1, "1001", 7, state="not_ready", reason="break"), T0 + 10)
    engine.message("A", changed("A", 2, "1001", 7, "ready"), T0 + 20)
    row = engine.rows["1001"]
    assert (row.presence, row.state, row.server, row.epoch, row.reason) == ("logged_in", "ready", "A", 7, None)
    assert row.since_ms == T0 + 5000
    assert engine.counts["ready"] == 1 and engine.servers["A"].logged_in == 1
    changes = engine.take_changes()
    assert changes.agents == {"1001"} and "A" in changes.servers
    assert engine.take_changes().agents == set()  # taken once


def test_repeated_events_are_dropped_by_seq(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.message("A", changed("A", 2, "1001", 7, "not_ready", reason="lunch"), T0)
    engine.message("A", changed("A", 2, "1001", 7, "ready"), T0)  # a resume repeating one in flight
    assert engine.rows["1001"].state == "not_ready"
    assert engine.dropped_repeats == 1


def test_a_gap_asks_for_a_resume_and_applies_nothing_until_it_answers(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    assert engine.message("A", changed("A", 3, "1001", 7, "not_ready", reason="lunch"), T0) == [Resubscribe("A")]
    assert engine.rows["1001"].state == "ready"
    assert engine.message("A", changed("A", 4, "1001", 7, "ready"), T0) == []  # still waiting: no second ask
    assert engine.resume_point("A") == ("s-A", 1)
    engine.stream_opened("A", "s-A", T0)  # the resubscription is answered: replay from 2
    engine.message("A", changed("A", 2, "1001", 7, "after_call_work"), T0)
    engine.message("A", changed("A", 3, "1001", 7, "not_ready", reason="lunch"), T0)
    row = engine.rows["1001"]
    assert (row.state, row.reason) == ("not_ready", "lunch")
    assert engine.servers["A"].gaps == 1


def test_snapshot_replaces_what_was_known_about_that_server_only(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.message("A", login("A", 2, "1002", 3), T0)
    engine.message("B", login("B", 1, "1003", 4), T0)
    engine.message("A", snapshot("A", 40, report("1002", 3, state="after_call_work"), report("1004", 1)), T0 + 100)
    rows = engine.rows
    assert rows["1001"].presence == "logged_out"
    assert rows["1002"].state == "after_call_work"
    assert rows["1004"].presence == "logged_in"
    assert rows["1003"].presence == "logged_in" and rows["1003"].server == "B"
    assert engine.resume_point("A") == ("s-A", 40)
    engine.message("A", changed("A", 41, "1004", 1, "not_ready", reason="break"), T0)
    assert rows["1004"].state == "not_ready"


def test_a_lost_server_marks_its_agents_server_lost_not_logged_out(engine):
    engine.message("A", login("A", 1, "1001", 7, state="not_ready", reason="break"), T0)
    engine.message("B", login("B", 1, "1002", 2), T0)
    engine.take_changes()
    engine.stream_lost("A", "connection closed", T0 + 1000)
    row = engine.rows["1001"]
    assert row.presence == "server_lost" and row.in_failover
    assert row.reason == "server A lost" and row.state is None
    assert row.since_ms == T0 + 1000 and row.server == "A"
    assert engine.rows["1002"].presence == "logged_in"
    assert engine.counts["failover"] == 1 and engine.counts["logged_out"] == 0
    assert engine.servers["A"].logged_in == 0 and not engine.servers["A"].connected
    changes = engine.take_changes()
    assert changes.agents == {"1001"}
    assert [f.kind for f in changes.feed] == ["server_lost"] and changes.feed[0].notify


def test_then_the_survivor_reports_the_login_and_the_failover_is_recorded(engine):
    engine.message("A", login("A", 1, "1001", 7, state="not_ready", reason="break"), T0)
    engine.stream_lost("A", "connection closed", T0 + 1000)
    engine.take_changes()
    engine.message("B", login("B", 1, "1001", 8, state="not_ready", reason="break"), T0 + 3500)
    row = engine.rows["1001"]
    assert (row.presence, row.server, row.epoch, row.reason) == ("logged_in", "B", 8, "break")
    assert (row.last_failover_ms, row.last_failover_from, row.last_failover_to) == (T0 + 3500, "A", "B")
    assert row.last_failover_duration_ms == 2500
    assert engine.counts["failover"] == 0 and engine.counts["not_ready"] == 1
    assert engine.servers["B"].logged_in == 1
    assert [f.kind for f in engine.take_changes().feed] == ["failover"]


def test_the_lost_server_coming_back_with_a_resume_does_not_undo_the_failover(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.message("A", login("A", 2, "1002", 5), T0)
    engine.stream_lost("A", "silent", T0 + 1000)
    engine.message("B", login("B", 1, "1001", 8), T0 + 2000)
    assert engine.resume_point("A") == ("s-A", 2)
    engine.stream_opened("A", "s-A", T0 + 3000)  # same stream: A was only unreachable
    # 1002 never left A: it is back at once; 1001 stays at B (higher epoch).
    assert engine.rows["1002"].presence == "logged_in" and engine.rows["1002"].server == "A"
    assert engine.rows["1002"].last_failover_ms is None
    assert engine.rows["1001"].server == "B"
    # A's replay then says 1001's old login was fenced: nothing changes for the supervisor.
    engine.message("A", logout("A", 3, "1001", 7, "moved"), T0 + 3001)
    assert engine.rows["1001"].presence == "logged_in" and engine.rows["1001"].server == "B"
    assert engine.ignored_stale == 1


def test_a_restarted_server_keeps_its_agents_lost_until_its_snapshot(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.stream_lost("A", "connection closed", T0 + 1000)
    engine.stream_opened("A", "new-stream", T0 + 5000)
    assert engine.rows["1001"].presence == "server_lost"
    assert engine.resume_point("A") is None  # nothing to resume: a fresh snapshot comes
    engine.message("A", changed("A", 1, "1001", 7, "ready"), T0)  # cannot belong to the old stream
    engine.message("A", p.EventReportingSnapshot(server="A", stream_id="new-stream", seq=0, agents=[]), T0 + 5001)
    row = engine.rows["1001"]
    assert row.presence == "moving" and row.in_failover  # it lost its server and is not back yet
    engine.message("B", login("B", 1, "1001", 8), T0 + 6000)
    assert engine.rows["1001"].last_failover_duration_ms == 5000


def test_higher_epoch_wins_whatever_the_arrival_order(engine):
    engine.message("B", login("B", 1, "1001", 8), T0)
    engine.message("A", login("A", 1, "1001", 7), T0)  # a stale primary still reporting
    engine.message("A", changed("A", 2, "1001", 7, "not_ready", reason="lunch"), T0)
    engine.message("A", logout("A", 3, "1001", 7, "moved"), T0)
    row = engine.rows["1001"]
    assert (row.presence, row.server, row.epoch, row.state) == ("logged_in", "B", 8, "ready")
    assert engine.ignored_stale == 3


def test_old_primary_logout_before_the_new_login_shows_the_agent_moving(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.message("A", logout("A", 2, "1001", 7, "moved"), T0 + 100)
    row = engine.rows["1001"]
    assert row.presence == "moving" and row.in_failover and row.reason == "moving to the other server"
    engine.message("B", login("B", 1, "1001", 8), T0 + 400)
    assert engine.rows["1001"].presence == "logged_in"
    assert engine.rows["1001"].last_failover_duration_ms == 300


def test_an_ordinary_logout_then_login_elsewhere_is_not_a_failover(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.message("A", logout("A", 2, "1001", 7, "logout"), T0 + 100)
    row = engine.rows["1001"]
    assert (row.presence, row.reason, row.since_ms) == ("logged_out", "logged out", T0 + 100)
    assert engine.counts["logged_out"] == 1
    engine.message("B", login("B", 1, "1001", 8), T0 + 400)
    assert engine.rows["1001"].last_failover_ms is None


def test_a_disconnect_is_in_the_feed_and_a_forced_change_names_the_supervisor(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.message("A", changed("A", 2, "1001", 7, "not_ready", reason="meeting", forced_by="sup1"), T0)
    assert engine.rows["1001"].forced_by == "sup1"
    engine.message("A", logout("A", 3, "1001", 7, "disconnected"), T0)
    kinds = [f.kind for f in engine.take_changes().feed]
    assert kinds == ["forced", "disconnected"]


def test_counts_follow_every_change(engine):
    for i in range(5):
        engine.message("A", login("A", i + 1, f"10{i}", 1), T0)
    engine.message("A", changed("A", 6, "100", 1, "not_ready", reason="break"), T0)
    engine.message("A", changed("A", 7, "101", 1, "after_call_work"), T0)
    engine.message("A", logout("A", 8, "102", 1), T0)
    assert {k: v for k, v in engine.counts.items() if v} == {
        "ready": 2,
        "not_ready": 1,
        "after_call_work": 1,
        "logged_out": 1,
    }
    engine.stream_lost("A", "closed", T0)
    assert {k: v for k, v in engine.counts.items() if v} == {"failover": 4, "logged_out": 1}
    assert sum(engine.counts.values()) == len(engine.rows)


def test_queue_statistics_are_absent_until_the_server_sends_them(engine):
    assert engine.servers["A"].queues is None
    frame = ('{"type":"EventQueueStatistics","server":"A","seq":1,"at_ms":1,"queues":[{"queue":"sales","waiting":3,'
             '"longest_wait_ms":42000,"offered":10,"answered":6,"abandoned":1,"service_level":0.8,'
             '"service_level_target_ms":20000}]}')
    engine.message("A", decode_frame(frame), T0)
    (q,) = engine.servers["A"].queues
    assert (q.queue, q.waiting, q.longest_wait_ms, q.service_level) == ("sales", 3, 42000, 0.8)
    assert engine.servers["A"].seq == 1


def test_unknown_reporting_events_advance_the_stream_without_a_gap(engine):
    message = decode_frame('{"type":"EventSomethingNew","server":"A","seq":1,"x":2}')
    assert isinstance(message, UnknownReportingEvent)
    assert engine.message("A", message, T0) == []
    assert engine.message("A", login("A", 2, "1001", 1), T0) == []
    assert engine.rows["1001"].presence == "logged_in"
    with pytest.raises(p.ProtocolError):
        decode_frame('{"type":"EventSomethingNew"}')  # no seq: not a reporting event we can skip


class EventInteraction(msgspec.Struct):
    """Stand-in for the protocol's interaction event (the engine goes by type name and fields)."""

    server: str
    seq: int
    interaction_id: str
    event: str
    agent_id: str | None = None


def test_interaction_in_hand_is_shown_when_the_server_reports_it(engine):
    engine.message("A", login("A", 1, "1001", 3), T0)
    assert engine.rows["1001"].interaction_id is None
    engine.message("A", EventInteraction("A", 2, "call-9", "accepted", "1001"), T0)
    assert engine.rows["1001"].interaction_id == "call-9"
    engine.message("A", EventInteraction("A", 3, "call-9", "completed", "1001"), T0)
    assert engine.rows["1001"].interaction_id is None


def test_unknown_server_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="unknown server 'C'"):
        engine.message("C", login("C", 1, "1001", 1), T0)


def test_a_failover_that_never_completes_is_given_up_after_two_minutes(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.message("A", logout("A", 2, "1001", 7, "server_shutdown"), T0 + 1000)
    assert engine.rows["1001"].presence == "moving"
    engine.message("A", changed("A", 3, "1001", 7, "ready"), T0 + 2000)  # stale: no effect on the wait
    engine.tick(T0 + 1000 + 119_000)
    assert engine.rows["1001"].presence == "moving"
    engine.tick(T0 + 1000 + 120_000)
    row = engine.rows["1001"]
    assert (row.presence, row.reason) == ("logged_out", "did not come back after a failover")
    assert engine.counts["failover"] == 0 and engine.counts["logged_out"] == 1
    assert "vanished" in [f.kind for f in engine.take_changes().feed]
    engine.message("B", login("B", 1, "1001", 8), T0 + 200_000)  # it does come back later: a plain login
    assert engine.rows["1001"].presence == "logged_in" and engine.rows["1001"].server == "B"


def test_a_lost_server_coming_back_without_the_agent_keeps_it_failing_over(engine):
    engine.message("A", login("A", 1, "1001", 7), T0)
    engine.stream_lost("A", "closed", T0 + 1000)
    engine.stream_opened("A", "other-stream", T0 + 2000)
    engine.message("A", p.EventReportingSnapshot(server="A", stream_id="other-stream", seq=0, agents=[]), T0 + 2001)
    row = engine.rows["1001"]
    assert row.presence == "moving" and row.lost_since_ms == T0 + 1000  # the failover started at the loss
    engine.tick(T0 + 60_000)
    assert engine.rows["1001"].presence == "moving"
    engine.message("B", login("B", 1, "1001", 8), T0 + 61_000)
    assert engine.rows["1001"].last_failover_duration_ms == 60_000


@pytest.mark.parametrize("seed", range(12))
def test_random_interleavings_keep_the_merged_view_consistent(seed):
    """Two servers, agents moving between them at rising epochs, streams lost and resumed in any
    order: every row agrees with the newest login, and the counts add up."""
    import random

    rng = random.Random(seed)
    engine = ReportingEngine(["A", "B"])
    seq = {"A": 0, "B": 0}
    held: dict[str, tuple[str, int]] = {}  # what the servers really hold: agent -> (server, epoch)
    epoch: dict[str, int] = {}
    for name in "AB":
        engine.stream_opened(name, "s-" + name, T0)
        engine.message(name, snapshot(name, 0), T0)
    pending = {"A": [], "B": []}  # events a lost stream will replay on resume

    def emit(server, event):
        if engine.servers[server].connected:
            engine.message(server, event, T0)
        else:
            pending[server].append(event)

    def next_seq(server):
        seq[server] += 1
        return seq[server]

    for _ in range(300):
        agent_id = str(1000 + rng.randrange(8))
        action = rng.random()
        if action < 0.35:  # (re)login somewhere, at a new epoch; the old server fences its login
            server = rng.choice("AB")
            epoch[agent_id] = epoch.get(agent_id, 0) + 1
            old = held.get(agent_id)
            held[agent_id] = (server, epoch[agent_id])
            emit(
                server,
                login(server, next_seq(server), agent_id, epoch[agent_id], state=rng.choice(["ready", "not_ready"])),
            )
            if old is not None and old[0] != server:
                emit(old[0], logout(old[0], next_seq(old[0]), agent_id, old[1], "moved"))
        elif action < 0.7 and agent_id in held:
            server, ep = held[agent_id]
            emit(
                server,
                changed(server, next_seq(server), agent_id, ep, rng.choice(["ready", "not_ready", "after_call_work"])),
            )
        elif action < 0.8 and agent_id in held:
            server, ep = held.pop(agent_id)
            emit(server, logout(server, next_seq(server), agent_id, ep, "logout"))
        elif action < 0.9:
            server = rng.choice("AB")
            engine.stream_lost(server, "closed", T0)
        else:
            server = rng.choice("AB")
            if not engine.servers[server].connected:
                engine.stream_opened(server, "s-" + server, T0)  # same stream: replay what was missed
                for event in pending[server]:
                    engine.message(server, event, T0)
                pending[server].clear()

        rows = engine.rows
        assert sum(engine.counts.values()) == len(rows)
        for name, sv in engine.servers.items():
            assert sv.logged_in == sum(1 for r in rows.values() if r.presence == "logged_in" and r.server == name)
        for a, row in rows.items():
            if row.presence == "logged_in":
                assert held.get(a) == (row.server, row.epoch), (a, row, held.get(a))
            if a in held and engine.servers[held[a][0]].connected:
                state = {n: (s.connected, s.agents.get(a)) for n, s in engine.servers.items()}
                assert row.presence == "logged_in" and (row.server, row.epoch) == held[a], (a, row, held[a], state)


def test_an_agent_its_server_cannot_hear_is_shown_unreachable_there_until_heard_again(engine):
    engine.message("A", login("A", 1, "1001", 3, state="not_ready", reason="lunch"), T0)
    assert engine.rows["1001"].reachable
    suspect = p.EventAgentStateChanged(server="A", seq=2, agent_id="1001", epoch=3, state="not_ready", since_ms=T0,
                                       reason="lunch", reachable=False)
    engine.message("A", suspect, T0 + 1500)
    row = engine.rows["1001"]
    assert (row.presence, row.server, row.state, row.reason, row.since_ms, row.reachable) == (
        "logged_in", "A", "not_ready", "lunch", T0, False)
    changes = engine.take_changes()
    assert [(f.kind, f.server) for f in changes.feed] == [("reachability", "A")]
    assert "unreachable" in changes.feed[0].text and row.copy().reachable is False
    engine.message("A", changed("A", 3, "1001", 3, "not_ready", since=T0, reason="lunch"), T0 + 3000)
    assert engine.rows["1001"].reachable
    # A snapshot says it too.
    engine.stream_opened("B", "s-B2", T0 + 4000)
    engine.message("B", snapshot("B", 0, report("1002", 1, reachable=False), stream="s-B2"), T0 + 4000)
    assert engine.rows["1002"].reachable is False
