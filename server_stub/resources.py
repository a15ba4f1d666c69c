"""Locate files of resources/ in an installed wheel or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_INSTALLED = Path(__file__).resolve().parent / "_resources"  # where the wheel puts resources/
_CHECKOUT = Path(__file__).resolve().parent.parent / "resources"


def resource_dir() -> Path:
    return _INSTALLED if _INSTALLED.is_dir() else _CHECKOUT


def resource_path(name: str) -> Path:
    """Path of a shipped resource such as ``demo_agents.toml``; FileNotFoundError if absent."""
    path = resource_dir() / name
    if not path.exists():
        raise FileNotFoundError(f"resource {name!r} not found in {resource_dir()}")
    return path
