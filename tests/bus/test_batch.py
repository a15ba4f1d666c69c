"""Several frames in one bus message (server_stub/bus/amqp.py ``pack``/``unpack``; docs/multisite.md,
"Throughput"), without a broker: a batch gives back its frames, and a cut one is refused (the
receiver drops it with a warning instead of handing the server half a frame)."""

from __future__ import annotations

import pytest

from server_stub.bus.amqp import pack, unpack


def test_a_batch_unpacks_to_its_frames_in_order():
    frames = [b"", b"x", b'{"type":"PeerPresence"}' * 100, b"\x00\x00\x00\x05"]
    assert unpack(pack(frames)) == frames


@pytest.mark.parametrize("cut", [1, 5, -1])
def test_a_truncated_batch_is_refused(cut):
    body = pack([b"abc", b"defgh"])
    with pytest.raises(ValueError, match="batch ends inside"):
        unpack(body[:cut])
