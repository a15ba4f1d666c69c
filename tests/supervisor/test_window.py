"""The supervisor window on qasync against real servers and real agent processes, driven through
its widgets and read back from what the table renders."""

import os
import signal
import time

import pytest
from PySide6.QtCore import QPoint, Qt

from desktop.reporting import ReportingEngine
from desktop.reporting.client import ReportingClient
from desktop.supervisor.model import COLUMNS
from desktop.supervisor.window import SupervisorWindow
from server_stub import protocol as p
from server_stub.protocol import Site
from tests.server.wire import login_agent, subscribe
from tests.support.agents import AgentProcess
from tests.support.servers import async_wait_until


class View:
    """The product's window, engine and client for the given servers."""

    def __init__(self, qtbot, servers, flush_hz=8, center=False):
        self.engine = ReportingEngine([s.name for s in servers])
        self.client = ReportingClient(self.engine, [Site(s.name, s.url) for s in servers], "sup1", lambda: "demo",
                                      center=center)
        self.window = SupervisorWindow(self.engine, actions=self.client,
                                       link_status=lambda name: self.client.links[name].status, flush_hz=flush_hz)
        qtbot.addWidget(self.window)
        self.window.show()
        self.history: dict[str, list[tuple[str, str]]] = {}
        model = self.window.model
        for changed in (model.dataChanged, model.rowsInserted, model.layoutChanged, model.modelReset):
            changed.connect(self._record)

    def _record(self, *args):
        """Every (state, site) the table rendered for each agent, in order, without repeats."""
        for agent_id, row in self.rows().items():
            seen = self.history.setdefault(agent_id, [])
            if not seen or seen[-1] != (row["State"], row["Site"]):
                seen.append((row["State"], row["Site"]))

    def rows(self) -> dict[str, dict[str, str]]:
        model = self.window.model
        return {model.data(model.index(r, 0)): {name: model.data(model.index(r, c)) for c, name in enumerate(COLUMNS)}
                for r in range(model.rowCount())}

    def row(self, agent_id):
        return self.rows().get(agent_id)

    def shows(self, agent_id, **expected):
        row = self.row(agent_id)
        return row is not None and all(
            row[k.replace("_", " ").capitalize() if k != "time_in_state" else "Time in state"] == v
            for k, v in expected.items()
        )

    def order(self):
        return list(self.rows())

    def feed(self) -> list[str]:
        return [self.window.feed.item(i).text() for i in range(self.window.feed.count())]

    def site(self, name) -> dict[str, str]:
        sites = self.window.sites
        for r in range(sites.rowCount()):
            if sites.item(r, 0).text() == name:
                return {
                    sites.horizontalHeaderItem(c).text(): sites.item(r, c).text() for c in range(sites.columnCount())
                }
        raise KeyError(name)


@pytest.fixture
def agents():
    started = []

    def start(agent_id, urls, *extra):
        agent = AgentProcess(agent_id, urls, *extra)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


@pytest.mark.server_processes
def test_killed_server_agents_show_server_lost_then_on_the_survivor(pair, qtbot, qloop, agents):
    a, b = pair
    view = View(qtbot, [a, b])
    moving = agents("1001", [a.url, b.url])  # preferred A, standby on B: fails over
    agents("1003", [a.url])  # A only: nowhere to go
    agents("1002", [b.url, a.url])  # on B all along

    async def scenario():
        view.client.start()
        await async_wait_until(
            lambda: (
                view.shows("1001", site="A", state="Not Ready")
                and view.shows("1003", site="A")
                and view.shows("1002", site="B")
            ),
            timeout=15,
            message=f"three agents shown: {view.rows()}",
        )
        assert view.site("A")["Logged in"] == "2" and view.site("B")["Logged in"] == "1"
        # The moving agent's desktop is held still (SIGSTOP) while A dies: a desktop fails over in
        # milliseconds, within one flush of the view, and "Server lost" must be seen to come first.
        os.kill(moving.proc.pid, signal.SIGSTOP)
        a.kill9()
        await async_wait_until(lambda: view.shows("1001", state="Server lost", site="A"), timeout=10,
                               message=f"server lost shown: {view.rows()}")
        os.kill(moving.proc.pid, signal.SIGCONT)
        await async_wait_until(
            lambda: view.shows("1001", site="B", state="Not Ready") and view.shows("1003", state="Server lost"),
            timeout=15,
            message=f"failover shown: {view.rows()}",
        )
        assert view.history["1001"] == [("Not Ready", "A"), ("Server lost", "A"), ("Not Ready", "B")]
        moved, lost = view.row("1001"), view.row("1003")
        assert "A→B" in moved["Last failover"] and moved["Role"] == "primary at B"
        assert (lost["Reason"], lost["Site"], lost["Role"]) == ("server A lost", "A", "none (A lost)")
        assert view.window.model.data(view.window.model.index(view.window.model.row_of("1003"), 2),
                                      Qt.ItemDataRole.BackgroundRole) is not None  # highlighted: mid-failover
        assert view.shows("1002", site="B") and view.history["1002"] == [("Not Ready", "B")]
        await async_wait_until(lambda: view.site("A")["Connection"].startswith("not connected")
                               and view.site("B")["Logged in"] == "2" and view.site("A")["Logged in"] == "0",
                               message=f"sites panel: {view.site('A')} {view.site('B')}")
        feed = "\n".join(view.feed())
        assert "Server A lost" in feed and "failed over A → B" in feed and "Agent 1001" in feed
        assert view.window.banner.isVisible() and view.window.banner.text()
        assert view.window.count_labels["failover"].text() == "In failover: 1"
        await view.client.stop()

    try:
        qloop.run_until_complete(scenario())
    finally:
        os.kill(moving.proc.pid, signal.SIGCONT)  # a stopped agent would not stop


