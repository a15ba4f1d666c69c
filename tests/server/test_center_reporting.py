"""A supervisor sees the whole center from one server (issue 13): a reporting subscription with
``scope: "center"`` at A carries the agents logged in at B as A's agent pool knows them, each with
``server: "B"``; a site subscription at A does not (its stream stays as it was)."""

from __future__ import annotations

from tests.server.core_driver import PASSWORD
from tests.server.pair_driver import Mesh, SiteDriver, pair


def linked() -> Mesh:
    sites = pair()
    sites.link_all()
    return sites


def subscribe(site: SiteDriver, scope: str | None) -> tuple[int, list[dict]]:
    conn = site.registered()
    request = {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": PASSWORD}
    if scope is not None:
        request["scope"] = scope
    ack = site.request(conn, request)
    assert ack["type"] == "EventAck", ack
    return conn, site.received[conn]


def reporting(frames: list[dict]) -> list[dict]:
    return [m for m in frames if m["type"] in ("EventReportingSnapshot", "EventAgentLogin", "EventAgentLogout",
                                                "EventAgentStateChanged")]


def test_a_center_subscriber_at_a_sees_an_agent_log_in_change_state_and_log_out_at_b():
    mesh = linked()
    a_desk, _ = mesh.a.agent("1002")
    center, frames = subscribe(mesh.a, "center")
    site, site_frames = subscribe(mesh.a, None)
    desk, epoch = mesh.b.agent("1001")
    mesh.pump()
    logins = [m for m in frames if m["type"] == "EventAgentLogin" and m["agent"]["agent_id"] == "1001"]
    assert logins and logins[0]["server"] == "B" and logins[0]["agent"]["server"] == "B"
    assert logins[0]["agent"]["epoch"] == epoch
    assert any(m["type"] == "EventAgentStateChanged" and m["agent_id"] == "1001" and m["state"] == "ready"
               and m["server"] == "B" for m in frames)
    mesh.b.request(desk, {"type": "RequestAgentAfterCallWork", "epoch": epoch})
    mesh.pump()
    assert [m for m in frames if m["type"] == "EventAgentStateChanged" and m["agent_id"] == "1001"][-1]["state"] \
        == "after_call_work"
    mesh.b.request(desk, {"type": "RequestAgentLogout", "epoch": epoch})
    mesh.pump()
    assert [m["type"] for m in reporting(frames) if m.get("agent_id", m.get("agent", {}).get("agent_id")) == "1001"
            ][-1] == "EventAgentLogout"
    # This site's own agent is in the center stream too, and its seq goes up by exactly one per event.
    seqs = [m["seq"] for m in reporting(frames)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # The site subscriber at A saw nothing of B.
    assert all(m.get("server") in (None, "A") for m in reporting(site_frames))
    assert not any("1001" in str(m) for m in reporting(site_frames))
    del a_desk, center, site


def test_a_center_snapshot_lists_the_agents_of_both_sites_and_a_resume_replays_from_its_place():
    mesh = linked()
    mesh.a.agent("1002")
    mesh.b.agent("1001")
    mesh.pump()
    _, frames = subscribe(mesh.a, "center")
    snapshot = next(m for m in frames if m["type"] == "EventReportingSnapshot")
    servers = {a["agent_id"]: a.get("server", snapshot["server"]) for a in snapshot["agents"]}
    assert servers == {"1001": "B", "1002": "A"}
    # A site snapshot at A lists A's agent only.
    _, site_frames = subscribe(mesh.a, "site")
    assert [a["agent_id"] for a in next(m for m in site_frames if m["type"] == "EventReportingSnapshot")["agents"]] \
        == ["1002"]
    # Resuming the center stream from its snapshot's place replays what came after.
    conn = mesh.a.registered()
    ack = mesh.a.request(conn, {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": PASSWORD,
                                "scope": "center",
                                "resume": {"stream_id": snapshot["stream_id"], "seq": snapshot["seq"]}})
    assert ack["type"] == "EventAck" and ack["stream_id"] == snapshot["stream_id"]
    assert not any(m["type"] == "EventReportingSnapshot" for m in mesh.a.received[conn])


def test_when_the_link_to_b_is_lost_its_agents_show_unreachable_and_come_back_with_it():
    mesh = linked()
    mesh.b.agent("1001")
    _, frames = subscribe(mesh.a, "center")
    mesh.cut("B")
    mesh.pump()
    changes = [m for m in frames if m["type"] == "EventAgentStateChanged" and m["agent_id"] == "1001"]
    assert changes and changes[-1]["reachable"] is False
    mesh.link_all()
    mesh.pump()
    changes = [m for m in frames if m["type"] == "EventAgentStateChanged" and m["agent_id"] == "1001"]
    assert changes[-1].get("reachable", True) is True


def test_the_default_scope_is_not_on_the_wire_and_a_bad_scope_is_a_clear_error():
    from server_stub import protocol as p

    frame = p.encode(p.RequestSubscribeReporting(request_id="r1", user_id="sup1", password=PASSWORD))
    assert "scope" not in frame
    mesh = linked()
    conn = mesh.a.registered()
    answer = mesh.a.request(conn, {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": PASSWORD,
                                   "scope": "planet"})
    assert answer["type"] == "EventError" and answer["code"] == "bad_message" and "scope" in answer["message"]


def test_three_sites_from_one_subscription_and_an_agent_that_moves_is_listed_once():
    mesh = Mesh()  # A, B and C, each linked to the others
    mesh.link_all()
    mesh.b.agent("1001")
    mesh.c.agent("1002")
    _, frames = subscribe(mesh.a, "center")
    snapshot = next(m for m in frames if m["type"] == "EventReportingSnapshot")
    assert {a["agent_id"]: a["server"] for a in snapshot["agents"]} == {"1001": "B", "1002": "C"}
    # 1001 logs in again at A (its login at B is fenced): the stream says A, and a new snapshot
    # lists it once, at A.
    mesh.a.agent("1001")
    mesh.pump()
    logins = [m for m in frames if m["type"] == "EventAgentLogin" and m["agent"]["agent_id"] == "1001"]
    assert logins[-1]["server"] == "A"
    _, again = subscribe(mesh.a, "center")
    listed = next(m for m in again if m["type"] == "EventReportingSnapshot")["agents"]
    assert [a.get("server", "A") for a in listed if a["agent_id"] == "1001"] == ["A"]
