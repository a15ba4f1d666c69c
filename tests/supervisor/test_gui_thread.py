"""The supervisor view's reporting links run off the GUI thread (issue 11; docs/architecture.md,
"Threads"): a slot that blocks the GUI thread for 5 s costs no heartbeat and no subscription, and
the table shows afterwards what happened meanwhile."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import Qt, QTimer

from desktop.supervisor_app import SupervisorView
from server_stub.protocol import Site
from tests.supervisor.test_window import click_agent
from tests.support.agents import AgentProcess
from tests.support.servers import async_wait_until
from tests.support.tcp_relay import TcpRelay

FREEZE_S = 5.0
HEARTBEAT_TIMEOUT_S = 1.5  # the servers' default heartbeat_timeout_ms (docs/protocol.md, "Heartbeats")


@pytest.fixture
def relay_a(pair):
    relay = TcpRelay(pair[0].port)
    yield relay
    relay.stop()


def row(view: SupervisorView, agent_id: str) -> dict[str, str] | None:
    """What the table renders for the agent (column header -> text)."""
    model = view.window.model
    at = model.row_of(agent_id)
    if at is None:
        return None
    return {model.headerData(c, Qt.Orientation.Horizontal): model.data(model.index(at, c))
            for c in range(model.columnCount())}


def test_a_blocked_gui_thread_keeps_the_subscription_and_the_table_catches_up(pair, relay_a, qtbot, qloop):
    a, b = pair
    view = SupervisorView([Site("A", relay_a.url), Site("B", b.url)], "sup1", "demo")
    qtbot.addWidget(view.window)
    view.window.show()
    statuses: list[tuple[str, str, str]] = []  # (server, status, thread) as the links report them
    client = view.client.client
    report = client.on_status

    def record(server: str, text: str) -> None:
        statuses.append((server, text, threading.current_thread().name))
        report(server, text)

    client.on_status = record
    agents: list[AgentProcess] = []
    span: list[float] = []

    def block() -> None:
        span.append(time.monotonic())
        agents.append(AgentProcess("1001", [a.url, b.url]))  # logs in at A while the window is frozen
        agents[0].wait_for("LoggedIn", timeout=FREEZE_S)
        time.sleep(max(0.0, FREEZE_S - (time.monotonic() - span[0])))  # the fault: a GUI thread doing nothing else
        span.append(time.monotonic())

    async def scenario() -> None:
        view.start()
        await async_wait_until(lambda: [s[1] for s in statuses].count("subscribed") == 2
                               and view.window.sites.item(0, 1).text() == "connected", timeout=10,
                               message=f"subscribed to both: {statuses}")
        before = list(statuses)
        assert row(view, "1001") is None
        QTimer.singleShot(0, block)
        await async_wait_until(lambda: len(span) == 2, timeout=FREEZE_S + 10, message="the freeze")
        assert span[1] - span[0] >= FREEZE_S
        # The server heard the view all along, and no link was lost or reconnected.
        heard = relay_a.heard_between(span[0], span[1])
        points = [span[0], *heard, span[1]]
        assert max(y - x for x, y in zip(points, points[1:], strict=False)) < HEARTBEAT_TIMEOUT_S, heard
        assert statuses == before, statuses
        assert {thread for _, _, thread in statuses} == {"supervisor-network"}
        assert not a.log_has("silent for")
        # The table catches up with the login that happened during the freeze.
        await async_wait_until(lambda: (row(view, "1001") or {}).get("Site") == "A", timeout=10,
                               message=f"agent 1001 shown at A: {row(view, '1001')}")
        assert view.window.sites.item(0, 1).text() == "connected"
        # A supervisor action runs on the network thread and its answer comes back to the window.
        window = view.window
        click_agent(qtbot, view, "1001")
        window.reason_box.setCurrentIndex(window.reason_box.findData("meeting"))
        qtbot.mouseClick(window.force_not_ready_button, Qt.MouseButton.LeftButton)
        await async_wait_until(lambda: agents[0].find("AgentStateChanged", state="not_ready", forced_by="sup1")
                               and window.action_result.text().endswith("done"), timeout=10,
                               message=f"forced Not Ready: {window.action_result.text()} {agents[0].events[-3:]}")
        await view.stop()

    try:
        qloop.run_until_complete(scenario())
    finally:
        for agent in agents:
            agent.stop()