def test_a_missed_event_on_the_open_socket_is_resumed_and_the_table_shows_what_was_missed(pair, qtbot, qloop):
    a, b = pair
    view = View(qtbot, [a, b])
    missed = []
    deliver = view.engine.message

    def miss_one(server, message, now_ms):
        """The client misses one event of A's stream (as if a frame were lost), once."""
        if (
            not missed
            and server == "A"
            and isinstance(message, p.EventAgentStateChanged)
            and message.agent_id == "1001"
        ):
            missed.append(message.seq)
            return []
        return deliver(server, message, now_ms)

    view.engine.message = miss_one

    async def scenario():
        view.client.start()
        await async_wait_until(lambda: all(s.live for s in view.engine.servers.values()), message="subscribed")
        desk, ack, _ = await login_agent(a.url, "1001")
        await async_wait_until(lambda: view.shows("1001", state="Not Ready", site="A"), message="1001 on A")
        socket_before = view.client.links["A"].ws
        await desk.request({"type": "RequestAgentReady", "epoch": ack["epoch"]})  # the event the view misses
        await async_wait_until(lambda: missed, message="the Ready event reached the client")
        assert view.shows("1001", state="Not Ready")  # nothing after it is applied yet: nothing to show
        await login_agent(a.url, "1003")  # the next event on A's stream reveals the gap
        await async_wait_until(lambda: view.shows("1001", state="Ready") and view.shows("1003", site="A"),
                               message=f"resumed: {view.rows()}")
        server = view.engine.servers["A"]
        assert (server.gaps, server.resumes, server.snapshots) == (1, 1, 1)  # resumed, not re-read
        assert view.client.links["A"].ws is socket_before  # on the same socket
        assert any("missing; resuming" in line for line in view.feed())
        assert view.history["1001"] == [("Not Ready", "A"), ("Ready", "A")]
        await view.client.stop()

    qloop.run_until_complete(scenario())


@pytest.mark.server_processes
def test_a_stalled_server_shows_its_agent_server_lost_before_it_appears_on_the_survivor(pair, qtbot, qloop, agents):
    a, b = pair
    view = View(qtbot, [a, b])
    # The agent gives A 4 s before failing over; the view declares A lost after 1.5 s of silence.
    agent = agents("1001", [a.url, b.url], "--heartbeat-timeout", "4")

    async def scenario():
        view.client.start()
        await async_wait_until(lambda: view.shows("1001", site="A"), timeout=15, message="agent shown on A")
        a.sigstop()
        await async_wait_until(lambda: view.shows("1001", site="B"), timeout=15, message=f"agent on B: {view.rows()}")
        states = view.history["1001"]
        assert states[0] == ("Not Ready", "A")
        assert ("Server lost", "A") in states
        assert states.index(("Server lost", "A")) < states.index(("Not Ready", "B"))
        assert agent.find("LoggedIn")
        await view.client.stop()

    try:
        qloop.run_until_complete(scenario())
    finally:
        a.sigcont()


