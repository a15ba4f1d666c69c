"""Render the application icons (SVG in resources/icons) as the packages need them.

    python installer/icons.py OUTDIR

writes ``OUTDIR/hicolor/<size>x<size>/apps/<name>.png`` for the freedesktop icon theme (beside the
scalable SVG, for desktops that do not draw SVG) and ``OUTDIR/<name>.ico`` for Windows (the
installer and the executables). Runs Qt offscreen; no display needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ICONS = {"agent-desktop": REPO / "resources/icons/app.svg",
         "supervisor-view": REPO / "resources/icons/supervisor/supervisor-view.svg"}
PNG_SIZES = (48, 128, 256)
ICO_SIZE = 256  # Windows scales down from the largest image


def render(out: Path) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSize
    from PySide6.QtGui import QGuiApplication, QIcon

    app = QGuiApplication.instance() or QGuiApplication([sys.argv[0]])  # noqa: F841 (needed to render)
    written = []
    for name, svg in ICONS.items():
        icon = QIcon(str(svg))
        for size in PNG_SIZES:
            path = out / "hicolor" / f"{size}x{size}" / "apps" / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not icon.pixmap(QSize(size, size)).save(str(path), "PNG"):
                raise RuntimeError(f"cannot write {path}")
            written.append(path)
        ico = out / f"{name}.ico"
        if not icon.pixmap(QSize(ICO_SIZE, ICO_SIZE)).save(str(ico), "ICO"):
            raise RuntimeError(f"cannot write {ico} (Qt's imageformats/qico plugin)")
        written.append(ico)
    return written


if __name__ == "__main__":
    for path in render(Path(sys.argv[1])):
        print(path)
