"""The look chosen in Settings: theme (the system's, light or dark) and font size, for the whole
application. "System" gives back exactly what the application started with."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication, QStyleFactory

_original: list[tuple[str, QPalette, QFont]] = []  # the application's own look, taken at the first change

_DARK = {  # a dark palette with the contrast of Qt's own Fusion dark scheme
    QPalette.ColorRole.Window: QColor(45, 45, 45),
    QPalette.ColorRole.WindowText: QColor(230, 230, 230),
    QPalette.ColorRole.Base: QColor(30, 30, 30),
    QPalette.ColorRole.AlternateBase: QColor(45, 45, 45),
    QPalette.ColorRole.ToolTipBase: QColor(60, 60, 60),
    QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
    QPalette.ColorRole.PlaceholderText: QColor(150, 150, 150),
    QPalette.ColorRole.Text: QColor(230, 230, 230),
    QPalette.ColorRole.Button: QColor(53, 53, 53),
    QPalette.ColorRole.ButtonText: QColor(230, 230, 230),
    QPalette.ColorRole.BrightText: QColor(255, 90, 90),
    QPalette.ColorRole.Link: QColor(90, 160, 255),
    QPalette.ColorRole.Highlight: QColor(42, 130, 218),
    QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
}


def _light() -> QPalette:
    fusion = QStyleFactory.create("Fusion")
    return fusion.standardPalette()


def _dark() -> QPalette:
    palette = QPalette()
    for role, colour in _DARK.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(128, 128, 128))
    return palette


def apply_look(theme: str, font_size: int, app: QApplication | None = None) -> None:
    """Theme ("system", "light", "dark") and font size in points (0: the system's), app-wide.
    Only a change is applied (each one repaints every window)."""
    app = app or QApplication.instance()  # type: ignore[assignment]
    if not isinstance(app, QApplication):
        return
    if not _original:
        _original.append((app.style().name(), app.palette(), app.font()))
    style, palette, font = _original[0]
    if theme in ("light", "dark"):
        if app.style().name().lower() != "fusion":
            app.setStyle("Fusion")  # the palettes are drawn as meant in Fusion on every platform
        wanted = _dark() if theme == "dark" else _light()
    else:
        if app.style().name() != style:
            app.setStyle(style)
        wanted = palette
    if app.palette() != wanted:
        app.setPalette(wanted)
        # Widgets with a style sheet (the offer toast, the failover banner) and their children keep
        # the palette they were polished with (Qt tells only the windows): set each sheet again.
        for widget in app.allWidgets():
            if widget.styleSheet():
                widget.setStyleSheet(widget.styleSheet())
    sized = QFont(font)
    if font_size:
        sized.setPointSize(font_size)
    if app.font() != sized:
        app.setFont(sized)
