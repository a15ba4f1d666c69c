"""The traffic source (`interaction-server traffic`): a carrier that re-submits after a site dies,
and a ledger that adds up."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from server_stub import protocol as p
from server_stub.traffic import Ledger, parse_mix
from tests.server.interaction_steps import agent, agent_request, carrier, event, invite, site_config
from tests.server.wire import connect_registered, run
from tests.support.cli_main import run_main
from tests.support.servers import REPO, async_wait_until, linked


def interaction(iid: str) -> p.Interaction:
    return p.Interaction(interaction_id=iid, media="chat", queue="sales", created_ms=1)


def report(server: str, seq: int, iid: str, kind: p.InteractionEventKind,
           agent_id: str | None = None) -> p.EventInteraction:
    return p.EventInteraction(server=server, seq=seq, interaction_id=iid, event=kind, at_ms=1, queue="sales",
                              media="chat", agent_id=agent_id)


def test_ledger_resubmits_only_what_no_agent_took_and_counts_completions_per_server():
    ledger = Ledger()
    for iid in ("waiting", "taken", "unanswered", "done"):
        ledger.submitted(interaction(iid), "A")
    ledger.answered("waiting", "A", None)
    ledger.answered("taken", "A", None)
    ledger.answered("done", "A", None)
    steps: list[tuple[str, p.InteractionEventKind]] = [
        ("waiting", "queued"), ("taken", "accepted"), ("done", "accepted"), ("done", "completed")]
    for seq, (iid, kind) in enumerate(steps, start=1):
        assert ledger.fresh("A", "s1", seq)
        ledger.event(report("A", seq, iid, kind, "1001"))
    assert not ledger.fresh("A", "s1", 2)  # a resumed stream repeating an event
    assert sorted(i.interaction_id for i in ledger.to_resubmit("A")) == ["unanswered", "waiting"]
    ledger.submitted(interaction("waiting"), "B")
    ledger.answered("waiting", "B", "duplicate_interaction")
    ledger.event(report("B", 1, "taken", "adopted", "1001"))
    ledger.event(report("B", 2, "taken", "completed", "1001"))
    ledger.event(report("B", 3, "waiting", "abandoned"))
    summary = ledger.summary()
    assert (summary["submitted"], summary["resubmissions"], summary["duplicates_answered"]) == (4, 1, 1)
    assert (summary["completed"], summary["abandoned"], summary["unconfirmed"]) == (2, 1, 1)
    assert summary["completed_twice"] == []
    assert summary["interactions"]["taken"]["ended_at"] == "B"
    ledger.event(report("A", 9, "taken", "completed", "1001"))
    assert ledger.summary()["completed_twice"] == ["taken"]


def test_mix_parsing_refuses_what_it_cannot_use():
    assert parse_mix("voice=6,chat=3", ("voice", "chat", "email")) == [("voice", 6.0), ("chat", 3.0)]
    assert parse_mix("sales,support") == [("sales", 1.0), ("support", 1.0)]
    for bad in ("fax=1", "voice=x", "voice=0", ""):
        try:
            parse_mix(bad, ("voice", "chat", "email"))
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")


def traffic(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server_stub", "traffic", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.server_processes
def test_traffic_resubmits_after_a_kill_and_every_interaction_is_completed_once(make_pair, tmp_path):
    a, b = make_pair(site_config(tmp_path))

    async def scenario():
        await async_wait_until(lambda: linked(a, b), message="peer link up")
        watch_a = await carrier(a.url)
        desk, epoch = await agent(a.url, "1001")
        token = next(m for m in map(json.loads, desk.received) if m.get("resume_token"))["resume_token"]
        proc = traffic("--site", f"A={a.url}", "--site", f"B={b.url}", "--count", "6", "--rate", "50",
                       "--queues", "sales", "--grace", "0.3", "--drain", "20", "--prefix", "kill9", "--seed", "1")
        try:
            offer = await invite(desk, timeout=10)
            held = offer["interaction"]
            assert (await agent_request(desk, "RequestAccept", epoch, interaction_id=held["interaction_id"]))[
                "type"
            ] == "EventAck"
            for n in range(1, 7):
                await event(watch_a, "queued", f"kill9-{n:06d}", timeout=5)
            a.kill9()

            # The agent moves to B with the interaction in hand; another agent at B takes the rest.
            moved = await connect_registered(b.url, "desktop-1001")
            login = {"type": "RequestAgentLogin", "request_id": "fo", "agent_id": "1001", "resume_token": token,
                     "epoch": epoch + 1, "interactions": [{"interaction": held, "accepted_ms": offer["offered_ms"]}]}
            ack = await moved.request(login)
            assert ack["type"] == "EventAck", ack
            other, other_epoch = await agent(b.url, "1003")

            async def work():
                while True:
                    iid = (await invite(other, timeout=15))["interaction"]["interaction_id"]
                    assert (await agent_request(other, "RequestAccept", other_epoch, interaction_id=iid))[
                        "type"
                    ] == "EventAck"
                    done = await agent_request(other, "RequestCompleteInteraction", other_epoch, interaction_id=iid,
                                               disposition="resolved")
                    assert done["type"] == "EventAck", done

            worker = asyncio.create_task(work())
            done = await agent_request(
                moved,
                "RequestCompleteInteraction",
                ack["epoch"],
                interaction_id=held["interaction_id"],
                disposition="resolved",
            )
            assert done["type"] == "EventAck", done
            await async_wait_until(lambda: proc.poll() is not None, timeout=25, message="traffic to finish")
            worker.cancel()
        finally:
            if proc.poll() is None:
                proc.kill()
        out, err = proc.communicate(timeout=5)
        assert proc.returncode == 0, err
        ledger = json.loads(out.strip().splitlines()[-1])
        assert ledger["submitted"] == 6 and ledger["completed"] == 6, (ledger, err[-2000:])
        assert ledger["completed_twice"] == [] and ledger["errors"] == 0, ledger
        assert ledger["resubmissions"] >= 5, ledger  # the five waiting at A (the held one was seen taken)
        assert all(i["completions"] == 1 for i in ledger["interactions"].values()), ledger
        assert ledger["interactions"][held["interaction_id"]]["agent_id"] == "1001"
        assert {i["ended_at"] for i in ledger["interactions"].values()} == {"B"}

    run(scenario(), timeout=90)


def test_traffic_refuses_bad_options_clearly():
    # main in this process (tests/support/cli_main.py): each is refused before any traffic is sent.
    result = run_main("traffic", "--site", "A", "--count", "1")
    assert result.returncode != 0 and "NAME=ws://" in result.stderr, result.stderr
    result = run_main("traffic", "--site", "A=ws://127.0.0.1:1", "--media", "fax=1")
    assert result.returncode != 0 and "fax" in result.stderr, result.stderr
