"""``supervisor-view``: the supervisor status view (PySide6 on qasync) over every site's reporting.

The password comes from ``$AGENT_PASSWORD`` (``--password-source env``), the system keyring, or the
inline login panel (``prompt``; also the fallback when the keyring has none). After the first
subscription the view holds a resume token and does not need the password again.

Threads (docs/architecture.md, "Threads"): the reporting links run on their own network thread
(``ThreadedClient``), so a blocked GUI thread costs no heartbeat and no subscription; the keyring is
asked on a chores thread; the GUI thread renders the engine (under its lock) and takes the clicks.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from contextlib import AbstractContextManager, nullcontext

from server_stub.protocol import Site

from .credentials import PASSWORD_ENV, keyring_unavailable_reason, load_password, store_password
from .reporting.client import ReportingClient, ThreadedClient
from .reporting.engine import ReportingEngine
from .sites import load_sites


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supervisor-view",
        description="The supervisor status view: every agent of every site, live, from the servers' reporting streams.")
    parser.add_argument("--sites", help="sites TOML ([[site]] name/url; default: the shipped sites.toml)")
    parser.add_argument("--servers", help="comma-separated ws:// URLs instead of --sites (named A, B, ...)")
    parser.add_argument("--user", default=os.environ.get("SUPERVISOR_USER", ""), help="supervisor id")
    parser.add_argument("--password-source", choices=["auto", "env", "keyring", "prompt"], default="auto",
                        help=f"auto: ${PASSWORD_ENV}, else the keyring, else the login panel (default)")
    parser.add_argument("--center", action="store_true",
                        help="one subscription for the whole center (every site) to the first reachable server, "
                             "failing over to the next when it is lost (instead of one per server)")
    parser.add_argument("--thresholds", type=parse_thresholds, metavar="STATE=SECONDS,...",
                        help="how long a state may last before its time is coloured, e.g. "
                             "not_ready=900,after_call_work=120,busy=600 (the defaults; states not named keep theirs)")
    parser.add_argument("--ca-file", help="CA bundle to verify wss:// servers (default: system store)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--self-test", nargs="?", const="all", choices=("all", "install"), metavar="SCOPE",
                        help="check this installation and exit (0 when every required check passes): Qt platform "
                             "plugin, icons, TLS trust, keyring and a register on each site; works without a "
                             "display. SCOPE 'install' skips the keyring and the sites")
    return parser


THRESHOLD_STATES = ("not_ready", "after_call_work", "busy")


def parse_thresholds(text: str) -> dict[str, int]:
    """``not_ready=900,busy=600`` -> {state: ms}; a clear argparse error for anything else."""
    limits: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        state, _, seconds = part.partition("=")
        if state not in THRESHOLD_STATES:
            raise argparse.ArgumentTypeError(f"{state!r}: a threshold is for one of {', '.join(THRESHOLD_STATES)}")
        try:
            value = float(seconds)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: give the seconds as a number (state=SECONDS)") from None
        if not 1 <= value <= 86_400:
            raise argparse.ArgumentTypeError(f"{part!r}: seconds must be within 1..86400")
        limits[state] = int(value * 1000)
    return limits


def endpoints_from_args(args) -> list[Site]:
    if args.servers:
        urls = [u.strip() for u in args.servers.split(",") if u.strip()]
        return [Site(chr(ord("A") + i), u) for i, u in enumerate(urls)]
    return load_sites(args.sites)


def initial_password(user: str, source: str) -> str | None:
    """The password if it can be had without asking; None means: show the login panel. Reads the
    keyring: never on the GUI thread (``SupervisorView`` runs it on its chores thread)."""
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


def _locked_window_class():
    """SupervisorWindow whose reads of the engine (the flush and the tick) hold the engine's lock:
    the network thread feeds the engine meanwhile."""
    from .supervisor.window import SupervisorWindow

    class LockedSupervisorWindow(SupervisorWindow):
        engine_lock: AbstractContextManager = nullcontext()  # the client's lock, set once built

        def flush(self) -> None:
            with self.engine_lock:
                super().flush()

        def tick(self) -> None:
            with self.engine_lock:
                super().tick()

    return LockedSupervisorWindow


class SupervisorView:
    """The application's parts wired together: engine, client, window, and the inline sign-in.

    With no password at hand (none in the environment or keyring) the login panel shows; what the
    supervisor types there is used for this run and, if asked, stored in the keyring.

    ``password_source`` (the command line's): the view finds the password itself, reading the
    keyring on its chores thread, and ``start`` connects once it has looked.
    """

    def __init__(self, endpoints: list[Site], user: str, password: str | None, ca_file: str | None = None,
                 password_source: str | None = None, center: bool = False,
                 thresholds_ms: dict[str, int] | None = None):
        from .gui_calls import Chores, GuiCalls

        self.engine = ReportingEngine([e.name for e in endpoints])
        self.credentials = Credentials(password)
        self.user = user
        self.password_source = password_source
        self.client = ThreadedClient(ReportingClient(self.engine, endpoints, user, self.credentials,
                                                     on_status=self._status_from_network, ca_file=ca_file,
                                                     center=center))
        self.window = _locked_window_class()(self.engine, actions=self.client,
                                             link_status=lambda server: self.client.links[server].status)
        self.window.engine_lock = self.client.engine_lock
        self.window.model.thresholds_ms.update(thresholds_ms or {})
        self.gui = GuiCalls(self.window)
        self.chores = Chores(self.gui, name="supervisor-keyring")
        panel = self.window.login_panel
        panel.user.setText(user)
        self.chores.run(keyring_unavailable_reason, then=self._keyring_probed)
        panel.submitted.connect(self.sign_in)
        if (not password and password_source is None) or not user:
            panel.show()

    def start(self) -> None:
        """Connect to every site: at once, or once the keyring has been asked for the password."""
        if self.password_source is None or self.credentials.password:
            self.client.start()
            return
        self.chores.run(initial_password, self.user, self.password_source, then=self._password_found)

    def _password_found(self, password: str | None) -> None:
        if password and not self.credentials.password:  # not over what the user signed in with meanwhile
            self.credentials.password = password
        if not self.credentials.password:
            self.window.login_panel.show()
        self.client.start()

    async def stop(self) -> None:
        await self.client.stop()
        self.chores.close()

    def _keyring_probed(self, note: str | None) -> None:
        if note:
            panel = self.window.login_panel
            panel.remember.setChecked(False)
            panel.remember.setEnabled(False)
            panel.remember.setToolTip(note)

    def _status_from_network(self, server: str, text: str) -> None:
        self.gui.post(self._on_status, server, text)

    def _on_status(self, server: str, text: str) -> None:
        if text.startswith("login refused") or text.startswith("no password"):
            self.window.login_panel.show_message(f"Server {server}: {text}")
        elif text == "subscribed":  # the credentials work (a late refusal of older ones may have shown it)
            self.window.login_panel.hide()

    def sign_in(self, user: str, password: str, remember: bool) -> None:
        self.client.user_id = user
        self.credentials.password = password
        if remember:
            self.chores.run(store_password, user, password,
                            then=lambda problem: self.window.notify(problem) if problem else None)
        self.window.login_panel.hide()
        self.client.credentials_changed()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        endpoints = endpoints_from_args(args)
    except Exception as exc:  # a bad sites file must say what is wrong, not crash
        print(f"supervisor-view: cannot read the site list: {exc}", file=sys.stderr)
        return 2
    if not endpoints:
        print("supervisor-view: no sites configured", file=sys.stderr)
        return 2
    if args.self_test:
        from .selftest import run_supervisor

        return run_supervisor(args, endpoints)

    import qasync
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from .gui_gc import GuiThreadCollector

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("supervisor-view")
    from .ui import translations

    translations.install(app)  # the system's language (French, or English), before the window is built
    GuiThreadCollector(app).start()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)

    view = SupervisorView(endpoints, args.user or "", None, ca_file=args.ca_file,
                          password_source=args.password_source, center=args.center,
                          thresholds_ms=args.thresholds)
    window = view.window
    window.show()

    # Quit by closing the window or with SIGTERM/SIGINT: the client closes its sockets first, then
    # the loop ends. The signal handler only raises a flag (it may interrupt the event loop's own
    # bookkeeping); a short timer turns the flag into the stop.
    stopping = asyncio.Event()
    QApplication.setQuitOnLastWindowClosed(False)  # static; instance() above is typed QCoreApplication
    window.closed.connect(stopping.set)
    signalled: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: signalled.append(number))
    watch = QTimer()
    watch.setInterval(200)
    watch.timeout.connect(lambda: stopping.set() if signalled else None)
    watch.start()

    async def run() -> None:
        view.start()
        await stopping.wait()
        await view.stop()

    with loop:
        try:
            loop.run_until_complete(run())
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
