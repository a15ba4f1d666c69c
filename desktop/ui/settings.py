"""The desktop's settings: built-in defaults, then the user's values, then IT's TOML file, which wins.

Qt-free: the user's values come from any mapping-like store (QSettings in the app, a dict in tests).
IT ships ``settings.toml`` at the default location (``$AGENT_DESKTOP_SETTINGS``, else
``/etc/agent-desktop/settings.toml``; ``%ProgramData%\\AgentDesktop\\settings.toml`` on Windows)
or passes ``--settings FILE``; every key it sets is locked in the settings window. Example::

    preferred_site = "B"
    heartbeat_timeout = 3.0        # seconds of silence before a server counts as lost
    failback = "when-idle"         # or "never"
    theme = "dark"                 # or "light", "system" (the default)
    font_size = 12                 # points; 0 (the default) keeps the system's size
    language = "fr"                # "" (the default): the system's; "en", "fr"
    ring = true                    # offers ring (default true)
    ring_volume = 60               # percent, 0..100 (default 80)
    ring_device = ""               # an audio output's id; "" (the default): the system's
    [[site]]
    name = "A"
    url = "wss://cc-a.example.com:8701"
"""

from __future__ import annotations

import os
import sys
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, get_args

from ..core.config import FailbackPolicy
from ..sites import Site, load_sites
from .i18n import translate

SETTINGS_ENV = "AGENT_DESKTOP_SETTINGS"


def _default_it_file() -> Path:
    """Where IT's installers put the file: /etc/agent-desktop on Linux (the .deb's conffile),
    %ProgramData%\\AgentDesktop on Windows (the NSIS installer's /SETTINGS= copy)."""
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "AgentDesktop" / "settings.toml"
    return Path("/etc/agent-desktop/settings.toml")


DEFAULT_IT_FILE = _default_it_file()
FAILBACK_POLICIES: tuple[FailbackPolicy, ...] = get_args(FailbackPolicy)
THEMES = ("system", "light", "dark")
FONT_SIZES = range(8, 25)  # points a user may choose; 0 keeps the system's size
_LOOK_KEYS = ("theme", "font_size")
LANGUAGES = ("", "en", "fr")  # "": the system's (English where it is none of these)
_DESK_KEYS = ("language", "ring", "ring_volume", "ring_device")


