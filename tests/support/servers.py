"""Real ``interaction-server`` processes on loopback for tests: start, kill -9, SIGSTOP, restart.

Servers bind port 0 and report the port they got (the ``listening`` line). Only the second site of a
pair needs its port before it exists (it is in the first site's ``--peer``): that one is a free
port picked beforehand, and when something takes it meanwhile the pair starts again elsewhere
(``start_pair``), so no test depends on a free port staying free."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import ClassVar

from tests.support.spares import REPO as REPO
from tests.support.spares import Spares

SECRET = "test-pair-secret-0123456789abcdef"


ADDRESS_IN_USE = "address already in use"  # how a failed bind reads in a server's output
PAIR_TRIES = 5


class PortInUse(AssertionError):
    """A server could not bind the port it was given: something else took it after it was picked."""


def free_port() -> int:
    """A port free now, for a URL that must be known before its server starts: whoever binds it
    must cope with losing the race (``PortInUse``, ``retry_on_port_clash``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def retry_on_port_clash(attempt, pick=free_port, tries: int = PAIR_TRIES):
    """``attempt(pick())`` until it does not raise ``PortInUse`` (a picked port taken meanwhile)."""
    for _ in range(tries - 1):
        try:
            return attempt(pick())
        except PortInUse:
            continue
    return attempt(pick())


@contextlib.contextmanager
def refused_ports(count: int):
    """``count`` loopback ports bound, not listening, while the block runs: connecting to one is
    refused, and nothing else can listen there meanwhile (as it could on a free port let go)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        yield [s.getsockname()[1] for s in sockets]


def adjacent_free_ports(count: int = 2) -> int:
    """A free port P with P + 1 .. P + count - 1 free too (a pair's ``--base-port``, the demo's, a
    cluster's); see ``retry_on_port_clash``."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket())
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            if base + count - 1 > 65535:
                continue
            try:
                for offset in range(1, count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise AssertionError(f"no {count} adjacent free ports")


def wait_until(predicate, timeout: float = 5.0, interval: float = 0.01, message: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


# `python -m server_stub ARGS`, in an interpreter that is up (and has imported the server) already.
_server_spares = Spares("from server_stub.cli import main\nimport server_stub.server", count=2,  # a pair: two in a row
                        stderr=subprocess.STDOUT, env={"INTERACTION_SERVER_SECRET": SECRET})


@dataclass
class ServerProcess:
    """One site's server as a child process; its log lines are collected for assertions.
    ``port`` 0 binds a free one; after ``start`` it is the bound port, which a restart keeps."""

    name: str
    port: int = 0
    peer_port: int | None = None
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    lines: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "process"

    @property
    def url(self) -> str:
        scheme = "wss" if "--tls-cert" in self.extra_args else "ws"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerProcess:
        argv = ["--name", self.name, "--port", str(self.port), *self.extra_args]
        if self.peer_port:
            scheme = "wss" if "--tls-cert" in self.extra_args else "ws"
            argv += ["--peer", f"{scheme}://127.0.0.1:{self.peer_port}"]
        self.lines = []
        watch(self)
        ready = threading.Event()  # listening, or the output ended without it
        bound: list[int] = []
        self.proc = _server_spares.take(argv)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()

        def pump(proc=self.proc, lines=self.lines):
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("listening "):  # listening ws://127.0.0.1:PORT name=A
                    bound.append(int(line.split()[1].rsplit(":", 1)[1]))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        ready.wait(timeout)
        if not bound:
            self.stop()
            output = "\n".join(self.lines)
            error = PortInUse if ADDRESS_IN_USE in output.lower() else AssertionError
            raise error(f"server {self.name} did not start on port {self.port}:\n{output}")
        self.port = bound[0]
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def running(self) -> subprocess.Popen[str]:
        """The process, which a test only signals once it started it."""
        assert self.proc is not None, f"server {self.name} was never started"
        return self.proc

    def kill9(self) -> None:
        self.running().send_signal(signal.SIGKILL)
        self.running().wait(5)

    def sigstop(self) -> None:
        self.running().send_signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        self.running().send_signal(signal.SIGCONT)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def log_has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def start_pair(extra_args: list[str] | None = None, kind=ServerProcess):
    """Sites A and B, started and peer-linked: A on a port of its own choosing (port 0), B on a
    port picked for A's ``--peer`` before B exists; if B loses that port, both start again."""

    def attempt(b_port: int):
        a = kind("A", 0, b_port, list(extra_args or [])).start()
        try:
            return a, kind("B", b_port, a.port, list(extra_args or [])).start()
        except BaseException:
            a.stop()
            raise

    return retry_on_port_clash(attempt)


async def async_wait_until(predicate, timeout: float = 5.0, interval: float = 0.01, message: str = "condition"):
    """``wait_until`` for coroutines: polls without blocking the event loop (heartbeats keep going).
    ``predicate`` may be a coroutine function (a question asked over the wire)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        await asyncio.sleep(interval)


def log_count(server: ServerProcess, text: str) -> int:
    return sum(1 for line in list(server.lines) if text in line)


def socket_log_count(server: ServerProcess, port: int, text: str) -> int:
    """Log lines with ``text`` about the client socket on local ``port`` (each line names its peer)."""
    peer = f"127.0.0.1:{port} "
    return sum(1 for line in list(server.lines) if peer in line and text in line)


def socket_logged(server: ServerProcess, client, text: str) -> bool:
    """Has ``server`` logged ``text`` about ``client``'s socket (a tests.server.wire.WireClient)?"""
    return socket_log_count(server, client.ws.local_address[1], text) > 0


def linked(a: ServerProcess, b: ServerProcess) -> bool:
    """Both directions of the peer link are up (each server accepted the other's PeerHello)."""
    return a.log_has(f"peer link from {b.name}") and b.log_has(f"peer link from {a.name}")


def single_server(name: str = "A", extra_args: list[str] | None = None) -> ServerProcess:
    """One server with no peer, on a port of its own choosing (not started)."""
    return ServerProcess(name, 0, None, list(extra_args or []))


# Servers to show when a test fails: those started since the last test ended, and those running.
_watched: list = []


def watch(server) -> None:
    if not any(s is server for s in _watched):
        _watched.append(server)


def watched_servers() -> list:
    return list(_watched)


def forget_stopped_servers() -> None:
    _watched[:] = [s for s in _watched if s.alive()]
