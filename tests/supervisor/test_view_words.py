"""What the supervisor reads, driven through the real engine and window offscreen: handling states
(Ringing, Busy with the talk time kept across a failover), reason labels instead of codes,
thresholds on long times, a banner that agrees with the table, a dead site's queue figures marked
unavailable, and link failures in words (no bare close codes)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from desktop.reporting import ReportingEngine
from desktop.reporting.engine import FeedEntry
from desktop.supervisor.model import COL_REASON, COL_STATE, COL_TIME, THRESHOLDS_MS
from desktop.supervisor.window import SupervisorWindow, connection_words, feed_text, reason_words
from server_stub import protocol as p

T0 = 1_767_254_400_000


class Streams:
    """Two servers' reporting streams fed to a real engine, with a clock the window reads."""

    def __init__(self) -> None:
        self.engine = ReportingEngine(["A", "B"])
        self.now = T0
        self.seq = {"A": 0, "B": 0}
        for name in "AB":
            self.engine.stream_opened(name, "s" + name, T0)
            self.engine.message(name, p.EventReportingSnapshot(
                server=name, stream_id="s" + name, seq=0, agents=[],
                queues=[p.QueueStatistics(queue="sales", waiting=3, longest_wait_ms=42_000, offered=9, answered=6,
                                          abandoned=0, service_level=0.9, service_level_target_ms=20_000)]), T0)

    def send(self, server: str, message_type, **fields) -> None:
        self.seq[server] += 1
        self.engine.message(server, message_type(server=server, seq=self.seq[server], **fields), self.now)

    def login(self, server: str, agent_id: str, epoch: int, state="ready", reason=None, interaction_id=None) -> None:
        self.send(server, p.EventAgentLogin, agent=p.AgentReport(
            agent_id=agent_id, name=f"Agent {agent_id}", epoch=epoch, state=state, since_ms=T0, login_ms=T0,
            reason=reason, interaction_id=interaction_id))

    def interaction(self, server: str, interaction_id: str, event: str, agent_id: str | None, epoch=1) -> None:
        self.send(server, p.EventInteraction, interaction_id=interaction_id, event=event, at_ms=self.now,
                  queue="sales", media="voice", agent_id=agent_id, epoch=epoch)


class Reasons:
    """The client's reason lists per server (what ReportingClient.reasons answers)."""

    def reasons(self, server: str) -> list[p.ReasonInfo]:
        return [p.ReasonInfo(code="lunch", label="Lunch"),
                p.ReasonInfo(code="system", label="System (set by the server)")]

    def reasons_for(self, agent_id: str) -> list[p.ReasonInfo]:
        return self.reasons("A")

    async def force_agent_not_ready(self, agent_id: str, reason: str):
        raise AssertionError("not used here")

    async def force_agent_logout(self, agent_id: str):
        raise AssertionError("not used here")


def window_for(qtbot, streams: Streams, status: dict[str, str] | None = None) -> SupervisorWindow:
    window = SupervisorWindow(streams.engine, actions=Reasons(), link_status=lambda name: (status or {}).get(name, ""),
                              wall_ms=lambda: streams.now)
    qtbot.addWidget(window)
    window.show()
    window.flush()
    return window


def cell(window: SupervisorWindow, agent_id: str, column: int, role=Qt.ItemDataRole.DisplayRole):
    model = window.model
    row = model.row_of(agent_id)
    assert row is not None, f"{agent_id} is not in the table"
    return model.data(model.index(row, column), role)