def test_filter_box_and_sorting_by_clicking_headers(pair, qtbot, qloop):
    a, b = pair
    view = View(qtbot, [a, b])

    async def scenario():
        view.client.start()
        desks = {}
        for agent_id, url in (("1001", a.url), ("1002", b.url), ("1003", a.url), ("1004", b.url)):
            desks[agent_id] = await login_agent(url, agent_id)
        await async_wait_until(lambda: len(view.rows()) == 4, message="four agents")
        desk, ack, _ = desks["1003"]
        await desk.request({"type": "RequestAgentReady", "epoch": ack["epoch"]})
        await async_wait_until(lambda: view.shows("1003", state="Ready"), message="1003 ready")

        qtbot.keyClicks(view.window.filter_box, "ready")  # "Ready" and "Not Ready" both match
        assert len(view.rows()) == 4
        view.window.filter_box.clear()
        qtbot.keyClicks(view.window.filter_box, "B")  # site B (and names containing b)
        shown = view.rows()
        assert {"1002", "1004"} <= set(shown) and all(
            r["Site"] == "B" or "b" in r["Name"].lower() for r in shown.values()
        )
        view.window.filter_box.clear()
        qtbot.keyClicks(view.window.filter_box, "1003")
        assert list(view.rows()) == ["1003"]
        view.window.filter_box.clear()
        assert len(view.rows()) == 4

        header = view.window.table.horizontalHeader()
        state_column = COLUMNS.index("State")
        qtbot.mouseClick(
            header.viewport(),
            Qt.MouseButton.LeftButton,
            pos=QPoint(
                header.sectionViewportPosition(state_column) + header.sectionSize(state_column) // 2,
                header.height() // 2,
            ),
        )
        assert (header.sortIndicatorSection(), header.sortIndicatorOrder()) == (
            state_column,
            Qt.SortOrder.AscendingOrder,
        )
        order = view.order()
        assert order[0] == "1003"  # Ready sorts before Not Ready
        assert set(order[1:]) == {"1001", "1002", "1004"}
        # Live changes keep the order right: 1001 becomes Ready and moves up.
        desk, ack, _ = desks["1001"]
        await desk.request({"type": "RequestAgentReady", "epoch": ack["epoch"]})
        await async_wait_until(lambda: view.order()[:2] == ["1001", "1003"], message=f"1001 moved up: {view.order()}")
        await view.client.stop()

    qloop.run_until_complete(scenario())


def test_queues_panel_shows_the_servers_figures_and_says_plainly_when_there_are_none(pair, qtbot, qloop):
    a, b = pair
    view = View(qtbot, [a, b])

    def queue_rows():
        table = view.window.queues
        return {(table.item(r, 0).text(), table.item(r, 1).text()): [table.item(r, c).text() for c in range(2, 6)]
                for r in range(table.rowCount())}

    async def scenario():
        view.client.start()
        await async_wait_until(lambda: all(s.live for s in view.engine.servers.values()), message="subscribed")
        await async_wait_until(lambda: {("A", "billing"), ("B", "billing")} <= queue_rows().keys(),
                               message=f"both servers' queues: {queue_rows()}")
        assert queue_rows()[("A", "billing")][:2] == ["0", "0:00:00"]  # the server's own figures: nothing waits
        assert queue_rows()[("A", "billing")][2] == "—"  # no service level before anything was answered
        assert not view.window.queues_note.isVisible()
        # A customer waits in billing at A (no agent is logged in to take it).
        carrier, _, _ = await subscribe(a.url)
        answer = await carrier.request({"type": "RequestSubmitInteraction", "interaction": {
            "interaction_id": "call-q1", "media": "voice", "queue": "billing", "created_ms": int(time.time() * 1000)}})
        assert answer["type"] == "EventAck", answer
        await async_wait_until(lambda: queue_rows()[("A", "billing")][0] == "1", timeout=5,
                               message=f"one waiting at A: {queue_rows()}")
        assert queue_rows()[("B", "billing")][0] == "0"
        await view.client.stop()

    qloop.run_until_complete(scenario())


def test_queues_panel_note_when_a_server_does_not_report_queue_statistics(qtbot):
    engine = ReportingEngine(["A"])
    engine.stream_opened("A", "s", 0)
    engine.message("A", p.EventReportingSnapshot(server="A", stream_id="s", seq=0, agents=[]), 0)
    window = SupervisorWindow(engine)
    qtbot.addWidget(window)
    window.show()
    window.flush()
    assert window.queues_note.isVisible() and window.queues_note.text() == \
        "This server does not report queue statistics yet (A)."
    assert not window.queues.isVisible()  # no invented numbers


