"""The agents table as a Qt item model over the reporting engine's rows.

Built for a live table of thousands of rows (docs/architecture.md, pitfalls): nothing is signalled per event. The
window calls ``apply(changed_ids)`` a few times a second with what changed since the last call;
rows that stay in place get one ``dataChanged`` per run of adjacent rows, rows that must move get
one layout change, arriving and leaving rows one insert/remove per run. Sorting and filtering
happen here (bisect over cached keys), not in a QSortFilterProxyModel that would re-sort
everything on every change.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from desktop.reporting.engine import AgentRow, ReportingEngine
from desktop.ui.i18n import QT_TRANSLATE_NOOP, translate

COLUMNS = ("Agent", "Name", "State", "Reason", "Time in state", "Site", "Role", "Epoch", "Interaction", "Last failover")
(COL_AGENT, COL_NAME, COL_STATE, COL_REASON, COL_TIME, COL_SITE, COL_ROLE, COL_EPOCH, COL_INTERACTION,
 COL_FAILOVER) = range(len(COLUMNS))

STATE_TEXT = {"ready": QT_TRANSLATE_NOOP("AgentTableModel", "Ready"),
              "not_ready": QT_TRANSLATE_NOOP("AgentTableModel", "Not Ready"),
              "after_call_work": QT_TRANSLATE_NOOP("AgentTableModel", "After Call Work")}
PRESENCE_TEXT = {"server_lost": QT_TRANSLATE_NOOP("AgentTableModel", "Server lost"),
                 "moving": QT_TRANSLATE_NOOP("AgentTableModel", "Failing over"),
                 "logged_out": QT_TRANSLATE_NOOP("AgentTableModel", "Logged out")}
COLUMN_WORDS = (QT_TRANSLATE_NOOP("AgentTableModel", "Agent"), QT_TRANSLATE_NOOP("AgentTableModel", "Name"),
                QT_TRANSLATE_NOOP("AgentTableModel", "State"), QT_TRANSLATE_NOOP("AgentTableModel", "Reason"),
                QT_TRANSLATE_NOOP("AgentTableModel", "Time in state"), QT_TRANSLATE_NOOP("AgentTableModel", "Site"),
                QT_TRANSLATE_NOOP("AgentTableModel", "Role"), QT_TRANSLATE_NOOP("AgentTableModel", "Epoch"),
                QT_TRANSLATE_NOOP("AgentTableModel", "Interaction"),
                QT_TRANSLATE_NOOP("AgentTableModel", "Last failover"))  # COLUMNS' headers, as shown


def _t(text: str) -> str:
    return translate("AgentTableModel", text)
_STATE_RANK = {"ready": 0, "ringing": 1, "busy": 2, "not_ready": 3, "after_call_work": 4, "failover": 5,
               "logged_out": 6}

FAILOVER_BRUSH = QBrush(QColor(255, 214, 153))  # amber: in the middle of a failover
LOGGED_OUT_BRUSH = QBrush(QColor(128, 128, 128))
STATE_COLORS = {
    "ready": QColor(46, 160, 67), "not_ready": QColor(207, 34, 46), "after_call_work": QColor(154, 103, 0),
    "failover": QColor(219, 109, 40), "logged_out": QColor(140, 140, 140),
    "busy": QColor(9, 105, 218), "ringing": QColor(130, 80, 223),
}
AgentIdRole = int(Qt.ItemDataRole.UserRole)
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_DECORATION = int(Qt.ItemDataRole.DecorationRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_UNUSED_ROLES = frozenset(int(r) for r in (Qt.ItemDataRole.FontRole, Qt.ItemDataRole.CheckStateRole,
                                           Qt.ItemDataRole.EditRole, Qt.ItemDataRole.StatusTipRole,
                                           Qt.ItemDataRole.WhatsThisRole, Qt.ItemDataRole.SizeHintRole))
_FAILOVER_PRESENCES = frozenset({"server_lost", "moving"})
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

# How long a handling state may last before its time is coloured (a supervisor's cue to look).
THRESHOLDS_MS = {"not_ready": 15 * 60_000, "after_call_work": 2 * 60_000, "busy": 10 * 60_000}
OVER_THRESHOLD_BRUSH = QBrush(QColor(248, 215, 218))  # light red; text keeps the palette's colour
OVER_THRESHOLD_TEXT = QBrush(QColor(114, 28, 36))


def handling(row: AgentRow) -> str | None:
    """The agent's handling state: "busy" (an interaction in hand), "ringing" (an offer waiting), else
    the state the agent is in (ready, not_ready, after_call_work); None when not logged in."""
    return row.count_key if row.presence == "logged_in" else None  # one source with the counts


def handling_since(row: AgentRow) -> int:
    """Start of what the time column counts: the talk time in hand, the ringing, else the state."""
    kind = handling(row)
    if kind == "busy" and row.hold_since_ms is not None:
        return row.hold_since_ms  # on hold: the hold time
    if kind == "busy" and row.interaction_since_ms is not None:
        return row.interaction_since_ms
    if kind == "ringing" and row.ringing_since_ms is not None:
        return row.ringing_since_ms
    return row.since_ms


def over_threshold(row: AgentRow, now_ms: int, thresholds_ms: dict[str, int] = THRESHOLDS_MS) -> bool:
    limit = thresholds_ms.get(handling(row) or "")
    return limit is not None and row.since_ms > 0 and now_ms - handling_since(row) >= limit


def state_text(row: AgentRow) -> str:
    if row.presence == "logged_in":
        kind = handling(row)
        if kind == "busy":
            return (translate("AgentTableModel", "On hold") if row.hold_since_ms is not None
                    else translate("AgentTableModel", "Busy"))
        if kind == "ringing":
            return translate("AgentTableModel", "Ringing")
        return _t(STATE_TEXT[row.state]) if row.state in STATE_TEXT else row.state or ""
    return _t(PRESENCE_TEXT[row.presence])


def role_text(row: AgentRow) -> str:
    """Which server holds the agent's login, as far as the reporting streams can tell.

    Only a primary reports an agent (a standby is never on any stream), so this names the primary
    or says why there is none; it never claims a standby it cannot see."""
    if row.presence == "logged_in":
        # Logged in there, but the server has not heard the desktop lately (offered nothing).
        return translate("AgentTableModel", "primary at {0}").format(row.server) if row.reachable else \
            translate("AgentTableModel", "primary at {0}, unreachable").format(row.server)
    if row.presence == "server_lost":
        return translate("AgentTableModel", "none ({0} lost)").format(row.server)
    if row.presence == "moving":
        return translate("AgentTableModel", "none (left {0})").format(row.server)
    return translate("AgentTableModel", "none")


def duration_text(ms: int) -> str:
    seconds = max(0, ms // 1000)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def clock_text(wall_ms: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall_ms / 1000))


def _agent_key(agent_id: str):
    return (0, int(agent_id), agent_id) if agent_id.isdigit() else (1, 0, agent_id)


class _Descending:
    """Inverts the order of a key, so descending sorts use the same bisect code."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __lt__(self, other):
        return other.key < self.key

    def __eq__(self, other):
        return self.key == other.key


