"""Qt-free texts of the interaction widgets, with a fake clock."""

from __future__ import annotations

from desktop.core import events as ev
from desktop.ui import interaction_presenter as ip
from server_stub import protocol as p

CALL = p.Interaction(interaction_id="call-1", media="voice", queue="billing", created_ms=0,
                     customer={"name": "Dana Ortiz", "account_no": "88-1203"}, subject="Invoice question")
BARE = p.Interaction(interaction_id="mail-2", media="email", queue="support", created_ms=0)


def test_countdown_rounds_up_and_stops_at_zero():
    assert ip.countdown_text(expires_ms=30_000, wall_ms=0) == "Answer within 00:30"
    assert ip.countdown_text(expires_ms=30_000, wall_ms=29_001) == "Answer within 00:01"
    assert ip.countdown_text(expires_ms=30_000, wall_ms=30_000) == "Time is up"
    assert ip.countdown_text(expires_ms=30_000, wall_ms=45_000) == "Time is up"  # clock skew: never negative


def test_media_labels_and_icons():
    assert [ip.media_label(m) for m in ("voice", "chat", "email")] == ["Voice call", "Chat", "Email"]
    assert [ip.media_icon(m) for m in ("voice", "chat", "email")] == ["media-voice", "media-chat", "media-email"]
    assert ip.media_icon("fax") == "media-chat"


def test_customer_data():
    assert ip.offer_title(CALL) == "Voice call – billing – Dana Ortiz"
    assert ip.offer_title(BARE) == "Email – support"
    assert ip.customer_text(CALL) == "Subject: Invoice question\nName: Dana Ortiz\nAccount no: 88-1203"
    assert ip.customer_text(BARE) == "No customer data"


def test_held_rows_show_time_in_hand_and_failover_progress():
    held = ev.HeldInfo(CALL, accepted_ms=1_000, notes="", endpoint="A", epoch=3, completing=False)
    assert ip.held_row_text(held, 66_000) == "Voice call · Dana Ortiz · 01:05"
    moving = ev.HeldInfo(BARE, accepted_ms=1_000, notes="", endpoint=None, epoch=None, completing=False)
    assert ip.held_row_text(moving, 1_000) == "Email · mail-2 · 00:00, moving…"
    done = ev.HeldInfo(BARE, accepted_ms=1_000, notes="", endpoint="B", epoch=4, completing=True)
    assert ip.held_row_text(done, 3_500) == "Email · mail-2 · 00:02, completing…"


def test_after_call_work_timer():
    untimed = ev.AgentStatus(state="after_call_work", reason=None, since_ms=10_000, epoch=1, endpoint="A")
    assert ip.acw_text(untimed, 17_400) == "After Call Work 00:07"
    timed = ev.AgentStatus(state="after_call_work", reason=None, since_ms=10_000, epoch=1, endpoint="A",
                           until_ms=20_000)
    assert ip.acw_text(timed, 17_400) == "After Call Work 00:07 – 00:02 left"
    assert ip.acw_text(timed, 40_000) == "After Call Work 00:30 – 00:00 left"
    ready = ev.AgentStatus(state="ready", reason=None, since_ms=10_000, epoch=1, endpoint="A")
    assert ip.acw_text(ready, 17_400) == "" and ip.acw_text(None, 0) == ""


def test_end_and_revoke_messages_and_log_rows():
    completed = ev.InteractionEnded("call-1", "completed", "resolved", "", "B")
    assert ip.ended_text(completed, {"resolved": "Resolved"}) == "Interaction call-1 completed (Resolved)"
    abandoned = ev.InteractionEnded("call-1", "abandoned", None, "", "A")
    assert ip.ended_text(abandoned) == "Interaction call-1 ended: the customer hung up"
    odd = ev.InteractionEnded("call-1", "something_new", None, "the server said so", "A")
    assert ip.ended_text(odd) == "Interaction call-1 ended: the server said so"
    revoked = ev.OfferRevoked("call-1", "timeout", "not answered within 30 s", "A")
    assert ip.revoked_text(revoked) == "Offer call-1 withdrawn: not answered in time"
    row = ip.log_row(ev.OfferReceived(CALL, 0, 30_000, "A", 2), 5)
    assert (row.category, row.text) == ("interaction", "Offered call-1: Voice call – billing – Dana Ortiz (site A)")
    # Notes are saved every pause in typing: not worth a row each, but a refusal is.
    notes = ev.InteractionIntent("notes", "call-1", notes="x")
    assert ip.log_row(ev.InteractionApplied("r1", notes, "A", 2), 5) is None
    assert ip.log_row(ev.InteractionFailed("r1", notes, "unknown_interaction", "not yours"), 5).text == \
        "Save notes call-1: failed (unknown_interaction: not yours)"
    assert ip.log_row(ev.LoggedOut("logout"), 5) is None