def click_agent(qtbot, view, agent_id):
    table = view.window.table
    rect = table.visualRect(view.window.model.index(view.window.model.row_of(agent_id), 1))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_forced_not_ready_and_forced_logout_reach_the_agent_naming_the_supervisor(pair, qtbot, qloop, agents):
    a, b = pair
    view = View(qtbot, [a, b])
    agent = agents("1001", [a.url, b.url])
    window = view.window

    async def scenario():
        view.client.start()
        await async_wait_until(
            lambda: view.shows("1001", site="A", state="Not Ready"), timeout=15, message="agent shown"
        )
        assert not window.force_not_ready_button.isEnabled()  # nothing selected yet
        click_agent(qtbot, view, "1001")
        assert window.selected_label.text().startswith("1001")
        assert window.force_not_ready_button.isEnabled() and window.force_logout_button.isEnabled()
        assert window.reason_box.findData("meeting") >= 0  # the server's own reasons, by their labels
        assert window.reason_box.itemText(window.reason_box.findData("meeting")) == "Meeting"
        window.reason_box.setCurrentIndex(window.reason_box.findData("meeting"))
        qtbot.mouseClick(window.force_not_ready_button, Qt.MouseButton.LeftButton)
        await async_wait_until(
            lambda: agent.find("AgentStateChanged", state="not_ready", reason="meeting", forced_by="sup1"),
            timeout=10,
            message=f"forced Not Ready at the agent: {agent.events[-4:]}",
        )
        await async_wait_until(lambda: view.shows("1001", state="Not Ready", reason="Meeting")
                               and window.action_result.text().endswith("done"), message="shown on the view")
        assert "sup1" in window.model.data(
            window.model.index(window.model.row_of("1001"), 0), Qt.ItemDataRole.ToolTipRole
        )

        qtbot.mouseClick(window.force_logout_button, Qt.MouseButton.LeftButton)
        question = window.logout_question  # asked first, without blocking the loop
        assert question is not None and question.isVisible()
        assert question.text_label.text() == "Log out agent 1001 Alice Martin?"
        qtbot.keyClick(question, Qt.Key.Key_Escape)  # Esc: nothing happens
        await async_wait_until(lambda: window.logout_question is None, message="question dismissed")
        assert view.shows("1001", state="Not Ready") and not window.action_result.text().startswith("Logout")
        qtbot.mouseClick(window.force_logout_button, Qt.MouseButton.LeftButton)
        assert window.logout_question is not None
        qtbot.mouseClick(window.logout_question.buttons["logout"], Qt.MouseButton.LeftButton)
        await async_wait_until(lambda: agent.find("LoggedOut", reason="forced", by="sup1"), timeout=10,
                               message=f"forced logout at the agent: {agent.events[-4:]}")
        await async_wait_until(lambda: view.shows("1001", state="Logged out", reason="logged out by a supervisor"),
                               message=f"shown logged out: {view.row('1001')}")
        await async_wait_until(
            lambda: not window.force_logout_button.isEnabled(), message="no action on a logged-out agent"
        )
        assert "logged out by a supervisor on A" in "\n".join(view.feed())
        await view.client.stop()

    qloop.run_until_complete(scenario())


def test_an_agent_account_cannot_open_the_supervisor_view(pair, qtbot, qloop):
    a, b = pair
    view = View(qtbot, [a])
    view.client.user_id = "1002"  # an agent, not a supervisor: the server decides by role

    async def scenario():
        view.client.start()
        await async_wait_until(lambda: view.client.links["A"].status.startswith("login refused"), message="refusal")
        await async_wait_until(
            lambda: "login refused" in view.site("A")["Connection"], message="shown in the sites panel"
        )
        assert "supervisor" in view.site("A")["Connection"]
        assert view.rows() == {}
        await view.client.stop()

    qloop.run_until_complete(scenario())


@pytest.mark.server_processes
def test_the_interaction_in_hand_is_shown_and_follows_the_agent_through_a_failover(pair, qtbot, qloop, agents):
    a, b = pair
    view = View(qtbot, [a, b])
    agents("1001", [a.url, b.url], "--state", "ready", "--auto-answer", "--talk-time", "60")

    async def scenario():
        view.client.start()
        await async_wait_until(
            lambda: view.shows("1001", site="A", state="Ready"), timeout=15, message="agent ready on A"
        )
        assert view.row("1001")["Interaction"] == "—"
        carrier, _, _ = await subscribe(a.url)
        answer = await carrier.request({"type": "RequestSubmitInteraction", "interaction": {
            "interaction_id": "call-v1", "media": "voice", "queue": "sales", "created_ms": int(time.time() * 1000)}})
        assert answer["type"] == "EventAck", answer
        await async_wait_until(lambda: view.shows("1001", interaction="call-v1"), timeout=10,
                               message=f"interaction shown: {view.row('1001')}")
        await carrier.close()
        a.kill9()
        await async_wait_until(lambda: view.shows("1001", site="B", interaction="call-v1"), timeout=15,
                               message=f"interaction still in hand on B: {view.row('1001')}")
        await view.client.stop()

    qloop.run_until_complete(scenario())
