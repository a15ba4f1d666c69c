"""One configuration across sites (issue 13, docs/multisite.md "One configuration"), in-process
over three server cores: a change read at one site reaches every other without a restart, with its
version; a site that was away catches up when it is linked again; sites that disagree say so."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import msgspec
import pytest

from server_stub import protocol as p
from server_stub.config import QueueConfig
from server_stub.core import Output, ServerCore, StoreConfig
from server_stub.directory import AgentRecord, Directory
from tests.server.core_driver import PASSWORD
from tests.server.pair_driver import Mesh, SiteDriver


def stored(site: SiteDriver) -> list[StoreConfig]:
    """What the site asked its transport to store, from now on (the driver keeps the rest as before)."""
    kept: list[StoreConfig] = []
    run = site.run

    def recording(outputs: list[Output]) -> None:
        kept.extend(out for out in outputs if isinstance(out, StoreConfig))
        run(outputs)

    site.run = recording  # type: ignore[method-assign]
    return kept


def mesh(names: tuple[str, ...] = ("A", "B", "C")) -> Mesh:
    # The desks here send no heartbeats.
    quiet: dict[str, object] = {"heartbeat_timeout_ms": 60_000, "client_timeout_ms": 60_000}
    sites = Mesh(names=names, settings={name: quiet for name in names})
    sites.link_all()
    return sites


def newcomer(agent_id: str = "2001", **queues: int) -> AgentRecord:
    return AgentRecord(id=agent_id, name="New Agent", password_hash="test-only", role="agent",
                       queues=tuple(queues or {"sales": 0}), penalties=tuple((q, v) for q, v in queues.items() if v))


def add_agent(site: SiteDriver, record: AgentRecord, sites: Mesh) -> None:
    """What ``interaction-server add-agent`` then SIGHUP (or the file watch) does at a site."""
    directory = Directory({**site.core.directory.agents, record.id: record})
    site.run(site.core.reload(site.core.config, directory, sites.now()))
    sites.pump()


def logs_in(site: SiteDriver, agent_id: str) -> bool:
    conn = site.registered()
    return site.request(conn, {"type": "RequestAgentLogin", "agent_id": agent_id, "password": PASSWORD})["type"] \
        == "EventAck"


def versions(sites: Mesh) -> set[tuple[int, str, str]]:
    return {(s.core.config_version.generation, s.core.config_version.origin, s.core.rules_version)
            for s in sites.sites.values()}


def test_an_agent_added_at_one_site_logs_in_at_every_other_without_a_restart_and_is_stored_there():
    sites = mesh()
    b_store, c_store = stored(sites.b), stored(sites.c)
    assert not logs_in(sites.c, "2001")
    add_agent(sites.a, newcomer(), sites)
    assert logs_in(sites.c, "2001") and logs_in(sites.b, "2001")
    assert len(versions(sites)) == 1 and sites.a.core.config_version.generation == 1
    assert not any(site.core.rules_differ for site in sites.sites.values())
    # Each receiving site stores the files (its own identity kept) and the version, once.
    for store, name in ((b_store, "B"), (c_store, "C")):
        assert [(s.files, s.version.generation, s.version.origin) for s in store] == [(True, 1, "A")]
        assert store[0].config.name == name and "2001" in store[0].directory.agents
        assert store[0].directory.agents["2001"].password_hash == "test-only"


def test_a_queue_penalty_change_routes_by_the_new_penalty_at_every_site():
    sites = mesh()
    a = sites.a.core
    # A makes 1001 a penalty-3 member of sales (a [[queue]] members change) and reads its files again.
    queues = (QueueConfig(name="sales", members=(("1001", 3),)),)
    sites.a.run(a.reload(replace(a.config, queues=queues), a.directory, sites.now()))
    sites.pump()
    for site in sites.sites.values():
        assert site.core.engine.queues["sales"].config.members == (("1001", 3),)
    b_desk, _ = sites.b.agent("1001")
    c_desk, _ = sites.c.agent("1002")
    sites.a.submit(sites.a.carrier(), "call-1")
    assert [i["interaction"]["interaction_id"] for i in sites.c.invites(c_desk)] == ["call-1"], \
        "the penalty-0 member at C first, by the rules every site now shares"
    assert sites.b.invites(b_desk) == []


def test_reading_unchanged_files_again_changes_nothing():
    sites = mesh()
    store = stored(sites.a)
    before = sites.a.core.config_version
    sites.a.run(sites.a.core.reload(sites.a.core.config, sites.a.core.directory, sites.now()))
    sites.pump()
    assert sites.a.core.config_version == before and store == []


def test_a_site_that_was_cut_off_during_a_change_catches_up_when_linked_again():
    sites = mesh()
    sites.cut("C")
    add_agent(sites.a, newcomer(), sites)
    assert not logs_in(sites.c, "2001")
    assert sites.c.core.config_version.generation == 0
    sites.link_all()
    assert logs_in(sites.c, "2001")
    assert len(versions(sites)) == 1


def test_a_site_that_was_down_during_a_change_catches_up_after_its_restart():
    sites = mesh()
    sites.cut("C")
    add_agent(sites.a, newcomer(), sites)
    add_agent(sites.b, newcomer("2002"), sites)  # a second change, at another site
    c = sites.restart("C")  # C comes back with the files it had (no version stored: generation 0)
    store = stored(c)
    sites.link_all()
    assert logs_in(c, "2001") and logs_in(c, "2002")
    assert (c.core.config_version.generation, c.core.config_version.origin) == (2, "B")
    assert [s.version.generation for s in store if s.files] == [2], "taken once, from whichever site sent first"


def test_a_stored_version_is_kept_and_files_changed_while_down_are_the_next_generation():
    sites = mesh()
    add_agent(sites.a, newcomer(), sites)
    c = sites.c.core
    version = c.config_version
    again = ServerCore(c.config, c.directory, sites.now(), stream_id="C-again", config_version=version)
    assert again.config_version == version
    edited = Directory({**c.directory.agents, "2009": newcomer("2009")})
    changed = ServerCore(c.config, edited, sites.now(), stream_id="C-edited", config_version=version)
    assert (changed.config_version.generation, changed.config_version.origin) == (version.generation + 1, "C")
    assert any(isinstance(out, StoreConfig) and not out.files for out in changed.tick(sites.now()))


def test_changes_made_at_once_on_both_sides_of_a_partition_end_in_one_configuration_named_in_the_log(caplog):
    sites = mesh(("A", "B"))
    sites.cut()
    add_agent(sites.a, newcomer("2001"), sites)
    add_agent(sites.b, newcomer("2002"), sites)
    assert sites.a.core.config_version.generation == sites.b.core.config_version.generation == 1
    with caplog.at_level(logging.INFO, logger="interaction_server"):
        sites.link_all()
    # Same generation: the origin whose name sorts last wins (B); A's change is replaced, and said so.
    assert len(versions(sites)) == 1 and sites.a.core.config_version.origin == "B"
    assert logs_in(sites.a, "2002") and not logs_in(sites.a, "2001")
    assert "site B has shared configuration version 1@B" in caplog.text
    assert "taking shared configuration version 1@B" in caplog.text


def test_sites_started_with_different_files_say_so_and_neither_overwrites_the_other(caplog):
    with caplog.at_level(logging.WARNING, logger="interaction_server"):
        sites = Mesh(names=("A", "B"),
                     settings={"B": {"queues": (QueueConfig(name="sales", accept_timeout_ms=9_000),)}})
        sites.link_all()
    a, b = sites.a.core, sites.b.core
    assert a.config_version.generation == b.config_version.generation == 0
    assert a.engine.queues["sales"].config.accept_timeout_ms == 30_000
    assert b.engine.queues["sales"].config.accept_timeout_ms == 9_000
    assert a.rules_differ and b.rules_differ
    assert "neither was changed since its site started" in caplog.text
    # A change at one of them (its files fixed or changed, then read again) settles it everywhere.
    sites.a.run(a.reload(replace(a.config, queues=(QueueConfig(name="sales", accept_timeout_ms=20_000),)),
                         a.directory, sites.now()))
    sites.pump()
    assert b.engine.queues["sales"].config.accept_timeout_ms == 20_000
    assert not a.rules_differ and not b.rules_differ


def test_a_configuration_that_does_not_make_a_valid_site_is_refused_and_the_old_one_stays(caplog):
    sites = mesh(("A", "B"))
    a = sites.a.core
    store = stored(sites.b)
    # B's offer_timeout_reason ("system", a site setting) is not among A's new reasons: B refuses.
    reasons = (p.ReasonInfo(code="lunch", label="Lunch"),)
    sites.a.core.config = replace(a.config, offer_timeout_reason="lunch")
    with caplog.at_level(logging.ERROR, logger="interaction_server"):
        sites.a.run(a.reload(replace(a.config, reasons=reasons), a.directory, sites.now()))
        sites.pump()
    assert "refused, ours" in caplog.text
    assert store == [] and "break" in sites.b.core.reasons
    assert sites.b.core.rules_differ == {"A": a.rules_version}, "and B says it routes on other rules"


def test_a_directory_of_many_agents_travels_in_parts():
    sites = mesh(("A", "B"))
    a = sites.a.core
    # 700 agents with long names (256 characters) and real-sized hashes: about 300 KB in all.
    many = {f"9{i:04d}": replace(newcomer(f"9{i:04d}", sales=i % 3), name="N" * 256, password_hash="h" * 90)
            for i in range(700)}
    frames: list[str] = []
    run = sites.a.run

    def recording(outputs: list[Output]) -> None:
        frames.extend(getattr(out, "frame", "") for out in outputs)
        run(outputs)

    sites.a.run = recording  # type: ignore[method-assign]
    sites.a.run(a.reload(a.config, Directory({**a.directory.agents, **many}), sites.now()))
    sites.pump()
    assert sum('"type":"PeerConfig"' in f for f in frames) >= 6
    assert max(len(f) for f in frames if '"type":"PeerConfig"' in f) < 64 * 1024
    assert sites.b.core.directory.agents.keys() == a.directory.agents.keys()
    assert sites.b.core.directory.agents["90001"].queue_penalties() == {"sales": 1}


@pytest.mark.parametrize("first", ["parts in order", "a stale part first"])
def test_an_incomplete_or_older_configuration_changes_nothing(first):
    sites = mesh(("A", "B"))
    b = sites.b.core
    before = b.config_version
    stale = p.PeerConfig(server="A", version=p.ConfigVersion(generation=5, origin="A", digest="x"), part=0, parts=2)
    b._peer_config(stale)  # one part of two: nothing yet
    assert b.config_version == before
    if first == "a stale part first":
        b._peer_config(msgspec.structs.replace(stale, part=1))  # complete, but its digest is not of what it carries
    assert b.config_version == before


# ---------------------------------------------------------------------- supervisor actions on remote agents


def supervisor(site: SiteDriver) -> int:
    conn = site.registered()
    ack = site.request(conn, {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": PASSWORD,
                              "scope": "center"})
    assert ack["type"] == "EventAck", ack
    return conn


def statuses(site: SiteDriver, desk: int) -> list[dict]:
    return [m for m in site.received.get(desk, []) if m["type"] == "EventCurrentAgentStatus"]


def test_a_supervisor_at_a_sets_an_agent_of_b_not_ready_once_even_when_retrying():
    sites = mesh(("A", "B"))
    desk, epoch = sites.b.agent("1001")
    sup = supervisor(sites.a)
    force = {"type": "RequestForceNotReady", "agent_id": "1001", "reason": "break", "request_id": "f-1"}
    ack = sites.a.request(sup, dict(force))
    assert ack["type"] == "EventAck" and ack["epoch"] == epoch
    session = sites.b.core.sessions["1001"]
    assert (session.state, session.reason) == ("not_ready", "break")
    told = statuses(sites.b, desk)
    assert told[-1]["state"] == "not_ready" and told[-1]["forced_by"] == "sup1@A"
    # The agent goes Ready again; a retry of the same request (same request_id) changes nothing.
    sites.b.request(desk, {"type": "RequestAgentReady", "epoch": epoch})
    again = sites.a.request(sup, dict(force))
    assert again == ack
    assert sites.b.core.sessions["1001"].state == "ready"
    assert len(statuses(sites.b, desk)) == len(told) + 1  # only the agent's own Ready
    # A's center stream shows the change at B.
    assert any(m["type"] == "EventAgentStateChanged" and m["agent_id"] == "1001" and m["server"] == "B"
               and m["state"] == "not_ready" for m in sites.a.received[sup])


def test_a_supervisor_at_a_logs_out_an_agent_of_b():
    sites = mesh()
    desk, epoch = sites.c.agent("1001")
    sup = supervisor(sites.a)
    ack = sites.a.request(sup, {"type": "RequestForceLogout", "agent_id": "1001"})
    assert ack["type"] == "EventAck" and ack["epoch"] == epoch
    assert "1001" not in sites.c.core.sessions
    forced = [m for m in sites.c.received[desk] if m["type"] == "EventForcedLogout"]
    assert forced and forced[0]["reason"] == "forced" and forced[0]["by"] == "sup1@A"
    assert sites.c.closed.get(desk) is not None


def test_an_action_for_an_agent_whose_site_is_unreachable_is_a_clear_error():
    sites = mesh(("A", "B"))
    sites.b.agent("1001")
    sup = supervisor(sites.a)
    sites.up.discard(("A", "B"))  # A's link to B drops; B's to A still stands (A still knows 1001)
    sites.a.run(sites.a.core.peer_link_down(sites.now(), "ws://b"))
    error = sites.a.request(sup, {"type": "RequestForceNotReady", "agent_id": "1001", "reason": "break"})
    assert error["type"] == "EventError" and error["code"] == "site_unreachable" and "B" in error["message"]
    assert sites.b.core.sessions["1001"].state == "ready"


def test_an_unanswered_relay_times_out_and_its_retry_is_applied_once():
    sites = mesh(("A", "B"))
    desk, epoch = sites.b.agent("1001")
    sup = supervisor(sites.a)
    force = {"type": "RequestForceNotReady", "agent_id": "1001", "reason": "lunch", "request_id": "f-9"}
    sites.a.run(sites.a.core.received(sup, json.dumps(force), sites.now()))
    while sites.wire:  # B applies it; its answer is lost on the way back
        frame = sites.wire.popleft()
        if '"type":"PeerForceAck"' not in frame.frame:
            sites.deliver(frame)
    assert sites.b.core.sessions["1001"].reason == "lunch"
    count = len(statuses(sites.b, desk))
    sites.advance(6)
    error = next(m for m in sites.a.received[sup] if m.get("request_id") == "f-9")
    assert error["type"] == "EventError" and error["code"] == "site_unreachable"
    assert "retry with the same request_id" in error["message"]
    sites.a.received[sup] = []
    ack = sites.a.request(sup, dict(force))  # retried with the same request_id: B answers as the first time
    assert ack["type"] == "EventAck" and ack["epoch"] == epoch
    assert len(statuses(sites.b, desk)) == count, "applied once"


def test_a_relayed_action_for_an_agent_no_longer_there_says_so():
    sites = mesh(("A", "B"))
    desk, epoch = sites.b.agent("1001")
    sup = supervisor(sites.a)
    sites.b.core.sessions.pop("1001")  # logged out at B an instant ago; A has not heard yet
    error = sites.a.request(sup, {"type": "RequestForceLogout", "agent_id": "1001"})
    assert error["type"] == "EventError" and error["code"] == "not_logged_in" and error["message"].startswith("B:")


def test_a_supervisor_sees_the_version_and_which_sites_differ_on_the_reporting_stream():
    sites = mesh(("A", "B"))
    sup = supervisor(sites.a)
    snapshot = next(m for m in sites.a.received[sup] if m["type"] == "EventReportingSnapshot")
    assert snapshot["config_version"]["generation"] == 0 and snapshot.get("config_differs", {}) == {}
    sites.cut()
    add_agent(sites.a, newcomer(), sites)
    events = [m for m in sites.a.received[sup] if m["type"] == "EventConfigVersion"]
    assert events[-1]["version"]["generation"] == 1
    assert events[-1]["differs"]["B"]["generation"] == 0, "as B last told it"
    sites.link_all()
    events = [m for m in sites.a.received[sup] if m["type"] == "EventConfigVersion"]
    assert events[-1].get("differs", {}) == {}, "B took A's change"


def test_a_change_of_this_sites_own_settings_applies_here_and_is_no_shared_change():
    sites = mesh(("A", "B"))
    a = sites.a.core
    store = stored(sites.a)
    before = a.config_version
    sites.a.run(a.reload(replace(a.config, max_offer_timeouts=7, name="ignored"), a.directory, sites.now()))
    sites.pump()
    assert a.config.max_offer_timeouts == 7 and a.config.name == "A"
    assert a.config_version == before and store == []
    assert sites.b.core.config.max_offer_timeouts != 7
