"""How to start another ``interaction-server`` process from this one (the demo, ``pair``).

From a source checkout or a virtualenv that is this interpreter with ``-m server_stub``. In a
frozen bundle (PyInstaller) ``sys.executable`` is the bundle's own executable, not Python, so
``-m`` would re-launch the desktop with arguments it does not know (docs/architecture.md, pitfalls): there the
command is the bundle's ``interaction-server`` executable beside the running one.
"""

from __future__ import annotations

import sys
from pathlib import Path

SERVER_NAME = "interaction-server"


def server_command() -> list[str]:
    """The argv prefix that runs ``interaction-server``; append its arguments."""
    if getattr(sys, "frozen", False):
        suffix = ".exe" if sys.platform == "win32" else ""
        return [str(Path(sys.executable).with_name(SERVER_NAME + suffix))]
    return [sys.executable, "-m", "server_stub"]
