"""Interactions in the desktop against real servers (processes where one dies or hangs): an offer
toast from a queued interaction, accept, notes typed across a kill -9 failover, Done on the
surviving site (reported exactly once there), the After Call Work timer; and a rejected offer
going away."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
from PySide6.QtCore import Qt

from desktop.core import events as ev
from tests.support.reporting import ReportingWatcher
from tests.ui.test_desktop_gui import WAIT, log_in

pytestmark = pytest.mark.slow


def submit(qtbot, watcher: ReportingWatcher, interaction_id: str, queue: str = "sales", **extra) -> None:
    """Queue an interaction through the supervisor's own socket (sup1 may submit, like a carrier)."""
    interaction = {"interaction_id": interaction_id, "media": "voice", "queue": queue,
                   "created_ms": int(time.time() * 1000), **extra}
    frame = json.dumps({"type": "RequestSubmitInteraction", "request_id": f"submit-{interaction_id}",
                        "interaction": interaction})
    assert watcher._ws is not None  # subscribed
    asyncio.run_coroutine_threadsafe(watcher._ws.send(frame), watcher._loop).result(5)
    qtbot.waitUntil(
        lambda: any(e.get("request_id") == f"submit-{interaction_id}" for e in watcher.events), timeout=WAIT
    )
    answer = next(e for e in watcher.events if e.get("request_id") == f"submit-{interaction_id}")
    assert answer["type"] == "EventAck", answer


def interaction_events(watcher: ReportingWatcher, interaction_id: str, event: str) -> list[dict]:
    return [e for e in watcher.of("EventInteraction") if e["interaction_id"] == interaction_id and e["event"] == event]


def wait_reported(qtbot, watcher: ReportingWatcher, interaction_id: str, event: str) -> None:
    """Wait while Qt (and with it the desktop's session) keeps running; the watcher's own wait_for blocks."""
    qtbot.waitUntil(lambda: bool(interaction_events(watcher, interaction_id, event)), timeout=WAIT)


@pytest.fixture
def watchers(pair):
    made = [ReportingWatcher(server.url) for server in pair]
    yield made
    for watcher in made:
        watcher.close()


def logged_in_ready(qtbot, desktop, agent: str) -> None:
    main = desktop.main_window
    log_in(qtbot, desktop, agent=agent)
    qtbot.waitUntil(lambda: main.isVisible() and main.connections.role_of("A") == "primary, logged in"
                    and main.connections.role_of("B") == "secondary, standby", timeout=WAIT)
    qtbot.mouseClick(main.ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.state_label.text() == "Ready", timeout=WAIT)


