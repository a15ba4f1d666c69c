"""Hold/Resume and Transfer… for the interaction in hand, inside the interactions panel.

Transfer… opens a small inline picker (no dialog: nothing modal while a call is in hand): a queue
or an agent, blind or consult first. The target is chosen from the list the primary answers (the
queues and every agent logged in anywhere in the center, with its site and whether it is available:
``RequestTransferTargets``), or typed. While a consultation goes on, its state shows with Complete
transfer and Take back. Every control has a mnemonic and an accessible name; Esc closes the picker.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ..core import events as ev
from . import transfer_presenter as tp
from .dialogs import ErrorLabel
from .i18n import translate


def _named(widget, name: str, description: str = ""):
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


class TransferPicker(QFrame):
    """Target (a queue or an agent, picked from the center's list or typed) and kind (blind or
    consult first)."""

    chosen = Signal(str, str, str)  # kind, "queue" or "agent", target
    closed = Signal()
    targets_wanted = Signal()  # opened: ask the primary for the list (set_targets answers)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("transferPicker")
        _named(self, self.tr("Transfer target"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.target_combo = _named(QComboBox(), self.tr("Transfer to"), self.tr("A queue or an agent"))
        for label, code in tp.TARGETS:
            self.target_combo.addItem(translate("Transfers", label), code)
        self.target_edit = _named(QLineEdit(), self.tr("Queue or agent"), self.tr("The queue's name or the agent's id"))
        self.target_edit.setPlaceholderText(self.tr("Queue name or agent id"))
        self.target_list = _named(QComboBox(), self.tr("Queues and agents"),
                                  self.tr("Every queue, and every agent logged in at any site, with its site and "
                                          "whether it is available now"))
        self.target_list.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.target_list.setMinimumContentsLength(16)
        self.items: list[tp.TargetItem] = []
        self._list_note(self.tr("Asking the server for the queues and agents…"))
        self.kind_buttons = QButtonGroup(self)
        self.kind_radios: dict[str, QRadioButton] = {}
        kinds = QHBoxLayout()
        for label, code in tp.KINDS:
            radio = _named(QRadioButton(translate("Transfers", tp.KIND_MNEMONICS[code])), translate("Transfers", label))
            self.kind_buttons.addButton(radio)
            self.kind_radios[code] = radio
            kinds.addWidget(radio)
        self.kind_radios["blind"].setChecked(True)
        self.go_button = _named(QPushButton(self.tr("Transfer no&w")), self.tr("Transfer now"))
        self.close_button = _named(QPushButton(self.tr("Close")), self.tr("Close the transfer picker"),
                                    self.tr("Esc"))
        self.go_button.setDefault(True)
        to_label = QLabel(self.tr("Tar&get:"))
        to_label.setBuddy(self.target_combo)
        list_label = QLabel(self.tr("Pic&k:"))
        list_label.setBuddy(self.target_list)
        row = QHBoxLayout()
        row.addWidget(list_label)
        row.addWidget(self.target_list, 2)
        row.addWidget(to_label)
        row.addWidget(self.target_combo)
        row.addWidget(self.target_edit, 1)
        buttons = QHBoxLayout()
        buttons.addLayout(kinds, 1)
        buttons.addWidget(self.go_button)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addLayout(buttons)
        self.go_button.clicked.connect(self._go)
        self.target_edit.returnPressed.connect(self._go)
        self.close_button.clicked.connect(self.close_picker)
        self.target_list.activated.connect(self._picked)
        self.hide()

    def open_picker(self, queue: str) -> None:
        if not self.target_edit.text():
            self.target_edit.setText(queue)
        self.show()
        self.targets_wanted.emit()
        self.target_edit.setFocus()
        self.target_edit.selectAll()

    def _list_note(self, text: str) -> None:
        """The list's first row: what to do with it, or why it is empty."""
        self.target_list.clear()
        self.target_list.addItem(text, None)

    def set_targets(self, listed: ev.TransferTargetsListed) -> None:
        """The primary's list: choosing a row fills in the target; an agent not available now is
        shown (greyed, with its site) but cannot be chosen."""
        self.items = tp.target_items(listed)
        if not self.items:
            self._list_note(self.tr("No queue or agent to transfer to: type one"))
            return
        self._list_note(self.tr("Choose a queue or an agent…"))
        model = self.target_list.model()
        for item in self.items:
            self.target_list.addItem(item.text, item)
            if not item.available:
                entry = model.item(self.target_list.count() - 1)  # a combo box's own model: QStandardItemModel
                entry.setEnabled(False)
                entry.setToolTip(self.tr("Not available now: a transfer to this agent would be refused"))

    def _picked(self, index: int) -> None:
        item = self.target_list.itemData(index)
        if not isinstance(item, tp.TargetItem) or not item.available:
            return
        self.target_combo.setCurrentIndex(self.target_combo.findData(item.target_kind))
        self.target_edit.setText(item.target)
        self.go_button.setFocus()

    def close_picker(self) -> None:
        self.hide()
        self.closed.emit()

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.close_picker()
            return
        super().keyPressEvent(event)

    def _go(self) -> None:
        target = self.target_edit.text().strip()
        if not target:
            self.target_edit.setFocus()
            return
        kind = "consult" if self.kind_radios["consult"].isChecked() else "blind"
        self.chosen.emit(kind, self.target_combo.currentData(), target)
        self.hide()


