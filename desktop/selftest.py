"""``agent-desktop --self-test`` and ``supervisor-view --self-test``: can this PC run the desktop?

One line per check (``ok``, ``warn`` for an optional check, ``FAIL``), exit 0 only when every
required check passed. Works without a display: the Qt checks then load the X11 platform plugin
(it must link against this system's libraries) and start Qt offscreen. Scope ``install`` (what the
Debian package runs after installing, as root, offline) leaves out what belongs to a user or needs
the network: the user's settings, the keyring and the sites.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from server_stub.selftest import DEFAULT_TIMEOUT, Check, check_resources, check_sites, check_tls_trust, guarded, report

SCOPES = ("all", "install")
ORGANIZATION, APPLICATION = "AgentDesktop", "agent-desktop"  # as desktop.app names its QSettings


# --------------------------------------------------------------------------- Qt


def plugin_file(kind: str, name: str) -> Path | None:
    """The Qt plugin ``name`` of type ``kind`` (``platforms``/``xcb``) on Qt's plugin path."""
    from PySide6.QtCore import QCoreApplication

    roots = [p for p in os.environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    for root in roots + list(QCoreApplication.libraryPaths()):
        for candidate in sorted((Path(root) / kind).glob(f"*q{name}.*")):
            if candidate.stem in (f"libq{name}", f"q{name}"):
                return candidate
    return None


def check_platform_plugin(name: str, required: bool = True) -> Check:
    """The platform plugin loads: its file is there and every library it needs resolves here
    (the usual failure on a fresh PC is a missing libxcb-* package)."""
    from PySide6.QtCore import QPluginLoader

    label = f"Qt platform plugin {name}"
    path = plugin_file("platforms", name)
    if path is None:
        return Check(label, False, "not found on the Qt plugin path", required)
    loader = QPluginLoader(str(path))
    if not loader.load():
        return Check(label, False, f"{path} does not load: {loader.errorString()}", required)
    return Check(label, True, f"{path.name} loads", required)


def native_platform() -> str:
    """The platform plugin Qt would pick on this PC for a real screen."""
    wanted = [n.split(":")[0] for n in os.environ.get("QT_QPA_PLATFORM", "").split(";") if n]
    if wanted:
        return wanted[0]
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "cocoa"
    if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("DISPLAY"):
        return "wayland"
    return "xcb"


def platform_checks(display_problem: str | None) -> list[Check]:
    """Load the platform plugin the desktop will use (xcb when there is no display to ask)."""
    if display_problem is None:
        return [check_platform_plugin(native_platform())]
    checks = [Check("display", True, f"none ({display_problem}): checking Qt offscreen", required=False)]
    if sys.platform.startswith("linux"):
        checks.append(check_platform_plugin("xcb"))
    return checks


def start_qt(display_problem: str | None):
    """The QApplication for the remaining checks (offscreen without a display) and its check."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        argv = [APPLICATION] + (["-platform", "offscreen"] if display_problem else [])
        app = QApplication(argv)
    screen = QGuiApplication.primaryScreen()
    size = screen.size() if screen is not None else None
    where = f", screen {size.width()}x{size.height()}" if size is not None else ""
    return app, Check("Qt", True, f"{QGuiApplication.platformName()} platform started{where}")


@guarded("icons")
def check_icons(required_names: Iterable[str] = ("app", "ready", "not-ready")) -> Check:
    """Every shipped SVG icon renders (the SVG image plugins survived the bundle's pruning)."""
    from PySide6.QtGui import QIcon, QImageReader

    from server_stub.resources import resource_dir

    if b"svg" not in [f.data() for f in QImageReader.supportedImageFormats()]:
        return Check("icons", False, "Qt cannot read SVG (the imageformats/qsvg plugin is missing)")
    folder = resource_dir() / "icons"
    files = sorted(folder.rglob("*.svg"))
    missing = [n for n in required_names if not (folder / f"{n}.svg").is_file()]
    if missing:
        return Check("icons", False, f"missing in {folder}: {', '.join(missing)}")
    broken = [f.name for f in files if QIcon(str(f)).pixmap(32, 32).isNull()]
    if broken:
        return Check("icons", False, f"do not render: {', '.join(broken)}")
    return Check("icons", True, f"{len(files)} SVG icons render")


# --------------------------------------------------------------------------- settings


def check_machine_settings(explicit: str | Path | None) -> tuple[Check, Path | None]:
    """The IT settings file (--settings, $AGENT_DESKTOP_SETTINGS or /etc/agent-desktop) parses."""
    from .ui.settings import DEFAULT_IT_FILE, SettingsError, it_file_path, read_it_file

    path = it_file_path(explicit)
    if path is None:
        return Check("machine settings", True, f"none ({DEFAULT_IT_FILE} is absent): the shipped sites"), None
    try:
        values = read_it_file(path)
    except SettingsError as exc:
        return Check("machine settings", False, str(exc)), path
    keys = ", ".join(sorted(values)) or "nothing"
    return Check("machine settings", True, f"{path}: sets {keys}"), path


def user_store():
    from PySide6.QtCore import QSettings

    return QSettings(ORGANIZATION, APPLICATION)


def check_user_settings(store) -> Check:
    """The agent's own settings (QSettings) read back without a format error."""
    from PySide6.QtCore import QSettings

    from .ui.settings import user_values

    where = store.fileName()
    if sys.platform != "win32" and not Path(where).exists():
        return Check("user settings", True, f"none yet ({where}): first start")
    keys = store.allKeys()  # reads the file
    if store.status() != QSettings.Status.NoError:
        problem = "cannot be read" if store.status() == QSettings.Status.AccessError else "is not a valid settings file"
        return Check("user settings", False, f"{where} {problem}")
    return Check("user settings", True, f"{where}: {len(keys)} values, {len(user_values(store))} site settings")


class _NoUser:
    """A settings store with nothing saved (the install scope runs as root, for no one)."""

    def value(self, key: str, default: object = None) -> object:
        return default


@guarded("keyring", required=False)
def check_keyring() -> Check:
    """A keyring backend for "remember me"; optional: without one the password is asked for."""
    import keyring

    from .credentials import keyring_unavailable_reason

    reason = keyring_unavailable_reason()
    if reason is None:
        backend = keyring.get_keyring()
        return Check("keyring", True, f"{type(backend).__module__}.{type(backend).__name__}", required=False)
    why = reason
    if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        why += " (no D-Bus session bus, so no Secret Service)"
    return Check("keyring", False, f"no backend: {why}", required=False)


# --------------------------------------------------------------------------- the programs


def desktop_checks(settings_file: str | None, ca_file: str | None, scope: str = "all",
                   timeout: float = DEFAULT_TIMEOUT) -> Iterator[Check]:
    from .app import display_problem
    from .gui_gc import GuiThreadCollector
    from .ui.settings import SettingsError, Store, resolve

    yield check_resources()
    problem = display_problem()
    plugins = platform_checks(problem)
    yield from plugins
    if not all(c.ok for c in plugins if c.required) and problem is None:
        return  # Qt would abort on a platform plugin that does not load
    app, started = start_qt(problem)
    collector = GuiThreadCollector(app).start()
    try:
        yield started
        yield check_icons()
        machine, it_file = check_machine_settings(settings_file)
        yield machine
        store: Store = _NoUser()  # the install scope has no user: defaults and IT's file only
        if scope == "all":
            store = user_store()
            yield check_user_settings(store)
        try:
            settings = resolve(store, it_file if machine.ok else None)
        except SettingsError as exc:
            yield Check("settings", False, str(exc))
            return
        sites = [(s.name, s.url) for s in settings.ordered_sites()]
        yield check_tls_trust(ca_file, required=bool(ca_file) or any(url.startswith("wss://") for _, url in sites))
        if scope == "all":
            yield check_keyring()
            yield from check_sites(sites, ca_file, timeout, client_name="agent-desktop self-test")
    finally:
        collector.stop()


def run_desktop(args) -> int:
    return report(desktop_checks(args.settings, args.ca_file, args.self_test), program="agent-desktop self-test")


def supervisor_checks(endpoints, ca_file: str | None, scope: str = "all",
                      timeout: float = DEFAULT_TIMEOUT) -> Iterator[Check]:
    from .app import display_problem
    from .gui_gc import GuiThreadCollector

    yield check_resources()
    problem = display_problem()
    plugins = platform_checks(problem)
    yield from plugins
    if not all(c.ok for c in plugins if c.required) and problem is None:
        return
    app, started = start_qt(problem)
    collector = GuiThreadCollector(app).start()
    try:
        yield started
        yield check_icons(("app", "supervisor/supervisor-view"))
        sites = [(e.name, e.url) for e in endpoints]
        yield check_tls_trust(ca_file, required=bool(ca_file) or any(url.startswith("wss://") for _, url in sites))
        if scope == "all":
            yield check_keyring()
            yield from check_sites(sites, ca_file, timeout, client_name="supervisor-view self-test")
    finally:
        collector.stop()


def run_supervisor(args, endpoints) -> int:
    return report(supervisor_checks(endpoints, args.ca_file, args.self_test), program="supervisor-view self-test")
