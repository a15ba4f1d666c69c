"""What the frozen bundle leaves out, and the pass that drops it (used by agent-desktop.spec).

PyInstaller's Qt hooks collect every plugin of every type a used Qt module may load, and the
shared libraries those plugins need. The product is a widgets desktop on X11, Wayland or no
screen at all (offscreen, the self-test), showing SVG icons; everything else goes:

* Python modules it never imports (``EXCLUDED_MODULES``): other Qt bindings and Qt modules,
  Tk, test and packaging tooling that happens to sit in the build environment.
* Qt's own translations (qtbase_*.qm...): the product's .qm files ship in resources/translations/
  (server_stub/_resources in the bundle), which this pattern leaves alone.
* Platform plugins for embedded devices (eglfs, linuxfb, vnc, minimal, vkkhrdisplay) and their
  EGL device integrations; kept: xcb (and its GL integrations), wayland, offscreen, windows.
* The GTK3 platform theme, which alone drags in ~40 GTK/cairo/pango/gdk-pixbuf libraries; the
  portal theme (xdg-desktop-portal, over D-Bus) stays.
* Image formats but SVG (the icons; PNG is built into QtGui), evdev/tuio input plugins
  (embedded), network information, TLS backends and SQL drivers (QtNetwork/QtSql, unused: the
  websockets library does the networking on Python's ssl), printing, QML tooling, designer.
* Of the PySide6-Addons wheel, only Qt Multimedia's audio (QtMultimedia and libQt6Multimedia, for
  the offer's ring with QSoundEffect): its FFmpeg media backend plugin and with it libavcodec,
  libavformat, libswscale... (~20 MB, video and media files the desktop never plays; QSoundEffect
  plays a WAV through Qt Multimedia's own PulseAudio/PipeWire/WASAPI output without it), its QML
  and widget parts, and every other add-on module. Measured (installer/build.py freeze, same
  machine): the bundle grows from 115.9 MB to 120.7 MB, +4.9 MB (+4.2 %): QtMultimedia.abi3.so,
  libQt6Multimedia, libQt6Network and libQt6Concurrent (which it links) and the 28 KB ring.
  libpulse stays the system's (PyInstaller leaves it out; the .deb depends on libpulse0 through
  dpkg-shlibdeps); a seat without it starts all the same and Settings says offers will not ring.
* Then every shared library nothing kept needs any more (``unreachable``): a library is kept only
  when an executable, a Python extension or a kept plugin needs it, directly or through another
  kept library (ELF ``DT_NEEDED``). That is what removes the GTK stack once its theme is gone.

The ICU data (``libicudata``) stays: QtCore needs it for text handling.

For the Debian package (``system_libraries=dpkg_owners``) the libraries that PyInstaller picked up
from the build host's Debian packages (libX11, libxcb-*, glib, OpenSSL, libstdc++, ...) are left
out too: the package depends on those packages instead (dpkg-shlibdeps works out which), so they
get the distribution's security updates and match its graphics drivers. What stays is what Debian
does not ship in that form: the Python runtime and the libraries inside the Python wheels (Qt).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import PurePosixPath

EXCLUDED_MODULES = [
    "tkinter", "_tkinter", "readline", "turtle", "turtledemo", "idlelib", "lib2to3", "pydoc_data", "ensurepip", "venv",
    "distutils", "setuptools", "pkg_resources", "pip", "test", "unittest.mock",
    "pytest", "_pytest", "pytestqt", "hypothesis", "trustme", "jsonschema", "build", "hatchling",
    "PyInstaller", "numpy", "IPython",
    "PyQt5", "PyQt6", "PySide2",
    "PySide6.QtNetwork", "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtOpenGL",
    "PySide6.QtOpenGLWidgets", "PySide6.QtPrintSupport", "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtXml",
    "PySide6.QtConcurrent", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools", "PySide6.QtSvgWidgets",
    "PySide6.QtMultimediaWidgets", "PySide6.QtSpatialAudio", "PySide6.QtTextToSpeech",
]

# Paths inside the bundle (POSIX separators), matched against Qt's directory in PySide6.
_QT = r"(?:^|/)PySide6/(?:Qt/)?"
DROPPED_PATHS = [re.compile(_QT + pattern) for pattern in (
    r"translations/",
    r"plugins/platforms/(?:lib)?q(?:eglfs|linuxfb|minimal|minimalegl|vnc|vkkhrdisplay|direct2d)\b",
    r"plugins/egldeviceintegrations/",
    r"plugins/platformthemes/(?:lib)?qgtk3\b",
    r"plugins/imageformats/(?!(?:lib)?qsvg\b)",
    r"plugins/(?:generic|networkinformation|tls|sqldrivers|printsupport|qmltooling|qmllint|designer|"
    r"vectorimageformats|wayland-graphics-integration-server)/",
    r"plugins/platforminputcontexts/(?:lib)?qtvirtualkeyboard",
    r"plugins/multimedia/",  # the FFmpeg backend: QSoundEffect's audio needs none (see above)
    r"qml/QtMultimedia/",
    r"lib/libQt6MultimediaQuick\b",
)]


def dropped(dest: str) -> bool:
    """Is the bundle path ``dest`` left out on purpose?"""
    path = dest.replace("\\", "/")
    return any(pattern.search(path) for pattern in DROPPED_PATHS)


def is_shared_library(dest: str) -> bool:
    name = PurePosixPath(dest.replace("\\", "/")).name
    return bool(re.search(r"\.so(?:\.\d+)*$", name))


def elf_dynamic(paths: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """The dynamic section (``NEEDED``, ``RUNPATH``, ...: tag and value) of each ELF file in
    ``paths``, read by one ``objdump -p`` (binutils) per 200 files rather than one per file."""
    found: dict[str, list[tuple[str, str]]] = {str(path): [] for path in paths}
    files = list(found)
    for start in range(0, len(files), 200):
        out = subprocess.run(["objdump", "-p", *files[start:start + 200]], capture_output=True, text=True,
                             check=False).stdout
        current: list[tuple[str, str]] | None = None
        dynamic = False
        for line in out.splitlines():
            head, sep, _ = line.rpartition(":     file format ")
            if sep and head in found:
                current, dynamic = found[head], False
            elif line == "Dynamic Section:":
                dynamic = True
            elif not line.strip():
                dynamic = False
            elif dynamic and current is not None and len(parts := line.split()) == 2:
                current.append((parts[0], parts[1]))
    return found


def unreachable(toc: Iterable[tuple[str, str, str]], roots: Iterable[str], needed=None) -> set[str]:
    """Bundle paths of the plain shared libraries in ``toc`` (dest, source, typecode) that no root
    needs, directly or through other libraries of the toc. ``roots`` are source files (the
    executables' own dependencies, extensions and plugins); libraries are matched by file name.
    ``needed(source)`` gives a file's sonames; by default the walk reads each step's files with
    one ``objdump`` (``elf_dynamic``)."""
    entries = [(dest, src) for dest, src, typecode in toc if typecode == "BINARY" and is_shared_library(dest)]
    by_name: dict[str, list[tuple[str, str]]] = {}
    for dest, src in entries:
        by_name.setdefault(PurePosixPath(dest.replace("\\", "/")).name, []).append((dest, src))
    frontier = list(dict.fromkeys(roots))
    reached = {dest for dest, src in entries if src in set(frontier)}  # a root is kept whatever needs it
    seen_sources: set[str] = set()
    while frontier:  # breadth first: each step's files in one batch
        batch = list(dict.fromkeys(source for source in frontier if source not in seen_sources))
        seen_sources.update(batch)
        if needed is None:
            sonames = {source: [value for tag, value in dynamic if tag == "NEEDED"]
                       for source, dynamic in elf_dynamic(batch).items()}
        else:
            sonames = {source: needed(source) for source in batch}
        frontier = []
        for source in batch:
            for soname in sonames[source]:
                for dest, src in by_name.get(soname, ()):
                    if dest not in reached:
                        reached.add(dest)
                        frontier.append(src)
    return {dest for dest, _ in entries} - reached


def dpkg_owners(paths: Iterable[str]) -> dict[str, str]:
    """Which Debian package owns each of ``paths`` (resolved, with and without the /usr prefix of
    merged-/usr systems); paths no package owns are absent from the answer."""
    import os

    variants: dict[str, str] = {}
    for path in paths:
        real = os.path.realpath(path)
        for candidate in {path, real}:
            variants[candidate] = path
            other = candidate[4:] if candidate.startswith("/usr/") else "/usr" + candidate
            variants[other] = path
    if not variants:
        return {}
    out = subprocess.run(["dpkg-query", "-S", *sorted(variants)], capture_output=True, text=True, check=False).stdout
    owners: dict[str, str] = {}
    for line in out.splitlines():
        package, sep, path = line.partition(": ")
        if sep and path in variants and "diversion" not in package:
            owners[variants[path]] = package.split(",")[0].split(":")[0]
    return owners


def prune(binaries: list, datas: list, executables: Iterable[str], log=print,
          system_libraries=None) -> tuple[list, list]:
    """``binaries`` and ``datas`` (PyInstaller TOC lists) without what the product never uses.
    ``executables``: source files whose dependencies must stay (the bootloader, libpython).
    ``system_libraries``: ``dpkg_owners`` to leave out the libraries a system package provides."""
    kept_binaries = [entry for entry in binaries if not dropped(entry[0])]
    kept_datas = [entry for entry in datas if not dropped(entry[0])]
    # Roots: everything that is not a plain library found by dependency analysis (extensions,
    # Qt plugins), plus the executables. Qt's own libraries need a kept root to stay.
    roots = list(executables) + [src for dest, src, typecode in kept_binaries
                                 if typecode == "EXTENSION" or "/plugins/" in dest.replace("\\", "/")]
    orphans = unreachable(kept_binaries, roots)
    kept_binaries = [entry for entry in kept_binaries if entry[0] not in orphans]
    if system_libraries is not None:
        plain = [src for dest, src, typecode in kept_binaries if typecode == "BINARY" and is_shared_library(dest)]
        owners = system_libraries(plain)
        kept_binaries = [entry for entry in kept_binaries if entry[1] not in owners or entry[2] != "BINARY"]
        packages = ", ".join(sorted(set(owners.values())))
        log(f"prune: {len(owners)} libraries come from the system's packages: {packages}")
    kept_paths = {entry[0] for entry in kept_binaries + kept_datas}
    # Symlinks PyInstaller made to a library (libfoo.so.6 -> PySide6/Qt/lib/libfoo.so.6) go with it;
    # they may sit in either list.
    kept_binaries, kept_datas = ([entry for entry in toc if entry[2] != "SYMLINK" or _link_target(entry) in kept_paths]
                                 for toc in (kept_binaries, kept_datas))
    removed = len(binaries) + len(datas) - len(kept_binaries) - len(kept_datas)
    log(f"prune: left out {removed} files ({len(orphans)} libraries nothing kept needs)")
    return kept_binaries, kept_datas


def _link_target(entry: tuple[str, str, str]) -> str:
    """A PyInstaller SYMLINK entry's target as a bundle path (its source is relative to its dir)."""
    dest, target, _ = entry
    parent = PurePosixPath(dest.replace("\\", "/")).parent
    parts: list[str] = list(parent.parts) if str(parent) != "." else []
    for part in PurePosixPath(target.replace("\\", "/")).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)
