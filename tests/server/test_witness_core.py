"""The witness (docs/failover.md, "Overload") in-process over two server cores: a primary that is
alive but too loaded to answer the standby's question in time is not declared dead while its
peer link still carries its heartbeats; one whose peer link went silent too is."""

from __future__ import annotations

import json

import pytest

from server_stub import protocol as p
from tests.server.core_driver import PASSWORD
from tests.server.pair_driver import Mesh, pair


def a_login_with_a_standby_at_b() -> tuple[Mesh, int, int]:
    """Agent 1001 logged in at A, its standby at B: (mesh, B's standby socket, the login's epoch)."""
    mesh = pair()
    mesh.link_all()
    login = mesh.a.request(mesh.a.registered(), {"type": "RequestAgentLogin", "agent_id": "1001",
                                                 "password": PASSWORD})
    standby = mesh.b.registered()
    ack = mesh.b.request(standby, {"type": "RequestAgentAvailable", "agent_id": "1001",
                                   "resume_token": login["resume_token"]})
    assert ack["type"] == "EventAck", ack
    return mesh, standby, login["epoch"]


@pytest.mark.parametrize(("peer_heartbeats", "alive"), [(True, True), (False, False)])
def test_a_primary_too_loaded_to_answer_in_time_is_not_taken_for_dead_while_its_peer_link_lives(
        peer_heartbeats, alive):
    mesh, standby, epoch = a_login_with_a_standby_at_b()
    b = mesh.b
    b.run(b.core.received(standby, json.dumps({"type": "RequestPrimaryCheck", "request_id": "chk",
                                               "epoch": epoch}), b.now()))
    assert any(isinstance(p.decode_client(f.frame), p.PeerWitness) for f in mesh.wire if f.to == "A")
    mesh.wire.clear()  # A is too loaded to read the question (or its answer is still queued)
    for _ in range(12):  # 1.2 s: past the witness' ask timeout (1 s)
        mesh.mono += 0.1
        if peer_heartbeats:  # A runs: its peer link's heartbeats (the transport's, every 0.5 s) arrive
            b.run(b.core.received(mesh.conn("A"), '{"type": "Heartbeat"}', b.now()))
        b.run(b.core.tick(b.now()))
    (answer,) = [m for m in b.received.get(standby, []) if m.get("request_id") == "chk"]
    assert (answer["type"], answer["primary_alive"]) == ("EventAck", alive)