def test_notes_are_sent_only_when_changed():
    state = ip.NotesState("call-1", "hello")
    assert not state.needs_send("hello") and state.needs_send("hello!")


def test_dispositions_in_the_servers_order():
    reasons = [p.ReasonInfo(code="resolved", label="Resolved"), p.ReasonInfo(code="follow_up", label="")]
    assert ip.disposition_items(reasons) == [("Resolved", "resolved"), ("follow_up", "follow_up")]


def test_interaction_presenter_does_not_load_qt():
    import subprocess
    import sys

    code = (
        "import sys, desktop.ui.interaction_presenter; print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_handling_state_follows_the_work_and_names_the_chosen_state():
    labels = {"lunch": "Lunch"}
    ready = ev.AgentStatus("ready", None, 1_000, 3, "A")
    offer = ev.OfferInfo(BARE, offered_ms=10_000, expires_ms=40_000, endpoint="A", epoch=3)
    call = ev.HeldInfo(CALL, accepted_ms=20_000, notes="", endpoint="A", epoch=3, completing=False)
    mail = ev.HeldInfo(BARE, accepted_ms=25_000, notes="", endpoint="A", epoch=3, completing=False)
    assert ip.handling_state(None, (), (), labels, 0) == ip.Handling("logged_out", "Logged out", "", "offline")
    assert ip.handling_state(ready, (), (), labels, 61_000) == ip.Handling("ready", "Ready", "01:00", "ready")
    assert ip.handling_state(ready, (offer,), (), labels, 13_000) == ip.Handling(
        "ringing", "Ringing – Email", "00:03", "media-email", "Ready")
    assert ip.handling_state(ready, (), (call,), labels, 92_000) == ip.Handling(
        "busy", "Talking – Voice call", "01:12", "media-voice", "Ready")
    assert ip.handling_state(ready, (), (mail,), labels, 26_000).text == "Busy – Email"
    two = ip.handling_state(ready, (offer,), (call, mail), labels, 30_000)  # in hand wins over ringing
    assert (two.text, two.clock) == ("Busy – 2 interactions", "00:10")
    lunch = ev.AgentStatus("not_ready", "lunch", 1_000, 3, "A")
    assert ip.handling_state(lunch, (), (call,), labels, 21_000).chosen == "Not Ready – Lunch"
    timed = ev.AgentStatus("after_call_work", None, 50_000, 3, "A", until_ms=55_000)
    assert ip.handling_state(timed, (), (), labels, 51_200) == ip.Handling(
        "after_call_work", "After Call Work", "00:03 left", "acw")
    untimed = ev.AgentStatus("after_call_work", None, 50_000, 3, "A")
    assert ip.handling_state(untimed, (), (), labels, 57_000).clock == "00:07"


def test_only_an_offer_let_time_out_is_a_missed_one():
    offer = ev.OfferInfo(CALL, offered_ms=0, expires_ms=30_000, endpoint="A", epoch=3)
    timeout = ev.OfferRevoked("call-1", "timeout", "not answered within 30 s", "A")
    assert ip.missed_text(timeout, offer, "12:03:04") == (
        "Missed at 12:03:04: Voice call – billing – Dana Ortiz – not answered in time. It went back to its queue.")
    assert ip.missed_text(timeout, None, "12:03:04").startswith("Missed at 12:03:04: call-1 –")
    assert ip.missed_text(ev.OfferRevoked("call-1", "abandoned", "hung up", "A"), offer, "12:03:04") is None
