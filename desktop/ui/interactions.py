"""The interaction widgets: the offer toast (Accept/Reject with a countdown) and the interactions
panel (active list, customer data, notes, disposition, Done, After Call Work timer).

They render what the session snapshot says and emit the agent's intents as signals; the notes box
is the one thing they own, because what the agent types must survive any redraw (and a failover).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QFont, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core import events as ev
from . import interaction_presenter as ip
from . import transfer_presenter as tp
from .chat import ConversationView
from .dialogs import ErrorLabel
from .i18n import translate
from .icons import icon
from .transfer_controls import InteractionControls

ACCEPT_SHORTCUT = "Ctrl+Shift+A"
REJECT_SHORTCUT = "Ctrl+Shift+J"
DONE_SHORTCUT = "Ctrl+Shift+D"


def _named(widget, name: str, description: str = ""):
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


def _shortcut_button(text: str, name: str, shortcut: str) -> QPushButton:
    native = QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)
    button = _named(QPushButton(f"{text} ({native})"), name, translate("Interactions", "Shortcut {0}").format(native))
    button.setShortcut(QKeySequence(shortcut))  # window-wide while the button is visible
    return button


class OfferToast(QFrame):
    """The current offer: media icon, queue and customer, countdown, Accept and Reject."""

    accept_requested = Signal(str)
    reject_requested = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("offerToast")
        _named(self, self.tr("Interaction offer"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#offerToast { border: 2px solid palette(highlight); border-radius: 4px; }")
        self.offer: ev.OfferInfo | None = None
        self.media_icon = _named(QLabel(), self.tr("Offer media"))
        self.title_label = _named(QLabel(), self.tr("Offer"))
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        self.customer_label = _named(QLabel(), self.tr("Offer customer data"))
        self.customer_label.setWordWrap(True)
        self.countdown_label = _named(QLabel(), self.tr("Time left to answer"))
        self.accept_button = _shortcut_button(self.tr("&Accept"), self.tr("Accept"), ACCEPT_SHORTCUT)
        self.reject_button = _shortcut_button(self.tr("Re&ject"), self.tr("Reject"), REJECT_SHORTCUT)
        self.accept_button.clicked.connect(self._accept)
        self.reject_button.clicked.connect(self._reject)
        text = QVBoxLayout()
        text.addWidget(self.title_label)
        text.addWidget(self.customer_label)
        text.addWidget(self.countdown_label)
        buttons = QVBoxLayout()
        buttons.addWidget(self.accept_button)
        buttons.addWidget(self.reject_button)
        row = QHBoxLayout(self)
        row.addWidget(self.media_icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        row.addLayout(buttons)
        self.hide()

    def render_offer(self, offer: ev.OfferInfo | None, wall_ms: int) -> None:
        previous = self.offer
        changed = (offer is None) != (previous is None) or (
            offer is not None and previous is not None
            and offer.interaction.interaction_id != previous.interaction.interaction_id)
        self.offer = offer
        if offer is None:
            if self.isVisible():
                self.hide()
            return
        if changed:
            interaction = offer.interaction
            self.media_icon.setPixmap(icon(ip.media_icon(interaction.media)).pixmap(32, 32))
            self.media_icon.setAccessibleDescription(ip.media_label(interaction.media))
            self.title_label.setText(ip.offer_title(interaction))
            self.customer_label.setText(tp.offer_text(ip.customer_text(interaction), offer))
            self.accept_button.setEnabled(True)
            self.reject_button.setEnabled(True)
        if offer.consulting:  # a consultation accepted: it waits for its agent's hand-over (or a decline)
            self.countdown_label.setText(tp.consulting_text(offer))
            self.accept_button.setEnabled(False)
            self.reject_button.setEnabled(True)
        else:
            self.countdown_label.setText(ip.countdown_text(offer.expires_ms, wall_ms))
        if not self.isVisible():
            self.show()
        if changed:
            # Flashes the taskbar entry (or raises, as the window system does it) until the agent looks.
            QApplication.alert(self.window())

    def _answer(self) -> str | None:
        if self.offer is None:
            return None
        self.accept_button.setEnabled(False)  # one answer per offer; the snapshot says what came of it
        self.reject_button.setEnabled(False)
        return self.offer.interaction.interaction_id

    def _accept(self) -> None:
        interaction_id = self._answer()
        if interaction_id:
            self.accept_requested.emit(interaction_id)

    def _reject(self) -> None:
        interaction_id = self._answer()
        if interaction_id:
            self.reject_requested.emit(interaction_id)


class InteractionPanel(QWidget):
    """Interactions in hand, the selected one's customer data, notes, disposition and Done."""

    notes_changed = Signal(str, str)  # interaction id, whole notes text (debounced)
    done_requested = Signal(str, str, str)  # interaction id, disposition code, notes
    chat_send_requested = Signal(str, str)  # interaction id, a chat line (desktop/ui/chat.py)
    draft_changed = Signal(str, str)  # interaction id, the whole email reply draft (debounced)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("interactionPanel")
        self.held: dict[str, ev.HeldInfo] = {}
        self.drafts: dict[str, str] = {}  # what the agent typed, per interaction: the box's truth
        self.sent: dict[str, ip.NotesState] = {}
        self.chosen: dict[str, str] = {}  # disposition chosen per interaction: none by default, none carried over
        self.current_id: str | None = None
        self.acw_label = _named(QLabel(), self.tr("After Call Work timer"))
        font = QFont(self.acw_label.font())
        font.setBold(True)
        self.acw_label.setFont(font)
        self.acw_label.hide()
        self.empty_label = _named(QLabel(self.tr("No interaction in hand.")), self.tr("No interaction"))
        self.list = _named(QListWidget(), self.tr("Active interactions"))
        self.list.setMaximumHeight(90)
        self.title_label = _named(QLabel(), self.tr("Interaction"))
        self.title_label.setFont(font)
        self.customer_label = _named(QLabel(), self.tr("Customer data"))
        self.customer_label.setWordWrap(True)
        self.customer_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.controls = InteractionControls()  # Hold/Resume, Transfer… (transfer_controls.py)
        self.notes_edit = _named(QPlainTextEdit(), self.tr("Notes"), self.tr("Saved as you type"))
        self.notes_edit.setTabChangesFocus(True)
        self.notes_edit.setPlaceholderText(self.tr("Notes…"))
        self.disposition_combo = _named(QComboBox(), self.tr("Disposition"),
                                        self.tr("Required: choose one for each interaction"))
        self.disposition_combo.addItem(translate("Interactions", ip.CHOOSE_DISPOSITION), None)
        self.done_button = _shortcut_button(self.tr("&Done"), self.tr("Done"), DONE_SHORTCUT)
        self.done_error = ErrorLabel(self.tr("Why Done was refused"))
        self.done_error.hide()
        self.notes_timer = QTimer(self)
        self.notes_timer.setSingleShot(True)
        self.notes_timer.setInterval(ip.NOTES_DEBOUNCE_MS)
        self.notes_timer.timeout.connect(self.flush_notes)
        self.conversation = ConversationView()  # a chat's transcript and reply box, an email's body and draft
        self.conversation.send_requested.connect(self.chat_send_requested)
        self.conversation.draft_changed.connect(self.draft_changed)

        notes_label = QLabel(self.tr("&Notes:"))
        notes_label.setBuddy(self.notes_edit)
        disposition_label = QLabel(self.tr("Dis&position:"))
        disposition_label.setBuddy(self.disposition_combo)
        finish = QHBoxLayout()
        finish.addWidget(disposition_label)
        finish.addWidget(self.disposition_combo, 1)
        finish.addWidget(self.done_button)
        self.detail = QWidget()
        detail = QVBoxLayout(self.detail)
        detail.setContentsMargins(0, 0, 0, 0)
        detail.addWidget(self.title_label)
        top = QHBoxLayout()  # the customer data, Hold and Transfer… beside it: no room taken from the notes
        top.addWidget(self.customer_label, 1)
        top.addWidget(self.controls, 0, Qt.AlignmentFlag.AlignTop)
        detail.addLayout(top)
        for extra in self.controls.extras():
            detail.addWidget(extra)
        detail.addWidget(self.conversation, 3)
        detail.addWidget(notes_label)
        detail.addWidget(self.notes_edit, 1)
        detail.addLayout(finish)
        detail.addWidget(self.done_error)
        layout = QVBoxLayout(self)
        layout.addWidget(self.acw_label)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list)
        layout.addWidget(self.detail, 1)
        self.list.hide()
        self.detail.hide()

        self.list.currentItemChanged.connect(self._selected)
        self.notes_edit.textChanged.connect(self._typed)
        self.done_button.clicked.connect(self._done)
        self.disposition_combo.currentIndexChanged.connect(self._disposition_chosen)

    # ------------------------------------------------------------------ rendering

    def set_dispositions(self, items: list[tuple[str, str]]) -> None:
        """The server's dispositions after a "Choose…" entry: nothing is chosen until the agent chooses."""
        combo = self.disposition_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItem(translate("Interactions", ip.CHOOSE_DISPOSITION), None)
        for label, code in items:
            combo.addItem(label, code)
        combo.blockSignals(False)
        self._show_disposition()

    def _show_disposition(self) -> None:
        """The combo shows the current interaction's own choice, or "Choose…"."""
        combo = self.disposition_combo
        chosen = self.chosen.get(self.current_id) if self.current_id is not None else None
        index = combo.findData(chosen) if chosen else 0
        combo.blockSignals(True)
        combo.setCurrentIndex(max(0, index))
        combo.blockSignals(False)

    def _disposition_chosen(self, _index: int) -> None:
        if self.current_id is None:
            return
        code = self.disposition_combo.currentData()
        if code:
            self.chosen[self.current_id] = code
            self.done_error.hide()
        else:
            self.chosen.pop(self.current_id, None)

    def render_held(self, held: tuple[ev.HeldInfo, ...], acw: str, wall_ms: int) -> None:
        self.acw_label.setText(acw)
        self.acw_label.setVisible(bool(acw))
        self.held = {h.interaction.interaction_id: h for h in held}
        for interaction_id in list(self.drafts):
            if interaction_id not in self.held:
                self.drafts.pop(interaction_id)
                self.sent.pop(interaction_id, None)
        for interaction_id in list(self.chosen):
            if interaction_id not in self.held:
                self.chosen.pop(interaction_id)
        ids = list(self.held)
        shown = [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]
        if shown != ids:
            self.list.blockSignals(True)
            self.list.clear()
            for interaction_id in ids:
                h = self.held[interaction_id]
                item = QListWidgetItem(icon(ip.media_icon(h.interaction.media)), "")
                item.setData(Qt.ItemDataRole.UserRole, interaction_id)
                self.list.addItem(item)
            self.list.blockSignals(False)
        for index, interaction_id in enumerate(ids):
            text = ip.held_row_text(self.held[interaction_id], wall_ms)
            if self.list.item(index).text() != text:
                self.list.item(index).setText(text)
        self.empty_label.setVisible(not ids)
        self.list.setVisible(len(ids) > 1)  # one interaction: its title says it all, and the room goes to notes
        self.detail.setVisible(bool(ids))
        if self.current_id not in self.held:
            self._show(ids[0] if ids else None)
        elif self.current_id is not None:
            self.done_button.setEnabled(not self.held[self.current_id].completing
                                        and self.disposition_combo.count() > 1)
        self.controls.show_held(self.held.get(self.current_id) if self.current_id is not None else None, wall_ms)

    def _selected(self, item: QListWidgetItem | None, _previous=None) -> None:
        if item is not None:
            self._show(item.data(Qt.ItemDataRole.UserRole))

    def _show(self, interaction_id: str | None) -> None:
        if interaction_id == self.current_id:
            return
        self.flush_notes()
        self.current_id = interaction_id
        self.done_error.hide()
        self._show_disposition()
        if interaction_id is None:
            self.conversation.show_interaction(None)
            return
        held = self.held[interaction_id]
        for index in range(self.list.count()):
            if self.list.item(index).data(Qt.ItemDataRole.UserRole) == interaction_id:
                self.list.blockSignals(True)
                self.list.setCurrentRow(index)
                self.list.blockSignals(False)
        self.title_label.setText(ip.offer_title(held.interaction))
        self.conversation.show_interaction(held.interaction)
        self.customer_label.setText(ip.customer_text(held.interaction))
        self.sent.setdefault(interaction_id, ip.NotesState(interaction_id, held.notes))
        self.notes_edit.blockSignals(True)
        self.notes_edit.setPlainText(self.drafts.get(interaction_id, held.notes))
        self.notes_edit.blockSignals(False)
        self.done_button.setEnabled(not held.completing and self.disposition_combo.count() > 1)

    # ------------------------------------------------------------------ notes and Done

    def _typed(self) -> None:
        if self.current_id is not None:
            self.drafts[self.current_id] = self.notes_edit.toPlainText()
            self.notes_timer.start()  # restarts: save once typing pauses

    def flush_notes(self) -> None:
        """Send the current notes now if they changed since the last save."""
        self.notes_timer.stop()
        interaction_id = self.current_id
        if interaction_id is None or interaction_id not in self.drafts:
            return
        text = self.drafts[interaction_id]
        state = self.sent.get(interaction_id)
        if state is None or state.needs_send(text):
            self.sent[interaction_id] = ip.NotesState(interaction_id, text)
            self.notes_changed.emit(interaction_id, text)

    def _done(self) -> None:
        interaction_id = self.current_id
        if interaction_id is None:
            return
        code = self.chosen.get(interaction_id)
        if not code:
            # Refused here, never sent: a disposition is required for every interaction (the
            # protocol's RequestCompleteInteraction has no default), and none carries over.
            self.done_error.setText(translate("Interactions", ip.DISPOSITION_REQUIRED))
            self.done_error.show()
            self.disposition_combo.setFocus()
            return
        self.notes_timer.stop()
        self.conversation.flush_draft()
        notes = self.notes_edit.toPlainText()
        self.sent[interaction_id] = ip.NotesState(interaction_id, notes)
        self.done_button.setEnabled(False)
        self.done_requested.emit(interaction_id, code, notes)
