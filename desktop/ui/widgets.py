"""The desktop's windows and panels. They render what the presenter computed and emit the agent's
intents as signals; none of them knows about links, messages or epochs."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QFont, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QLineEdit,
    QMainWindow,
    QMenu,
    QPushButton,
    QSystemTrayIcon,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import events as ev
from . import figures as fg
from . import interaction_presenter as ip
from . import presenter as pr
from .dialogs import ErrorLabel, FocusOutline, Question
from .icons import icon
from .interactions import InteractionPanel, OfferToast
from .settings import DesktopSettings

MAX_LOG_ROWS = 5000
MAIN_MINIMUM = (640, 600)  # the main window's minimum size (see MainWindow)


def fixed_size_constraints(window: QWidget, width: int, height: int) -> None:
    """Give a top-level window a fixed minimum size instead of one its layout recomputes whenever a
    label changes: pushing new size hints to the window system on every change is wasted work (and
    the offscreen platform warns about each one). Call it once the window has its layout."""
    layout = window.layout()
    assert layout is not None, "fixed_size_constraints() before the window's layout was set"
    layout.setSizeConstraint(QLayout.SizeConstraint.SetNoConstraint)
    window.setMinimumSize(width, height)


def _named(widget, name: str, description: str = ""):
    """Every control gets an accessible name (screen readers, tests) and optional description."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


# --------------------------------------------------------------------------- login window


class LoginWindow(QWidget):
    """Agent id, password, place, preferred site, remember me; failures shown inline."""

    login_requested = Signal(str, str, str, str, bool)  # agent, password, place, site, remember
    settings_requested = Signal()

    def __init__(self, settings: DesktopSettings, keyring_reason: str | None, parent=None):
        super().__init__(parent)
        self.setObjectName("loginWindow")
        self.setWindowTitle(self.tr("Agent Desktop – Log in"))
        self.setWindowIcon(icon("app"))
        _named(self, self.tr("Log in"))

        self.agent_edit = _named(QLineEdit(), self.tr("Agent id"))
        self.password_edit = _named(QLineEdit(), self.tr("Password"))
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.place_edit = _named(QLineEdit(), self.tr("Place or extension"))
        self.site_combo = _named(QComboBox(), self.tr("Preferred site"),
                                 self.tr("The site whose server holds your login"))
        self.remember_check = _named(QCheckBox(self.tr("&Remember me on this computer")), self.tr("Remember me"),
                                     self.tr("Keep the password in the system keyring"))
        self.remember_reason = _named(QLabel(keyring_reason or ""), self.tr("Why remember me is unavailable"))
        self.remember_reason.setWordWrap(True)
        self.remember_reason.setVisible(bool(keyring_reason))
        self.remember_check.setEnabled(keyring_reason is None)
        self.error_label = ErrorLabel(self.tr("Login error"))
        self.error_label.setObjectName("loginError")
        self.error_label.hide()
        self.status_label = _named(QLabel(), self.tr("Login progress"))
        self.status_label.setWordWrap(True)  # the demo's hint names two URLs
        self.login_button = _named(QPushButton(self.tr("&Log in")), self.tr("Log in"))
        self.login_button.setDefault(True)
        self.settings_button = _named(QPushButton(self.tr("&Settings…")), self.tr("Settings"))

        form = QFormLayout()
        for text, field in ((self.tr("&Agent id:"), self.agent_edit), (self.tr("&Password:"), self.password_edit),
                            (self.tr("Pla&ce / extension:"), self.place_edit),
                            (self.tr("Preferred s&ite:"), self.site_combo)):
            label = QLabel(text)
            label.setBuddy(field)
            form.addRow(label, field)
        buttons = QHBoxLayout()
        buttons.addWidget(self.settings_button)
        buttons.addStretch(1)
        buttons.addWidget(self.login_button)
        layout = QVBoxLayout(self)
        title = QLabel(self.tr("Agent Desktop"))
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        title.setFont(font)
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(self.remember_check)
        layout.addWidget(self.remember_reason)
        layout.addWidget(self.error_label)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addLayout(buttons)

        self.login_button.clicked.connect(self._submit)
        for edit in (self.agent_edit, self.password_edit, self.place_edit):
            edit.returnPressed.connect(self._submit)
        self.settings_button.clicked.connect(self.settings_requested)
        self.set_sites(settings)
        fixed_size_constraints(self, 360, 300)
        self.resize(380, 320)
        self.focus_outline = FocusOutline(self)

    def set_sites(self, settings: DesktopSettings) -> None:
        """The configured sites; a preferred site fixed by IT is selected and cannot be changed."""
        locked = settings.lock_reason("preferred_site")
        current = settings.preferred_site if locked else self.site_combo.currentData() or settings.preferred_site
        self.site_combo.clear()
        for site in settings.sites:
            self.site_combo.addItem(icon("site-up"), self.tr("Site {0} ({1})").format(site.name, site.url), site.name)
        index = self.site_combo.findData(current)
        self.site_combo.setCurrentIndex(max(0, index))
        self.site_combo.setEnabled(locked is None)
        self.site_combo.setToolTip(locked or "")

    def _submit(self) -> None:
        if not self.login_button.isEnabled():
            return
        self.login_requested.emit(self.agent_edit.text().strip(), self.password_edit.text(),
                                  self.place_edit.text().strip(), self.site_combo.currentData() or "",
                                  self.remember_check.isChecked())

    def show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def set_busy(self, busy: bool, text: str = "") -> None:
        self.login_button.setEnabled(not busy)
        self.status_label.setText(text)

    def ask_for_password(self) -> None:
        """An empty, focused password field under a message that asks for the password."""
        self.password_edit.clear()
        self.activateWindow()
        self.password_edit.setFocus()


