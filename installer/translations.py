"""Regenerate the desktop's translations: the .ts sources from the code (pyside6-lupdate keeps
every translation already written), then the .qm files the application loads (pyside6-lrelease).
Both tools ship in the PySide6-Essentials wheel. Run from the repository root:

    .venv/bin/python installer/translations.py          # update .ts, build .qm
    .venv/bin/python installer/translations.py --check  # exit 1 if a string lacks its translation
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "translations"
LANGUAGES = ("fr",)
SOURCES = [f"desktop/ui/{name}.py" for name in (
    "widgets", "controller", "settings_window", "settings", "dialogs", "presenter", "attention", "figures",
    "interactions", "interaction_presenter", "chat", "transfer_controls", "transfer_presenter")] + [
    "desktop/supervisor/window.py", "desktop/supervisor/model.py", "desktop/credentials.py"]


def tool(name: str) -> str:
    """pyside6-lupdate / pyside6-lrelease next to this Python, else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if not found:
        raise SystemExit(f"{name} not found (it ships with PySide6-Essentials)")
    return found


def ts_path(language: str, out: Path = OUT) -> Path:
    return out / f"agent_desktop_{language}.ts"


def update(out: Path = OUT, root: Path = ROOT) -> None:
    """Refresh the .ts files from the code: new strings are added unfinished, gone ones marked obsolete."""
    for language in LANGUAGES:
        subprocess.run([tool("pyside6-lupdate"), "-no-obsolete", "-locations", "none", *SOURCES,
                        "-ts", str(ts_path(language, out))], cwd=root, check=True, capture_output=True)


def release(out: Path = OUT) -> None:
    for language in LANGUAGES:
        ts = ts_path(language, out)
        subprocess.run([tool("pyside6-lrelease"), str(ts), "-qm", str(ts.with_suffix(".qm"))], check=True,
                       capture_output=True)


def untranslated(ts: Path) -> list[tuple[str, str]]:
    """(context, source) of every message without a finished translation."""
    missing = []
    for context in ET.parse(ts).getroot().iter("context"):
        name = context.findtext("name") or ""
        for message in context.iter("message"):
            translation = message.find("translation")
            if translation is None:
                continue
            numerus = message.get("numerus") == "yes"
            texts = [t.text for t in translation.iter("numerusform")] if numerus else [translation.text]
            if translation.get("type") in ("unfinished", "vanished", "obsolete") or not all(texts):
                missing.append((name, message.findtext("source") or ""))
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report strings without a translation")
    args = parser.parse_args(argv)
    if not args.check:
        update()
        release()
    missing = [(lang, *m) for lang in LANGUAGES for m in untranslated(ts_path(lang))]
    for language, context, source in missing:
        print(f"{language}: {context}: {source!r} has no translation", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
