"""Hold and transfers in two real desktops against a real pair of servers (in the test process):
a blind transfer to an agent logged in at the other site, and a consultative transfer where the
consulted agent reads the first agent's notes before accepting. Everything is done through the
widgets, as an agent would (clicks and typing), and checked on the screens and the reporting
streams (completed once, with the transfer history)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from tests.ui import test_interactions_gui
from tests.ui.test_desktop_gui import WAIT, log_in
from tests.ui.test_interactions_gui import interaction_events, submit, wait_reported

pytestmark = pytest.mark.slow
watchers = test_interactions_gui.watchers  # the same fixture: a reporting watcher on each server


def logged_in(qtbot, desktop, agent: str, site: str, ready: bool) -> None:
    main = desktop.main_window
    log_in(qtbot, desktop, agent=agent, site=site)
    qtbot.waitUntil(lambda: main.isVisible() and main.connections.role_of(site) == "primary, logged in", timeout=WAIT)
    if ready:
        qtbot.mouseClick(main.ready_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: main.state_label.text() == "Ready", timeout=WAIT)


def take_offer(qtbot, desktop) -> None:
    toast, panel = desktop.main_window.offer_toast, desktop.main_window.interactions
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    qtbot.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not toast.isVisible() and panel.detail.isVisible(), timeout=WAIT)


def type_notes(qtbot, desktop, text: str) -> None:
    panel = desktop.main_window.interactions
    qtbot.keyClicks(panel.notes_edit, text)
    panel.flush_notes()


def pick_transfer(qtbot, desktop, target_kind: str, target: str, kind: str) -> None:
    """Transfer… then the picker: target kind, target typed, blind or consult, Transfer now."""
    controls = desktop.main_window.interactions.controls
    qtbot.mouseClick(controls.transfer_button, Qt.MouseButton.LeftButton)
    picker = controls.picker
    qtbot.waitUntil(picker.isVisible, timeout=WAIT)
    assert picker.target_edit.hasFocus() or not desktop.main_window.isActiveWindow()
    picker.target_combo.setCurrentIndex(picker.target_combo.findData(target_kind))
    picker.target_edit.clear()
    qtbot.keyClicks(picker.target_edit, target)
    radio = picker.kind_radios[kind]  # clicked on its indicator (the button may be wider than its text)
    qtbot.mouseClick(radio, Qt.MouseButton.LeftButton, pos=QPoint(6, radio.height() // 2))
    assert radio.isChecked()
    qtbot.mouseClick(picker.go_button, Qt.MouseButton.LeftButton)
    assert not picker.isVisible()


def done(qtbot, desktop) -> None:
    panel = desktop.main_window.interactions
    panel.disposition_combo.setCurrentIndex(1)
    qtbot.mouseClick(panel.done_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not panel.detail.isVisible(), timeout=WAIT)


def test_blind_transfer_to_an_agent_logged_in_at_the_other_site(pair, watchers, make_desktop, qtbot):
    a, b = pair
    watch_a, watch_b = watchers
    first, second = make_desktop([a, b]), make_desktop([a, b])
    logged_in(qtbot, first, "1001", "A", ready=True)
    logged_in(qtbot, second, "1002", "B", ready=False)  # Ready once the call is in the first one's hands

    submit(qtbot, watch_a, "call-xfer-1", customer={"name": "Dana Ortiz"})
    take_offer(qtbot, first)
    type_notes(qtbot, first, "Wants a refund.")
    qtbot.mouseClick(second.main_window.ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: second.main_window.state_label.text() == "Ready", timeout=WAIT)
    # A hears through the agent pool that 1002 (at B) is available within moments; until then the
    # transfer is refused in words, and the agent tries again.
    panel = first.main_window.interactions
    for _ in range(20):
        pick_transfer(qtbot, first, "agent", "1002", "blind")
        qtbot.waitUntil(lambda: not panel.detail.isVisible() or panel.controls.error_label.isVisible(),
                        timeout=WAIT)
        if not panel.detail.isVisible():
            break
        assert panel.controls.error_label.text().startswith("Transfer refused: agent 1002"), \
            panel.controls.error_label.text()
    assert not panel.detail.isVisible()
    assert any("transferred to 1002" in r.text or "you transferred it" in r.text
               for r in first.main_window.event_log.rows), [r.text for r in first.main_window.event_log.rows]

    toast = second.main_window.offer_toast
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    assert toast.title_label.text() == "Voice call – sales – Dana Ortiz"
    assert "Transferred by agent 1001" in toast.customer_label.text()
    assert "Notes: Wants a refund." in toast.customer_label.text()
    take_offer(qtbot, second)
    assert second.main_window.interactions.notes_edit.toPlainText() == "Wants a refund."
    done(qtbot, second)
    wait_reported(qtbot, watch_b, "call-xfer-1", "completed")
    completed = interaction_events(watch_a, "call-xfer-1", "completed") + \
        interaction_events(watch_b, "call-xfer-1", "completed")
    assert len(completed) == 1 and completed[0]["agent_id"] == "1002"
    assert [(t["kind"], t["from_agent"], t["to_agent"]) for t in completed[0]["transfers"]] == \
        [("blind", "1001", "1002")]


def test_consultative_transfer_shows_the_notes_to_the_consulted_agent_before_it_accepts(
        pair, watchers, make_desktop, qtbot):
    a, b = pair
    watch_a, _ = watchers
    first, second = make_desktop([a, b]), make_desktop([a, b])
    logged_in(qtbot, first, "1001", "A", ready=True)
    logged_in(qtbot, second, "1002", "A", ready=False)

    submit(qtbot, watch_a, "call-xfer-2", customer={"name": "Sam Lee"})
    take_offer(qtbot, first)
    controls = first.main_window.interactions.controls
    # Hold, with its timer in the state line and beside the button; then Resume.
    qtbot.mouseClick(controls.hold_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: first.main_window.state_label.text() == "On hold – Voice call"
                    and controls.hold_label.text().startswith("On hold"), timeout=WAIT)
    assert controls.hold_button.text() == "Res&ume"
    wait_reported(qtbot, watch_a, "call-xfer-2", "on_hold")
    qtbot.mouseClick(controls.hold_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: first.main_window.state_label.text() == "Talking – Voice call"
                    and not controls.hold_label.isVisible(), timeout=WAIT)

    qtbot.mouseClick(second.main_window.ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: second.main_window.state_label.text() == "Ready", timeout=WAIT)
    # Typed just before Transfer…, within the notes' save delay: the transfer carries them all the same.
    qtbot.keyClicks(first.main_window.interactions.notes_edit, "Address verified; needs a supervisor.")
    pick_transfer(qtbot, first, "agent", "1002", "consult")

    toast = second.main_window.offer_toast
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    assert "Agent 1001 asks you to take this over" in toast.customer_label.text()
    assert "Notes: Address verified; needs a supervisor." in toast.customer_label.text()
    assert "Name: Sam Lee" in toast.customer_label.text()
    qtbot.waitUntil(lambda: controls.consult_row.isVisible()
                    and controls.consult_label.text() == "Consulting agent 1002: waiting for an answer", timeout=WAIT)
    assert not controls.complete_button.isEnabled() and not controls.transfer_button.isEnabled()

    qtbot.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: toast.countdown_label.text() == "Accepted: waiting for agent 1001 to hand it over",
                    timeout=WAIT)
    qtbot.waitUntil(controls.complete_button.isEnabled, timeout=WAIT)
    assert second.main_window.state_label.text() == "Consulting – agent 1001"
    assert controls.consult_label.text().startswith("Consulting agent 1002: accepted")
    assert first.main_window.interactions.detail.isVisible(), "still in the first agent's hands"

    qtbot.mouseClick(controls.complete_button, Qt.MouseButton.LeftButton)
    panel = second.main_window.interactions
    qtbot.waitUntil(lambda: panel.detail.isVisible() and not toast.isVisible(), timeout=WAIT)
    qtbot.waitUntil(lambda: not first.main_window.interactions.detail.isVisible(), timeout=WAIT)
    assert panel.notes_edit.toPlainText() == "Address verified; needs a supervisor."
    assert second.main_window.state_label.text() == "Talking – Voice call"
    done(qtbot, second)
    wait_reported(qtbot, watch_a, "call-xfer-2", "completed")
    completed = interaction_events(watch_a, "call-xfer-2", "completed")
    assert len(completed) == 1 and completed[0]["agent_id"] == "1002"
    assert [t["kind"] for t in completed[0]["transfers"]] == ["consult"]


def pick_from_list(qtbot, desktop, wanted: str) -> None:
    """Transfer… then, in the picker's list of the center's queues and agents (asked of the server
    as it opens), the row starting with ``wanted`` chosen with the keyboard; again until the server's
    list has it available (site A's agent pool hears of an agent at B within moments)."""
    controls = desktop.main_window.interactions.controls
    picker = controls.picker
    for _ in range(40):
        qtbot.mouseClick(controls.transfer_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: picker.isVisible() and bool(picker.items), timeout=WAIT)
        rows = [picker.target_list.itemText(i) for i in range(picker.target_list.count())]
        if f"{wanted} · available" in rows:
            break
        qtbot.mouseClick(picker.close_button, Qt.MouseButton.LeftButton)
        picker.items = []
        qtbot.wait(100)  # the agent tries again a moment later, as a person would
    else:
        raise AssertionError(f"{wanted} never listed available: {rows}")
    picker.target_list.setFocus()
    target = rows.index(f"{wanted} · available")
    while picker.target_list.currentIndex() < target:
        qtbot.keyClick(picker.target_list, Qt.Key.Key_Down)
    assert picker.target_list.currentText() == f"{wanted} · available"


def test_the_picker_lists_the_whole_center_and_an_agent_at_the_other_site_is_picked(pair, watchers, make_desktop,
                                                                                     qtbot):
    a, b = pair
    watch_a, watch_b = watchers
    first, second, third = make_desktop([a, b]), make_desktop([a, b]), make_desktop([a, b])
    logged_in(qtbot, first, "1001", "A", ready=True)
    logged_in(qtbot, third, "1003", "A", ready=False)  # Not Ready: listed, not available
    logged_in(qtbot, second, "1002", "B", ready=False)

    submit(qtbot, watch_a, "call-xfer-3", customer={"name": "Ana Silva"})
    take_offer(qtbot, first)
    qtbot.mouseClick(second.main_window.ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: second.main_window.state_label.text() == "Ready", timeout=WAIT)
    pick_from_list(qtbot, first, "1002 Bruno Keller · site B")
    picker = first.main_window.interactions.controls.picker
    rows = [picker.target_list.itemText(i) for i in range(picker.target_list.count())]
    assert rows[0] == "Choose a queue or an agent…"
    assert {"Queue billing", "Queue sales", "Queue support"} <= set(rows)
    assert "1003 Chloé Dubois · site A · not available" in rows and not any(r.startswith("1001") for r in rows)
    greyed = picker.target_list.model().item(rows.index("1003 Chloé Dubois · site A · not available"))
    assert not greyed.isEnabled(), "an agent not available now cannot be chosen"
    # Choosing the row filled in the target: an agent, 1002; blind; Transfer now.
    assert picker.target_combo.currentData() == "agent" and picker.target_edit.text() == "1002"
    radio = picker.kind_radios["blind"]
    qtbot.mouseClick(radio, Qt.MouseButton.LeftButton, pos=QPoint(6, radio.height() // 2))
    qtbot.mouseClick(picker.go_button, Qt.MouseButton.LeftButton)
    panel = first.main_window.interactions
    qtbot.waitUntil(lambda: not panel.detail.isVisible() or panel.controls.error_label.isVisible(), timeout=WAIT)
    assert not panel.detail.isVisible(), panel.controls.error_label.text()

    toast = second.main_window.offer_toast
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    assert "Transferred by agent 1001" in toast.customer_label.text()
    take_offer(qtbot, second)
    done(qtbot, second)
    wait_reported(qtbot, watch_b, "call-xfer-3", "completed")


def test_a_typed_target_still_works_with_the_list_open(pair, watchers, make_desktop, qtbot):
    """The list is a help, not a gate: a queue typed by hand (here while the list is still empty)."""
    a, b = pair
    watch_a, _ = watchers
    first = make_desktop([a, b])
    logged_in(qtbot, first, "1001", "A", ready=True)
    submit(qtbot, watch_a, "call-xfer-4", customer={"name": "Lee Wong"})
    take_offer(qtbot, first)
    pick_transfer(qtbot, first, "queue", "billing", "blind")
    panel = first.main_window.interactions
    qtbot.waitUntil(lambda: not panel.detail.isVisible(), timeout=WAIT)
    wait_reported(qtbot, watch_a, "call-xfer-4", "transferred")
