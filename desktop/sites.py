"""The site list clients connect to (``[[site]]`` in sites.toml), preferred site first.

Read with the start-up file reader both sides share, not through the server's configuration
module: a client needs only the ``[[site]]`` tables, as ``protocol.Site``."""

from __future__ import annotations

from pathlib import Path

from server_stub import tomlfile
from server_stub.protocol import Site
from server_stub.resources import resource_path

__all__ = ["Site", "SitesError", "load_sites"]  # Site: the UI reads it here, not from the wire module


class SitesError(ValueError):
    """The site file is missing, not TOML, or its sites are not usable; the message names the file."""


def load_sites(path: str | Path | None = None) -> list[Site]:
    """The sites of ``path`` (default: the packaged sites.toml), in file order."""
    return tomlfile.load_sites(Path(path) if path else resource_path("sites.toml"), SitesError)
