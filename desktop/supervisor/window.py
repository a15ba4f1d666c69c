"""The supervisor status view: agents table, sites, queues, event feed, supervisor actions.

Widgets only render the reporting engine and forward the supervisor's clicks; everything they
show comes from ``engine`` via a flush timer (8 Hz) and a one-second tick for ticking times.
No nested event loops: the window runs on qasync and every prompt is an inline, non-modal panel.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QPushButton,
    QSplitter,
    QSystemTrayIcon,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.reporting.engine import FeedEntry, ReportingEngine, ServerStatus
from desktop.ui.dialogs import FocusOutline, Question
from desktop.ui.i18n import QT_TRANSLATE_NOOP, translate
from server_stub import protocol as p
from server_stub.protocol import CloseCode
from server_stub.resources import resource_dir

from .model import COLUMNS, AgentTableModel, clock_text, duration_text

FLUSH_HZ = 8
FEED_LINES = 500
COUNT_LABELS = (("ready", QT_TRANSLATE_NOOP("SupervisorWindow", "Ready")),
                ("ringing", QT_TRANSLATE_NOOP("SupervisorWindow", "Ringing")),
                ("busy", QT_TRANSLATE_NOOP("SupervisorWindow", "Busy")),
                ("not_ready", QT_TRANSLATE_NOOP("SupervisorWindow", "Not Ready")),
                ("after_call_work", QT_TRANSLATE_NOOP("SupervisorWindow", "After Call Work")),
                ("failover", QT_TRANSLATE_NOOP("SupervisorWindow", "In failover")),
                ("logged_out", QT_TRANSLATE_NOOP("SupervisorWindow", "Logged out")))
COLUMN_WIDTHS = (70, 150, 135, 170, 90, 50, 100, 55, 110, 190)
# The share of interactions to answer within the queue's time target. The servers report the time
# (service_level_target_ms) but not this share; 80 % is the common "80/20" goal.
SERVICE_LEVEL_TARGET = 0.80
BELOW_TARGET_BRUSH = QBrush(QColor(248, 215, 218))
QUEUE_VIEW_COLUMNS = (QT_TRANSLATE_NOOP("SupervisorWindow", "Queue"), QT_TRANSLATE_NOOP("SupervisorWindow", "Waiting"),
                      QT_TRANSLATE_NOOP("SupervisorWindow", "Longest wait"),
                      QT_TRANSLATE_NOOP("SupervisorWindow", "Service level"),
                      QT_TRANSLATE_NOOP("SupervisorWindow", "Answered / offered"),
                      QT_TRANSLATE_NOOP("SupervisorWindow", "Abandoned"),
                      QT_TRANSLATE_NOOP("SupervisorWindow", "Sites"))


@dataclass(frozen=True)
class MergedQueue:
    """One queue over every site that reports it (live figures only; unavailable sites are named)."""

    queue: str
    waiting: int
    longest_wait_ms: int
    offered: int
    answered: int
    abandoned: int
    service_level: float | None  # weighted by each site's answered + abandoned
    sites: tuple[str, ...]
    unavailable: tuple[str, ...]


def merged_queues(servers: Iterable[ServerStatus]) -> list[MergedQueue]:
    """Each queue's figures summed over the live sites (the longest wait is the longest anywhere;
    the service level weights each site by the interactions it counts); sites that cannot be
    reached are named, their stale figures left out."""
    live: dict[str, list[p.QueueStatistics]] = {}
    sites: dict[str, list[str]] = {}
    unavailable: dict[str, list[str]] = {}
    for server in servers:
        for q in server.queues or ():
            if server.live:
                live.setdefault(q.queue, []).append(q)
                sites.setdefault(q.queue, []).append(server.name)
            else:
                unavailable.setdefault(q.queue, []).append(server.name)
    merged = []
    for name in sorted(set(live) | set(unavailable)):
        figures = live.get(name, [])
        counted = [(q.service_level, q.answered + q.abandoned) for q in figures if q.service_level is not None]
        weight = sum(n for _, n in counted)
        level = sum(sl * n for sl, n in counted) / weight if weight else None
        merged.append(MergedQueue(
            name, sum(q.waiting for q in figures), max((q.longest_wait_ms for q in figures), default=0),
            sum(q.offered for q in figures), sum(q.answered for q in figures), sum(q.abandoned for q in figures),
            level, tuple(sites.get(name, ())), tuple(unavailable.get(name, ()))))
    return merged

# What a WebSocket close code means, in a supervisor's words (docs/protocol.md, close codes).
CLOSE_WORDS = {
    CloseCode.NORMAL: QT_TRANSLATE_NOOP("SupervisorWords", "closed normally"),
    CloseCode.GOING_AWAY: QT_TRANSLATE_NOOP("SupervisorWords", "the server is shutting down"),
    CloseCode.ABNORMAL: QT_TRANSLATE_NOOP("SupervisorWords",
                                          "the connection dropped without warning (network or server failure)"),
    CloseCode.INVALID_DATA: QT_TRANSLATE_NOOP("SupervisorWords", "the server received data it could not read"),
    CloseCode.MESSAGE_TOO_BIG: QT_TRANSLATE_NOOP("SupervisorWords", "a message was too big for the server"),
    CloseCode.INTERNAL_ERROR: QT_TRANSLATE_NOOP("SupervisorWords", "the server had an internal error"),
    CloseCode.HEARTBEAT: QT_TRANSLATE_NOOP("SupervisorWords", "the server heard no heartbeat in time"),
    CloseCode.TOO_MANY_ERRORS: QT_TRANSLATE_NOOP("SupervisorWords", "the server closed it after too many errors"),
    CloseCode.UNSUPPORTED_VERSION: QT_TRANSLATE_NOOP("SupervisorWords",
                                                     "the server does not speak this version of the protocol"),
    CloseCode.PEER_AUTH: QT_TRANSLATE_NOOP("SupervisorWords", "authentication between the sites failed"),
    CloseCode.RATE_LIMITED: QT_TRANSLATE_NOOP("SupervisorWords", "the server closed it for too much traffic"),
    CloseCode.SUPERSEDED: QT_TRANSLATE_NOOP("SupervisorWords", "a newer login replaced this one"),
}
_ERRNO_WORDS = (
    (("errno 111", "connect call failed", "connection refused"),
     QT_TRANSLATE_NOOP("SupervisorWords", "connection refused: no server is running at that address, or it is "
                                          "not accepting connections")),
    (("name or service not known", "errno -2", "errno -3", "nodename nor servname"),
     QT_TRANSLATE_NOOP("SupervisorWords", "the server's name is not known")),
    (("no route to host", "errno 113", "network is unreachable", "errno 101"),
     QT_TRANSLATE_NOOP("SupervisorWords", "no network route to the server")),
    (("timed out", "timeouterror"), QT_TRANSLATE_NOOP("SupervisorWords", "the server did not answer in time")),
    (("certificate", "ssl"), QT_TRANSLATE_NOOP("SupervisorWords", "the server's TLS certificate was not accepted")),
)


def reason_words(reason: str) -> str:
    """Why a reporting link ended, in words: close codes and socket errors translated."""
    closed = re.fullmatch(r"closed (\d+)", reason.strip())
    if closed:
        code = int(closed.group(1))
        try:
            return translate("SupervisorWords", CLOSE_WORDS[CloseCode(code)])
        except (ValueError, KeyError):
            return translate("SupervisorWords", "closed by the server (code {0})").format(code)
    if reason == "silent":
        return translate("SupervisorWords", "the server stopped answering (no heartbeat)")
    if reason in ("connection lost", "connection closed"):
        return translate("SupervisorWords", "the connection dropped")
    lowered = reason.lower()
    for needles, words in _ERRNO_WORDS:
        if any(needle in lowered for needle in needles):
            return translate("SupervisorWords", words)
    return reason


def connection_words(status: str) -> str:
    """A reporting link's status (ReportingClient) as the sites panel says it."""
    if status.startswith("unreachable: "):
        return translate("SupervisorWords", "unreachable: {0}").format(
            reason_words(status.removeprefix("unreachable: ")))
    lost = re.fullmatch(r"lost: (.*); reconnecting", status)
    if lost:
        return translate("SupervisorWords", "lost: {0}; reconnecting").format(reason_words(lost.group(1)))
    return status