@pytest.mark.server_processes
def test_offer_accept_notes_survive_kill9_and_done_is_reported_once_on_b(pair, watchers, make_desktop, qtbot):
    a, b = pair
    watch_a, watch_b = watchers
    desktop = make_desktop([a, b])
    main, toast, panel = desktop.main_window, desktop.main_window.offer_toast, desktop.main_window.interactions
    seen: list[ev.Event] = []
    desktop.bridge.event.connect(seen.append)
    logged_in_ready(qtbot, desktop, "1001")

    submit(
        qtbot, watch_a, "call-gui-1", customer={"name": "Dana Ortiz", "account": "88-1203"}, subject="Invoice question"
    )
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    assert toast.title_label.text() == "Voice call – sales – Dana Ortiz"
    assert toast.customer_label.text() == "Subject: Invoice question\nName: Dana Ortiz\nAccount: 88-1203"
    countdown = re.fullmatch(r"Answer within 00:(\d\d)", toast.countdown_label.text())
    assert countdown and 25 <= int(countdown.group(1)) <= 30, toast.countdown_label.text()
    first = toast.countdown_label.text()
    qtbot.waitUntil(lambda: toast.countdown_label.text() < first, timeout=WAIT)  # it counts down
    assert toast.media_icon.accessibleDescription() == "Voice call"
    assert desktop.tray.shown[-1].title == "New voice call"

    qtbot.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not toast.isVisible() and panel.detail.isVisible(), timeout=WAIT)
    assert main.tabs.currentWidget() is panel
    assert panel.title_label.text() == "Voice call – sales – Dana Ortiz"
    assert "Account: 88-1203" in panel.customer_label.text()
    assert [panel.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(panel.list.count())] == ["call-gui-1"]
    wait_reported(qtbot, watch_a, "call-gui-1", "accepted")

    # Notes typed before the failure are saved on A once typing pauses.
    qtbot.keyClicks(panel.notes_edit, "Wants the invoice re-sent.")
    qtbot.waitUntil(lambda: any(isinstance(e, ev.InteractionApplied) and e.intent.action == "notes"
                                and e.endpoint == "A" for e in seen), timeout=WAIT)
    sent = [e.intent.notes for e in seen if isinstance(e, ev.InteractionPending) and e.intent.action == "notes"]
    assert sent == ["Wants the invoice re-sent."], "notes are saved once typing pauses, not per keystroke"

    a.kill9()
    # Typed at once, while the desktop is still finding out that A is gone.
    qtbot.keyClicks(panel.notes_edit, " Address changed.")
    typed = "Wants the invoice re-sent. Address changed."
    qtbot.waitUntil(main.banner.isVisible, timeout=WAIT)
    assert panel.detail.isVisible() and panel.notes_edit.isEnabled() and not panel.notes_edit.isReadOnly()
    assert panel.notes_edit.toPlainText() == typed
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "primary, logged in", timeout=WAIT)
    qtbot.waitUntil(lambda: main.state_label.text() == "Talking – Voice call" and "on site B" in main.agent_label.text()
                    and main.agent_label.text().endswith("after this: Ready"), timeout=WAIT)
    # B has the interaction with every word typed (in the failover login, or saved after it).
    qtbot.waitUntil(lambda: any(
        (isinstance(e, ev.InteractionAdopted) and e.endpoint == "B" and e.notes == typed)
        or (isinstance(e, ev.InteractionApplied) and e.intent.action == "notes" and e.endpoint == "B"
            and e.intent.notes == typed) for e in seen), timeout=WAIT)
    wait_reported(qtbot, watch_b, "call-gui-1", "adopted")
    assert panel.notes_edit.toPlainText() == typed
    assert panel.list.count() == 1

    panel.disposition_combo.setCurrentIndex(panel.disposition_combo.findData("resolved"))
    qtbot.keyClicks(panel.notes_edit, " Done.")
    final = typed + " Done."
    qtbot.mouseClick(panel.done_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(isinstance(e, ev.InteractionEnded) and e.reason == "completed" for e in seen),
                    timeout=WAIT)
    done = [e for e in seen if isinstance(e, ev.InteractionApplied) and e.intent.action == "complete"]
    assert [(e.endpoint, e.intent.notes, e.intent.disposition) for e in done] == [("B", final, "resolved")]
    qtbot.waitUntil(lambda: not panel.detail.isVisible() and panel.empty_label.isVisible(), timeout=WAIT)
    assert main.statusBar().currentMessage() == "Interaction call-gui-1 completed (Resolved)"

    # sales has 5 s of After Call Work: the timer counts down to the server's end, then the server
    # makes the agent Ready.
    qtbot.waitUntil(
        lambda: re.fullmatch(r"After Call Work 00:0\d – 00:0[0-5] left", panel.acw_label.text()) is not None,
        timeout=WAIT,
    )
    assert panel.acw_label.isVisible()
    qtbot.waitUntil(lambda: main.state_label.text() == "Ready" and not panel.acw_label.isVisible(), timeout=WAIT)
    # The supervisors' stream says so too (its socket may get the event a moment after the desktop's).
    qtbot.waitUntil(lambda: [e["state"] for e in watch_b.of("EventAgentStateChanged", "1001")][-2:]
                    == ["after_call_work", "ready"], timeout=WAIT)
    completed = interaction_events(watch_b, "call-gui-1", "completed")
    assert len(completed) == 1, completed
    assert completed[0]["disposition"] == "resolved" and completed[0]["agent_id"] == "1001"


def test_rejected_offer_goes_away(pair, watchers, make_desktop, qtbot):
    a, b = pair
    watch_a, _ = watchers
    desktop = make_desktop([a, b])
    main, toast = desktop.main_window, desktop.main_window.offer_toast
    logged_in_ready(qtbot, desktop, "1003")
    submit(qtbot, watch_a, "chat-gui-2", customer={"name": "Lee"})
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    # Not Ready first, so the rejected interaction is not offered straight back to this agent.
    qtbot.waitUntil(lambda: main.reason_combo.findData("break") >= 0, timeout=WAIT)
    main.reason_combo.setCurrentIndex(main.reason_combo.findData("break"))
    qtbot.mouseClick(main.not_ready_button, Qt.MouseButton.LeftButton)
    # The state line says Ringing while the offer waits; the agent's own state is named beside it.
    qtbot.waitUntil(lambda: main.state_label.text() == "Ringing – Voice call"
                    and main.agent_label.text().endswith("after this: Not Ready – Break"), timeout=WAIT)
    with qtbot.waitActive(main):
        main.activateWindow()
    qtbot.keyClick(main, Qt.Key.Key_J, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: not toast.isVisible(), timeout=WAIT)
    wait_reported(qtbot, watch_a, "chat-gui-2", "rejected")
    assert not main.interactions.detail.isVisible()
    assert main.interactions.list.count() == 0
    qtbot.waitUntil(lambda: main.state_label.text() == "Not Ready – Break", timeout=WAIT)


