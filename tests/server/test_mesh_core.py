"""Three sites, each linked to every other (a mesh, docs/multisite.md), in-process over three
server cores: presence from all, hand-over to the best member anywhere, fencing across all."""

from __future__ import annotations

from server_stub import protocol as p
from server_stub.config import QueueConfig
from server_stub.core.routing import COMPLETED, MOVED
from server_stub.directory import AgentRecord, Directory
from tests.server.core_driver import PASSWORD
from tests.server.pair_driver import Mesh


def mesh(**settings: object) -> Mesh:
    sites = Mesh(names=("A", "B", "C"))
    for site in sites.sites.values():
        if settings:
            site.core.config = site.core.config.with_overrides(**settings)
    sites.link_all()
    return sites


def test_every_site_knows_the_agents_of_every_other():
    sites = mesh()
    sites.b.agent("1001")
    sites.c.agent("1002", ready=False)
    pool = sites.a.core.pool
    assert (pool.remote["1001"].site, pool.remote["1001"].available) == ("B", True)
    assert (pool.remote["1002"].site, pool.remote["1002"].available) == ("C", False)
    assert sites.b.core.pool.remote["1002"].site == "C" and sites.c.core.pool.remote["1001"].site == "B"


def test_a_call_waiting_where_nobody_is_goes_to_the_agent_at_the_third_site_and_counts_once():
    sites = mesh()
    desk, epoch = sites.c.agent("1001")
    carrier = sites.a.carrier()
    assert sites.a.submit(carrier, "call-1")["type"] == "EventAck"
    assert [i["interaction"]["interaction_id"] for i in sites.c.invites(desk)] == ["call-1"]
    assert sites.a.core.engine.interactions["call-1"].status == MOVED
    assert "call-1" not in sites.b.core.engine.interactions
    assert sites.c.request(desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": "call-1"})["type"] \
        == "EventAck"
    assert sites.c.request(desk, {"type": "RequestCompleteInteraction", "epoch": epoch, "interaction_id": "call-1",
                                  "disposition": "resolved"})["type"] == "EventAck"
    assert sites.c.core.engine.interactions["call-1"].status == COMPLETED
    assert not sites.a.core.engine.interactions["call-1"].custody, "C's accept claim reached A"
    for site in (sites.a, sites.b):  # every site knows it is done: a re-submission is a duplicate
        assert site.submit(site.carrier(), "call-1")["code"] == "duplicate_interaction"


def test_the_lowest_penalty_anywhere_wins():
    sites = Mesh(names=("A", "B", "C"))
    for site in sites.sites.values():
        site.core.engine.queues["sales"].config = QueueConfig(name="sales")
    sites.link_all()
    # 1001 at B is a member at penalty 1 there; 1002 at C at penalty 0 (each site's own rules).
    sites.b.core._queue_members["1001"]["sales"] = 1
    b_desk, _ = sites.b.agent("1001")
    c_desk, _ = sites.c.agent("1002")
    carrier = sites.a.carrier()
    sites.a.submit(carrier, "call-1")
    assert [i["interaction"]["interaction_id"] for i in sites.c.invites(c_desk)] == ["call-1"]
    sites.a.submit(carrier, "call-2")  # the penalty-0 member is busy: the penalty-1 one gets it
    assert [i["interaction"]["interaction_id"] for i in sites.b.invites(b_desk)] == ["call-2"]


def test_a_login_at_a_third_site_fences_the_old_one_and_every_site_hears_it():
    sites = mesh()
    old, _ = sites.b.agent("1001")
    new, epoch = sites.c.agent("1001")
    assert epoch == 2
    assert "1001" not in sites.b.core.sessions, "B ended its login when C told it of the newer one"
    assert sites.b.closed.get(old) is not None
    assert sites.a.core.fencing.peer_logged_in["1001"] == 2
    assert sites.a.core.fencing.peer_site("1001") == "C"
    assert sites.a.core.pool.remote["1001"].site == "C"


def test_what_a_dead_site_had_taken_and_nobody_accepted_comes_back_and_the_others_keep_serving():
    sites = mesh(heartbeat_timeout_ms=60_000)  # the desktops here send no heartbeats
    sites.c.agent("1001")
    b_desk, b_epoch = sites.b.agent("1002", ready=False)
    carrier = sites.a.carrier()
    sites.a.submit(carrier, "call-1")
    assert sites.a.core.engine.interactions["call-1"].moved_to == "C"
    assert sites.b.request(b_desk, {"type": "RequestAgentReady", "epoch": b_epoch})["type"] == "EventAck"
    sites.cut("C")  # C dies before its agent accepts
    sites.advance(19)
    assert sites.a.core.engine.interactions["call-1"].status == MOVED, "C may only be cut off: A waits"
    sites.advance(2)  # orphan_timeout_ms: A takes it back; B's agent is free
    assert [i["interaction"]["interaction_id"] for i in sites.b.invites(b_desk)] == ["call-1"]
    assert sites.a.core.engine.interactions["call-1"].status == MOVED
    assert sites.a.core.engine.interactions["call-1"].moved_to == "B"


def test_sites_whose_routing_rules_differ_say_so_and_route_nothing_to_each_other():
    """One configuration (docs/multisite.md): B runs another accept timeout for "sales". A does
    not hand B's agents anything, B refuses A's hand-overs, and both name the versions."""
    sites = Mesh(names=("A", "B"), settings={"B": {"queues": (QueueConfig(name="sales", accept_timeout_ms=9_000),)}})
    sites.link_all()
    a, b = sites.a.core, sites.b.core
    assert a.rules_version != b.rules_version
    assert a.rules_differ == {"B": b.rules_version} and b.rules_differ == {"A": a.rules_version}
    desk, _ = sites.b.agent("1001")
    carrier = sites.a.carrier()
    sites.a.submit(carrier, "call-1")
    assert a.engine.interactions["call-1"].status == "queued", "not routed on B's rules"
    assert sites.b.invites(desk) == []
    refused = b._take_over(p.PeerHandover(server="A", agent_id="1001", epoch=1, moves=1, arrived_ms=1,
                                          interaction=p.Interaction(interaction_id="x", media="voice", queue="sales",
                                                                    created_ms=1)))
    assert not refused.accepted and a.rules_version in (refused.reason or "")


def test_sites_with_the_same_rules_agree_on_the_version():
    sites = mesh()
    versions = {site.core.rules_version for site in sites.sites.values()}
    assert len(versions) == 1 and not any(site.core.rules_differ for site in sites.sites.values())


def test_a_reload_brings_a_site_back_to_the_shared_rules_without_a_restart():
    """B was started with other rules; its files are fixed and read again (SIGHUP): both sites
    agree on the version at once and interactions go between them again."""
    sites = Mesh(names=("A", "B"), settings={"B": {"queues": (QueueConfig(name="sales", accept_timeout_ms=9_000),)}})
    sites.link_all()
    desk, _ = sites.b.agent("1001")
    carrier = sites.a.carrier()
    sites.a.submit(carrier, "call-1")
    assert sites.a.core.engine.interactions["call-1"].status == "queued"
    b = sites.b.core
    sites.b.run(b.reload(sites.a.core.config, sites.a.core.directory, sites.now()))
    sites.pump()
    assert b.rules_version == sites.a.core.rules_version
    assert not b.rules_differ and not sites.a.core.rules_differ
    assert b.config.name == "B" and b.engine.queues["sales"].config.accept_timeout_ms == 30_000
    assert [i["interaction"]["interaction_id"] for i in sites.b.invites(desk)] == ["call-1"]


def test_an_agent_added_to_the_directory_logs_in_after_a_reload():
    sites = mesh()
    site = sites.a
    directory = site.core.directory
    newcomer = AgentRecord(id="2001", name="New", password_hash="test-only", role="agent", queues=("sales",))
    bigger = Directory({**directory.agents, "2001": newcomer})
    site.run(site.core.reload(site.core.config, bigger, sites.now()))
    conn = site.registered()
    assert site.request(conn, {"type": "RequestAgentLogin", "agent_id": "2001", "password": PASSWORD})["type"] \
        == "EventAck"
    # The change reached B and C with its version (tests/server/test_shared_config_core.py): one rules version.
    assert not site.core.rules_differ and not sites.b.core.rules_differ
    assert sites.c.core.directory.get("2001") == newcomer
