"""``supervisor-view``: the supervisor status view (PySide6 on qasync) over every site's reporting.

The password comes from ``$AGENT_PASSWORD`` (``--password-source env``), the system keyring, or the
inline login panel (``prompt``; also the fallback when the keyring has none). After the first
subscription the view holds a resume token and does not need the password again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .credentials import PASSWORD_ENV, keyring_unavailable_reason, load_password, store_password
from .reporting.client import Endpoint, ReportingClient
from .reporting.engine import ReportingEngine
from .sites import load_sites


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="supervisor-view", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", help="sites TOML ([[site]] name/url; default: the shipped sites.toml)")
    parser.add_argument("--servers", help="comma-separated ws:// URLs instead of --sites (named A, B, ...)")
    parser.add_argument("--user", default=os.environ.get("SUPERVISOR_USER", ""), help="supervisor id")
    parser.add_argument("--password-source", choices=["auto", "env", "keyring", "prompt"], default="auto",
                        help=f"auto: ${PASSWORD_ENV}, else the keyring, else the login panel (default)")
    parser.add_argument("--ca-file", help="CA bundle to verify wss:// servers (default: system store)")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def endpoints_from_args(args) -> list[Endpoint]:
    if args.servers:
        urls = [u.strip() for u in args.servers.split(",") if u.strip()]
        return [Endpoint(chr(ord("A") + i), u) for i, u in enumerate(urls)]
    return [Endpoint(s.name, s.url) for s in load_sites(args.sites)]


def initial_password(user: str, source: str) -> str | None:
    """The password if it can be had without asking; None means: show the login panel."""
    if source in ("env", "auto") and os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if source in ("keyring", "auto") and user:
        return load_password(user)
    return None


class Credentials:
    """The supervisor's password for the client; replaced when the user signs in again."""

    def __init__(self, password: str | None):
        self.password = password

    def __call__(self) -> str:
        if not self.password:
            raise LookupError("sign in with your supervisor password")
        return self.password


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        endpoints = endpoints_from_args(args)
    except Exception as exc:  # a bad sites file must say what is wrong, not crash
        print(f"supervisor-view: cannot read the site list: {exc}", file=sys.stderr)
        return 2
    if not endpoints:
        print("supervisor-view: no sites configured", file=sys.stderr)
        return 2

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    import qasync

    from .supervisor.window import SupervisorWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("supervisor-view")
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    engine = ReportingEngine([e.name for e in endpoints])
    credentials = Credentials(initial_password(args.user, args.password_source))
    window: SupervisorWindow | None = None

    def on_status(server: str, text: str) -> None:
        if window is not None and (text.startswith("login refused") or text.startswith("no password")):
            window.login_panel.show_message(f"Server {server}: {text}")

    client = ReportingClient(engine, endpoints, args.user or "", credentials, on_status=on_status, ca_file=args.ca_file)
    window = SupervisorWindow(engine, actions=client, link_status=lambda s: client.links[s].status)

    def sign_in(user: str, password: str, remember: bool) -> None:
        client.user_id = user
        credentials.password = password
        if remember:
            problem = store_password(user, password)
            if problem:
                window.notify(problem)
        window.login_panel.hide()
        client.credentials_changed()

    window.login_panel.user.setText(args.user or "")
    note = keyring_unavailable_reason()
    if note:
        window.login_panel.remember.setEnabled(False)
        window.login_panel.remember.setToolTip(note)
    window.login_panel.submitted.connect(sign_in)
    if not credentials.password or not args.user:
        window.login_panel.show()
    window.show()

    # Quit by closing the window or with SIGTERM/SIGINT: the client closes its sockets first, then
    # the loop ends. The signal handler only raises a flag (it may interrupt the event loop's own
    # bookkeeping); a short timer turns the flag into the stop.
    stopping = asyncio.Event()
    app.setQuitOnLastWindowClosed(False)
    window.closed.connect(stopping.set)
    signalled: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: signalled.append(number))
    watch = QTimer()
    watch.setInterval(200)
    watch.timeout.connect(lambda: stopping.set() if signalled else None)
    watch.start()

    async def run() -> None:
        client.start()
        await stopping.wait()
        await client.stop()

    with loop:
        try:
            loop.run_until_complete(run())
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
