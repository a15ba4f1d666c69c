"""Getting the agent's attention for an offer: the ring, and the small pop-up that can accept.

The ring plays ``resources/sounds/ring.wav`` in a loop on the output device and at the volume
chosen in Settings, through Qt Multimedia's QSoundEffect (PySide6-Addons; only its audio part is
used and bundled, see installer/prune.py). Qt Multimedia is loaded on the first ring or the first
look at the audio devices, never at start (bench/desktop_start.py), and a machine without it or
without an audio output (a headless CI runner, a VDI seat without sound) simply does not ring:
Settings says why (``audio_problem``), and nothing else changes.

The pop-up is one small non-modal window per desktop: a new offer replaces what it shows (pop-ups
never stack), it hides when the offer goes, and Accept there accepts the offer like the main
window's button. It shows only while the main window is not the active one (there the offer toast
in the window says it all).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import sys
import wave
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QCoreApplication,
    QLoggingCategory,
    QObject,
    Qt,
    QtMsgType,
    QUrl,
    Signal,
    qInstallMessageHandler,
)
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from server_stub.resources import resource_dir

from ..core import events as ev
from . import interaction_presenter as ip
from .icons import icon

log = logging.getLogger("desktop.ui.attention")

RING_FILE = "sounds/ring.wav"
RING_RATE = 16_000  # Hz, 16-bit mono: 0.9 s of ring is 28 KiB


translate = QCoreApplication.translate  # translate("Attention", ...): the calls pyside6-lupdate reads


def ring_wav_bytes() -> bytes:
    """The ring, made here rather than taken from anywhere: two short bursts of a 480 + 620 Hz
    chord with soft edges, then a pause (QSoundEffect loops it). ``resources/sounds/ring.wav`` is
    exactly these bytes (tests/ui/test_attention.py checks it)."""
    frames = bytearray()
    for index in range(int(RING_RATE * 0.9)):
        t = index / RING_RATE
        burst = t % 0.3  # 0.2 s on, 0.1 s off, twice, then a 0.3 s pause
        if t >= 0.6 or burst >= 0.2:
            sample = 0.0
        else:
            edge = min(1.0, burst / 0.01, (0.2 - burst) / 0.01)
            sample = 0.35 * edge * (math.sin(2 * math.pi * 480 * t) + math.sin(2 * math.pi * 620 * t))
        frames += struct.pack("<h", round(sample * 32767 * 0.5))
    out = BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RING_RATE)
        wav.writeframes(bytes(frames))
    return out.getvalue()


def ring_path() -> Path:
    return resource_dir() / RING_FILE


# --------------------------------------------------------------------------- Qt Multimedia, loaded late

_QUIET_PREFIXES = ("PulseAudioService:", "No QtMultimedia backends found")


class _Multimedia:
    """Qt Multimedia's module once loaded (or why it cannot be); its probes' chatter kept out of
    the application's log: missing optional libraries (PipeWire, VA-API) and an absent sound server
    are expected on many seats, and Settings says what matters."""

    module: Any = None
    problem: str | None = None  # "no server", "import: <error>", or already a sentence
    loaded = False

    @classmethod
    def load(cls) -> Any:
        if not cls.loaded:
            cls.loaded = True
            if no_sound_server() is not None:  # nothing could play: do not load Qt Multimedia at all
                cls.problem = "no server"
                return None
            # Missing optional libraries (PipeWire, VA-API) are expected: not warnings for this app
            # (under QT_FATAL_WARNINGS a warning is an abort, whatever handler is installed).
            QLoggingCategory.setFilterRules("qt.multimedia.symbolsresolver.warning=false")
            with quiet_multimedia():
                try:
                    from PySide6 import QtMultimedia
                except ImportError as exc:  # PySide6-Addons missing, or a library it needs (libpulse)
                    cls.problem = f"import: {exc}"
                else:
                    cls.module = QtMultimedia
        return cls.module

    @classmethod
    def problem_text(cls) -> str | None:
        """Why there is no sound, in the user's language (made when asked: the language is set by then)."""
        if cls.problem == "no server":
            return no_server_text()
        if cls.problem is not None and cls.problem.startswith("import: "):
            return translate("Attention", "Sound is unavailable: Qt Multimedia could not be loaded "
                                          "({0}).").format(cls.problem.removeprefix("import: "))
        return cls.problem


