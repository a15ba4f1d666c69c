"""Settings window: sites, preferred site, heartbeat timeout, failback policy, theme and font size.
Non-modal (never exec() under qasync); keys fixed by IT's file are shown read-only with the file
named. The look (theme, font size) applies at once on Save, and from the start (this window is
built when the application starts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import presenter as pr
from .attention import audio_outputs
from .dialogs import ErrorLabel, FocusOutline
from .icons import icon
from .looks import apply_look
from .settings import (
    FAILBACK_POLICIES,
    FONT_SIZES,
    LANGUAGES,
    THEMES,
    DesktopSettings,
    SettingsError,
    it_file_path,
    resolve,
    save_user_values,
    validate_user_edit,
)
from .widgets import fixed_size_constraints


class SettingsWindow(QWidget):
    applied = Signal(object)  # DesktopSettings

    def __init__(self, store: QSettings, it_file: str | None = None,
                 overlay: Callable[[DesktopSettings], DesktopSettings] | None = None, parent=None):
        """``overlay``: applied over every resolve (--demo puts its own local sites there)."""
        super().__init__(parent)
        self.store = store
        self.it_file = it_file
        self.overlay = overlay or (lambda settings: settings)
        self.settings: DesktopSettings | None = None
        self.setObjectName("settingsWindow")
        self.setWindowTitle(self.tr("Agent Desktop – Settings"))
        self.setWindowIcon(icon("app"))
        self.setAccessibleName(self.tr("Settings"))

        self.sites_table = QTableWidget(0, 2)
        self.sites_table.setAccessibleName(self.tr("Sites"))
        self.sites_table.setHorizontalHeaderLabels([self.tr("Name"), self.tr("URL")])
        self.sites_table.setTabKeyNavigation(False)  # Tab wraps round the cells forever otherwise
        self.sites_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.sites_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.add_site = QPushButton(self.tr("&Add site"))
        self.add_site.setAccessibleName(self.tr("Add site"))
        self.remove_site = QPushButton(self.tr("&Remove site"))
        self.remove_site.setAccessibleName(self.tr("Remove site"))
        self.preferred_combo = QComboBox()
        self.preferred_combo.setAccessibleName(self.tr("Preferred site"))
        self.timeout_spin = QDoubleSpinBox()
        self.timeout_spin.setAccessibleName(self.tr("Heartbeat timeout"))
        self.timeout_spin.setRange(0.6, 120)
        self.timeout_spin.setSingleStep(0.5)
        self.timeout_spin.setSuffix(" s")
        self.failback_combo = QComboBox()
        self.failback_combo.setAccessibleName(self.tr("Failback policy"))
        for policy, text in zip(FAILBACK_POLICIES, (self.tr("Never move back"), self.tr("Move back when idle")),
                                strict=True):
            self.failback_combo.addItem(text, policy)
        self.theme_combo = QComboBox()
        self.theme_combo.setAccessibleName(self.tr("Theme"))
        for theme, text in zip(THEMES, (self.tr("The system's"), self.tr("Light"), self.tr("Dark")), strict=True):
            self.theme_combo.addItem(text, theme)
        self.font_combo = QComboBox()
        self.font_combo.setAccessibleName(self.tr("Font size"))
        self.font_combo.addItem(self.tr("The system's"), 0)
        for size in FONT_SIZES:
            self.font_combo.addItem(self.tr("{0} pt").format(size), size)
        self.language_combo = QComboBox()
        self.language_combo.setAccessibleName(self.tr("Language"))
        for code, text in zip(LANGUAGES, (self.tr("The system's"), "English", "Français"), strict=True):
            self.language_combo.addItem(text, code)  # each language in its own words
        self.language_combo.setToolTip(self.tr("Applies the next time the desktop starts"))
        self.ring_check = QCheckBox(self.tr("&Ring when an offer arrives"))
        self.ring_check.setAccessibleName(self.tr("Ring for offers"))
        self.volume_spin = QSpinBox()
        self.volume_spin.setAccessibleName(self.tr("Ring volume"))
        self.volume_spin.setRange(0, 100)
        self.volume_spin.setSingleStep(10)
        self.volume_spin.setSuffix(" %")
        self.device_combo = QComboBox()
        self.device_combo.setAccessibleName(self.tr("Ring output device"))
        self.audio_note = QLabel()
        self.audio_note.setAccessibleName(self.tr("Why offers do not ring"))
        self.audio_note.setWordWrap(True)
        self.audio_note.hide()
        self.ring_check.toggled.connect(self._ring_toggled)
        self.locked_label = QLabel()
        self.locked_label.setAccessibleName(self.tr("Settings that cannot be changed here"))
        self.locked_label.setWordWrap(True)
        self.error_label = ErrorLabel(self.tr("Settings error"))
        self.save_button = QPushButton(self.tr("&Save"))
        self.save_button.setAccessibleName(self.tr("Save settings"))
        self.save_button.setDefault(True)
        self.close_button = QPushButton(self.tr("&Close"))
        self.close_button.setAccessibleName(self.tr("Close settings"))

        site_buttons = QHBoxLayout()
        site_buttons.addWidget(self.add_site)
        site_buttons.addWidget(self.remove_site)
        site_buttons.addStretch(1)
        form = QFormLayout()
        for text, field in ((self.tr("&Preferred site:"), self.preferred_combo),
                            (self.tr("&Heartbeat timeout:"), self.timeout_spin),
                            (self.tr("&Failback:"), self.failback_combo), (self.tr("&Theme:"), self.theme_combo),
                            (self.tr("Font si&ze:"), self.font_combo), (self.tr("&Language:"), self.language_combo),
                            (self.tr("Ring &volume:"), self.volume_spin),
                            (self.tr("Ring ou&tput:"), self.device_combo)):
            if field is self.volume_spin:
                form.addRow(self.ring_check)
            label = QLabel(text)
            label.setBuddy(field)
            form.addRow(label, field)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        bottom.addWidget(self.close_button)
        bottom.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(self.tr("Sites (changes apply at the next login):")))
        layout.addWidget(self.sites_table)
        layout.addLayout(site_buttons)
        layout.addLayout(form)
        layout.addWidget(self.audio_note)
        layout.addWidget(self.locked_label)
        layout.addWidget(self.error_label)
        layout.addLayout(bottom)

        self.add_site.clicked.connect(self._add_row)
        self.remove_site.clicked.connect(self._remove_row)
        self.sites_table.itemChanged.connect(self._sites_edited)
        self.save_button.clicked.connect(self.save)
        self.close_button.clicked.connect(self.close)
        fixed_size_constraints(self, 460, 560)
        self.resize(520, 620)
        self.focus_outline = FocusOutline(self)
        # Esc closes the window, like a dialog (unsaved edits are dropped; Save is explicit).
        self.close_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)
        self.close_shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        self.close_button.setToolTip(self.tr("Close without saving (Esc)"))
        self.apply_saved_look()  # the app builds this window at start: the saved look applies from the first window

    def show_for(self) -> None:
        """Reload from the store (and IT's file) and show, non-modal."""
        try:
            self.load(self._resolve())
        except SettingsError as exc:
            self.error_label.setText(str(exc))
        self.show()
        self.activateWindow()

    def load(self, settings: DesktopSettings) -> None:
        self.settings = settings
        self.error_label.clear()
        self.sites_table.blockSignals(True)
        self.sites_table.setRowCount(0)
        for site in settings.sites:
            self._add_row(site.name, site.url)
        self.sites_table.blockSignals(False)
        self._sites_edited()
        self.preferred_combo.setCurrentIndex(max(0, self.preferred_combo.findData(settings.preferred_site)))
        self.timeout_spin.setValue(settings.heartbeat_timeout)
        self.failback_combo.setCurrentIndex(max(0, self.failback_combo.findData(settings.failback)))
        self.theme_combo.setCurrentIndex(max(0, self.theme_combo.findData(settings.theme)))
        self.font_combo.setCurrentIndex(max(0, self.font_combo.findData(settings.font_size)))
        self.language_combo.setCurrentIndex(max(0, self.language_combo.findData(settings.language)))
        self.ring_check.setChecked(settings.ring)
        self.volume_spin.setValue(settings.ring_volume)
        self._fill_devices(settings.ring_device)
        locks = {
            "sites": (self.sites_table, self.add_site, self.remove_site),
            "preferred_site": (self.preferred_combo,),
            "heartbeat_timeout": (self.timeout_spin,),
            "failback": (self.failback_combo,),
            "theme": (self.theme_combo,),
            "font_size": (self.font_combo,),
            "language": (self.language_combo,),
            "ring": (self.ring_check,),
            "ring_volume": (self.volume_spin,),
            "ring_device": (self.device_combo,),
        }
        reasons = []
        for key, widgets in locks.items():
            reason = settings.lock_reason(key)
            if reason and reason not in reasons:
                reasons.append(reason)
            for widget in widgets:
                widget.setEnabled(reason is None)
                widget.setToolTip(reason or "")
        said = "; ".join(reason[0].lower() + reason[1:] for reason in reasons)
        self.locked_label.setText(self.tr("Greyed-out settings are {0}.").format(said) if reasons else "")
        self._ring_toggled(self.ring_check.isChecked())

    def _fill_devices(self, chosen: str) -> None:
        """The audio outputs (Qt Multimedia is loaded here, on the first look, not at start); with
        none, or no Qt Multimedia, the note says that offers will not ring, and why."""
        outputs, problem = audio_outputs()
        self.device_combo.clear()
        self.device_combo.addItem(self.tr("The system's default"), "")
        for device_id, description in outputs:
            self.device_combo.addItem(description, device_id)
        if chosen and self.device_combo.findData(chosen) < 0:  # saved, but not plugged in now
            self.device_combo.addItem(self.tr("{0} (not connected)").format(chosen), chosen)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(chosen)))
        self.audio_note.setText(problem or "")
        self.audio_note.setVisible(bool(problem))

    def _ring_toggled(self, on: bool) -> None:
        for widget, key in ((self.volume_spin, "ring_volume"), (self.device_combo, "ring_device")):
            widget.setEnabled(on and (self.settings is None or self.settings.lock_reason(key) is None))

    def _add_row(self, name: str = "", url: str = "") -> None:
        row = self.sites_table.rowCount()
        self.sites_table.insertRow(row)
        self.sites_table.setItem(row, 0, QTableWidgetItem(name if isinstance(name, str) else ""))
        self.sites_table.setItem(row, 1, QTableWidgetItem(url or "ws://"))

    def _remove_row(self) -> None:
        row = self.sites_table.currentRow()
        if row >= 0:
            self.sites_table.removeRow(row)
            self._sites_edited()

    def _sites(self) -> list[dict]:
        out = []
        for row in range(self.sites_table.rowCount()):
            name, url = self.sites_table.item(row, 0), self.sites_table.item(row, 1)
            out.append({"name": name.text() if name else "", "url": url.text() if url else ""})
        return out

    def _sites_edited(self, *_) -> None:
        current = self.preferred_combo.currentData()
        self.preferred_combo.clear()
        for site in self._sites():
            if site["name"].strip():
                self.preferred_combo.addItem(pr.site_text(site["name"].strip()), site["name"].strip())
        index = self.preferred_combo.findData(current)
        if index >= 0:
            self.preferred_combo.setCurrentIndex(index)

    def save(self) -> bool:
        if self.settings is None:  # show_for() could not resolve them (its error is still shown)
            return False
        try:
            values = validate_user_edit(self._sites(), self.preferred_combo.currentData() or "",
                                        self.timeout_spin.value(), self.failback_combo.currentData(),
                                        self.theme_combo.currentData(), self.font_combo.currentData(),
                                        language=self.language_combo.currentData(),
                                        ring=self.ring_check.isChecked(), ring_volume=self.volume_spin.value(),
                                        ring_device=self.device_combo.currentData() or "")
        except SettingsError as exc:
            self.error_label.setText(str(exc).removeprefix("settings: "))
            return False
        edited = replace(self.settings, **{k: v for k, v in values.items() if k not in self.settings.locked})
        save_user_values(self.store, edited)
        self.store.sync()
        self.error_label.setText("")
        self.settings = self._resolve()
        apply_look(self.settings.theme, self.settings.font_size)  # at once: the look needs no new login
        self.applied.emit(self.settings)
        return True

    def apply_saved_look(self) -> None:
        """The saved theme and font size, at start (a damaged IT file leaves the system's look)."""
        try:
            settings = self._resolve()
        except SettingsError:
            return
        apply_look(settings.theme, settings.font_size)

    def _resolve(self) -> DesktopSettings:
        return self.overlay(resolve(self.store, it_file_path(self.it_file)))
