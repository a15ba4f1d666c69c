"""The Hold/Resume and Transfer… controls as widgets (no servers): what shows for a call and for a
chat, the picker driven from the keyboard (Enter sends, Esc closes and gives the focus back),
a consultation's state and its buttons, and a refusal in words."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop.core import events as ev
from desktop.ui.transfer_controls import InteractionControls
from server_stub import protocol as p

T0 = 1_767_254_400_000
# The offscreen platform says it "does not support propagateSizeHints()" when this bare top-level
# window is shown: the test platform talking, not the product (as in tests/supervisor/conftest.py).
pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints\(\)")


def held(media: p.Media = "voice", hold_since: int | None = None,
         transfer: ev.TransferInfo | None = None) -> ev.HeldInfo:
    interaction = p.Interaction(interaction_id="call-1", media=media, queue="sales", created_ms=T0)
    return ev.HeldInfo(interaction, T0, "", "A", 1, False, hold_since, transfer)


@pytest.fixture
def controls(qtbot):
    window = QWidget()
    qtbot.addWidget(window)
    made = InteractionControls(window)
    layout = QVBoxLayout(window)
    layout.addWidget(made)
    for extra in made.extras():
        layout.addWidget(extra)
    window.show()
    qtbot.waitExposed(window)
    yield made  # the window stays referenced while the test runs
    window.close()


def test_hold_shows_for_a_call_only_and_turns_into_resume_with_the_hold_time(controls, qtbot):
    controls.show_held(held("chat"), T0)
    assert not controls.hold_button.isVisible() and controls.transfer_button.isVisible()
    controls.show_held(held(), T0)
    assert controls.hold_button.isVisible() and controls.hold_button.text() == "&Hold"
    with qtbot.waitSignal(controls.hold_requested) as asked:
        qtbot.mouseClick(controls.hold_button, Qt.MouseButton.LeftButton)
    assert asked.args == ["call-1", True]
    controls.show_held(held(hold_since=T0), T0 + 65_000)
    assert controls.hold_button.text() == "Res&ume" and controls.hold_label.text() == "On hold 01:05"
    with qtbot.waitSignal(controls.hold_requested) as asked:
        qtbot.mouseClick(controls.hold_button, Qt.MouseButton.LeftButton)
    assert asked.args == ["call-1", False]


def test_the_picker_from_the_keyboard_enter_transfers_and_esc_closes(controls, qtbot):
    controls.show_held(held(), T0)
    qtbot.mouseClick(controls.transfer_button, Qt.MouseButton.LeftButton)
    picker = controls.picker
    assert picker.isVisible() and picker.target_edit.text() == "sales", "the call's own queue to start from"
    qtbot.keyClick(picker.target_edit, Qt.Key.Key_Escape)
    assert not picker.isVisible()
    qtbot.mouseClick(controls.transfer_button, Qt.MouseButton.LeftButton)
    picker.target_combo.setCurrentIndex(picker.target_combo.findData("agent"))
    picker.target_edit.clear()
    qtbot.keyClicks(picker.target_edit, "1002")
    picker.kind_radios["consult"].setChecked(True)
    with qtbot.waitSignal(controls.transfer_requested) as asked:
        qtbot.keyClick(picker.target_edit, Qt.Key.Key_Return)
    assert asked.args == ["call-1", "consult", "agent", "1002"] and not picker.isVisible()
    for widget in (picker.target_combo, picker.target_edit, picker.go_button, *picker.kind_radios.values()):
        assert widget.accessibleName(), widget


def test_a_consultation_shows_its_state_and_complete_waits_for_the_accept(controls, qtbot):
    controls.show_held(held(transfer=ev.TransferInfo("offered", "1002", None)), T0)
    assert controls.consult_row.isVisible() and not controls.transfer_button.isEnabled()
    assert controls.consult_label.text() == "Consulting agent 1002: waiting for an answer"
    assert not controls.complete_button.isEnabled() and controls.take_back_button.isEnabled()
    controls.show_held(held(transfer=ev.TransferInfo("accepted", "1002", None)), T0)
    with qtbot.waitSignal(controls.end_transfer_requested) as asked:
        qtbot.mouseClick(controls.complete_button, Qt.MouseButton.LeftButton)
    assert asked.args == ["call-1", True]
    with qtbot.waitSignal(controls.end_transfer_requested) as asked:
        qtbot.mouseClick(controls.take_back_button, Qt.MouseButton.LeftButton)
    assert asked.args == ["call-1", False]
    controls.show_held(held(), T0)
    assert not controls.consult_row.isVisible() and controls.transfer_button.isEnabled()


def test_a_refused_transfer_says_why_in_words_until_the_next_try(controls, qtbot):
    controls.show_held(held(), T0)
    intent = ev.InteractionIntent("transfer", "call-1", kind="blind", to_agent="1002")
    controls.show_failure(ev.InteractionFailed("r1", intent, "target_unavailable", "agent 1002 is not available now"))
    assert controls.error_label.isVisible()
    assert controls.error_label.text() == "Transfer refused: agent 1002 is not available now"
    qtbot.mouseClick(controls.transfer_button, Qt.MouseButton.LeftButton)
    qtbot.keyClick(controls.picker.target_edit, Qt.Key.Key_Return)
    assert not controls.error_label.isVisible()
