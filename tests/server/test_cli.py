"""The `interaction-server` command line: help, signals, hash-password and add-agent."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from server_stub.directory import verify_password
from server_stub.protocol import CloseCode
from tests.server.interaction_steps import agent, carrier, hand_over_and_complete
from tests.server.wire import WireClient, connect_registered, login, login_agent, run, subscribe
from tests.support.cli_main import run_main
from tests.support.servers import (
    ADDRESS_IN_USE,
    REPO,
    SECRET,
    PortInUse,
    async_wait_until,
    reserve_adjacent_ports,
    single_server,
    wait_until,
)

EXPECTED = {
    (): ["--name", "--host", "--port", "--peer", "--bus", "--agents", "--config", "--secret-file", "--duplicate-policy",
         "--heartbeat-interval", "--heartbeat-timeout", "--client-timeout", "--max-message-bytes", "--tls-cert",
         "--tls-key", "--ca-file", "--log-level", "hash-password", "add-agent", "pair", "cluster", "schema",
         "traffic"],
    ("hash-password",): ["--stdin"],
    ("add-agent",): ["file", "--id", "--name", "--role", "--queue", "--skill", "--stdin"],
    ("pair",): ["--base-port"],
    ("cluster",): ["--sites", "--base-port", "--bus"],
    ("schema",): ["--output"],
    ("traffic",): ["--sites", "--site", "--to", "--user", "--password-stdin", "--rate", "--count", "--duration",
                   "--media", "--queues", "--grace", "--drain", "--prefix", "--seed"],
}


def cli(*args: str, stdin: str | None = None, timeout: float = 30,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "INTERACTION_SERVER_SECRET": SECRET, **(env or {})}
    return subprocess.run([sys.executable, "-m", "server_stub", *args], cwd=REPO, input=stdin, text=True,
                          capture_output=True, timeout=timeout, env=env)


def help_entries(text: str) -> dict[str, str]:
    """argparse help -> {first option string or positional: its help text}."""
    entries: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        entry = re.match(r"^ {2,4}(\S.*?)(?: {2,}(\S.*))?$", line)
        if entry and not line.startswith(" " * 6):
            invocation, help_text = entry.group(1), entry.group(2) or ""
            current = invocation.split(",")[0].split()[0]
            entries[current] = help_text
        elif current and line.startswith(" " * 6) and line.strip():
            entries[current] = (entries[current] + " " + line.strip()).strip()
        elif not line.strip():
            current = None
    return entries


@pytest.mark.parametrize("command", list(EXPECTED), ids=lambda c: " ".join(c) or "top")
def test_help_documents_every_option(command):
    result = run_main(*command, "--help")  # main in this process (tests/support/cli_main.py)
    assert result.returncode == 0, result.stderr
    entries = help_entries(result.stdout)
    for option in EXPECTED[command]:
        assert option in entries, f"{option} missing from `{' '.join(command)} --help`:\n{result.stdout}"
        words = re.sub(r"\(default: [^)]*\)", "", entries[option]).split()
        assert len(words) >= 2, f"{option} is not documented in `{' '.join(command)} --help`:\n{result.stdout}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_cleanly(sig):
    server = single_server()
    started = time.monotonic()
    server.start()
    print(f"startup (process start to 'listening'): {time.monotonic() - started:.2f} s")

    async def scenario():
        desk, _, _ = await login_agent(server.url, "1001")
        sup, _, _ = await subscribe(server.url)
        hung = await connect_registered(server.url)
        hung.stop_heartbeats()
        hung.ws.transport.pause_reading()  # a hung client must not hold the shutdown up
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        server.running().send_signal(sig)
        codes = [(await c.expect_close(timeout=5))[0] for c in (desk, sup)]
        assert codes == [CloseCode.GOING_AWAY, CloseCode.GOING_AWAY]  # "server shutting down"
        # The hung client is still connected (from its side) while we wait for the exit.
        await async_wait_until(lambda: server.running().poll() is not None, timeout=3,
                               message=f"exit after {sig.name} (a hung client is connected)")
        print(f"{sig.name}: exited {loop.time() - signalled:.2f} s after the signal")

    try:
        run(scenario())
        assert server.running().returncode == 0, "\n".join(server.lines)
        assert server.log_has("server A stopped")
        assert not any("Traceback" in line for line in server.lines), "\n".join(server.lines)
    finally:
        server.stop()


def test_hash_password_from_stdin():
    result = cli("hash-password", "--stdin", stdin="s3cret with spaces\n")
    assert result.returncode == 0, result.stderr
    encoded = result.stdout.strip()
    assert encoded.startswith("scrypt$") and "s3cret" not in encoded
    assert verify_password("s3cret with spaces", encoded)
    assert not verify_password("s3cret", encoded)
    again = cli("hash-password", "--stdin", stdin="s3cret with spaces\n").stdout.strip()
    assert again != encoded  # salted
    empty = run_main("hash-password", "--stdin", stdin="\n")  # main in this process (tests/support/cli_main.py)
    assert empty.returncode != 0 and "empty" in empty.stderr


def test_add_agent_creates_a_directory_the_server_accepts(tmp_path):
    directory = tmp_path / "agents.toml"
    result = cli("add-agent", str(directory), "--id", "agent.42", "--name", "Zoë Test", "--queue", "sales",
                 "--stdin", stdin="pw-42\n")
    assert result.returncode == 0, result.stderr
    assert directory.exists()
    result = cli("add-agent", str(directory), "--id", "boss", "--name", "Boss", "--role", "supervisor",
                 "--stdin", stdin="pw-boss\n")
    assert result.returncode == 0, result.stderr
    duplicate = run_main("add-agent", str(directory), "--id", "agent.42", "--name", "Again", "--stdin", stdin="x\n")
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    assert "pw-42" not in directory.read_text(encoding="utf-8")

    server = single_server(extra_args=["--agents", str(directory)]).start()
    try:
        async def scenario():
            desk = await connect_registered(server.url)
            ack, status = await login(desk, "agent.42", password="pw-42")
            assert ack["epoch"] == 1 and status["agent_id"] == "agent.42"
            client = await WireClient.open(server.url)
            await client.request({"type": "RequestRegisterClient", "protocol_version": 1, "client_name": "t"})
            for agent, password in (("agent.42", "demo"), ("1001", "demo")):  # the demo directory is not loaded
                answer = await client.request({"type": "RequestAgentLogin", "agent_id": agent, "password": password})
                assert answer["type"] == "EventError" and answer["code"] == "bad_credentials", answer
            answer = await client.request(
                {"type": "RequestSubscribeReporting", "user_id": "boss", "password": "pw-boss"}
            )
            assert answer["type"] == "EventAck", answer
            snapshot = await client.expect("EventReportingSnapshot")
            assert [a["agent_id"] for a in snapshot["agents"]] == ["agent.42"]
            assert snapshot["agents"][0]["name"] == "Zoë Test"

        run(scenario())
    finally:
        assert server.stop() == 0


def test_token_lifetime_below_a_second_is_refused_at_startup(tmp_path):
    """token_ttl_ms = 0 used to start a server that pushed EventResumeToken in a busy loop."""
    config = tmp_path / "site.toml"
    config.write_text("[server]\ntoken_ttl_ms = 0\n", encoding="utf-8")
    result = cli("--port", "0", "--config", str(config), timeout=10)
    assert result.returncode == 2, result
    assert "token_ttl_ms" in result.stderr and "listening" not in result.stdout


def test_bus_and_peer_together_or_a_bus_url_that_is_not_amqp_are_refused_with_a_reason():
    # main in this process (tests/support/cli_main.py): each is refused before anything starts.
    both = run_main("--port", "0", "--bus", "amqp://site-A:x@127.0.0.1:5672/", "--peer", "ws://127.0.0.1:1")
    assert both.returncode == 2 and "--bus and --peer" in both.stderr and "listening" not in both.stdout, both
    wrong = run_main("--port", "0", "--bus", "ws://127.0.0.1:5672/")
    assert wrong.returncode == 2 and "amqp://" in wrong.stderr, wrong
    cluster = run_main("cluster", "--sites", "3", "--bus", "rabbit")
    assert cluster.returncode != 0 and "'local' or an amqp:// URL" in cluster.stderr, cluster


def pair_banner(lines: list[str]) -> list[str] | None:
    """The banner's two site lines, once ``interaction-server pair`` has printed them."""
    found = [line for line in list(lines) if re.match(r"\s+site [AB]\s+ws://", line)]
    return found if len(found) == 2 else None