# --------------------------------------------------------------------------- failover banner


class BannerWidget(QFrame):
    """Shown the moment the primary is lost; phases, elapsed time, pending actions, summary."""

    dismissed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("failoverBanner")
        _named(self, self.tr("Failover banner"))
        self.setFrameShape(QFrame.Shape.StyledPanel)
        # palette() roles keep the banner readable in light and dark system palettes.
        self.setStyleSheet("QFrame#failoverBanner { background: palette(highlight); border-radius: 4px; }"
                           "QFrame#failoverBanner QLabel { color: palette(highlighted-text); }")
        self.headline = _named(QLabel(), self.tr("Failover status"))
        font = QFont(self.headline.font())
        font.setBold(True)
        self.headline.setFont(font)
        self.steps = _named(QLabel(), self.tr("Failover phases"))
        self.pending = _named(QLabel(), self.tr("Actions during failover"))
        self.dismiss_button = _named(QToolButton(), self.tr("Dismiss failover banner"))
        self.dismiss_button.setText(self.tr("Dismiss"))
        self.dismiss_button.setToolTip(self.tr("Dismiss (Esc)"))
        self.dismiss_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.dismiss_button.clicked.connect(self.dismissed)
        text = QVBoxLayout()
        text.addWidget(self.headline)
        text.addWidget(self.steps)
        text.addWidget(self.pending)
        row = QHBoxLayout(self)
        row.addLayout(text, 1)
        row.addWidget(self.dismiss_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    # Shadows QWidget.render(QPaintDevice, ...), which Qt never calls back (C++ does not dispatch it to
    # Python). tests/ patch and call this name; rename it (like render_offer) once they can follow.
    def render(self, banner: pr.FailoverBanner, now: float) -> None:  # type: ignore[override]
        self.setVisible(banner.visible)
        if not banner.visible:
            return
        self.headline.setText(banner.text(now))
        marks = {"done": "✓", "active": "…", "waiting": "·"}
        self.steps.setText("   ".join(f"{marks[status]} {name}" for name, status in banner.steps()))
        lines = banner.pending_lines()
        self.pending.setText(self.tr("Your actions: {0}").format("; ".join(lines)) if lines else "")
        self.pending.setVisible(bool(lines))


# --------------------------------------------------------------------------- event log


class EventLogWidget(QWidget):
    """Connection and protocol events with timestamps, a filter, and "copy for support"."""

    copy_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[pr.LogRow] = []
        self.filter_edit = _named(QLineEdit(), self.tr("Filter events"))
        self.filter_edit.setPlaceholderText(self.tr("Filter…"))
        self.filter_edit.setClearButtonEnabled(True)
        self.category_combo = _named(QComboBox(), self.tr("Event category"))
        self.category_combo.addItem(self.tr("All events"), "")
        for category in pr.CATEGORIES:
            self.category_combo.addItem(pr.category_text(category), category)
        self.copy_button = _named(QPushButton(self.tr("&Copy for support")), self.tr("Copy for support"),
                                  self.tr("Copy the session summary and the visible events to the clipboard"))
        self.table = _named(QTableWidget(0, 3), self.tr("Event log"))
        self.table.setHorizontalHeaderLabels([self.tr("Time"), self.tr("Category"), self.tr("Event")])
        self.table.setTabKeyNavigation(False)  # Tab leaves the table (arrows move in it); else a trap
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        top = QHBoxLayout()
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.category_combo)
        top.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table)
        self.filter_edit.textChanged.connect(self._refilter)
        self.category_combo.currentIndexChanged.connect(self._refilter)
        self.copy_button.clicked.connect(self.copy_requested)

    def add(self, row: pr.LogRow) -> None:
        if len(self.rows) >= MAX_LOG_ROWS:
            self.rows.pop(0)
            self.table.removeRow(0)
        self.rows.append(row)
        index = self.table.rowCount()
        self.table.insertRow(index)
        for column, text in enumerate((row.time_text, row.category, row.text)):
            self.table.setItem(index, column, QTableWidgetItem(text))
        self.table.setRowHidden(index, not self._matches(row))
        self.table.scrollToBottom()

    def showEvent(self, event) -> None:  # rows added while hidden: show the newest on return
        super().showEvent(event)
        self.table.scrollToBottom()

    def _matches(self, row: pr.LogRow) -> bool:
        return bool(pr.filter_rows([row], self.category_combo.currentData(), self.filter_edit.text()))

    def _refilter(self) -> None:
        for index, row in enumerate(self.rows):
            self.table.setRowHidden(index, not self._matches(row))

    def visible_rows(self) -> list[pr.LogRow]:
        return pr.filter_rows(self.rows, self.category_combo.currentData(), self.filter_edit.text())


