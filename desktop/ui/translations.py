"""The user's language for the desktop and the supervisor view: Qt's translator with our .qm file
(``resources/translations/agent_desktop_<lang>.qm``, built from the .ts sources by
``installer/translations.py``), installed before the first window is built.

English is the source language (no file). The language is the Settings' ``language`` ("" the
system's: the first of the system's UI languages we have, else English). The Qt-free presenters
translate through ``desktop.ui.i18n``, which this points at ``QCoreApplication.translate``."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QLocale, QTranslator

from server_stub.resources import resource_dir

from . import i18n

SHIPPED = ("fr",)  # languages with a complete translation besides English
CATALOGUE = "agent_desktop"


def qm_path(language: str):
    return resource_dir() / "translations" / f"{CATALOGUE}_{language}.qm"


def choose(language: str, system: QLocale | None = None) -> str:
    """The language to show: the chosen one, else the first shipped one of the system's UI
    languages, else English ("en")."""
    if language:
        return language if language in SHIPPED else "en"
    for name in (system or QLocale.system()).uiLanguages():
        code = name.replace("_", "-").split("-")[0].lower()
        if code == "en":
            return "en"
        if code in SHIPPED:
            return code
    return "en"


def install(app: QCoreApplication, language: str = "") -> str:
    """Load the translation for ``language`` ("" the system's) into ``app``; the language shown."""
    chosen = choose(language)
    previous = getattr(app, "_agent_desktop_translator", None)
    if previous is not None:
        app.removeTranslator(previous)
        app._agent_desktop_translator = None  # type: ignore[attr-defined]
    if chosen != "en":
        translator = QTranslator(app)
        if translator.load(str(qm_path(chosen))):
            app.installTranslator(translator)
            app._agent_desktop_translator = translator  # type: ignore[attr-defined]
        else:
            chosen = "en"
    i18n.install(QCoreApplication.translate)
    return chosen
