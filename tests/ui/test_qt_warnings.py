"""The fixture in tests/ui/conftest.py really fails a test that makes Qt log a warning."""

import os
import subprocess
import sys

from tests.support.servers import REPO


def test_a_qt_warning_fails_the_test(tmp_path):
    (tmp_path / "conftest.py").write_text("from tests.ui.conftest import fail_on_qt_warnings  # noqa: F401\n")
    (tmp_path / "test_warns.py").write_text(
        "from PySide6.QtCore import qWarning\n\n"
        "def test_warns(qtbot):\n    qWarning('something odd happened')\n\n"
        "def test_quiet(qtbot):\n    pass\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"})
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed" in result.stdout
    assert "QtWarningMsg: something odd happened" in result.stdout