# --------------------------------------------------------------------------- connection panel


class ConnectionPanel(QTableWidget):
    """Each server: site, address, role for this agent, age of its last heartbeat."""

    def __init__(self, parent=None):
        super().__init__(0, 4, parent)
        _named(self, self.tr("Connections"), self.tr("Each server with its site, role and last heartbeat"))
        self.setHorizontalHeaderLabels([self.tr("Site"), self.tr("Address"), self.tr("Role"),
                                        self.tr("Last heartbeat")])
        self.setTabKeyNavigation(False)  # Tab leaves the table (arrows move in it); else a trap
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for column in (0, 2, 3):
            self.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)

    # Shadows QWidget.render like BannerWidget.render (see there); tests/ call this name.
    def render(self, rows: list[pr.LinkRow]) -> None:  # type: ignore[override]
        if self.rowCount() != len(rows):
            self.setRowCount(len(rows))
        for index, row in enumerate(rows):
            up = row.role in ("primary", "secondary", "registered")
            values = (row.site, row.url, row.role_text, row.heartbeat)
            items = []
            for column, text in enumerate(values):
                item = self.item(index, column)
                if item is None:
                    item = QTableWidgetItem()
                    self.setItem(index, column, item)
                if item.text() != text:
                    item.setText(text)
                items.append(item)
            site_item, role_item = items[0], items[2]
            site_item.setIcon(icon("site-up" if up else "site-down"))
            font = role_item.font()
            if font.bold() != (row.role == "primary"):
                font.setBold(row.role == "primary")
                role_item.setFont(font)

    def role_of(self, site: str) -> str | None:
        """The role text shown for ``site`` (e.g. "A"); for tests and accessibility checks."""
        for index in range(self.rowCount()):
            site_item, role_item = self.item(index, 0), self.item(index, 2)
            if site_item is not None and site_item.text() == pr.site_text(site):
                return role_item.text() if role_item is not None else None
        return None


# --------------------------------------------------------------------------- the agent's figures


