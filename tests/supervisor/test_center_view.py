"""The supervisor view in center mode (``supervisor-view --center``): one subscription, scope
center, to the first reachable server shows the agents of both sites; when that server dies the
view moves to the other and still shows every agent (issue 13)."""

import pytest

from tests.supervisor.test_window import View, agents  # noqa: F401  (agents: the fixture)
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