def no_sound_server(environ: Mapping[str, str] | None = None, platform: str = sys.platform) -> str | None:
    """On Linux and the BSDs, why no audio output can exist for this session (no PulseAudio or
    PipeWire server: a headless machine, a service account), else None. Asked before Qt Multimedia
    is loaded: without a server it finds no output anyway, after warning about the connection."""
    if not platform.startswith(("linux", "freebsd", "openbsd")):
        return None
    env = os.environ if environ is None else environ
    if env.get("PULSE_SERVER") or env.get("PIPEWIRE_REMOTE"):
        return None
    runtime = Path(env.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")
    if any((runtime / name).exists() for name in ("pulse/native", "pipewire-0")):
        return None
    return no_server_text()


def no_server_text() -> str:
    return translate("Attention", "No sound server (PulseAudio or PipeWire) runs for this session: offers will "
                                  "not ring (the pop-up and the flashing window still show them).")


class quiet_multimedia:
    """While Qt Multimedia loads or probes devices: its expected warnings go to the debug log, every
    other message to the handler that was there before (pytest-qt's in the tests)."""

    def __enter__(self) -> quiet_multimedia:
        def handler(kind: QtMsgType, context, message: str) -> None:
            category = getattr(context, "category", "") or ""
            if category.startswith("qt.multimedia") or message.startswith(_QUIET_PREFIXES):
                log.debug("Qt Multimedia: %s", message)
                return
            if self.previous is not None:
                self.previous(kind, context, message)
            elif kind != QtMsgType.QtDebugMsg:
                print(message, file=sys.stderr)

        self.previous = qInstallMessageHandler(handler)
        return self

    def __exit__(self, *exc: object) -> None:
        qInstallMessageHandler(self.previous)


def audio_outputs() -> tuple[list[tuple[str, str]], str | None]:
    """The audio outputs as (id, description) and, when the ring cannot play, the sentence that says
    why (for Settings). The id is the device's own id as text; "" means the system's default."""
    module = _Multimedia.load()
    if module is None:
        return [], _Multimedia.problem_text()
    with quiet_multimedia():
        devices = module.QMediaDevices.audioOutputs()
    outputs = [(bytes(d.id().data()).decode(errors="replace"), d.description()) for d in devices]
    if not outputs:
        return [], translate("Attention", "No audio output was found on this computer: offers will not ring "
                                          "(the pop-up and the flashing window still show them).")
    return outputs, None


class Ringer(QObject):
    """Rings while an offer waits: ``ring()`` starts the loop (again for a new offer), ``stop()``
    ends it. ``ringing`` says what the agent would hear, whether or not a device plays it."""

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.enabled = True
        self.volume = 80  # percent
        self.device = ""  # audio output id; "" the system's default
        self.ringing = False
        self.problem: str | None = None  # why no sound comes out (no Qt Multimedia, no output)
        self.effect: Any = None  # the QSoundEffect, made on the first ring

    def configure(self, enabled: bool, volume: int, device: str) -> None:
        changed = (self.device != device)
        self.enabled, self.volume, self.device = enabled, volume, device
        if self.effect is not None:
            self.effect.setVolume(volume / 100)
            if changed:
                self._set_device(self.effect)
        if not enabled:
            self.stop()

    def ring(self) -> None:
        if not self.enabled or self.ringing:
            return
        self.ringing = True
        effect = self._effect()
        if effect is not None:
            effect.play()

    def stop(self) -> None:
        self.ringing = False
        if self.effect is not None:
            self.effect.stop()

    def _effect(self) -> Any:
        if self.effect is None:
            outputs, self.problem = audio_outputs()
            if self.problem is not None:
                return None
            module = _Multimedia.module
            with quiet_multimedia():
                effect = module.QSoundEffect(self)
                self._set_device(effect, outputs)
                effect.setSource(QUrl.fromLocalFile(str(ring_path())))
                effect.setLoopCount(module.QSoundEffect.Loop.Infinite.value)
                effect.setVolume(self.volume / 100)
            self.effect = effect
        return self.effect

    def _set_device(self, effect: Any, outputs: list[tuple[str, str]] | None = None) -> None:
        if not self.device:
            return
        module = _Multimedia.module
        for device in module.QMediaDevices.audioOutputs():
            if bytes(device.id().data()).decode(errors="replace") == self.device:
                effect.setAudioDevice(device)
                return
        log.info("audio output %r is gone; ringing on the system's default", self.device)


# --------------------------------------------------------------------------- the pop-up


class OfferPopup(QFrame):
    """A small always-on-top window for the current offer: what it is, time left, Accept, and Show
    (brings the main window). One per desktop; a new offer replaces the old one's content."""

    accept_requested = Signal(str)
    show_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        # A tool window (no taskbar entry) over the others, not taking the keyboard from the agent's
        # work; a plain window where the platform has no windows to stack (it would warn at each show).
        flags = Qt.WindowType.WindowDoesNotAcceptFocus
        if QGuiApplication.platformName() in ("offscreen", "minimal"):
            flags |= Qt.WindowType.Window
        else:
            flags |= Qt.WindowType.Tool | Qt.WindowType.WindowStaysOnTopHint
        super().__init__(parent, flags)
        self.setObjectName("offerPopup")
        self.setAccessibleName(translate("Attention", "Offer notification"))
        self.setWindowTitle(translate("Attention", "Agent Desktop – New offer"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.offer_id: str | None = None
        self.media_icon = QLabel()
        self.title_label = QLabel()
        self.title_label.setAccessibleName(translate("Attention", "Offer"))
        font = QFont(self.title_label.font())
        font.setBold(True)
        self.title_label.setFont(font)
        self.countdown_label = QLabel()
        self.countdown_label.setAccessibleName(translate("Attention", "Time left to answer"))
        self.accept_button = QPushButton(translate("Attention", "&Accept"))
        self.accept_button.setAccessibleName(translate("Attention", "Accept from the notification"))
        self.show_button = QPushButton(translate("Attention", "&Show"))
        self.show_button.setAccessibleName(translate("Attention", "Show the main window"))
        self.accept_button.clicked.connect(self._accept)
        self.show_button.clicked.connect(self.show_requested)
        text = QVBoxLayout()
        text.addWidget(self.title_label)
        text.addWidget(self.countdown_label)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.show_button)
        buttons.addWidget(self.accept_button)
        text.addLayout(buttons)
        row = QHBoxLayout(self)
        row.addWidget(self.media_icon, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(text, 1)
        self.setMinimumWidth(300)

    def render_offer(self, offer: ev.OfferInfo | None, wall_ms: int, wanted: bool) -> None:
        """Show ``offer`` (replacing any other) while ``wanted``; hide when there is none."""
        if offer is None or not wanted:
            self.offer_id = None
            if self.isVisible():
                self.hide()
            return
        interaction = offer.interaction
        if interaction.interaction_id != self.offer_id:
            self.offer_id = interaction.interaction_id
            self.media_icon.setPixmap(icon(ip.media_icon(interaction.media)).pixmap(32, 32))
            self.title_label.setText(ip.offer_title(interaction))
            self.accept_button.setEnabled(True)
        self.countdown_label.setText(ip.countdown_text(offer.expires_ms, wall_ms))
        if not self.isVisible():
            self._place()
            self.show()

    def _place(self) -> None:
        """Bottom right of the screen, above the taskbar, like a system notification."""
        self.adjustSize()
        screen = QApplication.primaryScreen()
        if screen is None:
            return
        area = screen.availableGeometry()
        self.move(area.right() - self.width() - 16, area.bottom() - self.height() - 16)

    def _accept(self) -> None:
        if self.offer_id is not None:
            self.accept_button.setEnabled(False)
            self.accept_requested.emit(self.offer_id)
