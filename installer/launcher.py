"""The frozen bundle's entry point: one program, dispatched on the name it was started as.

On Linux the bundle holds one executable, ``agent-desktop``, and the other commands are symlinks
to it (``interaction-server``, ``supervisor-view``, ``agent-cli``); on Windows each command is its
own small executable built from this same script. Either way the command is the basename of
``argv[0]`` (without ``.exe``), never ``-m``: a frozen ``sys.executable`` is this program, not
Python (docs/architecture.md, pitfalls). An unknown name (a renamed copy) runs the agent desktop.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import PurePath, PureWindowsPath

DEFAULT = "agent-desktop"


def _agent_desktop() -> Callable[[], int]:
    from desktop.app import main

    return main


def _supervisor_view() -> Callable[[], int]:
    from desktop.supervisor_app import main

    return main


def _agent_cli() -> Callable[[], int]:
    from desktop.agent_cli import main

    return main


def _interaction_server() -> Callable[[], int]:
    from server_stub.cli import main

    return main


# Imports stay inside the functions: the server and the headless agent never load Qt.
COMMANDS: dict[str, Callable[[], Callable[[], int]]] = {
    "agent-desktop": _agent_desktop,
    "supervisor-view": _supervisor_view,
    "agent-cli": _agent_cli,
    "interaction-server": _interaction_server,
}


def command_name(argv0: str) -> str:
    """The command ``argv0`` names: its file name without directory or ``.exe``."""
    name = PureWindowsPath(argv0).name if "\\" in argv0 else PurePath(argv0).name
    if name.lower().endswith(".exe"):
        name = name[:-4]
    return name if name in COMMANDS else DEFAULT


def main() -> int:
    return COMMANDS[command_name(sys.argv[0] if sys.argv else "")]()()


if __name__ == "__main__":
    sys.exit(main())
