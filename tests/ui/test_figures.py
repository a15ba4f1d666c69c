"""The agent's own figures without Qt, on a fake clock: what counts, what a failover keeps, what a
new login and midnight start again, and whose queue figures the panel says it shows."""

from __future__ import annotations

import dataclasses

from desktop.core import events as ev
from desktop.ui import figures as fg
from server_stub import protocol as p
from tests.ui.test_presenter import snapshot

T0 = 1_800_000_000_000


def done(iid: str) -> ev.InteractionEnded:
    return ev.InteractionEnded(iid, "completed", "resolved", "", "A")


def test_handled_average_and_time_per_state_count_from_the_handling_state():
    figures = fg.AgentFigures()
    figures.start("2027-01-15")
    steps = [("ready", 0), ("ringing", 30_000), ("busy", 35_000), ("after_call_work", 155_000), ("ready", 185_000),
             ("not_ready", 200_000), ("not_ready", 260_000)]
    for kind, at in steps:
        figures.tick(kind, T0 + at, "2027-01-15")
    figures.on_event(done("c1"))
    figures.on_event(ev.InteractionEnded("c2", "abandoned", None, "", "A"))  # not the agent's work: not counted
    assert figures.handled == 1
    assert figures.average_handle_seconds() == 150.0  # 120 s in hand + 30 s wrap-up
    assert figures.average_text() == "02:30"
    assert figures.state_rows() == [("Ready", "00:45"), ("Ringing", "00:05"), ("Talking / busy", "02:00"),
                                    ("After Call Work", "00:30"), ("Not Ready", "01:00")]


def test_a_failover_keeps_the_figures_a_login_and_midnight_start_them_again():
    figures = fg.AgentFigures()
    figures.start("2027-01-15")
    figures.tick("busy", T0, "2027-01-15")
    figures.on_event(done("c1"))
    # A failover: the state shown stays (the call in hand), the session and these figures carry on.
    figures.tick("busy", T0 + 60_000, "2027-01-15")
    assert figures.handled == 1 and figures.seconds["busy"] == 60.0
    figures.tick("ready", T0 + 61_000, "2027-01-16")  # past midnight
    assert figures.handled == 0 and figures.seconds == {}
    figures.tick("ready", T0 + 7_200_000, "2027-01-16")  # a suspended laptop: the gap is not counted
    assert figures.seconds == {}
    figures.start("2027-01-16")  # a new login
    assert figures.average_text() == "–"


def test_the_queue_rows_and_whose_figures_they_are():
    stats = [p.QueueStatistics(queue="sales", waiting=2, longest_wait_ms=42_000, offered=5, answered=3, abandoned=0,
                               service_level=1.0, service_level_target_ms=20_000),
             p.QueueStatistics(queue="support", waiting=0, longest_wait_ms=0, offered=0, answered=0, abandoned=0,
                               service_level=None, service_level_target_ms=20_000)]
    assert fg.queue_rows(stats) == [fg.QueueRow("sales", "2", "00:42", True), fg.QueueRow("support", "0", "–", False)]
    base = snapshot()
    assert fg.queues_note(base) == "No queue figures yet."
    on_a = dataclasses.replace(base, primary="A", queues=tuple(stats), queues_from="A")
    assert fg.queues_note(on_a) == "Figures from site A, counted since that server started."
    moving = dataclasses.replace(on_a, primary=None)
    assert fg.queues_note(moving) == "Last figures from site A; no server holds your login right now."
    on_b = dataclasses.replace(on_a, primary="B")
    assert fg.queues_note(on_b) == "Figures from site A; waiting for site B's."
