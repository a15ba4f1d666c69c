"""Is there a display? Probed for real (an X server that answers, a Wayland socket that exists), not
guessed from variables: a stale DISPLAY would make Qt abort instead of falling back to headless."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess

import pytest

from desktop.app import display_problem, x11_display_answers
from tests.support.servers import REPO


def unused_display_number() -> int:
    """A display number nothing listens on (no /tmp/.X11-unix socket, abstract or not)."""
    while True:
        number = 20000 + secrets.randbelow(20000)
        if not x11_display_answers(f":{number}"):
            return number


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_local_x_display_counts_only_while_its_socket_answers(clean_env):
    number = unused_display_number()
    clean_env.setenv("DISPLAY", f":{number}.0")
    clean_env.setenv("QT_QPA_PLATFORM", "xcb")
    assert display_problem() == f"DISPLAY=:{number}.0 does not answer"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(f"\0/tmp/.X11-unix/X{number}")  # Linux's abstract namespace, as Xorg and Xvfb listen
        server.listen()
        assert display_problem() is None


def test_a_tcp_x_display_counts_only_while_it_answers(clean_env):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        number = server.getsockname()[1] - 6000
        clean_env.setenv("DISPLAY", f"127.0.0.1:{number}")
        assert display_problem() is None
    assert display_problem() == f"DISPLAY=127.0.0.1:{number} does not answer"


def test_a_wayland_display_needs_its_socket(clean_env, tmp_path):
    clean_env.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    clean_env.setenv("WAYLAND_DISPLAY", "wayland-7")
    assert display_problem() == "WAYLAND_DISPLAY=wayland-7 has no socket"
    (tmp_path / "wayland-7").write_text("")  # a leftover file is not a compositor's socket
    assert display_problem() == "WAYLAND_DISPLAY=wayland-7 has no socket"
    (tmp_path / "wayland-7").unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(tmp_path / "wayland-7"))
        assert display_problem() is None


def test_offscreen_needs_no_display_and_nothing_set_is_said_plainly(clean_env):
    assert display_problem() == "no DISPLAY or WAYLAND_DISPLAY is set"
    clean_env.setenv("QT_QPA_PLATFORM", "offscreen")
    assert display_problem() is None


def test_a_stale_display_gives_one_line_not_a_qt_abort(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY",)}
    env.update(DISPLAY=f":{unused_display_number()}", QT_QPA_PLATFORM="xcb", XDG_CONFIG_HOME=str(tmp_path))
    result = subprocess.run([str(REPO / ".venv/bin/agent-desktop")], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"agent-desktop: no display available (DISPLAY={env['DISPLAY']} does not answer); set DISPLAY, "
        f"or run agent-cli for a headless agent."]
