"""Translation for the Qt-free modules (the presenters), in the words pyside6-lupdate reads.

``translate("Context", "text")`` is Qt's ``QCoreApplication.translate`` once the Qt layer has
installed it (``desktop/ui/translations.py``), the text itself before (unit tests, the headless
demo). ``QT_TRANSLATE_NOOP("Context", "text")`` marks a text kept in a table at import time for
lupdate; translate it where it is shown, with ``translate("Context", value)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

_translator: Callable[[str, str], str] | None = None


def install(translator: Callable[[str, str], str] | None) -> None:
    """The Qt layer's ``QCoreApplication.translate`` (None: untranslated again)."""
    global _translator
    _translator = translator


def translate(context: str, text: str) -> str:
    return _translator(context, text) if _translator is not None and text else text


def QT_TRANSLATE_NOOP(context: str, text: str) -> str:  # the name pyside6-lupdate looks for
    return text


@contextmanager
def in_english() -> Iterator[None]:
    """Texts made inside are in English, the source language: the event log's rows, kept in English
    for support (README). The GUI thread's own: the presenters are called there only."""
    global _translator
    saved, _translator = _translator, None
    try:
        yield
    finally:
        _translator = saved