class FiguresPanel(QWidget):
    """The agent's own figures, compact: handled today, average handle time, time per state today,
    and each of the agent's queues with its waiting count and longest wait (desktop/ui/figures.py)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("figuresPanel")
        _named(self, self.tr("Your figures"))
        self.handled_label = _named(QLabel("0"), self.tr("Handled today"))
        self.average_label = _named(QLabel("–"), self.tr("Average handle time"))
        self.states_label = _named(QLabel(""), self.tr("Time per state today"))
        self.states_label.setWordWrap(True)
        self.queues = _named(QTableWidget(0, 3), self.tr("Your queues"))
        self.queues.setHorizontalHeaderLabels([self.tr("Queue"), self.tr("Waiting"), self.tr("Longest wait")])
        self.queues.setTabKeyNavigation(False)
        self.queues.verticalHeader().hide()
        self.queues.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.queues.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            self.queues.horizontalHeader().setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.queues_note = _named(QLabel(""), self.tr("Whose queue figures"))
        self.queues_note.setWordWrap(True)
        form = QFormLayout()
        form.addRow(self.tr("Handled today:"), self.handled_label)
        form.addRow(self.tr("Average handle time:"), self.average_label)
        form.addRow(self.tr("Time per state:"), self.states_label)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.queues, 1)
        layout.addWidget(self.queues_note)

    def render_figures(self, figures: fg.AgentFigures, snapshot: ev.SessionSnapshot | None) -> None:
        self._set(self.handled_label, figures.handled_text())
        self._set(self.average_label, figures.average_text())
        self._set(self.states_label, "   ".join(f"{name} {time}" for name, time in figures.state_rows()) or "–")
        rows = fg.queue_rows(snapshot.queues if snapshot is not None else ())
        if self.queues.rowCount() != len(rows):
            self.queues.setRowCount(len(rows))
        for index, row in enumerate(rows):
            for column, text in enumerate((row.queue, row.waiting, row.longest)):
                item = self.queues.item(index, column)
                if item is None:
                    item = QTableWidgetItem()
                    self.queues.setItem(index, column, item)
                if item.text() != text:
                    item.setText(text)
                font = item.font()
                if font.bold() != row.busy:
                    font.setBold(row.busy)
                    item.setFont(font)
        self._set(self.queues_note, fg.queues_note(snapshot))

    @staticmethod
    def _set(label: QLabel, text: str) -> None:
        if label.text() != text:
            label.setText(text)

    def queue_figures(self) -> list[tuple[str, str, str]]:
        """(queue, waiting, longest wait) as shown; for tests and accessibility checks."""
        return [(self.queues.item(r, 0).text(), self.queues.item(r, 1).text(), self.queues.item(r, 2).text())
                for r in range(self.queues.rowCount())]


# --------------------------------------------------------------------------- main window


class MainWindow(QMainWindow):
    """State controls with shortcuts, the failover banner, connections and the event log."""

    ready_requested = Signal()
    not_ready_requested = Signal(str)
    acw_requested = Signal()
    extend_requested = Signal()  # "Extend wrap-up": the server moves the After Call Work's end
    logout_requested = Signal()
    settings_requested = Signal()
    close_requested = Signal()  # closed while logged in: log out first, then quit

    def __init__(self, parent=None):
        super().__init__(parent)
        self.allow_close = True
        self.close_question: Question | None = None  # the open "work in hand" question, if any
        self.tray_available = QSystemTrayIcon.isSystemTrayAvailable()  # "Hide to tray" is offered then
        self._shown_icon = ""
        self.setObjectName("mainWindow")
        self.setWindowTitle(self.tr("Agent Desktop"))
        self.setWindowIcon(icon("app"))
        _named(self, self.tr("Agent Desktop"))

        self.state_icon = _named(QLabel(), self.tr("State icon"))
        self.state_label = _named(QLabel(self.tr("Logged out")), self.tr("Agent state"))
        font = QFont(self.state_label.font())
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.state_label.setFont(font)
        self.time_label = _named(QLabel(""), self.tr("Time in state"))
        self.time_label.setFont(font)
        self.agent_label = _named(QLabel(""), self.tr("Agent and site"))

        self.ready_action = self._action(self.tr("&Ready"), "Ctrl+1", self.ready_requested.emit)
        self.not_ready_action = self._action(self.tr("&Not Ready"), "Ctrl+2", self._not_ready)
        self.acw_action = self._action(self.tr("&After Call Work"), "Ctrl+3", self.acw_requested.emit)
        self.logout_action = self._action(self.tr("&Log out"), "Ctrl+Shift+L", self.logout_requested.emit)
        self.settings_action = self._action(self.tr("&Settings…"), "Ctrl+,", self.settings_requested.emit)
        self.reason_action = self._action(self.tr("Choose Not Ready &reason"), "Ctrl+R", self._focus_reason)

        self.ready_button = self._button(self.tr("Ready"), self.ready_action)
        self.reason_combo = _named(QComboBox(), self.tr("Not Ready reason"))
        self.not_ready_button = self._button(self.tr("Not Ready"), self.not_ready_action)
        self.acw_button = self._button(self.tr("After Call Work"), self.acw_action)
        self.extend_action = self._action(self.tr("E&xtend wrap-up"), "Ctrl+E", self.extend_requested.emit)
        self.extend_button = self._button(self.tr("Extend wrap-up"), self.extend_action)
        self.extend_button.hide()  # shown while the server says an extension is left
        self.logout_button = self._button(self.tr("Log out"), self.logout_action)

        self.banner = BannerWidget()
        self.offer_toast = OfferToast()
        self.missed_label = _named(QLabel(), self.tr("Missed offer"))
        self.missed_label.setWordWrap(True)
        self.missed_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.missed_label.hide()
        # It stays until the agent answers an offer again (a re-offer of the same call can follow at once).
        self.offer_toast.accept_requested.connect(lambda _id: self.missed_label.hide())
        self.offer_toast.reject_requested.connect(lambda _id: self.missed_label.hide())
        self.interactions = InteractionPanel()
        self.connections = ConnectionPanel()
        self.event_log = EventLogWidget()
        self.figures = FiguresPanel()
        self.tabs = _named(QTabWidget(), self.tr("Details"))
        self.tabs.addTab(self.interactions, self.tr("&Interactions"))
        self.tabs.addTab(self.figures, self.tr("&Figures"))
        self.tabs.addTab(self.connections, self.tr("&Connections"))
        self.tabs.addTab(self.event_log, self.tr("&Event log"))

        state_row = QHBoxLayout()
        state_row.addWidget(self.state_icon)
        state_row.addWidget(self.state_label)
        state_row.addStretch(1)
        state_row.addWidget(self.extend_button)
        state_row.addWidget(self.time_label)
        # Log out sits on the agent's line, so the state buttons fit the minimum width.
        agent_row = QHBoxLayout()
        agent_row.addWidget(self.agent_label, 1)
        agent_row.addWidget(self.logout_button)
        self.agent_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.ready_button)
        buttons.addWidget(self.reason_combo)
        buttons.addWidget(self.not_ready_button)
        buttons.addWidget(self.acw_button)
        buttons.addStretch(1)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.addLayout(state_row)
        layout.addLayout(agent_row)
        layout.addLayout(buttons)
        layout.addWidget(self.banner)
        layout.addWidget(self.offer_toast)
        layout.addWidget(self.missed_label)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        menu = self.menuBar().addMenu(self.tr("&State"))
        for action in (self.ready_action, self.not_ready_action, self.reason_action, self.acw_action,
                       self.extend_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.logout_action)
        session = self.menuBar().addMenu(self.tr("&Tools"))
        session.addAction(self.settings_action)
        self.demo_menu: QMenu | None = None  # the --demo menu (add_demo_actions)
        self.demo_send_action: QAction | None = None  # the --demo "Send a test interaction" (desktop.demo)
        # The smallest window in which a call can still be worked: state buttons, a failover banner,
        # an offer and a call in hand (title, customer, notes, disposition, Done) all at their
        # minimum size hints (tests/ui/test_handling.py checks it).
        fixed_size_constraints(self, *MAIN_MINIMUM)
        self.resize(760, 640)
        self.focus_outline = FocusOutline(self)

    def closeEvent(self, event) -> None:
        if self.allow_close:
            super().closeEvent(event)
            return
        event.ignore()
        if self.interactions.held:
            self.ask_before_closing()
        else:
            self.close_requested.emit()

    def ask_before_closing(self) -> Question:
        """With work in hand, closing asks first: log out and quit, hide to the tray (the work stays
        with the agent), or cancel. Non-blocking (``open()`` and a signal: never ``exec()`` under
        qasync, docs/architecture.md, pitfalls)."""
        if self.close_question is not None:
            self.close_question.raise_()
            return self.close_question
        held = list(self.interactions.held.values())
        what = ip.offer_title(held[0].interaction) if len(held) == 1 else self.tr("%n interaction(s)", "", len(held))
        info = [self.tr("Log out and quit ends your login: the interaction is not completed and leaves your "
                        "hands.")]
        buttons = [("cancel", self.tr("Cancel"), self.tr("Cancel")),
                   ("quit", self.tr("&Log out and quit"), self.tr("Log out and quit"))]
        if self.tray_available:
            info.append(self.tr("Hide to tray keeps you logged in: the interaction stays with you, and the tray "
                                "icon brings the window back."))
            buttons.insert(1, ("hide", self.tr("&Hide to tray"), self.tr("Hide to tray")))
        box = Question(self, self.tr("Agent Desktop – Close"), self.tr("You have work in hand: {0}.").format(what),
                       "\n\n".join(info), buttons,
                       default="hide" if self.tray_available else "cancel")
        box.setObjectName("closeQuestion")

        def answered(key: str) -> None:
            self.close_question = None
            if key == "quit":
                self.close_requested.emit()
            elif key == "hide":
                self.hide()

        box.answered.connect(answered)
        self.close_question = box
        box.open()
        return box

    def offer_revoked(self, event: ev.OfferRevoked, wall_ms: int) -> None:
        """An offer went away: a line in the status bar; one the agent let time out also stays in the
        window (until the next offer), so a missed offer is not only in the event log."""
        self.statusBar().showMessage(ip.revoked_text(event), 8000)
        seconds, _ms = divmod(wall_ms, 1000)
        missed = ip.missed_text(event, self.offer_toast.offer, time.strftime("%H:%M:%S", time.localtime(seconds)))
        if missed:
            self.missed_label.setText(missed)
            self.missed_label.show()

    def _action(self, text: str, shortcut: str, slot) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _button(self, name: str, action: QAction) -> QPushButton:
        shortcut = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        button = _named(QPushButton(f"{name} ({shortcut})"), name, self.tr("Shortcut {0}").format(shortcut))
        button.clicked.connect(action.trigger)
        return button

    def _not_ready(self) -> None:
        code = self.reason_combo.currentData()
        if code:
            self.not_ready_requested.emit(code)

    def _focus_reason(self) -> None:
        self.reason_combo.setFocus()
        self.reason_combo.showPopup()

    def add_demo_actions(self, actions: list[tuple[str, object]]) -> list[QAction]:
        """The --demo menu and buttons: simulate a site failure, restart a site."""
        menu = self.demo_menu = self.menuBar().addMenu(self.tr("&Demo"))
        bar = self.addToolBar(self.tr("Demo"))
        bar.setObjectName("demoToolbar")
        made = []
        for text, slot in actions:
            action = QAction(text, self)
            action.triggered.connect(slot)
            menu.addAction(action)
            bar.addAction(action)
            bar.widgetForAction(action).setAccessibleName(text.replace("&", ""))
            made.append(action)
        return made

    def set_reasons(self, labels: dict[str, str]) -> None:
        """The Not Ready reasons an agent may choose (``pr.agent_reasons``: not the server-only ones,
        which the state line still shows when the server sets them)."""
        current = self.reason_combo.currentData()
        self.reason_combo.clear()
        for code, label in labels.items():
            self.reason_combo.addItem(label, code)
        index = self.reason_combo.findData(current)
        if index >= 0:
            self.reason_combo.setCurrentIndex(index)

    def render_state(self, handling: ip.Handling, connected: bool, agent_line: str) -> None:
        """The handling state (Ringing, Talking, After Call Work, or the state the agent chose) with
        its clock; while work overrides the chosen state, the agent line says which one it is."""
        shown_icon = handling.icon if connected else "offline"
        if (self.state_label.text(), self._shown_icon) != (handling.text, shown_icon):
            self.state_label.setText(handling.text)
            self._shown_icon = shown_icon
            self.state_icon.setPixmap(icon(shown_icon).pixmap(32, 32))
        self.time_label.setText(handling.clock)
        line = self.tr("{0} · after this: {1}").format(agent_line, handling.chosen) if handling.chosen else agent_line
        if self.agent_label.text() != line:
            self.agent_label.setText(line)
        self.ready_button.setDown(False)

    def render_extend(self, extends_left: int) -> None:
        """"Extend wrap-up" while the server says an extension is left (its count in the tooltip)."""
        self.extend_action.setEnabled(extends_left > 0)
        if self.extend_button.isHidden() == (extends_left > 0):
            self.extend_button.setVisible(extends_left > 0)
        tip = self.tr("%n extension(s) left", "", extends_left)
        if self.extend_button.toolTip() != tip:
            self.extend_button.setToolTip(tip)


def copy_to_clipboard(text: str) -> None:
    QGuiApplication.clipboard().setText(text)
