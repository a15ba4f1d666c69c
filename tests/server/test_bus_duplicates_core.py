"""Duplicates the RabbitMQ site bus may deliver, in-process over two server cores.

The bus hands work over at least once (server_stub/bus/amqp.py): a receiver that loses its broker
connection before acknowledging gets a hand-over again, a sender whose confirm was lost publishes it
again. The core must take a repeat as a repeat (docs/multisite.md, "The core's messages on the bus")."""

from __future__ import annotations

from server_stub.core.routing import COMPLETED, MOVED
from tests.server.core_driver import CoreDriver
from tests.server.pair_driver import Frame, pair


def test_a_hand_over_delivered_three_times_and_its_answer_twice_is_offered_accepted_and_completed_once():
    sites = pair()
    sites.link_all()
    desk, epoch = sites.b.agent("1001")
    carrier_a, carrier_b = sites.a.carrier(), sites.b.carrier()
    # Not pumped: the frames wait on the wire.
    CoreDriver.request(sites.a, carrier_a, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": "call-1", "media": "voice", "queue": "sales", "created_ms": 1}})
    hand_over: Frame | None = None
    while sites.wire:
        frame = sites.wire.popleft()
        sites.deliver(frame)
        if '"PeerHandover"' in frame.frame:
            hand_over = frame
            break
    assert hand_over is not None, "A hands the call over to B, where the agent is"
    sites.deliver(hand_over)  # redelivered by the broker (B's acknowledgement was lost)
    answers = [f for f in sites.wire if '"PeerHandoverAck"' in f.frame]
    assert len(answers) == 2 and answers[0].frame == answers[1].frame, "the repeat is answered as the first"
    assert '"accepted":true' in answers[0].frame
    sites.pump()  # both answers reach A
    assert sites.a.core.engine.interactions["call-1"].status == MOVED
    assert len(sites.b.invites(desk)) == 1, "offered once, by B only"

    assert sites.b.request(desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": "call-1"})["type"] \
        == "EventAck"
    sites.deliver(hand_over)  # a late copy (a broker restart) after the agent accepted it
    sites.pump()
    assert len(sites.b.invites(desk)) == 1, "not offered again"
    done = sites.b.request(desk, {"type": "RequestCompleteInteraction", "epoch": epoch, "interaction_id": "call-1",
                                  "disposition": "resolved"})
    assert done["type"] == "EventAck", done
    sites.deliver(hand_over)  # and one after it was completed
    sites.advance(2)
    assert sites.b.core.engine.interactions["call-1"].status == COMPLETED
    assert len(sites.b.events(carrier_b, "completed", "call-1")) == 1, "completed once"
    assert not sites.a.events(carrier_a, "completed", "call-1")
    assert len(sites.b.invites(desk)) == 1
    assert sites.a.core.engine.interactions["call-1"].status in (MOVED, COMPLETED)
