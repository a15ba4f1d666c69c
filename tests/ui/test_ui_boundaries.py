"""What the UI layer may depend on: icons that exist, and no protocol or network internals."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from desktop.ui import interaction_presenter as ip
from desktop.ui import presenter as pr
from desktop.ui.icons import icon
from server_stub import protocol
from server_stub.resources import resource_dir
from tests.support.servers import REPO

UI = REPO / "desktop" / "ui"
STATES = (None, "ready", "not_ready", "after_call_work")


def referenced_icon_names() -> set[str]:
    """Every icon name the UI can ask for: the string constants inside icon(...) calls (also in an
    ``a if x else b``), and every name the presenters can compute."""
    names = set()
    for source in UI.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "icon":
                names |= {c.value for arg in node.args for c in ast.walk(arg)
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    names |= {pr.state_icon(state, connected) for state in STATES for connected in (True, False)}
    names |= {ip.media_icon(media) for media in typing.get_args(protocol.Media) + ("unknown-media",)}
    return names


def test_every_icon_the_ui_names_exists():
    names = referenced_icon_names()
    assert {"app", "site-up", "site-down", "offline", "ready", "media-voice"} <= names
    missing = sorted(n for n in names if not (resource_dir() / "icons" / f"{n}.svg").is_file())
    assert not missing, f"icons referenced but not in resources/icons: {missing}"


@pytest.mark.qt_log_ignore("missing icon")
def test_a_missing_icon_is_a_loud_qt_warning(qtlog):
    assert icon("no-such-icon").isNull()
    warnings = [r.message for r in qtlog.records if "missing icon" in r.message]
    assert warnings and warnings[0].endswith("no-such-icon.svg")


def imported_modules(path: Path) -> set[str]:
    """Absolute names of everything ``path`` (a module of desktop.ui) imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative to desktop.ui
                package = ["desktop", "ui"][: 2 - (node.level - 1)]
                base = ".".join(package + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_the_ui_layer_has_no_protocol_logic():
    """Widgets render core events: no wire messages (server_stub.protocol), no sockets or links
    (desktop.net) except the bridge's one entry point, the SessionRunner."""
    offending = {}
    for source in sorted(UI.glob("*.py")):
        bad = sorted(name for name in imported_modules(source)
                     if name.startswith(("server_stub.protocol", "websockets", "desktop.net"))
                     and not (source.name == "bridge.py" and name in ("desktop.net.runner",
                                                                      "desktop.net.runner.SessionRunner")))
        if bad:
            offending[source.name] = bad
    assert not offending, offending
    assert "desktop.net.runner.SessionRunner" in imported_modules(UI / "bridge.py")  # the check sees imports
