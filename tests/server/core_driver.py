"""Drive the server core in-process: a socket's frames in, its answers out, with a fake clock.
Passwords are checked by the driver (any password in ``PASSWORDS``), as the transport's scrypt
pool would."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field

from server_stub import protocol as p
from server_stub.config import QueueConfig, ServerConfig
from server_stub.core import CheckPassword, Close, Now, Output, Send, ServerCore
from server_stub.directory import AgentRecord, Directory

WALL0 = 1_800_000_000_000
PASSWORD = "pw"
USERS = {"1001": "agent", "1002": "agent", "sup1": "supervisor", "carrier1": "carrier"}


def directory() -> Directory:
    return Directory({uid: AgentRecord(id=uid, name=uid, password_hash="test-only", role=role, queues=("sales",))
                      for uid, role in USERS.items()})


def core(**settings: object) -> ServerCore:
    """A server core named A with a ``sales`` queue; ``settings`` override ServerConfig's defaults."""
    config = ServerConfig(name="A", secret=b"core-driver-secret", queues=(QueueConfig(name="sales"),))
    return ServerCore(config.with_overrides(**settings), directory(), Now(0.0, WALL0), stream_id="s1")


@dataclass
class CoreDriver:
    """One server core and the sockets a test opened on it."""

    core: ServerCore = field(default_factory=core)
    mono: float = 0.0
    received: dict[int, list[dict]] = field(default_factory=dict)
    closed: dict[int, int] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def now(self) -> Now:
        return Now(self.mono, WALL0 + int(self.mono * 1000))

    def run(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, Send):
                self.received.setdefault(out.conn, []).append(json.loads(out.frame))
            elif isinstance(out, Close):
                self.closed[out.conn] = out.code
            elif isinstance(out, CheckPassword):
                self.run(self.core.password_checked(out.conn, out.check, out.password == PASSWORD, self.now()))

    def open(self) -> int:
        conn = next(self._ids)
        self.run(self.core.connected(conn, f"127.0.0.1:{40000 + conn}", self.now()))
        return conn

    def request(self, conn: int, message: dict) -> dict:
        """Send a request; its answer (EventAck or EventError)."""
        request_id = message.setdefault("request_id", f"r{next(self._ids)}")
        self.mono += 0.01
        self.run(self.core.received(conn, json.dumps(message), self.now()))
        return next(m for m in self.received.get(conn, []) if m.get("request_id") == request_id
                    and m["type"] in ("EventAck", "EventError"))

    def registered(self) -> int:
        conn = self.open()
        assert self.request(conn, {"type": "RequestRegisterClient", "protocol_version": p.PROTOCOL_VERSION,
                                   "client_name": "core-test"})["type"] == "EventAck"
        return conn