def test_ringing_then_busy_with_the_talk_time_kept_across_a_failover(qtbot):
    streams = Streams()
    streams.login("A", "1001", 1)
    window = window_for(qtbot, streams)
    streams.now = T0 + 5_000
    streams.interaction("A", "call-1", "offered", "1001")
    window.flush()
    assert cell(window, "1001", COL_STATE) == "Ringing" and window.count_labels["ringing"].text() == "Ringing: 1"
    streams.now = T0 + 8_000
    streams.interaction("A", "call-1", "accepted", "1001")
    streams.now = T0 + 68_000
    window.flush()
    window.tick()
    assert cell(window, "1001", COL_STATE) == "Busy"
    assert cell(window, "1001", COL_TIME) == "0:01:00"  # talk time, from the accept
    # The counts above the table say the same (one source): busy, not ready.
    assert (window.count_labels["busy"].text(), window.count_labels["ready"].text()) == ("Busy: 1", "Ready: 0")
    assert "Own state: Ready" in cell(window, "1001", 0, Qt.ItemDataRole.ToolTipRole)
    # The agent fails over to B with the call: B adopts it later, the talk time still counts from A's accept.
    streams.engine.stream_lost("A", "closed 1006", streams.now)
    streams.now = T0 + 70_000
    streams.login("B", "1001", 2, interaction_id="call-1")
    streams.interaction("B", "call-1", "adopted", "1001", epoch=2)
    window.flush()
    window.tick()
    assert (cell(window, "1001", COL_STATE), cell(window, "1001", COL_TIME)) == ("Busy", "0:01:02")
    streams.interaction("B", "call-1", "completed", "1001", epoch=2)
    window.flush()
    assert cell(window, "1001", COL_STATE) == "Ready"


def test_an_offer_that_ends_without_naming_the_agent_stops_ringing(qtbot):
    streams = Streams()
    streams.login("A", "1001", 1)
    window = window_for(qtbot, streams)
    streams.interaction("A", "call-2", "offered", "1001")
    window.flush()
    assert cell(window, "1001", COL_STATE) == "Ringing"
    streams.interaction("A", "call-2", "abandoned", None)  # the customer hung up while it rang
    window.flush()
    assert cell(window, "1001", COL_STATE) == "Ready"


def test_reasons_show_their_labels_and_long_times_are_coloured(qtbot):
    streams = Streams()
    streams.login("A", "1001", 1, state="not_ready", reason="lunch")
    streams.login("A", "1002", 1, state="not_ready", reason="system")
    window = window_for(qtbot, streams)
    assert cell(window, "1001", COL_REASON) == "Lunch"
    assert cell(window, "1002", COL_REASON) == "System (set by the server)"
    assert cell(window, "1001", COL_TIME, Qt.ItemDataRole.BackgroundRole) is None
    streams.now = T0 + THRESHOLDS_MS["not_ready"] + 1_000
    window.tick()
    assert cell(window, "1001", COL_TIME, Qt.ItemDataRole.BackgroundRole) is not None
    assert "Over the 15 min threshold" in cell(window, "1001", 0, Qt.ItemDataRole.ToolTipRole)
    window.filter_box.setText("lunch")  # the label can be searched as well as the code
    assert window.model.visible_ids() == ["1001"]


def test_the_banner_agrees_with_the_table_and_a_dead_sites_queues_are_marked(qtbot):
    streams = Streams()
    for agent_id in ("1001", "1002", "1003", "1004"):
        streams.login("A", agent_id, 1)
    status = {"A": ""}
    window = window_for(qtbot, streams, status)
    assert window.model.rowCount() == 4
    streams.now = T0 + 10_000
    streams.engine.stream_lost("A", "closed 1006", streams.now)
    status["A"] = "lost: closed 1006; reconnecting"
    window.flush()
    window.tick()
    counts = window.count_labels["failover"].text()
    assert counts == "In failover: 4"
    lines = window.banner.text().splitlines()
    assert lines[0].endswith("Server A lost: the connection dropped without warning (network or server failure)")
    assert lines[1] == "Now: unreachable: site A; in failover: 4 agent(s)."
    assert "1006" not in window.banner.text() and not any("1006" in window.feed.item(i).text()
                                                          for i in range(window.feed.count()))
    # A's figures are still there, but marked: never passed off as live.
    sites = {window.queues.item(r, 0).text() for r in range(window.queues.rowCount())}  # type: ignore[union-attr]
    assert sites == {"A (unavailable)", "B"}
    assert window.queues_note.isVisible() and window.queues_note.text().startswith("Unavailable: A (as of ")
    # Three agents fail over to B: the banner's "now" follows, like the count label.
    for agent_id in ("1001", "1002", "1003"):
        streams.login("B", agent_id, 2)
    window.flush()
    assert window.count_labels["failover"].text() == "In failover: 1"
    assert window.banner.text().splitlines()[1] == "Now: unreachable: site A; in failover: 1 agent(s)."


