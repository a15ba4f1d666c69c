"""A peer's full state may be bigger than a client's frame limit (64 KiB by default: about 370
agents logged in at the peer site). Seen in bench/multisite.py: a site restarted under 2,000 agents
closed every peer link that brought it a full state with 1009 and never linked again. A socket
that said ``PeerHello`` (and was challenged) takes frames up to the configurable maximum; any
other socket keeps the client limit (tests/server/test_bad_input.py)."""

from __future__ import annotations

import json

from server_stub.protocol import CloseCode
from tests.server.wire import WireClient, connect_registered, run

BIG = 100_000  # bytes: above the 64 KiB client limit


def test_a_server_that_said_hello_may_send_a_frame_bigger_than_a_clients_limit(server):
    async def scenario():
        peer = await WireClient.open(server.url, heartbeat=None)
        await peer.send({"type": "PeerHello", "server": "Z", "nonce": "ab" * 16})
        await peer.expect("PeerChallenge")
        # Not proven yet: the big frame is refused as a peer message, but not with 1009.
        await peer.send_raw(json.dumps({"type": "PeerAgentEpochs", "server": "Z", "full": True,
                                        "agents": [], "pad": "x" * BIG}))
        error = await peer.recv()
        assert error["type"] == "EventError", error
        await peer.assert_open()

        client = await connect_registered(server.url)
        big = json.dumps({"type": "RequestAgentReady", "request_id": "big", "epoch": 1, "pad": "x" * BIG})
        assert await client.send_expecting_close(big) == CloseCode.MESSAGE_TOO_BIG

    run(scenario())
