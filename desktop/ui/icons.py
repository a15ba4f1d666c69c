"""SVG icons from resources/icons, cached (QIcon renders SVG at any size and device pixel ratio)."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import qWarning
from PySide6.QtGui import QIcon

from server_stub.resources import resource_dir


@cache
def icon(name: str) -> QIcon:
    """``name`` without .svg. A missing file is a Qt warning (fatal in the tests and under
    QT_FATAL_WARNINGS, so a typo cannot ship unnoticed) and an empty icon, never a crash."""
    path = resource_dir() / "icons" / f"{name}.svg"
    if not path.is_file():
        qWarning(f"agent-desktop: missing icon {path}")
        return QIcon()
    return QIcon(str(path))
