"""``agent-desktop``: the agent's Qt desktop on the qasync loop (``--demo`` for the local walkthrough)."""

from __future__ import annotations

import argparse
import asyncio
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
    return parser


def display_available() -> bool:
    """Can Qt show windows here? Off Linux/BSD always; on X11/Wayland only with a display (or an
    explicit QT_QPA_PLATFORM such as offscreen)."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM"))


def demo_ports(args) -> tuple[int, int] | None:
    return (args.base_port, args.base_port + 1) if args.base_port else None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.base_port is not None and not (args.demo and 1024 <= args.base_port <= 65534):
        parser.error("--base-port needs --demo and a port within 1024..65534")
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not display_available():
        if args.demo:
            from .demo import run_headless

            print("agent-desktop: no display available, so the demo runs headless (same core, no windows); "
                  "failover timeline follows.", flush=True)
            return run_headless(ports=demo_ports(args))
        print("agent-desktop: no display available (set DISPLAY, or run agent-cli for a headless agent).",
              file=sys.stderr)
        return 2
    return run_gui(args)


def run_gui(args) -> int:
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    import qasync

    from . import credentials
    from .ui.icons import icon
    from .ui.settings import SettingsError, it_file_path, resolve

    app = QApplication.instance() or QApplication(sys.argv[:1])
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

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
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
        settings = demo.desktop_settings(settings)

    from .ui.controller import DesktopController
    from .ui.settings_window import SettingsWindow

    controller = DesktopController(settings, store, keyring_reason=credentials.keyring_unavailable_reason(),
                                   ca_file=args.ca_file)
    settings_window = SettingsWindow(store, args.settings)
    controller.settings_requested.connect(settings_window.show_for, )
    settings_window.applied.connect(controller.apply_settings)
    if demo is not None:
        demo.attach(controller)
    from .ui import probe

    probe.install(controller)  # bench/desktop_start.py only; inert without AGENT_DESKTOP_PROBE
    controller.show()

    def quit_cleanly() -> None:
        app.aboutToQuit.disconnect(quit_cleanly)  # the drain below runs the loop once more
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
        with loop:
            loop.run_forever()
            _drain(loop)
    finally:
        if demo is not None:
            demo.stop()
    return 0


def _drain(loop) -> None:
    """Let closing links finish (cancel what is left after a second) before the loop closes: a
    coroutine left pending would be torn down by the garbage collector after Qt is gone, which
    crashes the interpreter at exit."""
    import asyncio

    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return

    async def finish() -> None:
        _, late = await asyncio.wait(pending, timeout=1.0)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=1.0)

    loop.run_until_complete(finish())


if __name__ == "__main__":
    sys.exit(main())
