"""The server's watch on its own files (server_stub/cli.py): a change is read once it has settled,
and never while the server itself is still writing them (a configuration taken from another site
is two files written one after the other; reading the new site file beside the old directory
would make a change nobody made)."""

from __future__ import annotations

import asyncio

from server_stub import cli
from tests.support.servers import async_wait_until


def test_files_being_written_by_the_server_are_read_only_once_it_has_written_both(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "WATCH_S", 0.01)
    site, agents = tmp_path / "site.toml", tmp_path / "agents.toml"
    site.write_text("old site\n")
    agents.write_text("old agents\n")
    writing = True
    reads: list[tuple[str, str]] = []
    stamps = [0]  # files stamped by the watch: each check stamps both
    stamp = cli._stamp

    def counted(path):
        stamps[0] += 1
        return stamp(path)

    monkeypatch.setattr(cli, "_stamp", counted)

    async def checks(n: int) -> None:
        """Until the watch has made ``n`` more checks (counted, not timed)."""
        target = stamps[0] + 2 * n
        await async_wait_until(lambda: stamps[0] >= target, timeout=5, message=f"{n} checks of the watch")

    async def scenario() -> None:
        nonlocal writing
        watch = asyncio.create_task(cli._watch((site, agents), lambda: reads.append(
            (site.read_text(), agents.read_text())), lambda: writing))
        await asyncio.sleep(0)  # one step of the watch: it has taken the files' first stamps
        try:
            site.write_text("new site\n")  # the first file written, the writer then starved
            await checks(20)  # long settled, but the server is still writing
            assert reads == []
            agents.write_text("new agents\n")
            writing = False
            await async_wait_until(lambda: reads, timeout=5, message="the files read again")
            await checks(10)  # nothing changed since, so nothing is read again
            assert reads == [("new site\n", "new agents\n")]
        finally:
            watch.cancel()

    asyncio.run(scenario())


def test_an_edit_made_while_the_server_is_not_writing_is_read_once_settled(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "WATCH_S", 0.01)
    site, agents = tmp_path / "site.toml", tmp_path / "agents.toml"
    site.write_text("a\n")
    agents.write_text("b\n")
    reads: list[str] = []

    async def scenario() -> None:
        watch = asyncio.create_task(cli._watch((site, agents), lambda: reads.append(agents.read_text()),
                                               lambda: False))
        await asyncio.sleep(0)  # one step of the watch: it has taken the files' first stamps
        try:
            agents.write_text("b and a new agent\n")
            await async_wait_until(lambda: reads, timeout=5, message="the edit read")
            assert reads == ["b and a new agent\n"]
        finally:
            watch.cancel()

    asyncio.run(scenario())
