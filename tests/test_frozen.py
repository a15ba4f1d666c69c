"""The pieces of the frozen bundle that run without building it: dispatch on the program's name,
how a frozen program starts the interaction server, and what the pruning keeps."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from installer import build, launcher, prune
from server_stub.command import server_command


@pytest.mark.parametrize(("argv0", "command"), [
    ("/usr/bin/interaction-server", "interaction-server"),
    ("supervisor-view", "supervisor-view"),
    (r"C:\Program Files\Agent Desktop\agent-cli.exe", "agent-cli"),
    ("AGENT-CLI.EXE", "agent-desktop"),  # names are exact; anything unknown is the desktop
    ("/opt/x/agent-desktop", "agent-desktop"),
    ("renamed-copy", "agent-desktop"),
    ("", "agent-desktop"),
])
def test_the_launcher_runs_the_command_its_name_says(argv0, command):
    assert launcher.command_name(argv0) == command


def test_every_command_of_the_launcher_is_a_console_script_of_the_package():
    import tomllib

    from tests.support.servers import REPO

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(launcher.COMMANDS) == set(scripts)
    for name, target in scripts.items():
        module, _, function = target.partition(":")
        main = launcher.COMMANDS[name]()
        assert (main.__module__, main.__name__) == (module, function)


def test_the_server_command_is_python_from_source_and_the_sibling_executable_when_frozen(monkeypatch, tmp_path):
    assert server_command() == [sys.executable, "-m", "server_stub"]
    frozen = tmp_path / "agent-desktop"
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(frozen))
    assert server_command() == [str(tmp_path / "interaction-server")]
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "agent-desktop.exe"))
    assert server_command() == [str(tmp_path / "interaction-server.exe")]


@pytest.mark.parametrize(("dest", "left_out"), [
    ("PySide6/Qt/translations/qtbase_de.qm", True),
    ("PySide6/Qt/plugins/platforms/libqeglfs.so", True),
    ("PySide6/Qt/plugins/platforms/libqvnc.so", True),
    ("PySide6/Qt/plugins/platforms/libqxcb.so", False),
    ("PySide6/Qt/plugins/platforms/libqwayland.so", False),
    ("PySide6/Qt/plugins/platforms/libqoffscreen.so", False),
    ("PySide6/plugins/platforms/qwindows.dll", False),
    ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", True),
    ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", False),
    ("PySide6/Qt/plugins/imageformats/libqjpeg.so", True),
    ("PySide6/Qt/plugins/imageformats/libqsvg.so", False),
    ("PySide6/Qt/plugins/iconengines/libqsvgicon.so", False),
    ("PySide6/Qt/plugins/tls/libqopensslbackend.so", True),
    ("PySide6/Qt/plugins/xcbglintegrations/libqxcb-glx-integration.so", False),
    ("PySide6/Qt/lib/libicudata.so.73", False),
])
def test_pruning_drops_what_the_product_never_uses_and_keeps_its_platforms(dest, left_out):
    assert prune.dropped(dest) is left_out


def test_a_library_stays_only_while_something_kept_needs_it():
    needs = {"/src/exe": ["libpython.so.1"], "/src/libpython.so.1": ["libz.so.1"],
             "/src/qxcb.so": ["libQt6XcbQpa.so.6"], "/src/libQt6XcbQpa.so.6": ["libxcb-cursor.so.0"],
             "/src/qgtk3.so": ["libgtk-3.so.0"], "/src/libgtk-3.so.0": ["libcairo.so.2", "libz.so.1"]}
    toc = [(Path(src).name if "plugins" not in dest else dest, src, "BINARY") for dest, src in [
        ("libpython.so.1", "/src/libpython.so.1"), ("libz.so.1", "/src/libz.so.1"),
        ("PySide6/Qt/plugins/platforms/qxcb.so", "/src/qxcb.so"), ("libQt6XcbQpa.so.6", "/src/libQt6XcbQpa.so.6"),
        ("libxcb-cursor.so.0", "/src/libxcb-cursor.so.0"), ("libgtk-3.so.0", "/src/libgtk-3.so.0"),
        ("libcairo.so.2", "/src/libcairo.so.2")]]
    orphans = prune.unreachable(toc, roots=["/src/exe", "/src/qxcb.so"], needed=lambda src: needs.get(src, []))
    assert orphans == {"libgtk-3.so.0", "libcairo.so.2"}  # the theme plugin that needed them was dropped


@pytest.mark.skipif(shutil.which("makensis") is None, reason="NSIS is installed by .ci/setup --test")
def test_the_windows_installer_script_builds_with_warnings_as_errors(tmp_path):
    """makensis -WX over a placeholder payload of the Windows bundle's shape: the script is sound
    (the real payload is built on Windows, installer/README.md)."""
    payload = build.placeholder_payload(tmp_path)
    setup = build.build_nsis(payload, tmp_path, tmp_path / "dist", "0.1.0").path
    assert setup.name == "agent-desktop-0.1.0-setup.exe"
    assert setup.read_bytes()[:2] == b"MZ" and setup.stat().st_size > 100_000
