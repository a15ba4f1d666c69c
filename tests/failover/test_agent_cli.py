"""The headless agent as scripts use it: JSON event lines out, commands in, clear failures."""

from tests.support.agents import AgentProcess


def test_commands_drive_state_and_unknown_commands_are_reported(pair):
    a, b = pair
    agent = AgentProcess("1002", [a.url, b.url], "--state", "ready")
    try:
        first = agent.wait_for("AgentStateChanged", endpoint="A")
        assert first["state"] == "ready"
        agent.command("notready meeting")
        agent.wait_for("AgentStateChanged", state="not_ready", reason="meeting")
        agent.command("acw")
        agent.wait_for("AgentStateChanged", state="after_call_work")
        agent.command("dance")
        error = agent.wait_for("CommandError")
        assert "dance" in error["message"] and "notready REASON" in error["message"]
        agent.command("notready nap")
        failed = agent.wait_for("IntentFailed")
        assert failed["code"] == "invalid_reason"
        agent.command("logout")
        agent.wait_for("LoggedOut", reason="logout")
        assert agent.proc.wait(5) == 0
        assert all(isinstance(e["t"], float) for e in agent.events)
    finally:
        agent.stop()


def test_wrong_password_is_a_login_failure_with_exit_code_3(pair):
    a, b = pair
    agent = AgentProcess("1002", [a.url, b.url], password="wrong")
    try:
        failed = agent.wait_for("LoginFailed")
        assert failed["code"] == "bad_credentials"
        assert agent.proc.wait(5) == 3
    finally:
        agent.stop()


def test_interaction_commands_are_checked_and_answered(pair):
    a, b = pair
    agent = AgentProcess("1003", [a.url, b.url], "--state", "ready")
    try:
        agent.wait_for("AgentStateChanged", endpoint="A", state="ready")
        agent.command("accept call-404")  # nothing was offered: refused without bothering the server
        failed = agent.wait_for("InteractionFailed")
        assert (failed["code"], failed["intent"]["action"], failed["intent"]["interaction_id"]) == (
            "unknown_interaction", "accept", "call-404")
        for bad in ("done call-404", "accept bad/id", "notes"):
            mark = len(agent.events)
            agent.command(bad)
            error = agent.wait_for("CommandError", after=mark)
            assert ("bad/id" in error["message"] and "A-Za-z0-9" in error["message"]) or "done ID DISPOSITION" in error["message"]
        agent.command("notes call-404 some text")
        failed = agent.wait_for("InteractionFailed", intent={"action": "notes", "interaction_id": "call-404",
                                                             "notes": "some text", "disposition": None})
        assert failed["code"] == "unknown_interaction"
        agent.command("quit")
        assert agent.proc.wait(5) == 0
    finally:
        agent.stop()
