"""The ``supervisor-view`` program as a process: bad input is a clear error; it runs and quits."""

import os
import signal
import subprocess
import sys
import time

from tests.support.servers import REPO, log_count, wait_until


def run_app(*args, env=None):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "desktop.supervisor_app", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_missing_sites_file_is_a_clear_error(tmp_path):
    proc = run_app("--sites", str(tmp_path / "nope.toml"))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "cannot read the site list" in err and "nope.toml" in err


def test_the_program_subscribes_to_every_site_and_quits_on_sigterm(pair):
    a, b = pair
    proc = run_app("--servers", f"{a.url},{b.url}", "--user", "sup1", "--password-source", "env",
                   env={"AGENT_PASSWORD": "demo"})
    try:
        wait_until(lambda: log_count(a, "supervisor sup1 subscribed") and log_count(b, "supervisor sup1 subscribed"),
                   timeout=20, message="both servers see the supervisor")
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_center_mode_subscribes_to_the_first_server_only(pair):
    a, b = pair
    proc = run_app("--servers", f"{a.url},{b.url}", "--center", "--user", "sup1", "--password-source", "env",
                   env={"AGENT_PASSWORD": "demo"})
    try:
        wait_until(lambda: log_count(a, "supervisor sup1 subscribed"), timeout=20, message="A sees the supervisor")
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert proc.returncode == 0, proc.stderr.read()
        assert log_count(b, "supervisor sup1 subscribed") == 0, "one subscription for the whole center"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_sign_in_through_the_inline_login_panel_and_remember_the_password(pair, qtbot, qloop):
    import keyring
    from PySide6.QtCore import Qt

    from desktop.supervisor_app import SupervisorView
    from server_stub.protocol import Site
    from tests.support.memory_keyring import use_memory_keyring
    from tests.support.servers import async_wait_until

    a, b = pair
    previous = keyring.get_keyring()
    store = use_memory_keyring()
    try:
        view = SupervisorView([Site("A", a.url), Site("B", b.url)], "", None)
        qtbot.addWidget(view.window)
        view.window.show()
        panel = view.window.login_panel

        async def scenario():
            assert panel.isVisible()  # nothing to sign in with yet
            view.client.start()
            await async_wait_until(
                lambda: view.client.links["A"].status.startswith("no password"), message="waiting for the user"
            )
            qtbot.keyClicks(panel.user, "sup1")
            qtbot.keyClicks(panel.password, "wrong")
            qtbot.mouseClick(panel.connect_button, Qt.MouseButton.LeftButton)
            await async_wait_until(lambda: panel.isVisible() and "login refused" in panel.message.text(),
                                   message="refusal shown in the panel")
            assert panel.password.text() == ""  # not kept in the widget
            qtbot.keyClicks(panel.password, "demo")
            qtbot.mouseClick(panel.remember, Qt.MouseButton.LeftButton)
            qtbot.mouseClick(panel.connect_button, Qt.MouseButton.LeftButton)
            await async_wait_until(
                lambda: all(s.live for s in view.engine.servers.values()),
                message=f"subscribed to both: {[each.status for each in view.client.links.values()]}",
            )
            assert not panel.isVisible()
            # Stored by the keyring thread (never the GUI thread), shortly after the click.
            await async_wait_until(lambda: store.get_password("agent-desktop", "sup1") == "demo",
                                   message="the password in the keyring")
            await view.client.stop()

        qloop.run_until_complete(scenario())
    finally:
        keyring.set_keyring(previous)


def test_the_view_shows_reason_labels_and_colours_times_over_the_thresholds_it_was_given(pair, qtbot, qloop):
    """The program's own composition (``SupervisorView``, its threaded client): a Not Ready reason
    reads as its label, and ``--thresholds`` colours a time past its limit, with the reason in the tooltip."""
    from PySide6.QtCore import Qt

    from desktop.supervisor.model import COL_REASON, COL_TIME, OVER_THRESHOLD_BRUSH, AgentIdRole
    from desktop.supervisor_app import SupervisorView, build_parser
    from server_stub.protocol import Site
    from tests.server.wire import login_agent
    from tests.support.servers import async_wait_until

    a, b = pair
    thresholds = build_parser().parse_args(["--thresholds", "not_ready=1,busy=600"]).thresholds
    view = SupervisorView([Site("A", a.url), Site("B", b.url)], "sup1", "demo", thresholds_ms=thresholds)
    qtbot.addWidget(view.window)
    view.window.show()
    model = view.window.model

    def cell(agent_id: str, column: int, role=Qt.ItemDataRole.DisplayRole):
        for r in range(model.rowCount()):
            if model.data(model.index(r, 0), AgentIdRole) == agent_id:
                return model.data(model.index(r, column), role)
        return None

    async def scenario():
        agent, _, _ = await login_agent(a.url, "1003", state={"state": "not_ready", "reason": "lunch",
                                                                  "since_ms": int(time.time() * 1000)})
        try:
            view.start()
            await async_wait_until(lambda: cell("1003", COL_REASON) == "Lunch", timeout=10,
                                   message=f"the reason's label: {cell('1003', COL_REASON)!r}")
            await async_wait_until(
                lambda: cell("1003", COL_TIME, Qt.ItemDataRole.BackgroundRole) == OVER_THRESHOLD_BRUSH, timeout=10,
                message="Not Ready past its 1 s threshold")
            assert "Over the 0.02 min threshold for Not Ready" in cell("1003", COL_TIME, Qt.ItemDataRole.ToolTipRole)
        finally:
            await agent.close()
            await view.stop()

    qloop.run_until_complete(scenario())


def test_bad_thresholds_are_a_clear_error():
    proc = run_app("--thresholds", "ready=30")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "'ready': a threshold is for one of not_ready, after_call_work, busy" in err