def start_cli_pair(base: int, background: bool = False) -> tuple[int, subprocess.Popen, list[str]]:
    """``interaction-server pair --base-port base`` once it has printed its banner (PortInUse when a
    site could not bind its reserved port). ``background``: started as a shell without job control
    starts `cmd &`, with SIGINT ignored."""
    env = {**os.environ, "INTERACTION_SERVER_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if background else None
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "pair", "--base-port", str(base)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=preexec)
    lines: list[str] = []
    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE
    threading.Thread(target=lambda: lines.extend(stdout), daemon=True).start()
    try:
        wait_until(lambda: pair_banner(lines) or proc.poll() is not None, timeout=15, message="the pair's banner")
    finally:
        if not pair_banner(lines) and proc.poll() is None:
            proc.kill()
    if pair_banner(lines):
        return base, proc, lines
    proc.wait(5)
    output = "".join(lines)
    raise (PortInUse if ADDRESS_IN_USE in output.lower() else AssertionError)(output)


@pytest.mark.parametrize(("sig", "background"),
                         [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-started-in-background"])
def test_pair_serves_the_printed_urls_and_stops_on_a_signal(sig, background):
    base, proc, lines = start_cli_pair(reserve_adjacent_ports(2), background)
    try:
        async def scenario():
            banner = pair_banner(lines) or []
            urls = {line.split()[1]: line.split()[2] for line in banner}
            assert urls == {"A": f"ws://127.0.0.1:{base}", "B": f"ws://127.0.0.1:{base + 1}"}, banner
            # The banner comes once both sites listen: the printed URLs work at once.
            _, ack, status = await login_agent(urls["A"], "1001")
            assert status["server"] == "A"
            _, ack_b, status_b = await login_agent(urls["B"], "1001", token=ack["resume_token"], epoch=ack["epoch"] + 1)
            assert status_b["server"] == "B" and ack_b["epoch"] == ack["epoch"] + 1

        run(scenario())
        proc.send_signal(sig)
        try:
            assert proc.wait(15) == 0, "".join(lines)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the pair did not stop within 15 s of {sig.name}:\n{''.join(lines)}")
        assert sum("server A stopped" in line or "server B stopped" in line for line in lines) == 2, "".join(lines)
        assert not any("Traceback" in line for line in lines), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_pair_killed_with_sigkill_leaves_no_server_running():
    _, proc, lines = start_cli_pair(reserve_adjacent_ports(2))
    try:
        children = [int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert len(children) == 2, "".join(lines)
        proc.kill()  # no chance to stop its sites itself
        proc.wait(5)

        def gone(pid: int) -> bool:
            try:
                return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")  # a zombie is gone
            except FileNotFoundError:
                return True

        wait_until(lambda: all(map(gone, children)), timeout=10, message="both sites to stop with the pair")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def start_cli_cluster(base: int) -> tuple[int, subprocess.Popen, list[str]]:
    """``interaction-server cluster --sites 3 --base-port base`` once it has printed its banner."""
    env = {**os.environ, "INTERACTION_SERVER_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "cluster", "--sites", "3", "--base-port", str(base)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE
    threading.Thread(target=lambda: lines.extend(stdout), daemon=True).start()

    def banner() -> list[str]:
        return [line for line in list(lines) if re.match(r"\s+site [ABC]\s+ws://", line)]

    def linked() -> bool:  # each site logs the peer link from each of the other two
        return sum(": peer link from " in line for line in list(lines)) >= 6

    try:
        wait_until(lambda: (len(banner()) == 3 and linked()) or proc.poll() is not None, timeout=20,
                   message="the cluster's banner and its six peer links")
    finally:
        if len(banner()) != 3 and proc.poll() is None:
            proc.kill()
    if len(banner()) == 3:
        return base, proc, lines
    proc.wait(5)
    output = "".join(lines)
    raise (PortInUse if ADDRESS_IN_USE in output.lower() else AssertionError)(output)


@pytest.mark.server_processes
def test_a_cluster_of_three_sites_answers_a_call_submitted_at_one_with_the_agent_logged_in_at_another():
    """``cluster --sites 3``: every site dials every other; a call submitted at A, where nobody is,
    is handed over to C, where the agent is, and completed there once (docs/multisite.md)."""
    base, proc, lines = start_cli_cluster(reserve_adjacent_ports(3))
    try:
        async def scenario():
            urls = {name: f"ws://127.0.0.1:{base + i}" for i, name in enumerate("ABC")}
            desk, epoch = await agent(urls["C"], "1001")
            feed_a, feed_c = await carrier(urls["A"]), await carrier(urls["C"])
            # Queued at A until A hears of the agent at C (a link's latency), then handed over.
            moved = await hand_over_and_complete(feed_a, desk, epoch, feed_c, "1001", timeout=5)
            assert "at site C" in moved["reason"], moved

        run(scenario())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, "".join(lines)
        assert not any("Traceback" in line for line in lines), "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.server_processes
def test_an_agent_added_while_the_server_runs_logs_in_after_sighup(tmp_path):
    """`add-agent` writes the directory; SIGHUP makes the running server read it again (and tell
    its peers its new rules version, docs/multisite.md): no restart, no session lost."""
    directory = tmp_path / "agents.toml"
    assert cli("add-agent", str(directory), "--id", "first", "--name", "First", "--queue", "sales",
               "--stdin", stdin="pw-first\n").returncode == 0
    server = single_server(extra_args=["--agents", str(directory)]).start()
    try:
        async def scenario():
            desk = await connect_registered(server.url)
            ack, _ = await login(desk, "first", password="pw-first")
            assert cli("add-agent", str(directory), "--id", "second", "--name", "Second", "--queue", "sales",
                       "--stdin", stdin="pw-second\n").returncode == 0
            assert server.proc is not None
            server.proc.send_signal(signal.SIGHUP)
            await async_wait_until(lambda: server.log_has("rules reloaded"), message="the reload")
            other = await connect_registered(server.url)
            second, _ = await login(other, "second", password="pw-second")
            assert second["epoch"] == 1
            answer = await desk.request({"type": "RequestAgentReady", "epoch": ack["epoch"]})
            assert answer["type"] == "EventAck", "the first agent's session went on"

        run(scenario())
    finally:
        server.stop()