def _column_key(row: AgentRow, column: int):
    if column == COL_NAME:
        return row.name.casefold()
    if column == COL_STATE:
        return _STATE_RANK[row.count_key]
    if column == COL_REASON:
        return (row.reason or "").casefold()
    if column == COL_TIME:
        return -handling_since(row)  # ascending time in state = the most recent change first
    if column == COL_SITE:
        return row.server or ""
    if column == COL_ROLE:
        return role_text(row)
    if column == COL_EPOCH:
        return row.epoch
    if column == COL_INTERACTION:
        return row.interaction_id or ""
    if column == COL_FAILOVER:
        return row.last_failover_ms or 0
    return 0


class AgentTableModel(QAbstractTableModel):
    """Rows of ``engine.rows`` that match the filter, sorted by one column."""

    def __init__(self, engine: ReportingEngine, wall_ms: Callable[[], int] | None = None, parent=None):
        super().__init__(parent)
        self.engine = engine
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self.now_ms = self._wall_ms()
        # State -> ms before its time is coloured; supervisor-view --thresholds sets other limits.
        self.thresholds_ms: dict[str, int] = dict(THRESHOLDS_MS)
        self._rows: dict[str, AgentRow] = {}  # copies as of the last apply: data() never runs ahead of signals
        self._cells: dict[str, list[str]] = {}  # display texts, made on first paint, dropped on change
        self._ids: list[str] = []
        self._keys: list = []
        self._pos: dict[str, int] | None = {}
        self._sort_column = COL_AGENT
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._filter = ""
        self.reason_labels: dict[str, str] = {}
        self.stats = {"applies": 0, "data_changed": 0, "layout_changes": 0, "inserts": 0, "removes": 0}

    # ------------------------------------------------------------------ Qt model interface

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._ids)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(COLUMNS)
        ):
            return _t(COLUMN_WORDS[section])
        return None

    # No flags() override: QAbstractTableModel's (enabled, selectable, no children) is what the table
    # needs, and a Python override would run once per painted cell.

    def data(self, index, role=0):
        """Called about seven times per painted cell: int roles, cached texts, early exits."""
        if role in _UNUSED_ROLES:
            return None
        at = index.row()
        if at < 0 or at >= len(self._ids):
            return None
        agent_id = self._ids[at]
        row = self._rows[agent_id]
        column = index.column()
        if role == _DISPLAY:
            if column == COL_TIME:
                return duration_text(self.now_ms - handling_since(row)) if row.since_ms else ""
            cells = self._cells.get(agent_id)
            if cells is None:
                cells = self._cells[agent_id] = [self._text(row, c) for c in range(len(COLUMNS))]
            return cells[column]
        if role == _BACKGROUND:
            if column == COL_TIME and over_threshold(row, self.now_ms, self.thresholds_ms):
                return OVER_THRESHOLD_BRUSH
            return FAILOVER_BRUSH if row.presence in _FAILOVER_PRESENCES else None
        if role == _FOREGROUND:
            if column == COL_TIME and over_threshold(row, self.now_ms, self.thresholds_ms):
                return OVER_THRESHOLD_TEXT
            return LOGGED_OUT_BRUSH if row.presence == "logged_out" else None
        if role == _DECORATION:
            return STATE_COLORS[row.count_key] if column == COL_STATE else None
        if role == _ALIGNMENT:
            return _RIGHT if column == COL_TIME or column == COL_EPOCH else None
        if role == _TOOLTIP:
            return self._tooltip(row)
        if role == AgentIdRole:
            return agent_id
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(COLUMNS):
            return
        self._sort_column, self._sort_order = column, order
        self.layoutAboutToBeChanged.emit()
        before = self._persistent_ids()
        rows = self._rows
        self._keys = [self._key(rows[a]) for a in self._ids]
        order_ = sorted(range(len(self._ids)), key=self._keys.__getitem__)
        self._ids = [self._ids[i] for i in order_]
        self._keys = [self._keys[i] for i in order_]
        self._pos = None
        self._remap_persistent(before)
        self.layoutChanged.emit()

    # ------------------------------------------------------------------ what the window uses

    def row_data(self, agent_id: str) -> AgentRow | None:
        """The row as the table shows it now (as of the last apply)."""
        return self._rows.get(agent_id)

    def agent_at(self, row: int) -> str | None:
        return self._ids[row] if 0 <= row < len(self._ids) else None

    def row_of(self, agent_id: str) -> int | None:
        return self._positions().get(agent_id)

    def visible_ids(self) -> list[str]:
        return list(self._ids)

    def set_filter(self, text: str) -> None:
        """Keep only rows whose agent, name, state, reason or site contains ``text`` (any case)."""
        text = text.strip().casefold()
        if text == self._filter:
            return
        self._filter = text
        self.beginResetModel()
        rows = self._rows
        visible = [a for a, r in rows.items() if self._matches(r)]
        keyed = sorted((self._key(rows[a]), a) for a in visible) if visible else []
        self._ids = [a for _, a in keyed]
        self._keys = [k for k, _ in keyed]
        self._pos = None
        self.endResetModel()

    def tick(self) -> None:
        """Time in state moves on: one signal for the whole column; views repaint what they show."""
        self.now_ms = self._wall_ms()
        if self._ids:
            self.dataChanged.emit(self.index(0, COL_TIME), self.index(len(self._ids) - 1, COL_TIME),
                                  [Qt.ItemDataRole.DisplayRole])

    def apply(self, changed: set[str] | list[str]) -> None:
        """Bring the table up to date with rows the engine changed (see the module doc)."""
        self.now_ms = self._wall_ms()
        if not changed:
            return
        self.stats["applies"] += 1
        engine_rows = self.engine.rows
        rows = self._rows
        cells = self._cells
        for agent_id in changed:
            row = engine_rows.get(agent_id)
            cells.pop(agent_id, None)
            if row is None:
                rows.pop(agent_id, None)
            else:
                rows[agent_id] = row.copy()
        pos = self._positions()
        keys = self._keys
        gone: list[int] = []
        arriving: list[str] = []
        moving: list[str] = []
        in_place: list[str] = []
        new_key: dict[str, object] = {}
        for agent_id in changed:
            row = rows.get(agent_id)
            at = pos.get(agent_id)
            if row is None or not self._matches(row):
                if at is not None:
                    gone.append(at)
                continue
            key = self._key(row)
            if at is None:
                arriving.append(agent_id)
                new_key[agent_id] = key
                continue
            if key == keys[at] or ((at == 0 or keys[at - 1] < key) and (at == len(keys) - 1 or key < keys[at + 1])):
                keys[at] = key
                in_place.append(agent_id)
            else:
                moving.append(agent_id)
                new_key[agent_id] = key
        if gone:
            self._remove_rows(sorted(gone))
        if moving:
            self._move_rows(moving, new_key)
        if arriving:
            self._insert_rows(arriving, new_key)
        if in_place:
            pos = self._positions()
            self._emit_runs(sorted(pos[a] for a in in_place))

    # ------------------------------------------------------------------ internals

    def _text(self, row: AgentRow, column: int) -> str:
        if column == COL_AGENT:
            return row.agent_id
        if column == COL_NAME:
            return row.name
        if column == COL_STATE:
            return state_text(row)
        if column == COL_REASON:
            return self.reason_text(row)
        if column == COL_TIME:
            return duration_text(self.now_ms - handling_since(row)) if row.since_ms else ""
        if column == COL_SITE:
            return row.server or "—"
        if column == COL_ROLE:
            return role_text(row)
        if column == COL_EPOCH:
            return str(row.epoch) if row.epoch else ""
        if column == COL_INTERACTION:
            return row.interaction_id or "—"
        if column == COL_FAILOVER:
            if row.last_failover_ms is None or row.last_failover_duration_ms is None:  # the engine sets both
                return ""
            return (f"{clock_text(row.last_failover_ms)} {row.last_failover_from}→{row.last_failover_to} "
                    f"({row.last_failover_duration_ms / 1000:.1f} s)")
        return ""

    def reason_text(self, row: AgentRow) -> str:
        """The Not Ready reason's label (the servers' reason lists); presence reasons are words already."""
        if row.reason is None:
            return ""
        return self.reason_labels.get(row.reason, row.reason) if row.presence == "logged_in" else row.reason

    def set_reason_labels(self, labels: dict[str, str]) -> None:
        """Reason code -> label; redraws the rows once when the labels change."""
        if labels == self.reason_labels:
            return
        self.reason_labels = dict(labels)
        self._cells.clear()
        if self._ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._ids) - 1, len(COLUMNS) - 1))

    def _tooltip(self, row: AgentRow) -> str:
        lines = [f"{row.agent_id} {row.name}: {state_text(row)}"]
        if handling(row) in ("busy", "ringing") and row.state:
            own = _t(STATE_TEXT[row.state]) if row.state in STATE_TEXT else row.state
            lines.append(translate("AgentTableModel", "Own state: {0}").format(own))
        if row.interaction_id:
            lines.append(translate("AgentTableModel", "Interaction in hand: {0}").format(row.interaction_id))
        if row.reason:
            lines.append(translate("AgentTableModel", "Reason: {0}").format(self.reason_text(row)))
        limit = self.thresholds_ms.get(handling(row) or "")
        if limit is not None and over_threshold(row, self.now_ms, self.thresholds_ms):
            lines.append(translate("AgentTableModel", "Over the {0} min threshold for {1}").format(
                f"{round(limit / 60_000, 2):g}", state_text(row)))
        if row.forced_by:
            lines.append(translate("AgentTableModel", "Set by supervisor {0}").format(row.forced_by))
        if row.place:
            lines.append(translate("AgentTableModel", "Place: {0}").format(row.place))
        if row.last_failover_ms is not None:
            lines.append(translate("AgentTableModel", "Last failover: {0}").format(self._text(row, COL_FAILOVER)))
        return "\n".join(lines)

    def _matches(self, row: AgentRow) -> bool:
        text = self._filter
        if not text:
            return True
        return (text in row.agent_id.casefold() or text in row.name.casefold()
                or text in state_text(row).casefold() or (row.reason is not None and text in row.reason.casefold())
                or text in self.reason_text(row).casefold()
                or (row.server is not None and text in row.server.casefold()))

    def _key(self, row: AgentRow):
        key = (_column_key(row, self._sort_column), _agent_key(row.agent_id))
        return _Descending(key) if self._sort_order == Qt.SortOrder.DescendingOrder else key

    def _positions(self) -> dict[str, int]:
        if self._pos is None:
            self._pos = {agent_id: i for i, agent_id in enumerate(self._ids)}
        return self._pos

    def _runs(self, positions: list[int]):
        """Runs of consecutive positions (ascending input): [(first, last), ...]."""
        runs = []
        start = prev = positions[0]
        for p in positions[1:]:
            if p != prev + 1:
                runs.append((start, prev))
                start = p
            prev = p
        runs.append((start, prev))
        return runs

    def _emit_runs(self, positions: list[int]) -> None:
        last_column = len(COLUMNS) - 1
        for first, last in self._runs(positions):
            self.stats["data_changed"] += 1
            self.dataChanged.emit(self.index(first, 0), self.index(last, last_column))

    def _remove_rows(self, positions: list[int]) -> None:
        for first, last in reversed(self._runs(positions)):
            self.stats["removes"] += 1
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._ids[first:last + 1]
            del self._keys[first:last + 1]
            self._pos = None
            self.endRemoveRows()

    def _move_rows(self, moving: list[str], new_key: dict) -> None:
        self.stats["layout_changes"] += 1
        self.layoutAboutToBeChanged.emit()
        before = self._persistent_ids()
        leaving = set(moving)
        kept = [(k, a) for k, a in zip(self._keys, self._ids, strict=True) if a not in leaving]
        self._keys = [k for k, _ in kept]
        self._ids = [a for _, a in kept]
        for agent_id in moving:
            key = new_key[agent_id]
            at = bisect.bisect_right(self._keys, key)
            self._keys.insert(at, key)
            self._ids.insert(at, agent_id)
        self._pos = None
        self._remap_persistent(before)
        self.layoutChanged.emit()

    def _insert_rows(self, arriving: list[str], new_key: dict) -> None:
        arriving.sort(key=new_key.__getitem__)
        keys_before = self._keys
        final = [bisect.bisect_right(keys_before, new_key[a]) + i for i, a in enumerate(arriving)]
        index_of = {p: i for i, p in enumerate(final)}
        for first, last in self._runs(final):
            ids = [arriving[index_of[p]] for p in range(first, last + 1)]
            self.stats["inserts"] += 1
            self.beginInsertRows(QModelIndex(), first, last)
            self._ids[first:first] = ids
            self._keys[first:first] = [new_key[a] for a in ids]
            self._pos = None
            self.endInsertRows()

    def _persistent_ids(self) -> list[tuple[QModelIndex, str | None]]:
        return [(index, self.agent_at(index.row())) for index in self.persistentIndexList()]

    def _remap_persistent(self, before) -> None:
        if not before:
            return
        pos = self._positions()
        old, new = [], []
        for index, agent_id in before:
            old.append(index)
            at = pos.get(agent_id) if agent_id is not None else None
            new.append(self.index(at, index.column()) if at is not None else QModelIndex())
        self.changePersistentIndexList(old, new)


__all__ = ["AgentTableModel", "COLUMNS", "AgentIdRole"]
