"""The README screenshots can be regenerated: the real app under Xvfb (xcb) writes four PNGs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

from tests.support.servers import REPO

pytestmark = pytest.mark.slow


def test_screenshots_of_login_main_window_and_failover_banner(tmp_path):
    # The test command installs it (.ci/setup): a machine without it is set up wrong.
    assert shutil.which("xvfb-run"), "no xvfb-run here: run `bash .ci/test`, whose set-up installs xvfb and xauth"
    # QT_FATAL_WARNINGS: any Qt warning on the real X platform aborts the app, failing the test.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "QT_QPA_PLATFORM": "xcb",
           "QT_FATAL_WARNINGS": "1"}
    env.pop("DISPLAY", None)
    result = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-m",
                             "desktop.ui.screenshots", str(tmp_path / "shots")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, min_width in (("login", 300), ("offer", 500), ("main", 500), ("main-dark", 500), ("failover", 500)):
        image = QImage(str(tmp_path / "shots" / f"{name}.png"))
        assert not image.isNull() and image.width() >= min_width, name
    assert result.stdout.splitlines() == [f"wrote {tmp_path / 'shots' / name}.png"
                                          for name in ("login", "offer", "main", "main-dark", "failover")]
    dark = QImage(str(tmp_path / "shots" / "main-dark.png"))
    assert dark.pixelColor(dark.width() // 2, dark.height() - 40).lightness() < 128, "main-dark.png is not dark"