class InteractionControls(QWidget):
    """Hold/Resume (calls) and Transfer… in a bar; below it (``extras``, placed by the panel, each
    hidden until needed so it costs no room) the picker, a refusal, and a consultation's state with
    Complete transfer / Take back."""

    targets_wanted = Signal()  # the picker opened: ask for the center's queues and agents
    hold_requested = Signal(str, bool)  # interaction id, on hold
    transfer_requested = Signal(str, str, str, str)  # interaction id, kind, "queue"/"agent", target
    end_transfer_requested = Signal(str, bool)  # interaction id, complete (False: take back)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.held: ev.HeldInfo | None = None
        self.hold_button = _named(QPushButton(translate("Transfers", tp.HOLD)), self.tr("Hold"),
                                  self.tr("Put the call on hold, or take it off hold"))
        self.hold_label = _named(QLabel(), self.tr("Hold time"))
        self.transfer_button = _named(QPushButton(self.tr("T&ransfer…")), self.tr("Transfer"),
                                      self.tr("To a queue or an agent"))
        self.picker = TransferPicker()
        self.consult_label = _named(QLabel(), self.tr("Consultation"))
        self.consult_label.setWordWrap(True)
        self.error_label = ErrorLabel(self.tr("Why the hold or transfer was refused"))
        self.error_label.hide()
        self.complete_button = _named(QPushButton(self.tr("Co&mplete transfer")), self.tr("Complete transfer"))
        self.take_back_button = _named(QPushButton(self.tr("Ta&ke back")), self.tr("Take back"),
                                       self.tr("End the consultation; the interaction stays with you"))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.hold_label)
        row.addWidget(self.hold_button)
        row.addWidget(self.transfer_button)
        consult = QHBoxLayout()
        consult.setContentsMargins(0, 0, 0, 0)
        consult.addWidget(self.consult_label, 1)
        consult.addWidget(self.complete_button)
        consult.addWidget(self.take_back_button)
        self.consult_row = QWidget()
        self.consult_row.setLayout(consult)
        self.consult_row.hide()
        self.hold_button.clicked.connect(self._hold)
        self.transfer_button.clicked.connect(self._open)
        self.picker.chosen.connect(self._chosen)
        self.picker.targets_wanted.connect(self.targets_wanted)
        self.picker.closed.connect(self.transfer_button.setFocus)
        self.complete_button.clicked.connect(lambda: self._end(True))
        self.take_back_button.clicked.connect(lambda: self._end(False))

    def extras(self) -> tuple[QWidget, ...]:
        return self.picker, self.error_label, self.consult_row

    def show_held(self, held: ev.HeldInfo | None, wall_ms: int) -> None:
        changed = (held is None) != (self.held is None) or (
            held is not None and self.held is not None
            and held.interaction.interaction_id != self.held.interaction.interaction_id)
        self.held = held
        if changed:
            self.picker.target_edit.clear()
            self.picker.hide()
            self.error_label.hide()
        if held is None:
            return
        voice = held.interaction.media == "voice"
        self.hold_button.setVisible(voice)
        self.hold_button.setText(translate("Transfers", tp.RESUME if held.hold_since_ms is not None else tp.HOLD))
        self.hold_button.setEnabled(not held.completing)
        text = tp.hold_text(held, wall_ms)
        self.hold_label.setText(text)
        self.hold_label.setVisible(bool(text))
        consulting = held.transfer is not None
        self.transfer_button.setEnabled(not consulting and not held.completing)
        self.consult_row.setVisible(consulting)
        if held.transfer is not None:
            self.consult_label.setText(tp.consult_text(held.transfer))
            self.complete_button.setEnabled(held.transfer.status == "accepted")
            if self.picker.isVisible():
                self.picker.hide()

    def show_failure(self, event: ev.InteractionFailed) -> None:
        """A refused hold or transfer of the interaction shown, in words (until the next try)."""
        if event.intent.interaction_id == self._id():
            self.error_label.setText(tp.failed_text(event))
            self.error_label.show()

    def _id(self) -> str | None:
        return self.held.interaction.interaction_id if self.held is not None else None

    def _hold(self) -> None:
        if self.held is not None:
            self.hold_requested.emit(self.held.interaction.interaction_id, self.held.hold_since_ms is None)

    def _open(self) -> None:
        if self.held is not None:
            self.picker.open_picker(self.held.interaction.queue)

    def _chosen(self, kind: str, target_kind: str, target: str) -> None:
        interaction_id = self._id()
        if interaction_id is not None:
            self.error_label.hide()
            self.transfer_requested.emit(interaction_id, kind, target_kind, target)
            self.transfer_button.setFocus()

    def _end(self, complete: bool) -> None:
        interaction_id = self._id()
        if interaction_id is not None:
            self.end_transfer_requested.emit(interaction_id, complete)
