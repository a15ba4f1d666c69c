"""The agent directory: who may log in, with which role, verified against scrypt hashes.

A directory is a TOML file of ``[[agent]]`` tables (id, name, password_hash, role, queues,
skills). ``queues`` is a list of queue names (penalty 0) or a table of queue name to penalty
(lower is preferred). Role ``carrier`` is for traffic sources that submit interactions. Passwords
are never stored: ``password_hash`` is ``scrypt$n$r$p$salt$hash`` (base64).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import get_args

import msgspec
import tomli_w

from . import tomlfile
from .config import Penalty
from .protocol import AgentId, Role

ROLES: tuple[Role, ...] = get_args(Role)
_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
# scrypt cost for new hashes: n=2**14, r=8, p=5, one of OWASP's equivalent settings to n=2**17,
# r=8, p=1 (the same work, 16 MiB instead of 128 MiB of memory; ~0.25 s here). Logins after a
# failover use resume tokens instead, so this cost is paid once per working day, not in a storm.
_N, _R, _P = 2**14, 8, 5
OWASP_WORK = 2**17 * 8  # n * r * p of OWASP's guidance; hashes below it get a warning at start
# Below these a hash is refused: n=2**14, r=8 is the floor any equivalent setting keeps.
MIN_N, MIN_R = 2**14, 8


class DirectoryError(ValueError):
    """The directory file is unreadable or has an invalid entry; the message says where."""


def hash_password(password: str, *, n: int = _N, r: int = _R, p: int = _P) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${n}${r}${p}${b64(salt)}${b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected), maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@dataclass(frozen=True)
class AgentRecord:
    id: str
    name: str
    password_hash: str
    role: str = "agent"
    queues: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    penalties: tuple[tuple[str, int], ...] = ()  # (queue, penalty) for queues with a penalty above 0

    def queue_penalties(self) -> dict[str, int]:
        """Queue name -> penalty for every queue the agent is a member of."""
        return {**{q: 0 for q in self.queues}, **dict(self.penalties)}

    def as_toml(self) -> dict:
        queues = self.queue_penalties() if self.penalties else list(self.queues)
        return {
            "id": self.id, "name": self.name, "password_hash": self.password_hash,
            "role": self.role, "queues": queues, "skills": list(self.skills),
        }




class _AgentEntry(msgspec.Struct, forbid_unknown_fields=True):
    """One ``[[agent]]`` table as written in the file (types checked by msgspec on load)."""

    id: AgentId
    name: str
    password_hash: str
    role: Role = "agent"
    queues: list[str] | dict[str, Penalty] = []  # names (penalty 0), or name -> penalty
    skills: list[str] = []

    def record(self) -> AgentRecord:
        queues = self.queues
        penalties = tuple((q, v) for q, v in queues.items() if v) if isinstance(queues, dict) else ()
        return AgentRecord(id=self.id, name=self.name, password_hash=self.password_hash, role=self.role,
                           queues=tuple(queues), skills=tuple(self.skills), penalties=penalties)


class _DirectoryFile(msgspec.Struct, forbid_unknown_fields=True):
    agent: list[_AgentEntry] = []


def below_guidance(encoded: str) -> bool:
    """Is this scrypt hash cheaper than OWASP's guidance (the work of n=2**17, r=8, p=1)?"""
    cost = scrypt_cost(encoded)
    return cost is not None and cost[0] * cost[1] * cost[2] < OWASP_WORK


def scrypt_cost(encoded: str) -> tuple[int, int, int] | None:
    """(n, r, p) of an ``scrypt$n$r$p$salt$hash`` string, or None when it is not one."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(x.isdigit() for x in parts[1:4]):
        return None
    return int(parts[1]), int(parts[2]), int(parts[3])


@dataclass
class Directory:
    agents: dict[str, AgentRecord] = field(default_factory=dict)

    def below_guidance(self) -> list[str]:
        """Ids whose password hash costs less than OWASP's guidance (accepted, but worth re-hashing)."""
        return [record.id for record in self.agents.values() if below_guidance(record.password_hash)]

    def rehashed(self, agent_id: str, password_hash: str) -> None:
        """Replace one agent's password hash (the agent logged in; its old hash was too cheap)."""
        record = self.agents.get(agent_id)
        if record is not None:
            self.agents[agent_id] = replace(record, password_hash=password_hash)

    def get(self, agent_id: str) -> AgentRecord | None:
        return self.agents.get(agent_id)

    @classmethod
    def load(cls, path: Path, *, allow_weak: bool = False) -> Directory:
        """The directory in ``path``; ``allow_weak`` accepts hashes below the floor (benchmarks that
        log thousands of agents in measure routing, not scrypt)."""
        agents: dict[str, AgentRecord] = {}
        for i, entry in enumerate(tomlfile.load(path, _DirectoryFile, DirectoryError).agent):
            where = f"{path}: agent[{i}]"
            record = entry.record()
            if not record.password_hash.startswith("scrypt$"):
                raise DirectoryError(
                    f"{where}: password_hash must be an scrypt hash (see `interaction-server hash-password`)"
                )
            cost = scrypt_cost(record.password_hash)
            if cost is None or (not allow_weak and (cost[0] < MIN_N or cost[1] < MIN_R or cost[2] < 1)):
                raise DirectoryError(f"{where}: password_hash is too weak or malformed (scrypt needs n >= {MIN_N}, "
                                     f"r >= {MIN_R}); hash it again with `interaction-server hash-password`")
            if record.id in agents:
                raise DirectoryError(f"{where}: duplicate id {record.id!r}")
            agents[record.id] = record
        return cls(agents)

    def save(self, path: Path) -> None:
        """Write the directory to ``path`` atomically: a reader never sees half a file."""
        text = tomli_w.dumps({"agent": [a.as_toml() for a in self.agents.values()]})
        temporary = Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    def add(self, record: AgentRecord) -> None:
        if not _ID.match(record.id):
            raise DirectoryError(f"id {record.id!r} must be 1-64 of A-Z a-z 0-9 _ . @ -")
        if record.role not in ROLES:
            raise DirectoryError(f"role must be one of {ROLES}")
        if record.id in self.agents:
            raise DirectoryError(f"agent {record.id!r} already exists")
        self.agents[record.id] = record


def store_rehash(path: Path, agent_id: str, old_hash: str, new_hash: str) -> bool:
    """Put ``new_hash`` for ``agent_id`` into the directory file, read again just before, so an
    agent added meanwhile (``add-agent``) is kept; only if the file still holds ``old_hash``."""
    directory = Directory.load(path)
    record = directory.agents.get(agent_id)
    if record is None or record.password_hash != old_hash:
        return False
    directory.rehashed(agent_id, new_hash)
    directory.save(path)
    return True