def demo_accepted(qtbot, make_desktop, demo_servers, send_key: Qt.Key, title: str):
    """The demo's desktop, logged in as its demo agent at A and Ready by keyboard (Ctrl+1), sends
    itself a test interaction by the demo's shortcut (Ctrl+Shift+``send_key``) and accepts it
    (Ctrl+Shift+A) once the toast says ``title``."""
    desktop = make_desktop(list(demo_servers.sites.values()))
    demo_servers.attach(desktop)
    main = desktop.main_window
    qtbot.mouseClick(desktop.login_window.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.connections.role_of("A") == "primary, logged in", timeout=WAIT)
    with qtbot.waitActive(main):
        main.activateWindow()
    qtbot.keyClick(main, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)  # Ready
    qtbot.waitUntil(lambda: main.state_label.text() == "Ready", timeout=WAIT)
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(main, send_key, shift_ctrl)  # Send a test interaction (or chat)
    qtbot.waitUntil(main.offer_toast.isVisible, timeout=WAIT)
    assert main.offer_toast.title_label.text().startswith(title)
    qtbot.keyClick(main, Qt.Key.Key_A, shift_ctrl)  # Accept
    return desktop


def test_demo_sends_a_test_interaction_that_the_demo_agent_is_offered_and_accepts_by_keyboard(
        demo_servers, make_desktop, qtbot):
    desktop = demo_accepted(qtbot, make_desktop, demo_servers, Qt.Key.Key_T, "Voice call – sales")
    main, toast = desktop.main_window, desktop.main_window.offer_toast
    panel = main.interactions
    qtbot.waitUntil(lambda: panel.detail.isVisible() and not toast.isVisible(), timeout=WAIT)
    held = desktop.bridge.snapshot().held
    assert len(held) == 1 and held[0].interaction.interaction_id.startswith("demo-")


@pytest.mark.server_processes
def test_notes_typed_while_the_primary_hangs_reach_the_backup_and_done_by_keyboard(pair, watchers, make_desktop, qtbot):
    a, b = pair
    watch_a, watch_b = watchers
    desktop = make_desktop([a, b])
    main, panel = desktop.main_window, desktop.main_window.interactions
    seen: list[ev.Event] = []
    desktop.bridge.event.connect(seen.append)
    logged_in_ready(qtbot, desktop, "1004")
    submit(qtbot, watch_a, "mail-gui-3", queue="support", media="email", customer={"name": "Ines"})
    qtbot.waitUntil(main.offer_toast.isVisible, timeout=WAIT)
    with qtbot.waitActive(main):
        main.activateWindow()
    shift_ctrl = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(main, Qt.Key.Key_A, shift_ctrl)
    qtbot.waitUntil(panel.detail.isVisible, timeout=WAIT)
    wait_reported(qtbot, watch_a, "mail-gui-3", "accepted")

    a.sigstop()  # hung, not dead: the notes go out to a server that will never answer
    qtbot.keyClicks(panel.notes_edit, "Refund approved.")
    qtbot.waitUntil(lambda: any(isinstance(e, ev.InteractionPending) and e.intent.action == "notes" for e in seen),
                    timeout=WAIT)
    assert not main.banner.isVisible(), "typed before the desktop noticed the silence"
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "primary, logged in", timeout=WAIT)
    qtbot.waitUntil(lambda: any(
        (isinstance(e, ev.InteractionAdopted) and e.endpoint == "B" and e.notes == "Refund approved.")
        or (isinstance(e, ev.InteractionApplied) and e.intent.action == "notes" and e.endpoint == "B"
            and e.intent.notes == "Refund approved.") for e in seen), timeout=WAIT)
    assert panel.notes_edit.toPlainText() == "Refund approved."

    panel.disposition_combo.setCurrentIndex(panel.disposition_combo.findData("follow_up"))
    qtbot.keyClick(main, Qt.Key.Key_D, shift_ctrl)  # Done
    qtbot.waitUntil(lambda: bool(interaction_events(watch_b, "mail-gui-3", "completed")), timeout=WAIT)
    qtbot.waitUntil(lambda: main.state_label.text() == "After Call Work", timeout=WAIT)
    completed = interaction_events(watch_b, "mail-gui-3", "completed")
    assert [(e["disposition"], e["agent_id"]) for e in completed] == [("follow_up", "1004")]
    done = [e for e in seen if isinstance(e, ev.InteractionApplied) and e.intent.action == "complete"]
    assert [(e.endpoint, e.intent.notes) for e in done] == [("B", "Refund approved.")]
