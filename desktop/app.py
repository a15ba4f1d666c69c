"""``agent-desktop``: the agent's Qt desktop (``--demo`` for the local walkthrough).

The GUI thread runs Qt's own event loop and nothing that can wait on the network or the keyring:
the session's links run on the network thread (``desktop.ui.bridge``), keyring calls on a chores
thread (``desktop.gui_calls``). docs/architecture.md, "Threads"."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

DESCRIPTION = "Contact-center agent desktop with failover between two interaction servers."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-desktop", description=DESCRIPTION)
    parser.add_argument("--settings", metavar="FILE",
                        help="IT settings TOML whose values win over the user's (default: "
                             "$AGENT_DESKTOP_SETTINGS, else /etc/agent-desktop/settings.toml if present)")
    parser.add_argument("--demo", action="store_true",
                        help="start a local server pair and open the desktop with a demo agent filled in; "
                             "with no display, run the same scenario headless and print the failover timeline")
    parser.add_argument("--base-port", type=int, metavar="PORT",
                        help="with --demo: site A on PORT, site B on PORT+1 (default: 8701/8702 when free, "
                             "else any free ports)")
    parser.add_argument("--ca-file", help="CA bundle to verify wss:// servers (default: the system store)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--self-test", nargs="?", const="all", choices=("all", "install"), metavar="SCOPE",
                        help="check this installation and exit (0 when every required check passes): Qt platform "
                             "plugin, resources and icons, machine and user settings, TLS trust, keyring, and a "
                             "register on each configured site; works without a display. SCOPE 'install' skips "
                             "the user's settings, the keyring and the sites (what the package runs after install)")
    return parser


NON_WINDOWING_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay")


def x11_display_answers(display: str, timeout: float = 1.0) -> bool:
    """Does the X server named by ``display`` (``[host]:N[.screen]``) accept a connection? Local
    displays listen on /tmp/.X11-unix/XN (or its abstract twin), remote ones on TCP 6000+N."""
    import socket

    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return False
    if host in ("", "unix") or host.startswith("/"):
        path = host if host.startswith("/") else f"/tmp/.X11-unix/X{number}"
        for address in (path, "\0" + path):  # the file, then Linux's abstract namespace
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                try:
                    s.connect(address)
                    return True
                except OSError:
                    continue
        return False
    try:
        socket.create_connection((host, 6000 + int(number)), timeout=timeout).close()
        return True
    except OSError:
        return False


def wayland_socket_exists(name: str) -> bool:
    from pathlib import Path

    path = Path(name) if name.startswith("/") else Path(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent")) / name
    return path.is_socket()


def display_problem() -> str | None:
    """None when Qt can show windows here, else why not (one phrase). Off Linux/BSD always fine; a
    non-windowing platform (offscreen...) is fine; otherwise the X or Wayland display must really be
    there, since Qt aborts on a stale DISPLAY instead of reporting it."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return None
    env = os.environ
    wanted = [name.split(":")[0] for name in env.get("QT_QPA_PLATFORM", "").split(";") if name]
    if any(name in NON_WINDOWING_PLATFORMS for name in wanted):
        return None
    try_wayland = not wanted or any(name.startswith("wayland") for name in wanted)
    try_x11 = not wanted or "xcb" in wanted
    if not (try_wayland or try_x11):
        return None  # a platform we cannot probe: let Qt try it
    wayland, x11 = env.get("WAYLAND_DISPLAY"), env.get("DISPLAY")
    problems = []
    if try_wayland and wayland:
        if wayland_socket_exists(wayland):
            return None
        problems.append(f"WAYLAND_DISPLAY={wayland} has no socket")
    if try_x11 and x11:
        if x11_display_answers(x11):
            return None
        problems.append(f"DISPLAY={x11} does not answer")
    return "; ".join(problems) or "no DISPLAY or WAYLAND_DISPLAY is set"


def demo_ports(args) -> tuple[int, int] | None:
    return (args.base_port, args.base_port + 1) if args.base_port else None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.base_port is not None and not (args.demo and 1024 <= args.base_port <= 65534):
        parser.error("--base-port needs --demo and a port within 1024..65534")
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.self_test:
        from .selftest import run_desktop

        return run_desktop(args)
    problem = display_problem()
    if problem:
        if args.demo:
            from .demo import run_headless

            print(f"agent-desktop: no display available ({problem}), so the demo runs headless (same core, "
                  f"no windows); failover timeline follows.", flush=True)
            return run_headless(ports=demo_ports(args))
        print(f"agent-desktop: no display available ({problem}); set DISPLAY, or run agent-cli for a "
              f"headless agent.", file=sys.stderr)
        return 2
    return run_gui(args)


def run_gui(args) -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from .gui_gc import GuiThreadCollector
    from .ui.icons import icon
    from .ui.settings import SettingsError, it_file_path, resolve

    app = QApplication.instance() or QApplication(sys.argv[:1])
    GuiThreadCollector(app).start()  # the network thread and the demo's output pumps run Python too
    app.setOrganizationName("AgentDesktop")
    app.setApplicationName("agent-desktop")
    app.setApplicationDisplayName("Agent Desktop")
    app.setWindowIcon(icon("app"))
    store = QSettings()
    try:
        settings = resolve(store, it_file_path(args.settings))
    except SettingsError as exc:
        print(f"agent-desktop: {exc}", file=sys.stderr)
        return 2
    from .ui import translations

    translations.install(app, settings.language)  # before the first window: its words are set when built

    demo = None
    if args.demo:
        from .demo import DemoServers

        demo = DemoServers(demo_ports(args))
        try:
            demo.start()
        except RuntimeError as exc:
            print(f"agent-desktop: {exc}", file=sys.stderr)
            demo.stop()
            return 1

    controller, settings_window = open_desktop(args, store, settings, demo)  # both live until the loop ends
    from .ui import probe

    probe.install(controller)  # bench/desktop_start.py only; inert without AGENT_DESKTOP_PROBE
    controller.show()

    def quit_cleanly() -> None:
        app.aboutToQuit.disconnect(quit_cleanly)  # once, even if Qt signals it again
        controller.save_geometry()
        controller.shutdown()

    app.aboutToQuit.connect(quit_cleanly)
    app.setQuitOnLastWindowClosed(True)
    # Ctrl-C in the terminal quits like closing the window. Python runs signal handlers only between
    # bytecodes, so a slow timer lets the interpreter look while Qt idles in C++.
    signal.signal(signal.SIGINT, lambda *_: controller.logout_and_quit())
    signal_timer = QTimer()
    signal_timer.start(250)
    signal_timer.timeout.connect(lambda: None)
    try:
        app.exec()  # quit_cleanly joins the network thread once its links have closed
    finally:
        if demo is not None:
            demo.stop()
    return 0


def open_desktop(args, store, settings, demo=None):
    """The controller and the Settings window, wired. With ``demo`` both see the demo's local sites
    (the Settings window too, so saving there never swaps them for the configured ones)."""
    from .ui.controller import DesktopController
    from .ui.settings_window import SettingsWindow

    overlay = None
    if demo is not None:
        settings, overlay = demo.desktop_settings(settings, preferred="A"), demo.desktop_settings
    controller = DesktopController(settings, store, probe_keyring=True, ca_file=args.ca_file)
    settings_window = SettingsWindow(store, args.settings, overlay=overlay)
    controller.settings_requested.connect(settings_window.show_for)
    settings_window.applied.connect(controller.apply_settings)
    if demo is not None:
        demo.attach(controller)
    return controller, settings_window


if __name__ == "__main__":
    sys.exit(main())
