"""The site list clients connect to (``[[site]]`` in sites.toml), preferred site first."""

from __future__ import annotations

from pathlib import Path

from server_stub.config import Site, SitesFile
from server_stub.resources import resource_path


def load_sites(path: str | Path | None = None) -> list[Site]:
    return list(SitesFile.load(Path(path) if path else resource_path("sites.toml")).sites)
