"""Real ``interaction-server`` processes on loopback for tests: start, kill -9, SIGSTOP, restart."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-pair-secret-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def adjacent_free_ports() -> int:
    """A free port P with P + 1 free too (a pair's ``--base-port``, the demo's)."""
    for _ in range(50):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            base = first.getsockname()[1]
            if base >= 65535:
                continue
            try:
                second.bind(("127.0.0.1", base + 1))
            except OSError:
                continue
            return base
    raise AssertionError("no two adjacent free ports")


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


@dataclass
class ServerProcess:
    """One site's server as a child process; its log lines are collected for assertions."""

    name: str
    port: int
    peer_port: int | None = None
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        scheme = "wss" if "--tls-cert" in self.extra_args else "ws"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> ServerProcess:
        cmd = [sys.executable, "-m", "server_stub", "--name", self.name, "--port", str(self.port), *self.extra_args]
        if self.peer_port:
            scheme = "wss" if "--tls-cert" in self.extra_args else "ws"
            cmd += ["--peer", f"{scheme}://127.0.0.1:{self.peer_port}"]
        env = {**os.environ, "INTERACTION_SERVER_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
        self.lines = []
        ready = threading.Event()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

        def pump(proc=self.proc, lines=self.lines):
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if line.startswith("listening "):
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise AssertionError(f"server {self.name} did not start:\n" + "\n".join(self.lines))
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def sigstop(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

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


def server_pair(extra_args: list[str] | None = None) -> tuple[ServerProcess, ServerProcess]:
    pa, pb = free_port(), free_port()
    a = ServerProcess("A", pa, pb, list(extra_args or []))
    b = ServerProcess("B", pb, pa, list(extra_args or []))
    return a, b


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
    """One server with no peer (not started)."""
    return ServerProcess(name, free_port(), None, list(extra_args or []))
