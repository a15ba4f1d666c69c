"""A carrier's submissions against the server core in-process: the bounds it meets on the wire."""

from __future__ import annotations

from tests.server.core_driver import PASSWORD, CoreDriver, core


def test_a_carrier_flooding_a_queue_is_told_queue_full_and_can_act_on_it():
    """5,898 waiting interactions with large customer data once took 422 MiB: now the carrier is
    refused with queue_full (a code it can act on: later, or another site) past the bound."""
    driver = CoreDriver(core=core(max_waiting_per_queue=3))
    carrier = driver.registered()
    assert driver.request(carrier, {"type": "RequestSubscribeReporting", "user_id": "carrier1",
                                    "password": PASSWORD})["type"] == "EventAck"
    answers = []
    for i in range(5):
        interaction = {"interaction_id": f"c-{i}", "media": "voice", "queue": "sales", "created_ms": 1,
                       "customer": {f"field{k}": "x" * 200 for k in range(20)}}
        answers.append(driver.request(carrier, {"type": "RequestSubmitInteraction", "interaction": interaction}))
    assert [a["type"] for a in answers[:3]] == ["EventAck"] * 3
    assert [a.get("code") for a in answers[3:]] == ["queue_full", "queue_full"]
    assert "'sales'" in answers[3]["message"] and "later" in answers[3]["message"]
    assert driver.core.engine.queues["sales"].waiting_count == 3
