"""Bad start-up input (agent directory, site configuration, numeric options) stops the server with
one line naming the file, the key and the problem, and exit code 2: never a traceback, never a
server that starts but cannot work."""

from __future__ import annotations

import json
import re

import pytest

from server_stub.config import LEAST, MOST, ConfigError, ServerConfig, load_site_config
from server_stub.protocol import CloseCode
from server_stub.resources import resource_path
from tests.server.test_cli import cli
from tests.server.wire import connect_registered, run
from tests.support.cli_main import run_main

AGENT = 'id = "1001"\nname = "A"\npassword_hash = "scrypt$16384$8$1$AA==$AA=="\n'


@pytest.mark.parametrize("text,where", [
    (f"[[agent]]\n{AGENT}skills = 5\n", "agent[0].skills: Expected `array`, got `int`"),
    ("agent = [1]\n", "agent[0]: Expected `object`, got `int`"),
    ("agent = 5\n", "agent: Expected `array`, got `int`"),
    ('[[agent]]\nid = "1001"\nname = "A"\n', "agent[0]: Object missing required field `password_hash`"),
    (f"[[agent]]\n{AGENT}role = \"boss\"\n", "agent[0].role: Invalid enum value 'boss'"),
    (f"[[agent]]\n{AGENT}queues = {{ sales = \"high\" }}\n", "agent[0].queues"),
    (f"[[agent]]\n{AGENT}name = 1979-05-27\n", "not valid TOML"),  # a key given twice
    (f'[[agent]]\n{AGENT.replace("1001", "no spaces allowed")}', "agent[0].id: Expected `str` matching regex"),
    ("[[agents]]\nid = 1\n", "Object contains unknown field `agents`"),
    ("[[agent]\n", "not valid TOML"),
    ("agent = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),  # used to be a 2,995-line traceback
])
def test_a_malformed_agent_directory_is_one_error_line(tmp_path, text, where):
    path = tmp_path / "agents.toml"
    path.write_text(text, encoding="utf-8")
    result = run_main("--port", "0", "--agents", str(path))
    assert result.returncode == 2, result
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr  # one line
    assert result.stderr.startswith(f"error: {path}: ") and where in result.stderr, result.stderr
    assert "listening" not in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize("text,where", [
    ("server = 5\n", "server: Expected `object`, got `int`"),
    ("[server]\nmax_message_bytes = 0\n", "server.max_message_bytes: Expected `int` >= 4096"),
    ("[server]\nrate_per_s = \"fast\"\n", "server.rate_per_s: Expected `float | null`, got `str`"),
    ("[server]\nheartbeat_interval_ms = true\n", "server.heartbeat_interval_ms: Expected `int | null`, got `bool`"),
    ("[server]\nduplicate_policy = \"both\"\n", "server.duplicate_policy: Invalid enum value 'both'"),
    ("[server]\nmax_mesage_bytes = 1\n", "server: Object contains unknown field `max_mesage_bytes`"),
    ("not_ready_reason = [1]\n", "not_ready_reason[0]: Expected `object`, got `int`"),
    ("[[queue]]\nname = \"q\"\nmembers = [\"1001\"]\n", "queue[0].members: Expected `object`, got `array`"),
    ("[[site]]\nname = \"A\"\nurl = \"http://x\"\n", "site[0].url: Expected `str` matching regex"),
    ("[server\n", "not valid TOML"),
    ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
])
def test_a_malformed_site_configuration_is_one_error_line(tmp_path, text, where):
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    for command in ([], ["pair", "--base-port", "1"]):  # `pair` checks the file before starting anything
        result = run_main("--port", "0", "--config", str(path), *command)
        assert result.returncode == 2, result
        assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
        assert result.stderr.startswith(f"error: {path}: ") and where in result.stderr, result.stderr
        assert "listening" not in result.stdout and "Traceback" not in result.stderr


def test_an_unreadable_directory_is_one_error_line(tmp_path):
    """In a real process (the cases above run the same ``main`` in this one, tests/support/cli_main.py):
    exit code 2 and the one line, with nothing else printed, from the program as it is started."""
    missing = tmp_path / "nowhere.toml"
    result = cli("--port", "0", "--agents", str(missing), timeout=10)
    assert result.returncode == 2 and result.stderr.strip() == f"error: {missing}: No such file or directory", result


@pytest.mark.parametrize("option,value", [
    ("--max-message-bytes", "0"), ("--max-message-bytes", "4095"), ("--heartbeat-interval", "0"),
    ("--heartbeat-interval", "-5"), ("--heartbeat-timeout", "10"), ("--port", "70000"), ("--port", "x"),
    ("--heartbeat-interval", "20001"), ("--heartbeat-timeout", "600000"), ("--max-message-bytes", "1073741824"),
])
def test_numeric_options_outside_their_range_are_refused(option, value):
    result = run_main("--port", "0", option, value)
    assert result.returncode == 2, result
    assert f"argument {option}: " in result.stderr and "listening" not in result.stdout, result.stderr


@pytest.mark.parametrize("key", sorted(MOST))
def test_every_numeric_setting_has_a_range_in_the_site_file(tmp_path, key):
    """Each [server] key is refused one past either end of its range, naming the key and the bound,
    and accepted at both ends: a typo (an extra zero) stops the start instead of configuring a
    server that buffers gigabytes per socket or never ends a silent login."""
    assert MOST.keys() == LEAST.keys()
    path = tmp_path / "site.toml"
    kind = type(getattr(ServerConfig, key))
    step = 1 if kind is int else 0.5
    low, high = kind(LEAST[key]), kind(MOST[key])
    for value, refused in ((low - step, f">= {low!r}"), (high + step, f"<= {high!r}")):
        path.write_text(f"[server]\n{key} = {kind(value)!r}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as error:
            load_site_config(path)
        assert f"server.{key}" in str(error.value) and refused in str(error.value), error.value
    for value in (LEAST[key], MOST[key]):
        path.write_text(f"[server]\n{key} = {kind(value)!r}\n", encoding="utf-8")
        assert getattr(load_site_config(path), key) == value


@pytest.mark.parametrize("table,refused", [
    ('name = "sales"\naccept_timeout = 7200', "queue[0].accept_timeout"),
    ('name = "sales"\nafter_call_work = 0', "queue[0].after_call_work"),
    ('name = "sales"\nabandon_after = 100000', "queue[0].abandon_after"),
    ('name = "sales"\nservice_level_target = 3601', "queue[0].service_level_target"),
    ('name = "sales"\nmembers = { "1001" = 1001 }', "queue[0].members"),
])
def test_queue_times_and_penalties_have_a_range(tmp_path, table, refused):
    path = tmp_path / "site.toml"
    path.write_text(f"[[queue]]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(refused)):
        load_site_config(path)


def test_a_configured_frame_limit_is_the_one_applied(make_server):
    server = make_server(["--max-message-bytes", "8192"])

    async def scenario():
        ok = await connect_registered(server.url)
        answer = await ok.request({"type": "RequestAgentNotAvailable", "pad": "x" * 7000})
        assert answer["code"] == "invalid_state"  # under the limit: read and answered
        big = await connect_registered(server.url)
        frame = json.dumps({"type": "RequestAgentNotAvailable", "request_id": "big", "pad": "x" * 9000})
        assert 8192 < len(frame) < 64 * 1024  # refused only because of the configured limit
        assert await big.send_expecting_close(frame) == CloseCode.MESSAGE_TOO_BIG
        await ok.assert_open()

    run(scenario())


def test_the_shipped_files_pass_the_same_validation():
    from server_stub.config import SitesFile, load_site_config
    from server_stub.directory import Directory

    load_site_config(resource_path("sites.toml")).with_overrides(secret=b"x" * 16).validate()  # raises if not
    assert [s.name for s in SitesFile.load(resource_path("sites.toml")).sites] == ["A", "B"]
    assert Directory.load(resource_path("demo_agents.toml")).agents["sup1"].role == "supervisor"


@pytest.mark.parametrize("secret,setting,where", [
    ("x", "", "the shared secret is 1 bytes; use at least 16"),
    ("0123456789abcdef-long-enough", "[server]\ntoken_ttl_ms = 86400000\n",
     "server.token_ttl_ms: Expected `int` <= 3600000"),
    ("0123456789abcdef-long-enough", '[[not_ready_reason]]\ncode = "lunch"\nlabel = "Lunch"\n'
     '[[not_ready_reason]]\ncode = "lunch"\nlabel = "Late lunch"\n', "given twice: lunch"),
])
def test_weak_settings_stop_the_server_with_one_line(tmp_path, secret, setting, where):
    """A 1-byte secret, a day-long token and a reason given twice used to be accepted silently."""
    path = tmp_path / "site.toml"
    path.write_text(setting, encoding="utf-8")
    result = run_main("--port", "0", "--config", str(path), env={"INTERACTION_SERVER_SECRET": secret})
    assert result.returncode == 2 and where in result.stderr, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_weak_password_hash_is_refused_and_one_below_guidance_is_named(tmp_path):
    weak = tmp_path / "weak.toml"
    weak.write_text('[[agent]]\nid = "1001"\nname = "A"\npassword_hash = "scrypt$2$8$1$AA==$AA=="\n', encoding="utf-8")
    result = run_main("--port", "0", "--agents", str(weak))
    assert result.returncode == 2 and "agent[0]: password_hash is too weak" in result.stderr, result
    # The shipped demo directory (n=2**14, r=8, p=1) starts, with a warning naming its entries.
    from tests.support.servers import single_server
    server = single_server().start()
    try:
        assert server.log_has("password hash(es) cost less than OWASP's scrypt guidance (1001, 1002")
    finally:
        server.stop()


def test_a_hash_below_guidance_is_made_again_at_the_next_login(make_server, tmp_path):
    """scrypt at n=2**14, r=8, p=1 (the old default) is accepted, and replaced in the agents file
    with today's parameters when the agent next logs in with the right password."""
    from server_stub.directory import Directory, hash_password, scrypt_cost
    from tests.server.wire import login_agent, run
    from tests.support.servers import wait_until

    path = tmp_path / "agents.toml"
    old = hash_password("demo", n=2**14, r=8, p=1)
    path.write_text(f'[[agent]]\nid = "1001"\nname = "Ada"\npassword_hash = "{old}"\n'
                    f'[[agent]]\nid = "1002"\nname = "Bob"\npassword_hash = "{old}"\n', encoding="utf-8")
    server = make_server(["--agents", str(path)])
    run(login_agent(server.url, "1001"))
    wait_until(lambda: Directory.load(path).agents["1001"].password_hash != old, message="the hash re-made")
    stored = Directory.load(path).agents
    assert scrypt_cost(stored["1001"].password_hash) == (2**14, 8, 5)
    assert stored["1002"].password_hash == old  # only the agent who logged in
    # Logged once the file is stored (the store runs in a thread): waited for, not assumed at once.
    wait_until(lambda: server.log_has("password hash of 1001 re-made with today's scrypt parameters"),
               message="the re-made hash to be logged")
    run(login_agent(server.url, "1001"))  # the new hash takes the same password
