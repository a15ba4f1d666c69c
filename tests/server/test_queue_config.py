"""Queue configuration and queue memberships: what a site file and a directory may say, and the
clear refusal of what they may not."""

from __future__ import annotations

import pytest

from server_stub.config import ConfigError, load_site_config
from server_stub.directory import Directory, DirectoryError
from tests.server.test_cli import cli
from tests.support.cli_main import run_main


def site(tmp_path, text: str):
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_queues_dispositions_and_routing_settings_are_read_in_seconds(tmp_path):
    config = load_site_config(site(tmp_path, """
[server]
max_offer_timeouts = 5
offer_timeout_reason = "break"
[[queue]]
name = "vip"
accept_timeout = 12.5
after_call_work = 3
abandon_after = 60
members = { "1001" = 0, "1002" = 4 }
[[queue]]
name = "plain"
[[disposition]]
code = "sold"
label = "Sold"
"""))
    vip, plain = config.queues
    assert (vip.accept_timeout_ms, vip.acw_ms, vip.abandon_after_ms, vip.members) == (
        12_500,
        3000,
        60_000,
        (("1001", 0), ("1002", 4)),
    )
    assert (plain.accept_timeout_ms, plain.acw_ms, plain.abandon_after_ms, plain.service_level_target_ms) == (
        30_000,
        None,
        None,
        20_000,
    )
    assert [d.code for d in config.dispositions] == ["sold"]
    assert (config.max_offer_timeouts, config.offer_timeout_reason) == (5, "break")
    config.with_overrides(secret=b"x" * 16).validate()


@pytest.mark.parametrize("text,words", [
    ('[[queue]]\naccept_timeout = 3', "queue[0]: Object missing required field `name`"),
    ('[[queue]]\nname = "q"\naccept_timeout = 0', "queue[0].accept_timeout: Expected `float` > 0.0"),
    ('[[queue]]\nname = "q"\nafter_call_work = "long"', "queue[0].after_call_work: Expected `float | null`, got `str`"),
    ('[[queue]]\nname = "q"\nmembers = { "1001" = -1 }', "queue[0].members[...]: Expected `int` >= 0"),
    ('[[queue]]\nname = "q"\nskill = "en"', "queue[0]: Object contains unknown field `skill`"),
    ('[[disposition]]\ncode = "x"', "disposition[0]: Object missing required field `label`"),
])
def test_bad_queue_configuration_is_refused_with_the_key_named(tmp_path, text, words):
    with pytest.raises(ConfigError) as refused:
        load_site_config(site(tmp_path, text))
    assert words in str(refused.value)


def test_settings_that_cannot_work_are_refused_at_startup(tmp_path):
    for text, words in (('[server]\noffer_timeout_reason = "nap"', "not a Not Ready reason"),
                        ('[[queue]]\nname = "q"\n[[queue]]\nname = "q"', "unique")):
        config = load_site_config(site(tmp_path, text)).with_overrides(secret=b"x" * 16)
        with pytest.raises(ConfigError) as refused:
            config.validate()
        assert words in str(refused.value)
    result = run_main("--port", "0", "--config", str(site(tmp_path, '[[queue]]\nname = "q"\naccept_timeout = -1')))
    assert result.returncode == 2 and "accept_timeout" in result.stderr, result.stderr


def test_directory_memberships_as_a_list_or_with_penalties_and_the_carrier_role(tmp_path):
    path = tmp_path / "agents.toml"
    result = cli("add-agent", str(path), "--id", "a1", "--name", "A One", "--queue", "sales", "--queue", "support=2",
                 "--stdin", stdin="pw\n")
    assert result.returncode == 0, result.stderr
    assert (
        cli(
            "add-agent", str(path), "--id", "feed", "--name", "Feed", "--role", "carrier", "--stdin", stdin="pw\n"
        ).returncode
        == 0
    )
    bad = run_main("add-agent", str(path), "--id", "a2", "--name", "A Two", "--queue", "sales=high", "--stdin",
                   stdin="pw\n")  # refused before anything is written: main in this process (tests/support/cli_main.py)
    assert bad.returncode != 0 and "NAME=PENALTY" in bad.stderr
    directory = Directory.load(path)
    assert directory.agents["a1"].queue_penalties() == {"sales": 0, "support": 2}
    assert directory.agents["feed"].role == "carrier"
    path.write_text(path.read_text(encoding="utf-8").replace("support = 2", "support = -2"), encoding="utf-8")
    with pytest.raises(DirectoryError) as refused:
        Directory.load(path)
    assert "agent[0].queues[...]: Expected `int` >= 0" in str(refused.value)


def test_the_shipped_directory_and_site_configuration_load():
    from server_stub.resources import resource_path

    directory = Directory.load(resource_path("demo_agents.toml"))
    assert directory.agents["carrier1"].role == "carrier"
    assert directory.agents["1001"].queue_penalties() == {"sales": 0, "support": 1}
    config = load_site_config(resource_path("sites.toml"))
    assert {q.name for q in config.queues} >= {"sales", "support"}
    assert all(q.accept_timeout_ms == 30_000 for q in config.queues)
