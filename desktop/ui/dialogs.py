"""Pieces shared by the desktop's and the supervisor's windows: the error label and the non-blocking
question (``open()`` and a signal: never ``exec()`` under qasync, docs/architecture.md, pitfalls)."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFocusFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class ErrorLabel(QLabel):
    """Red text that stays readable in the system's light and dark palettes (and follows a switch)."""

    def __init__(self, name: str, parent=None):
        super().__init__(parent)
        self.setAccessibleName(name)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._apply_colour()

    def colour(self) -> str:
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        return "#ff8a80" if dark else "#c62828"

    def _apply_colour(self) -> None:
        wanted = QColor(self.colour())
        if self.palette().color(QPalette.ColorRole.WindowText) != wanted:  # also ends the PaletteChange echo
            palette = self.palette()
            palette.setColor(QPalette.ColorRole.WindowText, wanted)
            self.setPalette(palette)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the system switched light/dark
            self._apply_colour()


class Question(QDialog):
    """A window-modal question that never blocks: ``open()`` it and connect ``answered``, which
    carries the key of the button pressed, or "" when the question was dismissed (Esc, closed)."""

    answered = Signal(str)

    def __init__(self, parent, title: str, text: str, info: str, buttons: list[tuple[str, str, str]],
                 default: str, width: int = 440):
        """``buttons``: (key, text with its &mnemonic, accessible name), left to right."""
        super().__init__(parent)
        self.setObjectName("question")
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.text_label = QLabel(text)
        font = self.text_label.font()
        font.setBold(True)
        self.text_label.setFont(font)
        self.info_label = QLabel(info)
        for label in (self.text_label, self.info_label):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        row.addStretch(1)
        for key, label_text, name in buttons:
            button = QPushButton(label_text)
            button.setAccessibleName(name)
            button.setAutoDefault(key == default)
            button.setDefault(key == default)
            button.clicked.connect(lambda _checked=False, key=key: self._answer(key))
            self.buttons[key] = button
            row.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text_label)
        layout.addWidget(self.info_label)
        layout.addStretch(1)
        layout.addLayout(row)
        self._answered = False
        self.finished.connect(lambda _result: self._answer(""))
        # One fixed size, set before the window exists: a layout that pushes new size hints to the
        # window system on every change is wasted work (and the offscreen platform warns about each).
        self.ensurePolished()  # measured with the fonts and margins the style will use
        for label in (self.text_label, self.info_label):
            label.ensurePolished()
        width = max(width, row.sizeHint().width() + 24)
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else layout.sizeHint().height()
        height += layout.spacing()  # breathing room under the buttons
        layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
        self.setMinimumSize(width, height)
        self.resize(width, height)
        if default in self.buttons:
            self.buttons[default].setFocus()
        self.focus_outline = FocusOutline(self)

    def _answer(self, key: str) -> None:
        if self._answered:
            return
        self._answered = True
        self.answered.emit(key)
        if self.isVisible():
            self.close()


class FocusOutline(QObject):
    """A readable focus outline: Qt's ``QFocusFrame`` (a frame drawn by the style, in the palette's
    text colour, so it follows light and dark) around whichever control of ``window`` has the
    keyboard focus. The styles' own focus marks are a faint tint on some controls."""

    def __init__(self, window: QWidget):
        super().__init__(window)
        self.window = window
        self.frame = self._new_frame()
        app = QApplication.instance()
        assert isinstance(app, QApplication), "FocusOutline needs a QApplication"
        app.focusChanged.connect(self._focus_changed)

    def _new_frame(self) -> QFocusFrame:
        frame = QFocusFrame(self.window)
        frame.setObjectName("focusOutline")
        frame.hide()
        return frame

    def _focus_changed(self, _old: QWidget | None, new: QWidget | None) -> None:
        if not shiboken6.isValid(self.frame) and shiboken6.isValid(self.window):
            self.frame = self._new_frame()  # it had followed a control into a container since deleted
        if not shiboken6.isValid(self.frame):  # the window (and its frame) is gone: stop listening
            app = QApplication.instance()
            if isinstance(app, QApplication):
                try:
                    app.focusChanged.disconnect(self._focus_changed)
                except (RuntimeError, TypeError):
                    pass
            return
        if new is not None and new.window() is self.window and new is not self.window:
            self.frame.setWidget(new)
            self.frame.show()
        elif self.frame.widget() is not None and (new is None or new.window() is self.window):
            self.frame.setWidget(None)  # type: ignore[arg-type]  # focus left every control of this window
            self.frame.hide()


__all__ = ["ErrorLabel", "FocusOutline", "Question"]
