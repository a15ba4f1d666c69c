"""The reporting client against real servers (processes where one dies or hangs): subscribe,
follow, lose, resume, re-read."""

import asyncio

import pytest

from desktop.reporting import ReportingEngine
from desktop.reporting.client import ReportingClient
from server_stub.protocol import Site
from tests.server.wire import login_agent, ready, run
from tests.support.servers import async_wait_until, log_count


def make_client(servers, password="demo", **kwargs):
    engine = ReportingEngine([s.name for s in servers])
    statuses = []
    client = ReportingClient(engine, [Site(s.name, s.url) for s in servers], "sup1", lambda: password,
                             on_status=lambda server, text: statuses.append((server, text)), **kwargs)
    return engine, client, statuses


def subscribed(engine, *names):
    return all(engine.servers[n].live for n in names)


def test_follows_logins_and_state_changes_on_both_servers(pair):
    a, b = pair

    async def scenario():
        engine, client, _ = make_client([a, b])
        client.start()
        await async_wait_until(lambda: subscribed(engine, "A", "B"), message="both subscriptions")
        desk, ack, _ = await login_agent(a.url, "1001")
        await login_agent(b.url, "1002")
        await async_wait_until(lambda: {"1001", "1002"} <= engine.rows.keys(), message="both logins reported")
        assert (engine.rows["1001"].server, engine.rows["1002"].server) == ("A", "B")
        assert engine.rows["1001"].state == "not_ready" and engine.rows["1001"].epoch == ack["epoch"]
        await ready(desk, ack["epoch"])
        await async_wait_until(lambda: engine.rows["1001"].state == "ready", message="state change reported")
        assert engine.servers["A"].logged_in == 1 and engine.servers["B"].logged_in == 1
        await client.stop()

    run(scenario())


@pytest.mark.server_processes
def test_killed_server_turns_its_agents_server_lost_then_a_restart_is_re_read_from_a_snapshot(pair):
    a, b = pair

    async def scenario():
        engine, client, statuses = make_client([a, b])
        client.start()
        await async_wait_until(lambda: subscribed(engine, "A", "B"), message="both subscriptions")
        await login_agent(a.url, "1001")
        await async_wait_until(lambda: engine.rows.get("1001") and engine.rows["1001"].presence == "logged_in")
        old_stream = engine.servers["A"].stream_id
        a.kill9()
        await async_wait_until(lambda: engine.rows["1001"].presence == "server_lost", message="server lost")
        assert engine.rows["1001"].reason == "server A lost"
        assert not engine.servers["A"].connected and engine.servers["B"].live
        a.start()  # a new process: a new stream, so the view must take a snapshot, not resume
        await async_wait_until(lambda: engine.servers["A"].live, timeout=10, message="A re-subscribed")
        assert engine.servers["A"].stream_id != old_stream and engine.servers["A"].snapshots == 2
        assert engine.rows["1001"].presence != "logged_in"  # the restarted A does not hold it
        assert any(s == ("A", "subscribed") for s in statuses[2:])
        await client.stop()

    run(scenario())


def test_a_reconnect_resumes_by_seq_and_replays_what_was_missed(pair):
    a, b = pair

    async def scenario():
        engine, client, _ = make_client([a, b])
        client.start()
        await async_wait_until(lambda: subscribed(engine, "A", "B"), message="both subscriptions")
        desk, ack, _ = await login_agent(a.url, "1001")
        await async_wait_until(lambda: "1001" in engine.rows)
        await client.links["A"].stop()  # the view's socket to A goes away ...
        assert engine.rows["1001"].presence == "server_lost"
        await ready(desk, ack["epoch"])  # ... while the agent changes state there
        client.links["A"].start()
        await async_wait_until(lambda: engine.rows["1001"].state == "ready", message="replayed state change")
        assert engine.servers["A"].resumes == 1 and engine.servers["A"].snapshots == 1
        assert log_count(a, "subscribed (replay)") == 1
        await client.stop()

    run(scenario())


@pytest.mark.server_processes
def test_a_silent_server_is_declared_lost_and_resumed_when_it_wakes(pair):
    a, b = pair

    async def scenario():
        engine, client, _ = make_client([a, b])
        client.start()
        await async_wait_until(lambda: subscribed(engine, "A", "B"), message="both subscriptions")
        await login_agent(a.url, "1001")
        await async_wait_until(lambda: "1001" in engine.rows)
        a.sigstop()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await async_wait_until(lambda: not engine.servers["A"].connected, timeout=5, message="A declared lost")
        assert loop.time() - started < 2.5  # heartbeat timeout (1.5 s), not TCP's minutes
        assert engine.servers["A"].lost_reason == "silent"
        assert engine.rows["1001"].presence == "server_lost"
        a.sigcont()
        await async_wait_until(lambda: engine.servers["A"].live, timeout=10, message="A back")
        assert engine.servers["A"].resumes == 1
        await client.stop()

    run(scenario())


def test_a_wrong_password_is_reported_and_not_retried_in_a_loop(pair):
    a, b = pair

    async def scenario():
        engine, client, statuses = make_client([a], password="wrong")
        client.start()
        await async_wait_until(lambda: client.links["A"].status.startswith("login refused"), message="refusal")
        assert statuses.count(("A", "connecting")) == 1
        assert not engine.servers["A"].connected
        client.password = lambda: "demo"
        client.credentials_changed()  # the user typed the password again
        await async_wait_until(lambda: engine.servers["A"].live, message="subscribed with the right password")
        assert statuses.count(("A", "connecting")) == 2
        await client.stop()

    run(scenario())


def test_the_resume_token_is_renewed_on_the_open_socket_before_it_expires(make_pair, tmp_path):
    config = tmp_path / "site.toml"
    config.write_text("[server]\ntoken_ttl_ms = 2000\n")
    a, b = make_pair(["--config", str(config)])

    async def scenario():
        engine, client, statuses = make_client([a])
        client.start()
        await async_wait_until(lambda: engine.servers["A"].live, message="subscribed")
        first_token = client.token
        # Two renewals as the server logged them and as the client read their answers (the log line
        # comes first: the client may not have read the second answer yet).
        await async_wait_until(lambda: log_count(a, "subscribed (replay)") >= 2 and engine.servers["A"].resumes >= 2,
                               timeout=6, message="two renewals")
        assert client.token != first_token
        assert engine.servers["A"].snapshots == 1 and engine.servers["A"].resumes == 2
        assert statuses.count(("A", "connecting")) == 1  # the same socket all along
        await client.stop()

    run(scenario())
