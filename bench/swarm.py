"""Many headless agent sessions in one process (for the failover storm benchmark).

Prints JSON lines on stdout: ``login`` per agent at its first login; ``ready`` once every agent
is settled: logged in with a standby, or its session ended (at ``LoginFailed``, ``failed`` says how
many, or ``LoggedOut``); ``relogged`` per agent when it logs in again (``moved``: at another site than
before); ``error`` per ``LoginFailed`` or ``LoggedOut``; ``summary`` on ``stop T`` from stdin (per
agent: login requests sent at or after monotonic time ``T``, e.g. the kill of a server; how many are
logged in now, and how many ended at ``LoginFailed``, and how many times their standby was asked
whether a silent primary lives).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from desktop.core import events as ev
from desktop.core.config import SessionConfig
from desktop.core.session import AgentSession
from desktop.net.runner import SessionRunner
from server_stub import protocol as p
from server_stub.gc_tuning import tune_for_many_connections
from server_stub.protocol import Site


class CountingRunner(SessionRunner):
    """The product's runner, noting the monotonic time of every RequestAgentLogin the core sends."""

    def __init__(self, session: AgentSession, on_event: Callable[[Any], None], login_times: list[float]):
        self.login_times = login_times
        self.checks = 0  # RequestPrimaryCheck sent: a silent primary's standby asked (the witness)
        self.give_ups: list[tuple[float, str]] = []  # (monotonic time, why) of every link the core gave up
        super().__init__(session, on_event=on_event)

    def execute(self, outputs) -> None:
        for out in outputs or ():
            if isinstance(out, ev.Send) and isinstance(out.message, p.RequestAgentLogin):
                self.login_times.append(time.monotonic())
            elif isinstance(out, ev.Send) and isinstance(out.message, p.RequestPrimaryCheck):
                self.checks += 1
            elif isinstance(out, ev.CloseLink):
                self.give_ups.append((time.monotonic(), out.reason))
        super().execute(outputs)


class SwarmAgent:
    def __init__(self, agent_id: str, config: SessionConfig, swarm: Swarm):
        self.agent_id = agent_id
        self.swarm = swarm
        self.session = AgentSession(config, rng=random.Random(agent_id))
        self.login_times: list[float] = []  # monotonic time of every RequestAgentLogin sent
        self.runner = CountingRunner(self.session, self.on_event, self.login_times)
        self.endpoint: str | None = None
        self.standby = False
        self.failed = False  # the session ended at LoginFailed
        self.ended = False  # ... or at LoggedOut

    def on_event(self, event) -> None:
        if isinstance(event, ev.LinkRoleChanged):
            if event.role == "secondary":
                self.standby = True
                self.swarm.check_ready()
        elif isinstance(event, ev.LoggedIn):
            first, before = self.endpoint is None, self.endpoint
            self.endpoint = event.endpoint
            if first:
                self.swarm.emit({"kind": "login", "agent": self.agent_id, "endpoint": event.endpoint,
                                 "t": time.monotonic()})
                self.swarm.check_ready()
            else:
                self.swarm.emit({"kind": "relogged", "agent": self.agent_id, "endpoint": event.endpoint,
                                 "moved": event.endpoint != before, "t": time.monotonic()})
        elif isinstance(event, (ev.LoginFailed, ev.LoggedOut)):
            self.ended, self.failed = True, isinstance(event, ev.LoginFailed)
            self.swarm.emit({"kind": "error", "agent": self.agent_id, "event": type(event).__name__,
                             "detail": getattr(event, "message", getattr(event, "reason", "")),
                             "t": time.monotonic()})
            self.swarm.check_ready()

    def settled(self) -> bool:
        return self.ended or bool(self.endpoint and self.standby)


class Swarm:
    def __init__(self, agent_ids: list[str], urls: list[str], password: str):
        config = SessionConfig(endpoints=tuple(Site(chr(65 + i), u) for i, u in enumerate(urls)),
                               client_name="bench-swarm")
        self.password = password
        self.agents = [SwarmAgent(a, config, self) for a in agent_ids]
        self.ready_sent = False

    def emit(self, record: dict) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    def check_ready(self) -> None:
        if not self.ready_sent and all(a.settled() for a in self.agents):
            self.ready_sent = True
            self.emit({"kind": "ready", "agents": len(self.agents), "failed": sum(a.failed for a in self.agents),
                       "t": time.monotonic()})

    async def run(self, login_rate: float) -> None:
        for agent in self.agents:
            agent.runner.feed(agent.session.start)
            agent.runner.feed(agent.session.login, agent.agent_id, self.password,
                              initial_state=ev.StateIntent("not_ready", "break"))
            await asyncio.sleep(1 / login_rate)  # pace the morning logins; the storm is not paced
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        since = float("-inf")  # stdin closed without "stop T": count everything
        while line := await reader.readline():
            word, _, rest = line.decode().strip().partition(" ")
            if word == "stop":
                since = float(rest) if rest else float("-inf")
                break
        self.emit({
            "kind": "summary",
            "login_attempts_since": [sum(1 for t in a.login_times if t >= since) for a in self.agents],
            "logged_in": sum(1 for a in self.agents if a.session.snapshot().status == "logged_in"),
            "login_failed": sum(1 for a in self.agents if a.failed),
            "relogged": sum(1 for a in self.agents if a.endpoint and a.endpoint != "A"),
            "primary_checks": sum(a.runner.checks for a in self.agents),
            # Links the sessions gave up (silence, open timeout) at or after T, by reason.
            "give_ups_since": dict(Counter(why.split(" (")[0] for a in self.agents for t, why in a.runner.give_ups
                                           if t >= since)),
        })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", required=True)
    parser.add_argument("--agents", required=True, help="first:count, e.g. b0:500 -> b0 .. b499")
    parser.add_argument("--password", default="bench")
    parser.add_argument("--login-rate", type=float, default=500.0, help="logins per second at start-up")
    args = parser.parse_args()
    prefix, count = args.agents.split(":")
    start = int(prefix.lstrip("b"))
    ids = [f"b{i}" for i in range(start, start + int(count))]
    # 1,250 desktops in one process: a server-sized heap, paced like the servers' (a real desktop's is small).
    tune_for_many_connections()

    async def run() -> None:  # the runners need the loop, so the swarm is built inside it
        await Swarm(ids, args.urls.split(","), args.password).run(args.login_rate)

    asyncio.run(run())


if __name__ == "__main__":
    main()
