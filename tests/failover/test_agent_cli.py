"""The headless agent as scripts use it: JSON event lines out, commands in, clear failures."""

import json
import subprocess
import sys

import pytest

from server_stub.resources import resource_path
from tests.support.agents import AgentProcess
from tests.support.reporting import ReportingWatcher
from tests.support.servers import REPO

NO_TRANSFER = {"kind": None, "to_agent": None, "to_queue": None}  # an intent's transfer fields, unused here


def test_commands_drive_state_and_unknown_commands_are_reported(pair):
    a, b = pair
    agent = AgentProcess("1002", [a.url, b.url], "--state", "notready:lunch")
    try:
        first = agent.wait_for("AgentStateChanged", endpoint="A")
        assert (first["state"], first["reason"]) == ("not_ready", "lunch")
        agent.command("ready")
        ready = agent.wait_for("AgentStateChanged", state="ready")
        assert (ready["reason"], ready["endpoint"]) == (None, "A") and ready["since_ms"] >= first["since_ms"]
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
            assert ("bad/id" in error["message"] and "A-Za-z0-9" in error["message"]) or "done ID DISPOSITION" in error[
                "message"
            ]
        agent.command("notes call-404 some text")
        failed = agent.wait_for("InteractionFailed", intent={"action": "notes", "interaction_id": "call-404",
                                                             "notes": "some text", "disposition": None, **NO_TRANSFER})
        assert failed["code"] == "unknown_interaction"
        agent.command("quit")
        assert agent.proc.wait(5) == 0
    finally:
        agent.stop()


def submit(a, b, count: int, queue: str = "billing", drain: float = 30.0):
    """The real carrier (interaction-server traffic) submitting ``count`` interactions to A."""
    return subprocess.Popen([sys.executable, "-m", "server_stub", "traffic", "--site", f"A={a.url}", "--site",
                             f"B={b.url}", "--count", str(count), "--rate", "5", "--queues", queue,
                             "--drain", str(drain), "--prefix", "cli"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def billing_pair(make_pair, tmp_path):
    """A pair whose ``billing`` queue (no After Call Work) has agent 1003 as its member."""
    config = tmp_path / "site.toml"
    config.write_text(resource_path("sites.toml").read_text(encoding="utf-8").replace(
        'name = "billing"\n', 'name = "billing"\nmembers = { "1003" = 0 }\n', 1), encoding="utf-8")
    assert 'members = { "1003" = 0 }' in config.read_text(encoding="utf-8")
    return make_pair(["--config", str(config)])


@pytest.mark.server_processes
def test_an_interaction_taken_by_command_survives_a_kill_with_its_notes_and_is_completed_on_the_backup(
        make_pair, tmp_path):
    a, b = billing_pair(make_pair, tmp_path)
    agent = AgentProcess("1003", [a.url, b.url], "--state", "ready")
    carrier = submit(a, b, 1)
    watcher = None
    try:
        agent.wait_for("AgentStateChanged", endpoint="A", state="ready")
        offer = agent.wait_for("OfferReceived", timeout=15)
        iid = offer["interaction"]["interaction_id"]
        assert offer["endpoint"] == "A" and offer["interaction"]["queue"] == "billing"
        agent.command(f"accept {iid}")
        started = agent.wait_for("InteractionStarted")
        assert started["interaction"]["interaction_id"] == iid
        agent.command(f"notes {iid} wants the invoice re-sent")
        agent.wait_for("InteractionApplied", intent={"action": "notes", "interaction_id": iid,
                                                     "notes": "wants the invoice re-sent", "disposition": None,
                                                     **NO_TRANSFER})
        watcher = ReportingWatcher(b.url)
        a.kill9()
        adopted = agent.wait_for("InteractionAdopted", timeout=10)
        assert (adopted["interaction_id"], adopted["endpoint"], adopted["notes"]) == (
            iid,
            "B",
            "wants the invoice re-sent",
        )
        watcher.wait_for("EventInteraction", agent_id="1003", interaction_id=iid, event="adopted")
        agent.command(f"done {iid} resolved invoice re-sent, customer happy")
        ended = agent.wait_for("InteractionEnded", timeout=10)
        assert (ended["interaction_id"], ended["reason"], ended["disposition"], ended["endpoint"]) == (
            iid, "completed", "resolved", "B")
        done = watcher.wait_for("EventInteraction", agent_id="1003", interaction_id=iid, event="completed")
        assert done["disposition"] == "resolved"
        out, _ = carrier.communicate(timeout=40)
        ledger = json.loads(out.strip().splitlines()[-1])
        assert (ledger["submitted"], ledger["completed"], ledger["completed_twice"]) == (1, 1, [])
    finally:
        if carrier.poll() is None:
            carrier.kill()
        if watcher is not None:
            watcher.close()
        agent.stop()


def test_auto_answer_accepts_writes_notes_and_completes_every_offer(make_pair, tmp_path):
    a, b = billing_pair(make_pair, tmp_path)
    agent = AgentProcess("1003", [a.url, b.url], "--auto-answer", "--talk-time", "0.4", "--answer-delay", "0.05",
                         "--disposition", "follow_up")
    carrier = submit(a, b, 3)
    try:
        out, err = carrier.communicate(timeout=40)
        ledger = json.loads(out.strip().splitlines()[-1])
        assert (ledger["submitted"], ledger["completed"]) == (3, 3), err[-2000:]
        ended = agent.find("InteractionEnded")
        assert [(e["reason"], e["disposition"]) for e in ended] == [("completed", "follow_up")] * 3
        assert sorted(e["interaction_id"] for e in ended) == sorted(ledger["interactions"])
        notes = [e["intent"]["notes"] for e in agent.find("InteractionApplied") if e["intent"]["action"] == "complete"]
        assert notes == [f"auto notes for {e['interaction_id']}, done" for e in ended]
        assert agent.find("AgentStateChanged")[0]["state"] == "ready"  # --auto-answer starts Ready
    finally:
        if carrier.poll() is None:
            carrier.kill()
        agent.stop()
