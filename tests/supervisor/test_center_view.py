"""The supervisor view in center mode (``supervisor-view --center``): one subscription, scope
center, to the first reachable server shows the agents of both sites; when that server dies the
view moves to the other and still shows every agent (issue 13)."""

import pytest
from PySide6.QtCore import Qt

from tests.supervisor.test_window import View, agents, click_agent  # noqa: F401  (agents: the fixture)
from tests.support.servers import async_wait_until, log_count


@pytest.mark.server_processes
def test_one_center_subscription_shows_both_sites_and_fails_over_to_the_other_server(pair, qtbot, qloop,
                                                                                      agents):  # noqa: F811
    a, b = pair
    view = View(qtbot, [a, b], center=True)
    agents("1001", [a.url, b.url])  # at A, standby on B: fails over with A's death
    agents("1002", [b.url, a.url])  # at B all along

    async def scenario():
        view.client.start()
        await async_wait_until(lambda: view.shows("1001", site="A") and view.shows("1002", site="B"),
                               timeout=15, message=f"both sites' agents shown: {view.rows()}")
        assert log_count(a, "supervisor sup1 subscribed") == 1
        assert log_count(b, "supervisor sup1 subscribed") == 0, "one subscription, at the first server"
        a.kill9()
        await async_wait_until(lambda: log_count(b, "supervisor sup1 subscribed") == 1, timeout=15,
                               message="the view subscribed at B")
        await async_wait_until(lambda: view.shows("1001", site="B") and view.shows("1002", site="B"),
                               timeout=20, message=f"every agent shown from B: {view.rows()}")
        assert view.site("B")["Logged in"] == "2"
        await view.client.stop()

    qloop.run_until_complete(scenario())


@pytest.mark.server_processes
def test_a_center_view_connected_to_a_sets_an_agent_of_b_not_ready(pair, qtbot, qloop, agents):  # noqa: F811
    """The view is subscribed at A only; the agent is logged in at B. Its Not Ready button works:
    A relays the action to B, the agent's site (docs/multisite.md, "Supervisor actions")."""
    a, b = pair
    view = View(qtbot, [a, b], center=True)
    agent = agents("1002", [b.url, a.url])
    window = view.window

    async def scenario():
        view.client.start()
        await async_wait_until(lambda: view.shows("1002", site="B"), timeout=15, message=f"shown: {view.rows()}")
        assert log_count(b, "supervisor sup1 subscribed") == 0, "not subscribed at B"
        click_agent(qtbot, view, "1002")
        assert window.force_not_ready_button.isEnabled()
        window.reason_box.setCurrentIndex(window.reason_box.findData("meeting"))
        qtbot.mouseClick(window.force_not_ready_button, Qt.MouseButton.LeftButton)
        await async_wait_until(
            lambda: agent.find("AgentStateChanged", state="not_ready", reason="meeting", forced_by="sup1@A"),
            timeout=10, message=f"forced Not Ready at the agent: {agent.events[-4:]}")
        await async_wait_until(lambda: view.shows("1002", site="B", state="Not Ready", reason="Meeting")
                               and window.action_result.text().endswith("done"), timeout=10,
                               message=f"shown on the view: {view.row('1002')} {window.action_result.text()}")
        await view.client.stop()

    qloop.run_until_complete(scenario())
