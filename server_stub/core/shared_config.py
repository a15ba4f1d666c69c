"""One configuration across sites: what is shared, its version, and how it travels (docs/multisite.md,
"One configuration").

The *shared configuration* is what every site of one contact center must have alike: the queues
(members, penalties, timeouts), the Not Ready reasons, the dispositions and the agent directory
(ids, names, roles, memberships, skills and password hashes). A site's own settings (its name,
port, peers, secret, heartbeat terms, limits) are not part of it.

Its version is ``(generation, origin, digest)``: a change made at a site (its files read again
and found different) takes the next generation above every one it has heard of, with itself as
origin. Between two versions the higher ``(generation, origin)`` wins (last writer wins, the
site name breaking a tie between changes made at once at two sites that could not hear each
other). A site that hears an older version from a linked site sends it its configuration
(``PeerConfig``), which that site takes, applies without a restart and stores in its files. A
generation 0 (files never changed since the site first started with them) never replaces anything:
sites that start with different files say so (the rules version) until one of them is changed.

Pure functions and a small assembler; no I/O (the server layer writes the files).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace

import msgspec

from .. import protocol as p
from ..config import QueueConfig, ServerConfig
from ..directory import AgentRecord, Directory

# Agents go into a frame until it holds about this many bytes of them: every frame stays under a
# peer socket's default 64 KiB limit (max_message_bytes) whatever the names' lengths.
PART_BYTES = 48 * 1024


def _document(config: ServerConfig, directory: Directory) -> tuple[list[p.SharedQueue], list[p.ReasonInfo],
                                                                    list[p.ReasonInfo], list[p.SharedAgent]]:
    queues = [p.SharedQueue(name=q.name, accept_timeout_ms=q.accept_timeout_ms, acw_ms=q.acw_ms,
                            abandon_after_ms=q.abandon_after_ms, service_level_target_ms=q.service_level_target_ms,
                            members=dict(q.members), acw_extend_ms=q.acw_extend_ms,
                            acw_max_extends=q.acw_max_extends) for q in config.queues]
    agents = [p.SharedAgent(id=a.id, name=a.name, password_hash=a.password_hash, role=a.role,  # type: ignore[arg-type]
                            queues=a.queue_penalties(), skills=list(a.skills))
              for a in sorted(directory.agents.values(), key=lambda a: a.id)]
    return queues, list(config.reasons), list(config.dispositions), agents


def digest(config: ServerConfig, directory: Directory) -> str:
    """A digest of the shared configuration (order of agents and queues in the files aside)."""
    queues, reasons, dispositions, agents = _document(config, directory)
    encoded = msgspec.json.encode([sorted(queues, key=lambda q: q.name), reasons, dispositions, agents])
    return hashlib.sha256(encoded).hexdigest()[:16]


def newer(a: p.ConfigVersion, b: p.ConfigVersion | None) -> bool:
    """Does version ``a`` replace ``b``? Only a changed configuration (generation >= 1) does."""
    if b is None:
        return a.generation >= 1
    return a.generation >= 1 and a.digest != b.digest and (a.generation, a.origin) > (b.generation, b.origin)


def frames(server: str, version: p.ConfigVersion, config: ServerConfig, directory: Directory) -> list[p.PeerConfig]:
    """The configuration as PeerConfig frames (part 0 with the queues, reasons and dispositions)."""
    queues, reasons, dispositions, agents = _document(config, directory)
    chunks: list[list[p.SharedAgent]] = [[]]
    size = len(msgspec.json.encode([queues, reasons, dispositions]))  # part 0 carries them
    for agent in agents:
        length = len(msgspec.json.encode(agent))
        if chunks[-1] and size + length > PART_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(agent)
        size += length
    return [p.PeerConfig(server=server, version=version, part=i, parts=len(chunks), agents=chunk,
                         queues=queues if i == 0 else [], reasons=reasons if i == 0 else [],
                         dispositions=dispositions if i == 0 else [])
            for i, chunk in enumerate(chunks)]


def adopt(parts: list[p.PeerConfig], base: ServerConfig) -> tuple[ServerConfig, Directory]:
    """The site's configuration with the shared part replaced by ``parts`` (complete, in order).
    Raises ValueError (ConfigError, DirectoryError) when it does not make a valid configuration."""
    first = parts[0]
    queues = tuple(QueueConfig(name=q.name, accept_timeout_ms=q.accept_timeout_ms, acw_ms=q.acw_ms,
                               abandon_after_ms=q.abandon_after_ms, service_level_target_ms=q.service_level_target_ms,
                               members=tuple(q.members.items()), acw_extend_ms=q.acw_extend_ms,
                               acw_max_extends=q.acw_max_extends) for q in first.queues)
    config = replace(base, queues=queues, reasons=tuple(first.reasons),
                     dispositions=tuple(first.dispositions)).validate()
    directory = Directory()
    for part in parts:
        for agent in part.agents:
            directory.add(AgentRecord(id=agent.id, name=agent.name, password_hash=agent.password_hash, role=agent.role,
                                      queues=tuple(agent.queues), skills=tuple(agent.skills),
                                      penalties=tuple((q, v) for q, v in agent.queues.items() if v)))
    return config, directory


@dataclass
class Assembler:
    """Collects the parts of one PeerConfig per sending site (a newer version starts over)."""

    pending: dict[str, tuple[p.ConfigVersion, dict[int, p.PeerConfig]]] = field(default_factory=dict)

    def add(self, msg: p.PeerConfig) -> list[p.PeerConfig] | None:
        """The complete configuration once ``msg`` was its last missing part, else None."""
        held = self.pending.get(msg.server)
        if held is None or held[0] != msg.version or any(part.parts != msg.parts for part in held[1].values()):
            held = self.pending[msg.server] = (msg.version, {})
        held[1][msg.part] = msg
        if msg.part >= msg.parts or len(held[1]) < msg.parts:
            if msg.part >= msg.parts:
                del held[1][msg.part]
            return None
        del self.pending[msg.server]
        return [held[1][i] for i in range(msg.parts)]
