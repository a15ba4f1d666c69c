"""Real ``interaction-server`` processes on loopback for tests: start, kill -9, SIGSTOP, restart.

Ports: a server's port is reserved before it starts and stays reserved until the test ends
(``reserve_port``), so no test depends on a free port staying free (the pick-then-bind race, which
the parallel suite would hit). A reservation is a socket bound to the port (not listening) that
the test process holds: the kernel hands it to no ``bind`` to port 0 and to no outgoing
connection; SO_REUSEADDR, set after the bind, lets the server (asyncio servers bind with it) listen
there, and listen there again after a kill -9; while no server listens, connecting is refused, as
on a free port. The servers still print the port they bound (the ``listening`` line), and the
harness checks it."""

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

from tests.support.zygote import REPO as REPO
from tests.support.zygote import Zygote

SECRET = "test-pair-secret-0123456789abcdef"


ADDRESS_IN_USE = "address already in use"  # how a failed bind reads in a server's output


class PortInUse(AssertionError):
    """A server could not bind the port reserved for it (a bug: nothing else may take it)."""


_reserved: dict[int, socket.socket] = {}


def _reserve(port: int) -> socket.socket:
    """Bind loopback ``port`` (0: any) for the test process. Bound without SO_REUSEADDR, the bind
    fails while any socket has the port (another reservation included); with SO_REUSEADDR set
    afterwards, a server binding with it may listen on the port."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except BaseException:
        s.close()
        raise
    return s


def reserve_port() -> int:
    """A port for a server that starts later (a URL that must be known before its server exists),
    reserved until ``release_ports``: see the module's docstring."""
    s = _reserve(0)
    port = s.getsockname()[1]
    _reserved[port] = s
    return port


def reserve_adjacent_ports(count: int = 2) -> int:
    """P with P .. P + count - 1 reserved (a pair's or a cluster's ``--base-port``, the demo's)."""
    for _ in range(50):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(_reserve(0))
            base = first.getsockname()[1]
            if base + count - 1 > 65535:
                continue
            try:
                rest = [stack.enter_context(_reserve(base + offset)) for offset in range(1, count)]
            except OSError:
                continue
            stack.pop_all()
            for offset, s in enumerate([first, *rest]):
                _reserved[base + offset] = s
            return base
    raise AssertionError(f"no {count} adjacent free ports")


def release_ports(keep: set[int] | frozenset[int] = frozenset()) -> None:
    """Give back every reservation but ``keep``'s (tests/conftest.py: when a test ends, all but
    those of servers still running, such as a module's)."""
    for port in [p for p in _reserved if p not in keep]:
        _reserved.pop(port).close()


free_port = reserve_port  # the name bench/multisite.py uses: its mesh's ports, held while it runs


@contextlib.contextmanager
def refused_ports(count: int):
    """``count`` loopback ports bound, not listening, while the block runs: connecting to one is
    refused, and nothing else can listen there meanwhile (as it could on a free port let go)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        yield [s.getsockname()[1] for s in sockets]


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


# `python -m server_stub ARGS`, forked from a zygote that has imported the server (tests/support/zygote.py):
# a genuine Popen of a child process, without the ~0.2 s of CPU of Python's start-up and the imports.
_server_zygote = Zygote("from server_stub.cli import main\nimport server_stub.server", "server_stub",
                        stderr=subprocess.STDOUT, env={"INTERACTION_SERVER_SECRET": SECRET})


@dataclass
class ServerProcess:
    """One site's server as a child process; its log lines are collected for assertions.
    ``port`` 0: ``start`` reserves one (``reserve_port``), which a restart keeps."""

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
        self.port = self.port or reserve_port()
        argv = ["--name", self.name, "--port", str(self.port), *self.extra_args]
        if self.peer_port:
            scheme = "wss" if "--tls-cert" in self.extra_args else "ws"
            argv += ["--peer", f"{scheme}://127.0.0.1:{self.peer_port}"]
        self.lines = []
        watch(self)
        ready = threading.Event()  # listening, or the output ended without it
        bound: list[int] = []
        self.proc = _server_zygote.take(argv)
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
        assert bound[0] == self.port, f"server {self.name} listens on {bound[0]}, not on {self.port}"
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
    """Sites A and B, started and peer-linked, each on a port reserved for it beforehand (each is
    in the other's ``--peer``)."""
    pa, pb = reserve_port(), reserve_port()
    a = kind("A", pa, pb, list(extra_args or [])).start()
    try:
        return a, kind("B", pb, pa, list(extra_args or [])).start()
    except BaseException:
        a.stop()
        raise


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
    """When a test ends: servers that stopped are no longer shown, and their ports (and the other
    ports the test reserved) are given back; those of servers still running (a module's) stay."""
    _watched[:] = [s for s in _watched if s.alive()]
    release_ports(keep={s.port for s in _watched})
