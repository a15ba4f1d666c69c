"""Program processes whose interpreter is started before it is needed.

Starting ``python -m PROGRAM`` costs Python's start-up and the program's imports (0.3-0.5 s) before
the program does anything, and a test waiting for a server or an agent waits for that too. A spare
is the same fresh child process started ahead, with the program imported; it reads one JSON line
``{"argv": [...], "env": {...}}`` from stdin (byte by byte, so a program that reads stdin itself
gets all the rest), then runs the program's ``main(argv)`` as its console entry point does. The
next spare is started as one is handed out, and pays its imports while the test waits for other
things. The process is otherwise what it was: a child of the test process, killed, stopped and
reaped through its Popen.
"""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_CODE = """
import json, os, sys
{imports}
line = b""
while not line.endswith(b"\\n"):
    byte = os.read(0, 1)
    if not byte:
        sys.exit(0)  # retired unused
    line += byte
spec = json.loads(line)
os.environ.update(spec["env"])
sys.exit(main(spec["argv"]))
"""


class Spares:
    """``count`` spares of one program (``imports`` binds ``main``), with stderr on stdout or apart."""

    def __init__(self, imports: str, count: int, stderr: int, env: dict[str, str] | None = None):
        self.code = _CODE.format(imports=imports)
        self.count, self.stderr, self.env = count, stderr, env or {}
        self.ready: list[subprocess.Popen] = []
        atexit.register(self.retire)

    def take(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        """A process running the program with ``argv`` (and ``env`` on top of the environment)."""
        while len(self.ready) < self.count + 1:
            self.ready.append(subprocess.Popen(
                [sys.executable, "-c", self.code], cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True))
        proc = self.ready.pop(0)
        assert proc.stdin is not None  # stdin=PIPE above
        proc.stdin.write(json.dumps({"argv": argv, "env": env or {}}) + "\n")
        proc.stdin.flush()
        return proc

    def retire(self) -> None:
        """At exit: the unused spares are killed (one still importing stops paying for it) and reaped."""
        for proc in self.ready:
            proc.kill()
        for proc in self.ready:
            proc.communicate(timeout=10)
