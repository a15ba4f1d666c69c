"""Headless agents (``agent-cli``) as real processes, read through their JSON event lines."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from typing import IO

from tests.support.servers import wait_until
from tests.support.zygote import Zygote

# `python -m desktop.agent_cli ARGS`, forked from a zygote that has imported it (tests/support/zygote.py).
_agent_zygote = Zygote("from desktop.agent_cli import main", "desktop.agent_cli", stderr=subprocess.PIPE)


class AgentProcess:
    def __init__(self, agent_id: str, urls: list[str], *extra: str, password: str = "demo"):
        argv = ["--agent", agent_id, "--servers", ",".join(urls), "--password-source", "env", *extra]
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self.proc = _agent_zygote.take(argv, {"AGENT_PASSWORD": password})
        assert self.proc.stdin and self.proc.stdout and self.proc.stderr  # all three are pipes
        self.stdin, stdout, stderr = self.proc.stdin, self.proc.stdout, self.proc.stderr
        threading.Thread(target=self._pump, args=(stdout,), daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(stderr), daemon=True).start()

    def _pump(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.events.append(json.loads(line))

    def command(self, text: str) -> None:
        self.stdin.write(text + "\n")
        self.stdin.flush()

    def find(self, event: str, **fields) -> list[dict]:
        return [e for e in list(self.events) if e["event"] == event and all(e.get(k) == v for k, v in fields.items())]

    def wait_for(self, event: str, timeout: float = 10.0, after: int = 0, **fields) -> dict:
        """The first matching event at index >= ``after`` in the event list."""
        def found():
            for e in list(self.events)[after:]:
                if e["event"] == event and all(e.get(k) == v for k, v in fields.items()):
                    return e
            return None

        return wait_until(
            found, timeout, message=f"{event} {fields} from agent-cli; got {self.events[-8:]} {self.stderr[-5:]}"
        )

    def role_of(self, endpoint: str) -> str | None:
        roles = [e["role"] for e in list(self.events) if e["event"] == "LinkRoleChanged" and e["endpoint"] == endpoint]
        return roles[-1] if roles else None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
