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
