"""The routing rules a site runs with, and their version (docs/multisite.md, "One configuration").

Sites that share an agent pool must route on the same rules: the same queues (members,
penalties, timeouts), the same Not Ready reasons and dispositions, the same agents in the same
queues. ``rules_version`` is a short digest of exactly that (never of passwords or of settings
that only concern one server, like its port or its heartbeat terms), so two sites can tell in
one field whether they agree.
"""

from __future__ import annotations

import hashlib

import msgspec

from ..config import ServerConfig
from ..directory import Directory


def rules(config: ServerConfig, directory: Directory) -> dict[str, object]:
    """What must be the same at every site, in a canonical form."""
    return {
        "queues": sorted([q.name, q.accept_timeout_ms, q.acw_ms, q.abandon_after_ms, q.service_level_target_ms,
                          sorted([list(m) for m in q.members])] for q in config.queues),
        "reasons": sorted(r.code for r in config.reasons),
        "dispositions": sorted(d.code for d in config.dispositions),
        "agents": sorted([a.id, a.role, sorted(a.queue_penalties().items())] for a in directory.agents.values()),
    }


def rules_version(config: ServerConfig, directory: Directory) -> str:
    encoded = msgspec.json.encode(rules(config, directory))
    return hashlib.sha256(encoded).hexdigest()[:16]
