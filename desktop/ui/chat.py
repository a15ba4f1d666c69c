"""The conversation part of the interaction panel: a chat's transcript and reply box, an email's
body and reply draft.

Rendered from the session snapshot's ``chats`` (the committed transcript in order, then the
agent's lines still being sent, greyed); the reply box and the draft editor are the things it
owns, as the notes box is: what the agent types survives any redraw and a failover. Enter sends
the reply, Shift+Enter starts a new line; the draft is saved as the agent types (debounced).
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
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
from .i18n import QT_TRANSLATE_NOOP, translate

DRAFT_DEBOUNCE_MS = 500
SENDING = QT_TRANSLATE_NOOP("Chat", "sending…")


# ---------------------------------------------------------------------------- words (pure)


def clock(at_ms: int) -> str:
    return time.strftime("%H:%M", time.localtime(at_ms / 1000))


def sender_label(sender: str, interaction: Any) -> str:
    if sender == "agent":
        return translate("Chat", "You")
    name = interaction.customer.get("name") if interaction is not None else None
    return name or translate("Chat", "Customer")


def line_text(line: Any, interaction: Any) -> str:
    """One transcript row as read aloud and shown: who, when, what."""
    return f"{sender_label(line.sender, interaction)} · {clock(line.at_ms)}\n{line.text}"


def sending_text(text: str) -> str:
    return f"{translate('Chat', 'You')} · {translate('Chat', SENDING)}\n{text}"


def rows(chat: ev.ChatInfo | None, interaction: Any) -> list[tuple[str, bool]]:
    """(text, committed) per row: the transcript in order, then the lines still being sent."""
    if chat is None:
        return []
    return ([(line_text(line, interaction), True) for line in chat.lines]
            + [(sending_text(text), False) for _, text in chat.sending])


# ---------------------------------------------------------------------------- widgets


class ReplyBox(QPlainTextEdit):
    """Enter sends, Shift+Enter is a new line; Tab moves on (it is a form field, not an editor)."""

    send_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTabChangesFocus(True)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.send_requested.emit()
            return
        super().keyPressEvent(event)


def _named(widget, name: str, description: str = ""):
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


class ConversationView(QWidget):
    """Shown for a chat (transcript, reply box, Send) or an email (body, reply draft); hidden for a call."""

    send_requested = Signal(str, str)  # interaction id, text
    draft_changed = Signal(str, str)  # interaction id, whole draft (debounced)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("conversation")
        self.interaction: Any = None
        self.chats: dict[str, ev.ChatInfo] = {}
        self.drafts: dict[str, str] = {}  # what the agent typed, per email: the editor's truth
        self.saved: dict[str, str] = {}  # the draft text last handed to the session
        self._shown: list[tuple[str, bool]] = []

        self.transcript = _named(QListWidget(), self.tr("Chat transcript"),
                                 self.tr("Each line: who, when, then the text"))
        self.transcript.setWordWrap(True)
        self.transcript.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.transcript.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.reply = _named(ReplyBox(), self.tr("Reply"), self.tr("Enter sends; Shift+Enter starts a new line"))
        self.reply.setPlaceholderText(self.tr("Type a reply… (Enter sends, Shift+Enter: new line)"))
        self.reply.setMaximumHeight(90)  # about three lines; a text box's least useful height is its hint
        self.send_button = _named(QPushButton(self.tr("Send")), self.tr("Send reply"),
                                  self.tr("Or Enter in the reply box"))
        transcript_label = QLabel(self.tr("C&hat transcript:"))
        transcript_label.setBuddy(self.transcript)
        reply_label = QLabel(self.tr("Repl&y:"))
        reply_label.setBuddy(self.reply)
        self.chat_box = QWidget()
        chat = QVBoxLayout(self.chat_box)
        chat.setContentsMargins(0, 0, 0, 0)
        chat.addWidget(transcript_label)
        chat.addWidget(self.transcript, 1)
        row = QHBoxLayout()  # one row: the label beside the box leaves the transcript the height
        row.addWidget(reply_label, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.reply, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        chat.addLayout(row)

        self.body = _named(QPlainTextEdit(), self.tr("Email body"), self.tr("The customer's email, read only"))
        self.body.setReadOnly(True)
        self.body.setTabChangesFocus(True)
        self.draft = _named(QPlainTextEdit(), self.tr("Reply draft"), self.tr("Saved as you type"))
        self.draft.setTabChangesFocus(True)
        self.draft.setPlaceholderText(self.tr("Write the reply…"))
        body_label = QLabel(self.tr("Email &body:"))
        body_label.setBuddy(self.body)
        draft_label = QLabel(self.tr("Rep&ly draft:"))
        draft_label.setBuddy(self.draft)
        self.email_box = QWidget()
        email = QVBoxLayout(self.email_box)
        email.setContentsMargins(0, 0, 0, 0)
        email.addWidget(body_label)
        email.addWidget(self.body, 1)
        email.addWidget(draft_label)
        email.addWidget(self.draft, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.chat_box)
        layout.addWidget(self.email_box)
        self.chat_box.hide()
        self.email_box.hide()
        self.hide()

        self.draft_timer = QTimer(self)
        self.draft_timer.setSingleShot(True)
        self.draft_timer.setInterval(DRAFT_DEBOUNCE_MS)
        self.draft_timer.timeout.connect(self.flush_draft)
        self.reply.send_requested.connect(self._send)
        self.send_button.clicked.connect(self._send)
        self.draft.textChanged.connect(self._typed)

    @property
    def current_id(self) -> str | None:
        return self.interaction.interaction_id if self.interaction is not None else None

    # ------------------------------------------------------------------ rendering

    def show_interaction(self, interaction: Any) -> None:
        """The panel shows another interaction (or none)."""
        if interaction is not None and interaction == self.interaction:
            return
        self.flush_draft()
        self.interaction = interaction
        media = interaction.media if interaction is not None else None
        self.chat_box.setVisible(media == "chat")
        self.email_box.setVisible(media == "email")
        self.setVisible(media in ("chat", "email"))
        self._shown = []
        self.transcript.clear()
        self.reply.clear()
        if interaction is not None and media == "email":
            self.body.setPlainText(interaction.body or self.tr("(no text)"))
            known = self.chats.get(interaction.interaction_id)
            self.draft.blockSignals(True)
            self.draft.setPlainText(self.drafts.get(interaction.interaction_id, known.draft if known else ""))
            self.draft.blockSignals(False)
        self._render_transcript()

    def render_chats(self, chats: tuple[ev.ChatInfo, ...], held_ids: set[str]) -> None:
        self.chats = {c.interaction_id: c for c in chats}
        for iid in [i for i in self.drafts if i not in held_ids]:
            del self.drafts[iid]
            self.saved.pop(iid, None)
        self._render_transcript()

    def _render_transcript(self) -> None:
        interaction = self.interaction
        if interaction is None or interaction.media != "chat":
            return
        wanted = rows(self.chats.get(interaction.interaction_id), interaction)
        if wanted == self._shown:
            return
        bar = self.transcript.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 4
        committed = [r for r in self._shown if r[1]]
        if wanted[:len(committed)] == committed:  # new lines: drop the old "sending" rows, append the rest
            for _ in range(len(self._shown) - len(committed)):
                self.transcript.takeItem(self.transcript.count() - 1)
            new = wanted[len(committed):]
        else:
            self.transcript.clear()
            new = wanted
        grey = self.palette().color(QPalette.ColorRole.PlaceholderText)
        for text, done in new:
            item = QListWidgetItem(text)
            if not done:
                item.setForeground(grey)
            self.transcript.addItem(item)
        self._shown = wanted
        if at_bottom or any(not done for _, done in new):  # reading back stays put, unless the agent typed
            self.transcript.scrollToBottom()

    # ------------------------------------------------------------------ typing

    def _send(self) -> None:
        text = self.reply.toPlainText().strip()
        if not text or self.current_id is None:
            return
        self.reply.clear()
        self.send_requested.emit(self.current_id, text)

    def _typed(self) -> None:
        if self.current_id is not None:
            self.drafts[self.current_id] = self.draft.toPlainText()
            self.draft_timer.start()

    def flush_draft(self) -> None:
        self.draft_timer.stop()
        iid = self.current_id
        if iid is None or iid not in self.drafts:
            return
        text = self.drafts[iid]
        if self.saved.get(iid) != text:
            self.saved[iid] = text
            self.draft_changed.emit(iid, text)
