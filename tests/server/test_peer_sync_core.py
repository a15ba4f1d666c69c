"""The peer link's start-up sync, in-process over two server cores: large syncs pass whole."""

from __future__ import annotations

import pytest

from server_stub import protocol as p
from server_stub.core import Now, PeerSend, Send, ServerCore
from server_stub.core.routing import EngineRefusal
from tests.server.core_driver import WALL0, core


def shuttle(dialer: ServerCore, dialed: ServerCore, now: Now) -> int:
    """Run the dialer's outbound link to ``dialed`` until it is quiet; frames carried."""
    carried = 0
    dialed.connected(99, "127.0.0.1:40999", now)
    out = dialer.peer_link_up(now)
    pending: list[tuple[str, str]] = []
    while True:
        for o in out:
            if isinstance(o, PeerSend):
                pending.append(("to_dialed", o.frame))
                carried += 1
            elif isinstance(o, Send) and o.conn == 99:
                pending.append(("to_dialer", o.frame))
                carried += 1
        if not pending:
            return carried
        kind, frame = pending.pop(0)
        out = dialed.received(99, frame, now) if kind == "to_dialed" else dialer.peer_link_message(
            p.decode_client(frame), now)


def test_a_start_up_sync_of_20000_records_passes_whole():
    """The review saw the peer link throttled like a client close under a much smaller load; a
    site's sync after a restart is 20,000 completions and must arrive complete."""
    now = Now(1.0, WALL0 + 1000)
    a = core(peer_url="ws://b")
    engine = a.engine
    engine.login("agent", {"sales": 0}, "ready", now.wall_ms)
    for i in range(20_000):
        iid = f"done-{i}"
        engine.submit(p.Interaction(interaction_id=iid, media="voice", queue="sales", created_ms=1), now.wall_ms)
        engine.accept("agent", iid, now.wall_ms)
        engine.confirm(iid)
        engine.complete("agent", iid, "resolved", "", now.wall_ms)
        engine.mark_reported(iid)
    b = core(name="B", peer_url="ws://a")
    carried = shuttle(b, a, now)
    assert carried > 200  # a hundred records per frame, both ways
    for iid in ("done-0", "done-9999", "done-19999"):
        with pytest.raises(EngineRefusal) as refused:
            b.engine.submit(p.Interaction(interaction_id=iid, media="voice", queue="sales", created_ms=1), now.wall_ms)
        assert refused.value.code == "duplicate_interaction" and "at the peer site" in refused.value.message
