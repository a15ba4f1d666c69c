"""Read a start-up TOML file into typed structures, or fail with one line that names the file, the
key and what is wrong (never a traceback)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from .protocol import Site


def load(path: Path, type_, error: type[Exception]):
    """``path`` decoded and validated as ``type_``; ``error("<file>: <where>: <what>")`` otherwise."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise error(f"{path}: {exc.strerror or exc}") from None
    try:
        return msgspec.toml.decode(data, type=type_)
    except msgspec.ValidationError as exc:
        what, sep, where = str(exc).partition(" - at `$")
        if sep:
            raise error(f"{path}: {where.rstrip('`').lstrip('.') or 'top level'}: {what}") from None
        raise error(f"{path}: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # thousands of nested arrays or tables: the decoder runs out of stack
        raise error(f"{path}: not valid TOML: nested too deeply") from None


class _SiteList(msgspec.Struct):
    """What a client reads of a site file: the ``[[site]]`` tables (the servers' own are not its business)."""

    site: list[Site] = []


def load_sites(path: Path, error: type[Exception]) -> list[Site]:
    """The ``[[site]]`` tables of a site file (resources/sites.toml), in file order: the list every
    client of a pair dials (desktop, supervisor view, carrier). ``error`` as for ``load``."""
    sites: list[Site] = load(path, _SiteList, error).site
    if not sites:
        raise error(f"{path}: needs [[site]] tables with name and url")
    return sites