def test_link_failures_are_said_in_words_and_can_be_read_whole(qtbot):
    refused = "unreachable: [Errno 111] Connect call failed ('127.0.0.1', 8701)"
    assert connection_words(refused) == ("unreachable: connection refused: no server is running at that address, "
                                         "or it is not accepting connections")
    assert reason_words("closed 4000") == "the server heard no heartbeat in time"
    assert reason_words("closed 4321") == "closed by the server (code 4321)"
    assert reason_words("silent") == "the server stopped answering (no heartbeat)"
    assert feed_text(FeedEntry(T0, "gap", "Server B lost (closed 1001) while resuming")) == \
        "Server B lost (the server is shutting down) while resuming"
    streams = Streams()
    streams.engine.stream_lost("A", "connection lost", T0)
    window = window_for(qtbot, streams, {"A": refused})
    window.tick()
    item = window.sites.item(0, 1)
    assert item is not None
    assert item.text() == f"not connected: {connection_words(refused)}"
    assert "[Errno 111]" in item.toolTip() and "connection refused" in item.toolTip()
    assert window.sites.wordWrap() and window.sites.rowHeight(0) > window.sites.fontMetrics().height() * 1.5


def stats(level: float | None) -> list[p.QueueStatistics]:
    return [p.QueueStatistics(queue="sales", waiting=2, longest_wait_ms=30_000, offered=10, answered=8, abandoned=2,
                              service_level=level, service_level_target_ms=20_000)]


def test_a_queue_falling_below_its_service_level_target_is_flagged_once(qtbot):
    streams = Streams()
    window = window_for(qtbot, streams)
    streams.send("A", p.EventQueueStatistics, at_ms=streams.now, queues=stats(0.9))
    window.flush()
    assert not window.banner.isVisible()
    streams.now += 1_000
    streams.send("A", p.EventQueueStatistics, at_ms=streams.now, queues=stats(0.5))
    window.flush()
    first = window.banner.text()
    assert "Queue sales at site A: service level 50 % is below the 80 % target (answered within 20 s)" in first
    row = next(r for r in range(window.queues.rowCount()) if window.queues.item(r, 0).text() == "A")  # type: ignore[union-attr]
    level = window.queues.item(row, 4)
    assert level is not None and level.background().style() != Qt.BrushStyle.NoBrush
    streams.now += 1_000
    streams.send("A", p.EventQueueStatistics, at_ms=streams.now, queues=stats(0.55))  # still below: no new notice
    window.flush()
    assert window.banner.text() == first
    streams.send("A", p.EventQueueStatistics, at_ms=streams.now, queues=stats(0.85))  # recovered
    window.flush()
    assert window.queues.item(row, 4).background().style() == Qt.BrushStyle.NoBrush  # type: ignore[union-attr]


def test_the_queues_tab_merges_each_queue_over_the_sites_and_leaves_out_stale_figures(qtbot):
    streams = Streams()  # sales at A and B: 3 waiting each, 90 % in 20 s over 6 counted each
    streams.send("B", p.EventQueueStatistics, at_ms=streams.now, queues=[p.QueueStatistics(
        queue="sales", waiting=1, longest_wait_ms=75_000, offered=4, answered=2, abandoned=2, service_level=0.5,
        service_level_target_ms=20_000)])
    window = window_for(qtbot, streams)
    view = window.queue_view
    window.views.setCurrentWidget(view)

    def row() -> list[str]:
        return [view.item(0, c).text() for c in range(view.columnCount())]  # type: ignore[union-attr]

    assert view.rowCount() == 1
    # 3 + 1 waiting; the longest anywhere; (0.9 × 6 + 0.5 × 4) / 10 = 74 %.
    assert row() == ["sales", "4", "0:01:15", "74 %", "8 / 13", "2", "A, B"]
    streams.engine.stream_lost("B", "closed 1006", streams.now)
    window.flush()
    assert row() == ["sales", "3", "0:00:42", "90 %", "6 / 9", "0", "A (unavailable: B)"]
