"""The README screenshots can be regenerated: the real app under Xvfb (xcb) writes every PNG the
README shows, the states in the light and the dark theme."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

from tests.support.servers import REPO

pytestmark = pytest.mark.slow


NAMES = ("login", "offer", "main", "main-dark", "hold", "hold-dark", "transfer", "transfer-dark", "consult",
         "consult-dark", "chat", "chat-dark", "supervisor", "supervisor-dark", "queues", "queues-dark", "failover")


def test_screenshots_of_every_state_in_light_and_dark(tmp_path):
    # The test command installs it (.ci/setup): a machine without it is set up wrong.
    assert shutil.which("xvfb-run"), "no xvfb-run here: run `bash .ci/test`, whose set-up installs xvfb and xauth"
    # QT_FATAL_WARNINGS: any Qt warning on the real X platform aborts the app, failing the test.
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "QT_QPA_PLATFORM": "xcb",
           "QT_FATAL_WARNINGS": "1"}
    env.pop("DISPLAY", None)
    result = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-m",
                             "desktop.ui.screenshots", str(tmp_path / "shots")],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [f"wrote {tmp_path / 'shots' / name}.png" for name in NAMES]
    for name in NAMES:
        image = QImage(str(tmp_path / "shots" / f"{name}.png"))
        assert not image.isNull() and image.width() >= (300 if name == "login" else 700), name
        # The theme in the name: the window's background (its bottom middle) is dark or light.
        lightness = image.pixelColor(image.width() // 2, image.height() - 4).lightness()
        assert (lightness < 128) == name.endswith("-dark"), (name, lightness)
