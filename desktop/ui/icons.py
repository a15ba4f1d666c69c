"""SVG icons from resources/icons, cached (QIcon renders SVG at any size and device pixel ratio)."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QIcon

from server_stub.resources import resource_dir


@lru_cache(maxsize=None)
def icon(name: str) -> QIcon:
    """``name`` without .svg; a missing file gives an empty icon rather than a crash."""
    path = resource_dir() / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()
