"""Where a site keeps the shared configuration across restarts (docs/multisite.md, "One configuration").

A site started with its own files (``--config`` and ``--agents``) stores a configuration taken
from another site in those files, each replaced atomically (written beside, then renamed: a reader
or a crash never sees half a file): the agent directory whole, and in the site file only the shared
tables (``[[queue]]``, ``[[not_ready_reason]]``, ``[[disposition]]``), its ``[server]`` settings
and ``[[site]]`` list kept (comments are not: the file is written again from its values). Then
the version, in ``<agents file>.version`` (JSON), so a restart knows which version its files hold;
files first, version last, so a crash in between leaves files newer than the version (taken as a
change made here, with the same content: harmless), never the reverse.

Without both files (the shipped demo files) nothing is stored: the change applies until the server
stops, and the site takes it again from the others when it comes back.
"""

from __future__ import annotations

import json
import logging
import os
import tomllib
from pathlib import Path

import msgspec
import tomli_w

from . import protocol as p
from .config import ServerConfig
from .core import StoreConfig

log = logging.getLogger("interaction_server")


def version_path(agents: Path) -> Path:
    return agents.with_name(agents.name + ".version")


def load_version(agents: Path | None) -> p.ConfigVersion | None:
    """The version stored beside ``agents`` (None: none, or unreadable: then generation 0)."""
    if agents is None:
        return None
    try:
        return msgspec.json.decode(version_path(agents).read_bytes(), type=p.ConfigVersion)
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.warning("ignoring %s (%s): this site's files count as never changed", version_path(agents), exc)
        return None


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _seconds(ms: int) -> float | int:
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _shared_tables(config: ServerConfig) -> dict[str, object]:
    queues = []
    for q in config.queues:
        table: dict[str, object] = {"name": q.name, "accept_timeout": _seconds(q.accept_timeout_ms),
                                    "service_level_target": _seconds(q.service_level_target_ms)}
        if q.acw_ms is not None:
            table["after_call_work"] = _seconds(q.acw_ms)
        if q.abandon_after_ms is not None:
            table["abandon_after"] = _seconds(q.abandon_after_ms)
        if q.acw_extend_ms is not None:
            table["after_call_work_extend"] = _seconds(q.acw_extend_ms)
            table["after_call_work_max_extends"] = q.acw_max_extends
        if q.members:
            table["members"] = dict(q.members)
        queues.append(table)
    return {"queue": queues,
            "not_ready_reason": [{"code": r.code, "label": r.label, **({"server_only": True} if r.server_only else {})}
                                 for r in config.reasons],
            "disposition": [{"code": d.code, "label": d.label} for d in config.dispositions]}


def store(out: StoreConfig, config_file: Path, agents_file: Path) -> None:
    """Carry out ``out`` on this site's files (raises OSError or ValueError when it cannot)."""
    if out.files:
        out.directory.save(agents_file)
        site = tomllib.loads(config_file.read_text(encoding="utf-8"))
        site.update(_shared_tables(out.config))
        _write(config_file, tomli_w.dumps(site))
    _write(version_path(agents_file), json.dumps(msgspec.to_builtins(out.version)) + "\n")