class SettingsError(ValueError):
    """A settings value or file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class DesktopSettings:
    sites: tuple[Site, ...]
    preferred_site: str | None = None
    heartbeat_timeout: float = 1.5
    failback: FailbackPolicy = "never"
    theme: str = "system"  # one of THEMES
    font_size: int = 0  # points; 0: the system's size
    language: str = ""  # one of LANGUAGES; "": the system's
    ring: bool = True  # an offer rings (desktop/ui/attention.py)
    ring_volume: int = 80  # percent
    ring_device: str = ""  # an audio output's id; "": the system's default
    locked: frozenset[str] = field(default=frozenset())  # keys IT (or --demo) fixed: shown read-only
    source: str | None = None  # the IT file that was applied, if any
    demo_keys: frozenset[str] = field(default=frozenset())  # of ``locked``: fixed by --demo's local sites

    def lock_reason(self, key: str) -> str | None:
        """Why ``key`` cannot be changed here (a tooltip), or None when the user may change it."""
        if key in self.demo_keys:
            return translate("Settings", "Fixed by the demo, which runs its own local sites")
        if key in self.locked:
            return translate("Settings", "Set by IT in {0}").format(self.source)
        return None

    def ordered_sites(self, preferred: str | None = None) -> list[Site]:
        """The sites with the preferred one first (the core's order of preference)."""
        want = preferred or self.preferred_site or (self.sites[0].name if self.sites else None)
        return sorted(self.sites, key=lambda s: s.name != want)


class Store(Protocol):
    def value(self, key: str, default: Any = None) -> Any: ...


def _check(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate and normalise raw values; raise SettingsError naming ``where`` and the key."""
    out: dict[str, Any] = {}
    if "sites" in values and values["sites"] is not None:
        raw = values["sites"]
        if not isinstance(raw, list) or not raw:
            raise SettingsError(f"{where}: sites must be a non-empty list of {{name, url}}")
        sites = []
        for i, item in enumerate(raw):
            name, url = (item.get("name"), item.get("url")) if isinstance(item, dict) else (None, None)
            if not isinstance(name, str) or not name.strip():
                raise SettingsError(f"{where}: site {i + 1} needs a name")
            if not isinstance(url, str):  # worded as Site words a bad url
                raise SettingsError(f"{where}: site {name.strip()!r} needs a ws:// or wss:// url, got {url!r}")
            try:
                sites.append(Site(name.strip(), url.strip()))
            except ValueError as exc:  # not a ws:// or wss:// url
                raise SettingsError(f"{where}: {exc}") from None
        if len({s.name for s in sites}) != len(sites):
            raise SettingsError(f"{where}: site names must be distinct")
        out["sites"] = tuple(sites)
    if values.get("preferred_site") not in (None, ""):
        out["preferred_site"] = str(values["preferred_site"])
    if values.get("heartbeat_timeout") not in (None, ""):
        try:
            timeout = float(values["heartbeat_timeout"])
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: heartbeat_timeout must be a number of seconds") from None
        if not 0.6 <= timeout <= 120:
            raise SettingsError(f"{where}: heartbeat_timeout must be within 0.6..120 s, got {timeout}")
        out["heartbeat_timeout"] = timeout
    if values.get("failback") not in (None, ""):
        if values["failback"] not in FAILBACK_POLICIES:
            raise SettingsError(f"{where}: failback must be one of {FAILBACK_POLICIES}, got {values['failback']!r}")
        out["failback"] = values["failback"]
    if values.get("theme") not in (None, ""):
        if values["theme"] not in THEMES:
            raise SettingsError(f"{where}: theme must be one of {THEMES}, got {values['theme']!r}")
        out["theme"] = values["theme"]
    if values.get("font_size") not in (None, ""):
        try:
            size = int(values["font_size"])
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: font_size must be a whole number of points") from None
        if size != 0 and size not in FONT_SIZES:
            raise SettingsError(f"{where}: font_size must be 0 (the system's) or within "
                                f"{FONT_SIZES.start}..{FONT_SIZES.stop - 1} points, got {size}")
        out["font_size"] = size
    if values.get("language") is not None:
        if values["language"] not in LANGUAGES:
            raise SettingsError(f"{where}: language must be one of {LANGUAGES} (\"\" for the system's), "
                                f"got {values['language']!r}")
        out["language"] = values["language"]
    if values.get("ring") not in (None, ""):
        ring = values["ring"]
        if isinstance(ring, str) and ring.lower() in ("true", "false"):
            ring = ring.lower() == "true"
        if not isinstance(ring, bool):
            raise SettingsError(f"{where}: ring must be true or false, got {values['ring']!r}")
        out["ring"] = ring
    if values.get("ring_volume") not in (None, ""):
        try:
            volume = int(values["ring_volume"])
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: ring_volume must be a whole percentage") from None
        if not 0 <= volume <= 100:
            raise SettingsError(f"{where}: ring_volume must be within 0..100 %, got {volume}")
        out["ring_volume"] = volume
    if values.get("ring_device") is not None:
        if not isinstance(values["ring_device"], str) or len(values["ring_device"]) > 512:
            raise SettingsError(f"{where}: ring_device must be an audio output's id (text), "
                                f"got {values['ring_device']!r}")
        out["ring_device"] = values["ring_device"]
    return out


def read_it_file(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"settings file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"settings file {path}: not valid TOML ({exc})") from None
    unknown = set(raw) - {"site", "preferred_site", "heartbeat_timeout", "failback", *_LOOK_KEYS, *_DESK_KEYS}
    if unknown:
        raise SettingsError(f"settings file {path}: unknown keys {sorted(unknown)}")
    values: dict[str, Any] = {k: raw[k] for k in ("preferred_site", "heartbeat_timeout", "failback", *_LOOK_KEYS,
                                                  *_DESK_KEYS) if k in raw}
    if "site" in raw:
        values["sites"] = raw["site"]
    return _check(values, f"settings file {path}")


def it_file_path(explicit: str | Path | None, default: Path = DEFAULT_IT_FILE) -> Path | None:
    """The IT file to apply: the command-line flag, else $AGENT_DESKTOP_SETTINGS, else the default
    location if it exists. An explicit file that is missing is an error (checked when read)."""
    if explicit:
        return Path(explicit)
    if os.environ.get(SETTINGS_ENV):
        return Path(os.environ[SETTINGS_ENV])
    return default if default.is_file() else None


def user_values(store: Store) -> dict[str, Any]:
    """What the user saved. A damaged value is ignored (the default applies), never a crash."""
    values: dict[str, Any] = {}
    names, urls = store.value("sites/names"), store.value("sites/urls")
    if isinstance(names, str):
        names, urls = [names], [urls]
    if isinstance(names, list) and isinstance(urls, list) and len(names) == len(urls) and names:
        values["sites"] = [{"name": n, "url": u} for n, u in zip(names, urls, strict=True)]
    for key in ("preferred_site", "heartbeat_timeout", "failback", *_LOOK_KEYS, *_DESK_KEYS):
        value = store.value(key)
        if value is not None and (value != "" or key in ("language", "ring_device")):
            values[key] = value
    clean: dict[str, Any] = {}
    for key, value in values.items():  # one bad key does not discard the others
        try:
            clean.update(_check({key: value}, "saved settings"))
        except SettingsError:
            pass
    return clean


def resolve(store: Store, it_file: Path | None = None, default_sites: list | None = None) -> DesktopSettings:
    """Defaults < user values < IT file. Raises SettingsError for a bad IT file."""
    base_sites = default_sites if default_sites is not None else load_sites()
    settings = DesktopSettings(sites=tuple(base_sites))
    settings = replace(settings, **user_values(store))
    if it_file is not None:
        forced = read_it_file(it_file)
        settings = replace(settings, **forced, locked=frozenset(forced), source=str(it_file))
    names = [s.name for s in settings.sites]
    if settings.preferred_site not in names:
        if "preferred_site" in settings.locked:
            raise SettingsError(f"settings file {it_file}: preferred_site {settings.preferred_site!r} "
                                f"is not one of the sites {names}")
        settings = replace(settings, preferred_site=names[0] if names else None)
    return settings


def save_user_values(store, settings: DesktopSettings) -> None:
    """Write what the user may change (not IT's locked keys) to ``store`` (QSettings-like setValue)."""
    if "sites" not in settings.locked:
        store.setValue("sites/names", [s.name for s in settings.sites])
        store.setValue("sites/urls", [s.url for s in settings.sites])
    for key in ("preferred_site", "heartbeat_timeout", "failback", *_LOOK_KEYS, *_DESK_KEYS):
        if key not in settings.locked:
            store.setValue(key, getattr(settings, key))


def validate_user_edit(sites: list[dict], preferred: str, heartbeat_timeout: Any, failback: str,
                       theme: str = "system", font_size: int = 0, **desk: Any) -> dict[str, Any]:
    """Check what the user typed in the settings window; SettingsError names the field to fix.
    ``desk``: language, ring, ring_volume, ring_device."""
    values = _check({"sites": sites, "preferred_site": preferred, "heartbeat_timeout": heartbeat_timeout,
                     "failback": failback, "theme": theme, "font_size": font_size, **desk}, "settings")
    if values.get("preferred_site") not in {s.name for s in values["sites"]}:
        raise SettingsError("settings: the preferred site must be one of the sites")
    return values
