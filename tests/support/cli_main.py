"""``interaction-server``'s ``main`` run in the test process, for command lines that must stop before
any server starts (bad options, bad files, ``--help``): the same argument parsing, validation and
messages as ``python -m server_stub ...``, without a Python process (~0.15 s of CPU) per case.

What the process adds is reproduced: stdout and stderr are captured; logging is configured by
``main`` itself onto the captured stderr (the test process's own logging is set aside meanwhile and
restored); ``SystemExit`` becomes the exit code, its message going to stderr as the interpreter
prints it; any other exception propagates (in a process it would be a traceback: the test fails
either way). A command line that gets as far as serving (or sending traffic) fails at once (instead of starting a server
in the test process): these cases must stop before. Real processes stay for what involves one
(signals, a server that starts, stdin end to end): tests/server/test_cli.py.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from unittest import mock

from server_stub import cli, traffic
from tests.support.servers import SECRET

SERVING = "the command line got as far as starting a server; it must stop before"


def run_main(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    """``main(args)`` as ``tests.server.test_cli.cli`` runs ``python -m server_stub args``: a
    CompletedProcess with the exit code, stdout and stderr (``env`` on top of the environment,
    ``stdin`` what standard input reads)."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    ws = logging.getLogger("interaction_server.ws")
    saved = (root.handlers[:], root.level, ws.level)

    def refuse(*_args, **_kwargs):
        raise AssertionError(SERVING)

    root.handlers.clear()  # main's logging.basicConfig then writes to the captured stderr, as in a process
    try:
        # A process's stdout is a pipe: argparse formats --help for 80 columns unless COLUMNS says otherwise.
        environ = {"COLUMNS": os.environ.get("COLUMNS", "80"), cli.SECRET_ENV: SECRET, **(env or {})}
        with mock.patch.dict(os.environ, environ), mock.patch.object(cli, "_serve", refuse), \
                mock.patch.object(cli, "_run_sites", refuse), mock.patch.object(traffic, "main", refuse), \
                mock.patch.object(sys, "stdin", io.StringIO(stdin)), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as exc:  # argparse's errors and --help; main's own "error: ..." exits
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    print(exc.code, file=err)
                    code = 1
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        ws.setLevel(saved[2])
    return subprocess.CompletedProcess(["interaction-server", *args], code, out.getvalue(), err.getvalue())
