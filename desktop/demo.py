"""``agent-desktop --demo``: a local site pair in the background, a demo agent filled in, and buttons
to kill and restart a site so a newcomer can watch failover and demotion. Without a display the
same scenario runs headless on the same core and prints the failover timeline.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace

from server_stub.command import server_command
from server_stub.protocol import Site

from .core import events as ev
from .core.config import SessionConfig
from .core.session import AgentSession
from .ui import presenter as pr

DEMO_AGENT, DEMO_PASSWORD, DEMO_PLACE = "1001", "demo", "ext-2001"
START_TIMEOUT = 15.0
DEFAULT_PORTS = (8701, 8702)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGTERM when the desktop dies, even by kill -9 or an X
    connection loss, so a demo never leaves servers holding ports."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class DemoServer:
    """One site's ``interaction-server`` child process (loopback, ephemeral port kept across restarts)."""

    def __init__(self, name: str, port: int, peer_port: int, secret: str):
        self.name, self.port, self.peer_port, self.secret = name, port, peer_port, secret
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [*server_command(), "--name", self.name, "--port", str(self.port),
               "--peer", f"ws://127.0.0.1:{self.peer_port}"]
        env = {**os.environ, "INTERACTION_SERVER_SECRET": self.secret, "PYTHONUNBUFFERED": "1"}
        ready = threading.Event()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)

        def pump(proc=self.proc):
            for line in proc.stdout:
                self.lines.append(line.rstrip("\n"))
                if line.startswith("listening "):
                    ready.set()

        threading.Thread(target=pump, daemon=True, name=f"demo-site-{self.name}").start()
        if not ready.wait(START_TIMEOUT):
            tail = "\n".join(self.lines[-10:])
            self.stop()
            raise RuntimeError(f"demo site {self.name} did not start on port {self.port}:\n{tail}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """kill -9: the site dies without a word, like a crashed host."""
        if self.proc is not None and self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _bindable(port: int) -> bool:
    """Could a server listen on ``port``? With SO_REUSEADDR, as asyncio's servers bind: connections
    of an earlier run lingering in TIME_WAIT do not make the shipped ports look taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class DemoServers:
    """Sites A and B, peer-linked: on the shipped ports (8701, 8702) when they are free, so the
    demo matches resources/sites.toml, else on free loopback ports."""

    def __init__(self, ports: tuple[int, int] | None = None):
        secret = secrets.token_hex(32)
        if ports is None:
            ports = DEFAULT_PORTS if all(map(_bindable, DEFAULT_PORTS)) else (_free_port(), _free_port())
        pa, pb = ports
        self.sites = {"A": DemoServer("A", pa, pb, secret), "B": DemoServer("B", pb, pa, secret)}
        self.carriers: list[subprocess.Popen] = []  # "Send a test interaction" runs, stopped with the sites

    def start(self) -> None:
        for server in self.sites.values():
            server.start()

    def kill(self, name: str) -> None:
        self.sites[name].kill()

    def restart(self, name: str) -> None:
        if not self.sites[name].running():
            self.sites[name].start()

    def send_test_interaction(self, queue: str = "sales", media: str = "voice") -> subprocess.Popen:
        """One voice call (or chat) from the shipped carrier (``interaction-server traffic --count
        1``) to the first site that is up; the demo agent is a member of sales, so it is offered
        there. A chat's customer is the carrier, which stays to type (a line every 4 s, and answers
        to the agent's lines) until the chat ends, for at most 10 minutes."""
        cmd = [*server_command(), "traffic", "--count", "1", "--queues", queue,
               "--media", f"{media}=1", "--prefix", f"demo-{secrets.token_hex(3)}"]
        if media == "chat":
            cmd += ["--drain", "600", "--chat-lines", "4", "--chat-interval", "4", "--chat-reply-delay", "1.5"]
        up = [name for name, server in self.sites.items() if server.running()]
        for name in sorted(self.sites, key=lambda n: n not in up):
            cmd += ["--site", f"{name}={self.sites[name].url}"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        self.carriers = [c for c in self.carriers if c.poll() is None] + [proc]
        return proc

    def stop(self) -> None:
        for carrier in self.carriers:
            if carrier.poll() is None:
                carrier.terminate()
                try:
                    carrier.wait(5)
                except subprocess.TimeoutExpired:
                    carrier.kill()
        for server in self.sites.values():
            server.stop()

    def endpoints(self) -> list[Site]:
        return [Site(name, server.url) for name, server in self.sites.items()]

    def desktop_settings(self, settings, preferred: str | None = None):
        """``settings`` with the demo's own sites, locked (they are not the user's to save). The
        preferred site: ``preferred``, else the one already chosen when it is a demo site, else A."""
        from .ui.settings import Site

        sites = tuple(Site(e.name, e.url) for e in self.endpoints())
        chosen = settings.preferred_site if settings.preferred_site in self.sites else "A"
        return replace(settings, sites=sites, preferred_site=preferred or chosen,
                       locked=settings.locked | {"sites"}, demo_keys=frozenset({"sites"}))

    def attach(self, controller) -> None:
        """Fill in the demo agent and add the failure/restart actions to the main window."""
        controller.fill_login(DEMO_AGENT, DEMO_PASSWORD, DEMO_PLACE)
        window = controller.main_window
        status = window.statusBar()

        def act(verb, name):
            def run():
                if verb == "kill":
                    self.kill(name)
                    status.showMessage(f"Demo: site {name} killed (kill -9).", 5000)
                elif self.sites[name].running():
                    status.showMessage(f"Demo: site {name} is already running.", 5000)
                else:
                    try:
                        self.restart(name)
                    except RuntimeError as exc:
                        status.showMessage(str(exc).splitlines()[0], 8000)
                        return
                    status.showMessage(f"Demo: site {name} restarted.", 5000)
            return run

        actions = []
        for name in self.sites:
            actions.append((f"Simulate site {name} failure", act("kill", name)))
            actions.append((f"Restart site {name}", act("restart", name)))
        window.add_demo_actions(actions)
        window.demo_send_action = self._send_action(window, status)
        self._send_chat_action(window, status)
        controller.login_window.status_label.setText(
            f"Demo: sites A and B run locally ({self.sites['A'].url}, {self.sites['B'].url}); "
            f"agent {DEMO_AGENT} / password {DEMO_PASSWORD} is filled in.")


    def _send_action(self, window, status):
        """"Send a test interaction" on the demo toolbar, Ctrl+Shift+T: an offer to watch."""

        return self._demo_send(window, status, "Send a test interaction", "Ctrl+Shift+T", "voice",
                               "Demo: a voice call was sent to the sales queue.")

    def _demo_send(self, window, status, text: str, shortcut: str, media: str, sent: str):
        """A demo toolbar action (and window shortcut) sending one interaction of ``media``."""
        from PySide6.QtGui import QAction, QKeySequence
        from PySide6.QtWidgets import QToolBar

        action = QAction(text, window)
        action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{text} ({shortcut})")

        def send():
            if not any(server.running() for server in self.sites.values()):
                what = "a chat" if media == "chat" else "an interaction"
                status.showMessage(f"Demo: no site is running to send {what} to.", 5000)
                return
            self.send_test_interaction(media=media)
            status.showMessage(sent, 5000)

        action.triggered.connect(send)
        window.addAction(action)
        bar = window.findChild(QToolBar, "demoToolbar")
        bar.addAction(action)
        bar.widgetForAction(action).setAccessibleName(text)
        return action


    def _send_chat_action(self, window, status):
        """"Send a test chat" on the demo toolbar, Ctrl+Shift+H: a chat whose customer types."""
        return self._demo_send(window, status, "Send a test chat", "Ctrl+Shift+H", "chat",
                               "Demo: a chat was sent to the sales queue; its customer types once you accept.")


# --------------------------------------------------------------------------- headless scenario


async def _scenario(servers: DemoServers, out, pause: float) -> int:
    from .net.runner import SessionRunner

    config = SessionConfig(endpoints=tuple(servers.endpoints()), client_name="agent-desktop-demo")
    session = AgentSession(config, rng=random.Random())
    banner = pr.FailoverBanner()
    labels: dict[str, str] = {}
    t0 = time.monotonic()

    def on_event(event) -> None:
        nonlocal labels
        now, wall_ms = time.monotonic(), int(time.time() * 1000)
        snapshot = session.snapshot()
        labels = pr.reason_labels(snapshot.reasons) or labels
        banner.on_event(event, now, snapshot, labels, snapshot.agent, wall_ms)
        row = pr.log_row(event, wall_ms, labels)
        if row is not None:
            out(f"  +{now - t0:7.3f} s  {row.category:<10} {row.text}")

    runner = SessionRunner(session, on_event=on_event)

    async def until(predicate, what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(session.snapshot()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"demo: timed out waiting for {what}")
            await asyncio.sleep(0.02)

    def role(snapshot, name):
        return next(link.role for link in snapshot.links if link.endpoint == name)

    try:
        out(f"Logging in agent {DEMO_AGENT} on site A, Not Ready – Lunch:")
        runner.feed(session.login, DEMO_AGENT, DEMO_PASSWORD, place=DEMO_PLACE,
                    initial_state=ev.StateIntent("not_ready", "lunch"))
        await until(lambda s: s.primary == "A" and role(s, "B") == "secondary", "login on A with B as standby")
        if pause:
            out(f"Working for {pause:g} s in Not Ready – Lunch (the time in state will survive the failover)…")
            await asyncio.sleep(pause)  # a pause for the viewer, not a wait for a condition
        out("Simulating the failure of site A (kill -9):")
        servers.kill("A")
        await until(lambda s: banner.summary is not None, "the failover to site B")
        out(f"Banner: {banner.text(time.monotonic())}")
        out("Restarting site A:")
        servers.restart("A")
        await until(lambda s: role(s, "A") == "secondary", "site A back as standby")
        out("Site A is back as the secondary (standby); the login stays on site B.")
        runner.feed(session.logout)
        await until(lambda s: s.status == "ended", "the logout")
        return 0
    except TimeoutError as exc:
        out(str(exc))
        return 1
    finally:
        runner.shutdown()


def run_headless(out=lambda line: print(line, flush=True), pause: float = 2.0,
                 ports: tuple[int, int] | None = None) -> int:
    """The --demo scenario without windows: failover timeline on stdout; 0 when it completed."""
    servers = DemoServers(ports)
    try:
        servers.start()
        out(f"Sites: A {servers.sites['A'].url}, B {servers.sites['B'].url}")
        return asyncio.run(_scenario(servers, out, pause))
    except RuntimeError as exc:
        out(f"agent-desktop: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        servers.stop()
