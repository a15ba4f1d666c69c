"""RequestTransferTargets over real server cores, in-process (docs/protocol.md, "Hold and
transfers"): the queues and every agent logged in anywhere in the center, with its site and whether
a transfer would find it available now; the asker is not listed; a dead peer's agents go."""

from __future__ import annotations

from tests.server.test_transfers_core import in_hand, linked_pair


def targets(site, conn: int, epoch: int) -> dict:
    answer = site.request(conn, {"type": "RequestTransferTargets", "epoch": epoch})
    assert answer["type"] == "EventAck", answer
    return answer["transfer_targets"]


def by_id(listed: dict) -> dict[str, tuple]:
    return {a["agent_id"]: (a["site"], a["state"], a["available"], a.get("name")) for a in listed["agents"]}


def test_the_whole_center_is_listed_with_sites_and_availability_and_a_listed_agent_takes_the_transfer():
    sites = linked_pair()
    carrier = sites.a.carrier()
    first, e1 = sites.a.agent("1001")
    in_hand(sites.a, carrier, first, e1)
    other, e3 = sites.a.agent("sup1", ready=False)  # a supervisor logged in to take calls, Not Ready
    second, e2 = sites.b.agent("1002", ready=False)

    listed = targets(sites.a, first, e1)
    assert listed["queues"] == ["sales", "support"]
    assert by_id(listed) == {"1002": ("B", "not_ready", False, "1002"), "sup1": ("A", "not_ready", False, "sup1")}
    assert sites.b.request(second, {"type": "RequestAgentReady", "epoch": e2})["type"] == "EventAck"
    assert by_id(targets(sites.a, first, e1))["1002"] == ("B", "ready", True, "1002")
    # What the list says available, a transfer finds available; then it is not (ringing with it).
    answer = sites.a.request(first, {"type": "RequestTransfer", "epoch": e1, "interaction_id": "call-1",
                                     "kind": "blind", "to_agent": "1002"})
    assert answer["type"] == "EventAck", answer
    assert by_id(targets(sites.a, other, e3)) == {"1001": ("A", "ready", True, "1001"),
                                                  "1002": ("B", "ready", False, "1002")}


def test_the_same_list_from_the_other_site_and_a_dead_peers_agents_are_not_offered():
    sites = linked_pair()
    a_desk, e1 = sites.a.agent("1001")
    b_desk, e2 = sites.b.agent("1002")
    assert by_id(targets(sites.b, b_desk, e2)) == {"1001": ("A", "ready", True, "1001")}
    sites.cut("A")  # A dies (its links drop)
    assert targets(sites.b, b_desk, e2)["agents"] == []


def test_only_a_logged_in_agent_may_ask():
    sites = linked_pair()
    desk, epoch = sites.a.agent("1001")
    stale = sites.a.request(desk, {"type": "RequestTransferTargets", "epoch": epoch + 1})
    assert stale["type"] == "EventError"
    carrier = sites.a.carrier()
    assert sites.a.request(carrier, {"type": "RequestTransferTargets", "epoch": 1})["code"] == "not_logged_in"
