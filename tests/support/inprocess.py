"""Interaction servers inside the test process, each on its own asyncio loop in a daemon thread,
for tests whose behaviour involves no process (no kill -9, SIGSTOP, signal or restart that must
lose memory). A start costs milliseconds where a process costs an interpreter start.

``InProcessServer`` stands in for ``ServerProcess``: the same fields and methods (``name``,
``port``, ``url``, ``lines``, ``log_has``, ``alive``, ``start``, ``stop``), the same command-line
arguments (parsed by the CLI's own parser into the same configuration) and the same log lines: the
records the server's thread logs, formatted as the CLI logs them, after a ``listening`` line.
"""

from __future__ import annotations

import asyncio
import atexit
import errno
import logging
import os
import tempfile
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from server_stub import cli
from server_stub.config import ConfigError
from server_stub.directory import DirectoryError
from server_stub.server import InteractionServer
from tests.support.servers import SECRET, PortInUse, reserve_port, watch

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the CLI's (server_stub/cli.py main)
_secret_path: Path | None = None


def _secret_file() -> Path:
    """The pair secret as a file, for ``--secret-file`` (the environment is shared by the whole process)."""
    global _secret_path
    if _secret_path is None:
        fd, name = tempfile.mkstemp(prefix="inprocess-secret-")
        with os.fdopen(fd, "w") as f:
            f.write(SECRET)
        _secret_path = Path(name)
        atexit.register(_secret_path.unlink, missing_ok=True)
    return _secret_path


class _ThreadLines(logging.Handler):
    """The records logged on one thread (one server's loop), as the CLI writes them, into ``lines``."""

    def __init__(self, lines: list[str], level: int):
        super().__init__(level)
        self.lines = lines
        self.thread = threading.get_ident()
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        # Below DEBUG the CLI silences websockets' own per-connection lines (they duplicate ours).
        if record.name == "interaction_server.ws" and record.levelno < logging.WARNING and self.level > logging.DEBUG:
            return
        try:
            self.lines.extend(self.format(record).splitlines())
        except Exception:
            self.handleError(record)


@dataclass
class InProcessServer:
    name: str
    port: int = 0
    peer_port: int | None = None
    extra_args: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    kind: ClassVar[str] = "in-process"

    def __post_init__(self):
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._code: int | None = None
        self.server: InteractionServer | None = None  # while it runs (its state is read, never changed)

    @property
    def url(self) -> str:
        scheme = "wss" if "--tls-cert" in self.extra_args else "ws"
        return f"{scheme}://127.0.0.1:{self.port}"

    def argv(self) -> list[str]:
        """The command line a ``ServerProcess`` would run (the secret as a file, ahead of the test's own)."""
        argv = ["--secret-file", str(_secret_file()), "--name", self.name, "--port", str(self.port), *self.extra_args]
        if self.peer_port:
            scheme = "wss" if "--tls-cert" in self.extra_args else "ws"
            argv += ["--peer", f"{scheme}://127.0.0.1:{self.peer_port}"]
        return argv

    def start(self, timeout: float = 10.0) -> InProcessServer:
        assert not self.alive(), f"server {self.name} is already running"
        self.port = self.port or reserve_port()  # as ServerProcess: kept by a restart
        self.lines = []
        watch(self)
        self._ready.clear()
        self._error, self._code = None, None
        self._loop, self._stopping = None, None
        self._thread = threading.Thread(target=self._run, name=f"server-{self.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise AssertionError(f"server {self.name} did not start within {timeout} s:\n" + "\n".join(self.lines))
        if self._error is not None:
            in_use = isinstance(self._error, OSError) and self._error.errno == errno.EADDRINUSE
            error = PortInUse if in_use else AssertionError
            raise error(f"server {self.name} did not start on port {self.port}:\n" + "\n".join(self.lines))
        return self

    def _run(self) -> None:
        args = None
        try:
            args = cli._build_parser().parse_args(self.argv())
            level = getattr(logging, args.log_level)
        except SystemExit as exc:  # argparse has said why on stderr
            self._error, self._code = exc, 2
            self._ready.set()
            return
        handler = _ThreadLines(self.lines, level)
        server_logger = logging.getLogger("interaction_server")
        if server_logger.getEffectiveLevel() > level:
            server_logger.setLevel(level)
        logging.getLogger().addHandler(handler)
        try:
            asyncio.run(self._serve(args))
            self._code = 0
        except BaseException as exc:
            self.lines.extend("".join(traceback.format_exception(exc)).splitlines())
            self._error = exc
            self._code = 2 if isinstance(exc, (ConfigError, DirectoryError)) else 1
        finally:
            logging.getLogger().removeHandler(handler)
            self._ready.set()

    async def _serve(self, args) -> None:
        config = cli._server_config(args)
        directory, writable = cli.server_directory(args, warn=self.lines.append)
        server = self.server = InteractionServer(config, directory, directory_path=writable)
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await server.start()
        assert server.port == self.port, f"server {self.name} listens on {server.port}, not on {self.port}"
        scheme = "wss" if config.tls_cert else "ws"
        self.lines.append(f"listening {scheme}://{config.host}:{server.port} name={config.name}")
        self._ready.set()
        await self._stopping.wait()
        await server.stop()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop as SIGTERM stops the process: 0 once it stopped cleanly, None if it hangs."""
        if self._thread is None:
            return None
        if self._thread.is_alive() and self._loop is not None and self._stopping is not None:
            try:
                self._loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # the loop has just closed
                pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.lines.append(f"(test) server {self.name} still running {timeout} s after it was told to stop")
            return None
        return self._code

    def log_has(self, text: str) -> bool:
        return any(text in line for line in self.lines)
