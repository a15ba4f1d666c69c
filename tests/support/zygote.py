"""Program processes forked from an interpreter that has imported the program already (a zygote).

Starting ``python -m PROGRAM`` costs Python's start-up and the program's imports (0.2-0.5 s of CPU)
before the program does anything; the suite starts a few hundred servers and dozens of agents. Per
test process and per program, one zygote is started once: ``python -c`` that imports the program
(no event loop, no thread) and waits on a Unix socket. ``Zygote.take(argv, env)`` sends it ``argv``,
the environment and the child's ends of its stdin/stdout/stderr pipes (``socket.send_fds``); the
zygote forks, the fork forks the program's process and exits at once. Its orphan is adopted by the
test process, which is a child subreaper (``PR_SET_CHILD_SUBREAPER``) only while it asks, so the
program's process is the test process's own child, as ``subprocess.Popen`` would have made it: what
``take`` returns is a genuine ``Popen`` (a subclass whose only change is how the child is made), and
its ``wait``, ``poll``, ``returncode`` (negative signal numbers included), ``send_signal``, ``kill``,
``communicate`` and pipes are the standard ones; kill -9, SIGSTOP and /proc see one real process.
Its CPU is counted in the test process's children's usage, as a ``Popen``'s is.

The program's process: fds 0/1/2 are its pipes and no other fd is open; ``os.environ`` is the test
process's environment when ``take`` was called, with the zygote's ``env`` and the call's on top (as
``Popen(env=...)``); ``random`` is reseeded at fork (Python does it; ``secrets``, ``uuid4`` and
``os.urandom`` read the kernel's pool and share no state); then ``sys.exit(main(argv))`` runs at the
top of ``python -c``, so an exception prints its traceback, stdio is flushed and ``atexit`` runs as
under ``python -m``. What cannot change after start-up is the zygote's: the interpreter's flags, the
hash seed, ``sys.path`` (``cwd`` and ``PYTHONPATH`` of the test process) and ``sys.argv`` (``-c``).

Lifetime: the zygote exits when the test process's end of the socket closes (at exit, or when the
test process dies: no zygote outlives it); a program's process outlives a test process killed -9, as
a ``Popen``'s child would.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
_MESSAGE_MAX = 1 << 20  # one request: argv and the whole environment
# Subreaper is one flag of the whole process: the zygotes of all programs ask one at a time, so none
# clears it while another's middle fork is exiting.
_adopting = threading.Lock()

_CODE = """
import sys
from tests.support.zygote import serve
{imports}
argv = serve(int(sys.argv[1]))
del serve
sys.exit(main(argv))
"""


def serve(fd: int) -> list[str]:
    """The zygote's loop on socket ``fd``; returns only in a forked program's process (its argv)."""
    sock = socket.socket(fileno=fd)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, _MESSAGE_MAX, 3)
        except KeyboardInterrupt:
            os._exit(0)
        if not message:  # the test process closed its end or died
            os._exit(0)
        spec = json.loads(message)
        readable, writable = os.pipe()
        middle = os.fork()
        if middle == 0:
            pid = -1
            try:
                os.close(readable)
                pid = os.fork()
                if pid == 0:
                    os.close(writable)
                    sock.close()
                    for target, fd_ in zip(spec["targets"], fds, strict=True):
                        os.dup2(fd_, target)
                    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
                    os.environ.clear()
                    os.environ.update(spec["env"])
                    return list(spec["argv"])
                os.write(writable, b"%d" % pid)
            finally:
                if pid != 0:
                    os._exit(0)  # the program's process is orphaned: the test process adopts it
        os.close(writable)
        for fd_ in fds:
            os.close(fd_)
        os.waitpid(middle, 0)
        with os.fdopen(readable, "rb") as answer:
            sock.send(answer.read() or b"fork failed")


class _ForkedPopen(subprocess.Popen):
    """A ``Popen`` whose child the zygote forks instead of ``fork_exec``."""

    def __init__(self, zygote: Zygote, argv: list[str], env: dict[str, str], **kwargs: Any):
        self._zygote = zygote
        super().__init__([sys.executable, "-m", zygote.program, *argv], env=env, **kwargs)

    def _execute_child(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo,
                       creationflags, shell, p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite, *_rest):
        try:
            ends = [(target, fd) for target, fd in enumerate((p2cread, c2pwrite, errwrite)) if fd != -1]
            self.pid = self._zygote.fork(args[3:], env, ends)
            self._child_created = True
        finally:
            # Popen's own step after fork_exec: the child's ends are closed here (not in typeshed)
            self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]


class Zygote:
    """Processes of one program (``imports`` binds ``main``; ``program`` is its ``-m`` name, shown as
    the Popen's ``args``), with stderr on stdout or apart, and ``env`` on top of the environment."""

    def __init__(self, imports: str, program: str, stderr: int, env: dict[str, str] | None = None):
        self.code = _CODE.format(imports=imports)
        self.program, self.stderr, self.env = program, stderr, env or {}
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self._libc = ctypes.CDLL(None, use_errno=True)
        atexit.register(self.retire)

    def take(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """A process running the program with ``argv`` (and ``env`` on top of the environment)."""
        full = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env, **(env or {})}
        return _ForkedPopen(self, argv, full, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                            text=True)

    def fork(self, argv: list[str], env: dict[str, str], ends: list[tuple[int, int]]) -> int:
        """The pid of the program's process, forked with ``ends`` (fd 0/1/2, this process's fd) as
        its stdio; a child of this process."""
        message = json.dumps({"argv": argv, "env": env, "targets": [t for t, _ in ends]}).encode()
        with _adopting:
            sock = self._started()
            self._subreaper(True)  # the middle fork exits while it is set: its orphan comes here
            try:
                socket.send_fds(sock, [message], [fd for _, fd in ends])
                answer = sock.recv(64)
            finally:
                self._subreaper(False)
        if not answer.isdigit():
            raise OSError(f"the {self.program} zygote could not fork: {answer!r}")
        pid = int(answer)
        parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
        assert int(parent) == os.getpid(), f"process {pid} was adopted by {parent}, not by {os.getpid()}"
        return pid

    def _started(self) -> socket.socket:
        if self.sock is None or self.proc is None or self.proc.poll() is not None:
            self.retire()
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with theirs:
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", self.code, str(theirs.fileno())], cwd=REPO, pass_fds=[theirs.fileno()],
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env}, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL)
            self.sock = ours
        return self.sock

    def _subreaper(self, on: bool) -> None:
        if self._libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"PR_SET_CHILD_SUBREAPER: {os.strerror(error)}")

    def retire(self) -> None:
        """At exit: the zygote sees its socket close, exits and is reaped (its CPU counted here)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None