def _app_icon() -> QIcon | None:
    path = resource_dir() / "icons" / "supervisor" / "supervisor-view.svg"
    return QIcon(str(path)) if path.exists() else None


class Actions(Protocol):
    """What the window needs to act on an agent (ReportingClient provides it)."""

    def reasons_for(self, agent_id: str) -> list: ...
    def force_agent_not_ready(self, agent_id: str, reason: str) -> Awaitable: ...
    def force_agent_logout(self, agent_id: str) -> Awaitable: ...


_SERVER_LOST = re.compile(r"Server (?P<server>.+?) lost \((?P<reason>.*)\); \d+ agent\(s\) waiting to fail over")


def feed_text(entry: FeedEntry) -> str:
    """A feed line in a supervisor's words: close codes and socket errors translated; a lost
    server's line without the count of that moment (the banner says what holds now)."""
    lost = _SERVER_LOST.fullmatch(entry.text) if entry.kind == "server_lost" else None
    if lost:
        return f"Server {lost.group('server')} lost: {reason_words(lost.group('reason'))}"
    return re.sub(r"closed \d{4}", lambda m: reason_words(m.group(0)), entry.text)  # no bare close code anywhere


class LoginPanel(QFrame):
    """Inline supervisor login (never a modal dialog: the window runs on qasync)."""

    submitted = Signal(str, str, bool)  # user, password, remember in keyring

    def __init__(self, user: str = "", keyring_note: str | None = None, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        self.message = QLabel(self.tr("Sign in as a supervisor to see the reporting streams."))
        self.user = QLineEdit(user)
        self.user.setPlaceholderText(self.tr("Supervisor id"))
        self.password = QLineEdit()
        self.password.setPlaceholderText(self.tr("Password"))
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.remember = QCheckBox(self.tr("Remember"))
        if keyring_note:
            self.remember.setEnabled(False)
            self.remember.setToolTip(keyring_note)
        self.connect_button = QPushButton(self.tr("Connect"))
        for widget in (self.message, self.user, self.password, self.remember, self.connect_button):
            layout.addWidget(widget)
        self.connect_button.clicked.connect(self._submit)
        self.password.returnPressed.connect(self._submit)

    def _submit(self) -> None:
        user, password = self.user.text().strip(), self.password.text()
        if not user or not password:
            self.message.setText(self.tr("Enter your supervisor id and password."))
            return
        self.password.clear()
        self.submitted.emit(user, password, self.remember.isChecked())

    def show_message(self, text: str) -> None:
        self.message.setText(text)
        self.show()


class SupervisorWindow(QMainWindow):
    """One glance: who is where, in what state, on which site, and whether the sites are healthy."""

    closed = Signal()  # the supervisor closed the window: the application stops its client and quits

    def __init__(self, engine: ReportingEngine, actions: Actions | None = None,
                 link_status: Callable[[str], str] | None = None, wall_ms: Callable[[], int] | None = None,
                 flush_hz: float = FLUSH_HZ, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.agent_actions = actions  # not self.actions: that is QWidget.actions()
        self.link_status = link_status or (lambda server: "")
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self.setWindowTitle(self.tr("Supervisor — agent status"))
        self.resize(1400, 800)
        self.app_icon = _app_icon()
        if self.app_icon is not None:
            self.setWindowIcon(self.app_icon)
        # A desktop notification where the platform has a tray; the banner in the window always.
        self.tray: QSystemTrayIcon | None = None
        if self.app_icon is not None and QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(self.app_icon, self)
            self.tray.setToolTip(self.tr("Supervisor view"))
            self.tray.show()

        self.model = AgentTableModel(engine, self._wall_ms, self)
        central = QWidget()
        outer = QVBoxLayout(central)

        self.banner = QLabel()
        self.banner.setWordWrap(True)
        self.banner.setObjectName("notification")
        self.banner.setStyleSheet("QLabel#notification { background: #fff3cd; color: #664d03; padding: 6px; }")
        self.banner.hide()
        outer.addWidget(self.banner)

        self.login_panel = LoginPanel()
        self.login_panel.hide()
        outer.addWidget(self.login_panel)

        top = QHBoxLayout()
        self.filter_box = QLineEdit()
        self.filter_box.setPlaceholderText(self.tr("Filter: agent, name, state, reason or site"))
        self.filter_box.setClearButtonEnabled(True)
        self.filter_box.textChanged.connect(self._filter_changed)
        top.addWidget(self.filter_box, 2)
        self.count_labels: dict[str, QLabel] = {}
        for key, _text in COUNT_LABELS:
            label = QLabel()
            label.setObjectName(f"count_{key}")
            self.count_labels[key] = label
            top.addWidget(label)
        outer.addLayout(top)

        actions_row = QHBoxLayout()
        self.selected_label = QLabel(self.tr("No agent selected"))
        self.reason_box = QComboBox()
        self.reason_box.setMinimumWidth(140)
        self.force_not_ready_button = QPushButton(self.tr("Force Not Ready"))
        self.force_logout_button = QPushButton(self.tr("Force logout"))
        self.action_result = QLabel()
        for widget in (self.selected_label, self.reason_box, self.force_not_ready_button, self.force_logout_button,
                       self.action_result):
            actions_row.addWidget(widget)
        actions_row.addStretch(1)
        outer.addLayout(actions_row)
        self.force_not_ready_button.clicked.connect(self._force_not_ready)
        self.force_logout_button.clicked.connect(self._force_logout)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.table = self._make_table()
        self.queue_view = self._make_queue_view()
        self.views = QTabWidget()
        self.views.setAccessibleName(self.tr("Agents and queues"))
        self.views.addTab(self.table, self.tr("&Agents"))
        self.views.addTab(self.queue_view, self.tr("&Queues (all sites)"))
        splitter.addWidget(self.views)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        side_layout.addWidget(QLabel(self.tr("<b>Sites</b>")))
        self.sites = self._make_sites()
        side_layout.addWidget(self.sites)
        side_layout.addWidget(QLabel(self.tr("<b>Queues</b>")))
        self.queues_note = QLabel()
        self.queues_note.setWordWrap(True)
        side_layout.addWidget(self.queues_note)
        self.queues_note.setObjectName("queuesNote")
        self.queues = QTableWidget(0, 6)
        self.queues.setHorizontalHeaderLabels(
            [self.tr("Site"), self.tr("Queue"), self.tr("Waiting"), self.tr("Longest wait"), self.tr("Service level"),
             self.tr("Answered / offered")]
        )
        self.queues.verticalHeader().hide()
        # A handful of rows: sized to their texts (headers included, none cut), the last one stretched.
        self.queues.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.queues.horizontalHeader().setStretchLastSection(True)
        self.queues.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        side_layout.addWidget(self.queues)
        side_layout.addWidget(QLabel(self.tr("<b>Disconnects and failovers</b>")))
        self.feed = QListWidget()
        self.feed.setWordWrap(True)
        side_layout.addWidget(self.feed, 2)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([850, 560])
        outer.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._selection_changed())
        self._selected_agent: str | None = None
        self.below_target: set[tuple[str, str]] = set()  # (site, queue) whose service level is below target
        self.logout_question: Question | None = None  # the open force-logout confirmation, if any
        self._notice: tuple[int, str] | None = None  # the banner's latest notice (its "Now:" line is live)
        self._pending_actions: set[asyncio.Future] = set()
        self._selection_changed()

        self.focus_outline = FocusOutline(self)
        self.flush_timer = QTimer(self)
        self.flush_timer.setInterval(int(1000 / flush_hz))
        self.flush_timer.timeout.connect(self.flush)
        self.tick_timer = QTimer(self)
        self.tick_timer.setInterval(1000)
        self.tick_timer.timeout.connect(self.tick)
        self.flush_timer.start()
        self.tick_timer.start()
        self.flush()
        self.tick()

    # ------------------------------------------------------------------ construction

    def _make_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        # Fixed sizes: ResizeToContents would measure every row on every change (docs/architecture.md, pitfalls).
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        table.verticalHeader().setDefaultSectionSize(22)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in enumerate(COLUMN_WIDTHS):
            table.setColumnWidth(column, width)
        header.setStretchLastSection(True)
        table.setSortingEnabled(True)
        table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        return table

    def _make_queue_view(self) -> QTableWidget:
        """One row per queue over every site: the contact center's picture of each queue."""
        view = QTableWidget(0, len(QUEUE_VIEW_COLUMNS))
        view.setAccessibleName(self.tr("Queues over all sites"))
        view.setHorizontalHeaderLabels([self.tr(text) for text in QUEUE_VIEW_COLUMNS])
        view.verticalHeader().hide()
        # A handful of rows: sized to their texts (headers included, none cut), the last one stretched.
        view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        view.horizontalHeader().setStretchLastSection(True)
        view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        view.setTabKeyNavigation(False)
        return view

    def _update_queue_view(self) -> None:
        rows = merged_queues(self.engine.servers.values())
        view = self.queue_view
        view.setRowCount(len(rows))
        for r, merged in enumerate(rows):
            level = "—" if merged.service_level is None else f"{merged.service_level * 100:.0f} %"
            values = (merged.queue, str(merged.waiting), duration_text(merged.longest_wait_ms), level,
                      f"{merged.answered} / {merged.offered}", str(merged.abandoned),
                      ", ".join(merged.sites) + (f" (unavailable: {', '.join(merged.unavailable)})"
                                                 if merged.unavailable else ""))
            below = merged.service_level is not None and merged.service_level < SERVICE_LEVEL_TARGET
            for c, text in enumerate(values):
                item = view.item(r, c)
                if item is None:
                    item = QTableWidgetItem(text)
                    view.setItem(r, c, item)
                elif item.text() != text:
                    item.setText(text)
                if c == 3:
                    item.setBackground(BELOW_TARGET_BRUSH if below else QBrush())

    def _make_sites(self) -> QTableWidget:
        sites = QTableWidget(len(self.engine.servers), 4)
        sites.setHorizontalHeaderLabels([self.tr("Site"), self.tr("Connection"), self.tr("Last event"),
                                         self.tr("Logged in")])
        sites.verticalHeader().hide()
        sites.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        sites.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        sites.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, name in enumerate(self.engine.servers):
            for column in range(4):
                sites.setItem(row, column, QTableWidgetItem(name if column == 0 else ""))
        sites.setWordWrap(True)  # a long "unreachable: ..." wraps (and its tooltip has it all)
        sites.setMaximumHeight(40 + 48 * len(self.engine.servers))
        return sites

    # ------------------------------------------------------------------ refresh

    def flush(self) -> None:
        """Apply everything the engine collected since the last flush (5-10 times a second)."""
        changes = self.engine.take_changes()
        if changes.agents:
            self.model.apply(changes.agents)
            self._update_counts()
            if self._selected_agent in changes.agents:
                self._selection_changed()
        if changes.servers:
            self._update_reason_labels()
            self._update_sites()
            self._update_queues()
            self._update_counts()
        if changes.feed:
            self._add_feed(changes.feed)
        if changes.agents or changes.servers or changes.feed:
            self._update_banner()

    def _update_reason_labels(self) -> None:
        """Reason labels from every server's list (``reasons(server)`` of the client), for the table."""
        reasons = getattr(self.agent_actions, "reasons", None)
        if reasons is None:
            return
        labels: dict[str, str] = {}
        for server in self.engine.servers:
            try:
                labels.update({r.code: r.label for r in reasons(server) if r.label})
            except (KeyError, ValueError):
                continue
        self.model.set_reason_labels(labels)

    def tick(self) -> None:
        self.engine.tick(self._wall_ms())
        self.model.tick()
        self._update_sites()

    def _update_counts(self) -> None:
        counts = self.engine.counts
        for key, text in COUNT_LABELS:
            self.count_labels[key].setText(f"{self.tr(text)}: {counts.get(key, 0)}")

    def _update_sites(self) -> None:
        now = self._wall_ms()
        for row, (name, server) in enumerate(self.engine.servers.items()):
            if server.live:
                connection = self.tr("connected")
            elif server.connected:
                connection = self.tr("connected, reading snapshot")
            else:
                status = self.link_status(name)
                connection = self.tr("not connected: {0}").format(connection_words(status)) if status else \
                    self.tr("not connected")
            age = duration_text(now - server.last_event_ms) if server.last_event_ms else "—"
            for column, text in ((1, connection), (2, age), (3, str(server.logged_in))):
                item = self.sites.item(row, column)
                assert item is not None  # _make_sites made every cell; the engine's servers are fixed
                if item.text() != text:
                    item.setText(text)
                    if column == 1:  # the whole sentence, and the raw status for support, on hover
                        raw = self.link_status(name)
                        item.setToolTip(text if not raw or raw == text else f"{text}\n\n(technical: {raw})")
                        self.sites.resizeRowToContents(row)

    def _update_queues(self) -> None:
        rows = []
        silent = []
        stale = []
        for name, server in self.engine.servers.items():
            if server.queues is None:
                silent.append(name)
                continue
            as_of = clock_text(server.queues_at_ms) if server.queues_at_ms else "?"
            if not server.live:  # figures of a site we no longer hear from: marked, never passed off as live
                stale.append(self.tr("{0} (as of {1})").format(name, as_of))
            for q in server.queues:
                level = (
                    "—"
                    if q.service_level is None
                    else self.tr("{0:.0f} % in {1:.0f} s").format(q.service_level * 100,
                                                                  q.service_level_target_ms / 1000)
                )
                site = name if server.live else self.tr("{0} (unavailable)").format(name)
                rows.append(((site, q.queue, str(q.waiting), duration_text(q.longest_wait_ms), level,
                              f"{q.answered} / {q.offered}"), server.live, as_of))
        notes = []
        if silent:
            names = ", ".join(silent)
            notes.append(self.tr("This server does not report queue statistics yet ({0}).").format(names)
                         if len(silent) == 1 else
                         self.tr("These servers do not report queue statistics yet ({0}).").format(names))
        if stale:
            notes.append(self.tr("Unavailable: {0}. Those figures are the last ones received and may be out of "
                                 "date.").format(", ".join(stale)))
        self._service_level_alerts()
        self._update_queue_view()
        self.queues_note.setText(" ".join(notes))
        self.queues_note.setVisible(bool(notes))
        self.queues.setRowCount(len(rows))
        palette = self.queues.palette()
        for r, (values, live, as_of) in enumerate(rows):
            for c, text in enumerate(values):
                item = self.queues.item(r, c)
                if item is None:
                    item = QTableWidgetItem(text)
                    self.queues.setItem(r, c, item)
                elif item.text() != text:
                    item.setText(text)
                # Live: the palette's own text colour (no brush kept, so a theme change repaints it right).
                item.setData(Qt.ItemDataRole.ForegroundRole, None if live else palette.placeholderText())
                item.setToolTip("" if live else self.tr("Site {0} is unavailable: figures as of {1}").format(
                    values[0].split()[0], as_of))
                if c == 4:  # the service level: marked while below target
                    below = live and (values[0], values[1]) in self.below_target
                    item.setBackground(BELOW_TARGET_BRUSH if below else QBrush())
                    if below:
                        item.setToolTip(self.tr("Below the {0:.0f} % target").format(SERVICE_LEVEL_TARGET * 100))
        self.queues.setVisible(bool(rows))

    def _service_level_alerts(self) -> None:
        """A notice when a live queue's service level drops below target (once per drop)."""
        below: set[tuple[str, str]] = set()
        for name, server in self.engine.servers.items():
            if not server.live or server.queues is None:
                continue
            for q in server.queues:
                if q.service_level is None or q.service_level >= SERVICE_LEVEL_TARGET:
                    continue
                below.add((name, q.queue))
                if (name, q.queue) not in self.below_target:
                    self.notify(self.tr("Queue {0} at site {1}: service level {2:.0f} % is below the {3:.0f} % "
                                        "target (answered within {4:.0f} s)").format(
                        q.queue, name, q.service_level * 100, SERVICE_LEVEL_TARGET * 100,
                        q.service_level_target_ms / 1000))
        self.below_target = below

    def _add_feed(self, entries: list[FeedEntry]) -> None:
        for entry in entries[-FEED_LINES:]:
            self.feed.insertItem(0, f"{clock_text(entry.at_ms)}  {feed_text(entry)}")
        while self.feed.count() > FEED_LINES:
            self.feed.takeItem(self.feed.count() - 1)
        notices = [e for e in entries if e.notify]
        failovers = [e for e in entries if e.kind == "failover"]
        if notices:
            self.notify(feed_text(notices[-1]), notices[-1].at_ms)
        elif len(failovers) > 1:
            self.notify(self.tr("{0} agents failed over").format(len(failovers)), failovers[-1].at_ms)
        elif failovers:
            self.notify(failovers[0].text, failovers[0].at_ms)

    def notify(self, text: str, at_ms: int | None = None) -> None:
        """A notification the supervisor cannot miss, without a modal box."""
        self._notice = (at_ms if at_ms is not None else self._wall_ms(), text)
        self._update_banner()
        if self.tray is not None:
            self.tray.showMessage(self.tr("Supervisor view"), text, QSystemTrayIcon.MessageIcon.Warning, 8000)

    def banner_lines(self) -> list[str]:
        """The latest notice, then what holds now, from the engine (the same counts as the labels
        above the table): the banner never goes stale or contradicts the table."""
        if self._notice is None:
            return []
        at_ms, text = self._notice
        lost = [name for name, server in self.engine.servers.items() if not server.connected]
        failover = self.engine.counts.get("failover", 0)
        now = [self.tr("unreachable: site {0}").format(", ".join(lost))] if lost else []
        now.append(self.tr("in failover: {0} agent(s)").format(failover) if failover else
                   self.tr("no agent in failover"))
        return [f"{clock_text(at_ms)}  {text}", self.tr("Now: {0}.").format("; ".join(now))]

    def _update_banner(self) -> None:
        lines = self.banner_lines()
        text = "\n".join(lines)
        if self.banner.text() != text:
            self.banner.setText(text)
        self.banner.setVisible(bool(lines))

    def _filter_changed(self, text: str) -> None:
        """Filter, then keep the selected agent selected if it is still shown (a reset clears it)."""
        selected = self._selected_agent
        self.model.set_filter(text)
        if selected is not None and not self.select_agent(selected):
            self.table.clearSelection()
        self._selection_changed()

    # ------------------------------------------------------------------ supervisor actions

    def _selection_changed(self) -> None:
        index = self.table.selectionModel().currentIndex()
        agent_id = self.model.agent_at(index.row()) if index.isValid() else None
        self._selected_agent = agent_id
        row = self.model.row_data(agent_id) if agent_id else None
        actions = self.agent_actions
        can_act = actions is not None and row is not None and row.presence == "logged_in"
        self.selected_label.setText(f"{row.agent_id} {row.name}" if row else self.tr("No agent selected"))
        if actions is not None and agent_id and can_act:
            reasons = [(r.label or r.code, r.code) for r in actions.reasons_for(agent_id)]
            shown = [(self.reason_box.itemText(i), self.reason_box.itemData(i)) for i in range(self.reason_box.count())]
            if reasons != shown:
                self.reason_box.clear()
                for label, code in reasons:
                    self.reason_box.addItem(label, code)
        self.force_not_ready_button.setEnabled(can_act and self.reason_box.count() > 0)
        self.force_logout_button.setEnabled(can_act)
        self.reason_box.setEnabled(can_act)

    def _force_not_ready(self) -> None:
        agent_id, reason, actions = self._selected_agent, self.reason_box.currentData(), self.agent_actions
        if agent_id and reason and actions is not None:
            label = self.reason_box.currentText()
            self._run_action(self.tr("Not Ready ({0}) for {1}").format(label, agent_id),
                             actions.force_agent_not_ready(agent_id, reason))

    def _force_logout(self) -> None:
        """Asks first (non-blocking: ``open()`` and a signal, never ``exec()`` under qasync)."""
        agent_id = self._selected_agent
        row = self.model.row_data(agent_id) if agent_id else None
        if agent_id is None or row is None or self.agent_actions is None:
            return
        if self.logout_question is not None:
            self.logout_question.raise_()
            return
        info = self.tr("{0} is logged out at once on site {1}").format(row.name or self.tr("The agent"), row.server)
        info += (self.tr("; the interaction in hand ({0}) leaves their hands without being completed.").format(
            row.interaction_id) if row.interaction_id else ".")
        box = Question(self, self.tr("Supervisor — Force logout"),
                       self.tr("Log out agent {0} {1}?").format(agent_id, row.name).strip(), info,
                       [("cancel", self.tr("Cancel"), self.tr("Cancel")),
                        ("logout", self.tr("&Log out agent"), self.tr("Log out agent"))],
                       default="cancel")
        box.setObjectName("forceLogoutQuestion")

        def answered(key: str) -> None:
            self.logout_question = None
            actions = self.agent_actions
            if key == "logout" and actions is not None:
                self._run_action(self.tr("Logout of {0}").format(agent_id), actions.force_agent_logout(agent_id))

        box.answered.connect(answered)
        self.logout_question = box
        box.open()

    def _run_action(self, what: str, coroutine: Awaitable) -> None:
        self.action_result.setText(self.tr("{0}: sending…").format(what))
        future = asyncio.ensure_future(coroutine)
        self._pending_actions.add(future)

        def done(f: asyncio.Future) -> None:
            self._pending_actions.discard(f)
            if f.cancelled():
                return
            error = f.exception()
            self.action_result.setText(self.tr("{0}: done").format(what) if error is None else
                                       self.tr("{0}: refused — {1}").format(what, error))

        future.add_done_callback(done)

    def closeEvent(self, event) -> None:
        self.flush_timer.stop()
        self.tick_timer.stop()
        self.closed.emit()
        super().closeEvent(event)

    def select_agent(self, agent_id: str) -> bool:
        row = self.model.row_of(agent_id)
        if row is None:
            return False
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))
        return True


__all__ = ["SupervisorWindow", "LoginPanel", "COLUMNS"]
