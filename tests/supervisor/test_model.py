"""The agents table model: correct for Qt's model checker, sorted and filtered inside the model,
and signalling changes in runs rather than per event."""

import random

import pytest
from PySide6.QtCore import QPersistentModelIndex, Qt

from desktop.reporting import ReportingEngine
from desktop.reporting.engine import AgentRow
from desktop.supervisor.model import (
    COL_AGENT,
    COL_EPOCH,
    COL_FAILOVER,
    COL_INTERACTION,
    COL_NAME,
    COL_REASON,
    COL_ROLE,
    COL_SITE,
    COL_STATE,
    COL_TIME,
    COLUMNS,
    AgentTableModel,
    role_text,
    state_text,
)
from server_stub import protocol as p

T0 = 1_767_254_400_000
STATES = ("ready", "not_ready", "after_call_work")


class Feed:
    """Drives an engine with well-formed streams for two servers."""

    def __init__(self):
        self.engine = ReportingEngine(["A", "B"])
        self.seq = {"A": 0, "B": 0}
        self.epoch = {}
        for name in "AB":
            self.engine.stream_opened(name, "s" + name, T0)
            self.engine.message(name, p.EventReportingSnapshot(server=name, stream_id="s" + name, seq=0, agents=[]), T0)

    def _next(self, server):
        self.seq[server] += 1
        return self.seq[server]

    def login(self, server, agent_id, state="ready", since=T0, name=None, interaction_id=None):
        self.epoch[agent_id] = self.epoch.get(agent_id, 0) + 1
        report = p.AgentReport(agent_id=agent_id, name=name or f"Name {agent_id}", epoch=self.epoch[agent_id],
                               state=state, since_ms=since, login_ms=since,
                               reason="break" if state == "not_ready" else None, interaction_id=interaction_id)
        self.engine.message(server, p.EventAgentLogin(server=server, seq=self._next(server), agent=report), T0)

    def change(self, server, agent_id, state, since):
        self.engine.message(server, p.EventAgentStateChanged(
            server=server, seq=self._next(server), agent_id=agent_id, epoch=self.epoch[agent_id], state=state,
            since_ms=since, reason="lunch" if state == "not_ready" else None), T0)

    def logout(self, server, agent_id, reason="logout"):
        self.engine.message(server, p.EventAgentLogout(server=server, seq=self._next(server), agent_id=agent_id,
                                                       epoch=self.epoch[agent_id], reason=reason), T0)


def populated(n=40):
    feed = Feed()
    for i in range(n):
        feed.login("AB"[i % 2], str(1000 + i), STATES[i % 3], T0 + i)
    model = AgentTableModel(feed.engine, wall_ms=lambda: T0 + 60_000)
    model.apply(feed.engine.take_changes().agents)
    return feed, model


def expected_order(model, engine, column, order, text=""):
    """The agent ids in the order the supervisor expects (EXPECTED_KEYS, ties by agent id), filtered."""
    rows = [r for r in engine.rows.values()
            if not text or any(text.casefold() in (v or "").casefold()
                               for v in (r.agent_id, r.name, state_text(r), r.reason, r.server))]
    key = EXPECTED_KEYS[column]
    return [r.agent_id for r in sorted(rows, key=lambda r: (key(r), int(r.agent_id)),
                                       reverse=order == Qt.SortOrder.DescendingOrder)]


def test_model_passes_qt_model_checks_while_it_changes(qtmodeltester):
    feed, model = populated()
    qtmodeltester.check(model)  # the checker stays attached: every signal below is checked too
    model.sort(COL_STATE, Qt.SortOrder.DescendingOrder)
    feed.change("A", "1000", "not_ready", T0 + 100)
    feed.logout("B", "1001")
    feed.engine.stream_lost("A", "closed", T0 + 200)
    feed.login("B", "2000")
    model.apply(feed.engine.take_changes().agents)
    model.set_filter("ready")
    model.tick()
    assert model.rowCount() > 0


@pytest.mark.parametrize("column", [COL_AGENT, COL_STATE, COL_TIME])
@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder])
def test_sorted_and_filtered_order_stays_right_through_random_changes(column, order, qtmodeltester):
    rng = random.Random(column * 10 + int(order == Qt.SortOrder.DescendingOrder))
    feed, model = populated(60)
    qtmodeltester.check(model)
    model.sort(column, order)
    text = ""
    for step in range(40):
        for _ in range(rng.randint(1, 12)):
            agent_id = str(1000 + rng.randrange(70))
            server = "A" if int(agent_id) % 2 == 0 else "B"
            row = feed.engine.rows.get(agent_id)
            if row is None or row.presence != "logged_in":
                feed.login(server, agent_id, rng.choice(STATES), T0 + rng.randrange(10_000))
            elif rng.random() < 0.1:
                feed.logout(server, agent_id)
            else:
                feed.change(server, agent_id, rng.choice(STATES), T0 + rng.randrange(10_000))
        if step == 20:
            text = "not ready"
            model.set_filter(text)
        model.apply(feed.engine.take_changes().agents)
        assert model.visible_ids() == expected_order(model, feed.engine, column, order, text), f"step {step}"


# Each column's order, written out from what the supervisor reads in that column (not from the
# model's own sort keys); ties are broken by agent id, and a descending sort reverses everything.
_STATE_ORDER = ("ready", "ringing", "busy", "not_ready", "after_call_work", "failover", "logged_out")


def _shown_state(r) -> str:
    """Busy with an interaction in hand, Ringing with an offer waiting, else the state or presence."""
    if r.presence == "logged_in" and r.interaction_id:
        return "busy"
    if r.presence == "logged_in" and r.ringing_since_ms is not None:
        return "ringing"
    return r.count_key


EXPECTED_KEYS = {
    COL_AGENT: lambda r: 0,
    COL_NAME: lambda r: r.name.casefold(),
    COL_STATE: lambda r: _STATE_ORDER.index(_shown_state(r)),
    COL_REASON: lambda r: (r.reason or "").casefold(),
    COL_TIME: lambda r: -r.since_ms,  # the shortest time in state first
    COL_SITE: lambda r: r.server or "",
    COL_ROLE: lambda r: {"logged_in": f"primary at {r.server}", "server_lost": f"none ({r.server} lost)",
                         "moving": f"none (left {r.server})", "logged_out": "none"}[r.presence],
    COL_EPOCH: lambda r: r.epoch,
    COL_INTERACTION: lambda r: r.interaction_id or "",
    COL_FAILOVER: lambda r: r.last_failover_ms or 0,  # never failed over first, then oldest failover first
}
NAMES = ("zoë Adams", "Émile Brown", "carla Díaz", "Bob Evans", "ada Fox", "Ünal Gray")


def varied():
    """Rows that differ in every column: names in mixed case, reasons, interactions, epochs, both
    sites, a lost server (with failovers to the survivor) and logouts."""
    feed = Feed()
    rng = random.Random(7)
    for i in range(30):
        agent_id = str(1000 + i)
        for _ in range(rng.randrange(3)):  # earlier logins: epochs differ
            feed.login("AB"[i % 2], agent_id)
            feed.logout("AB"[i % 2], agent_id)
        feed.login(
            "AB"[i % 2],
            agent_id,
            rng.choice(STATES),
            T0 + rng.randrange(10_000),
            name=f"{NAMES[rng.randrange(len(NAMES))]} {rng.randrange(50)}",
            interaction_id=rng.choice([None, f"call-{rng.randrange(100):03d}", f"chat-{rng.randrange(100):03d}"]),
        )
    for i in range(0, 30, 7):
        feed.logout("AB"[i % 2], str(1000 + i))
    feed.engine.stream_lost("A", "closed", T0 + 20_000)
    for i in range(0, 30, 4):  # some of A's agents show up on B: failovers at different times
        if i % 2 == 0 and i % 7:
            feed.engine.message("B", p.EventAgentLogin(server="B", seq=feed._next("B"), agent=p.AgentReport(
                agent_id=str(1000 + i), name=feed.engine.rows[str(1000 + i)].name, epoch=feed.epoch[str(1000 + i)] + 1,
                state="not_ready", since_ms=T0 + 20_000 + i, login_ms=T0 + 20_000 + i)), T0 + 20_100 + i * 10)
    model = AgentTableModel(feed.engine, wall_ms=lambda: T0 + 60_000)
    model.apply(feed.engine.take_changes().agents)
    return feed, model


@pytest.mark.parametrize("column", range(len(COLUMNS)), ids=COLUMNS)
@pytest.mark.parametrize("order", [Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder], ids=["asc", "desc"])
def test_every_column_sorts_by_what_it_shows(column, order, qtmodeltester):
    feed, model = varied()
    qtmodeltester.check(model)
    key = EXPECTED_KEYS[column]
    rows = list(feed.engine.rows.values())
    assert len({key(r) for r in rows}) >= (1 if column == COL_AGENT else 2), "the data must tell the orders apart"
    model.sort(column, order)
    assert model.visible_ids() == expected_order(model, feed.engine, column, order)
    # And it stays sorted as rows change under it.
    feed.change("B", "1001", "after_call_work", T0 + 30_000)
    feed.logout("B", "1003")
    model.apply(feed.engine.take_changes().agents)
    assert model.visible_ids() == expected_order(model, feed.engine, column, order)


def test_the_role_column_names_the_primary_or_says_why_there_is_none(qtbot):
    feed, model = varied()

    def role(agent_id):
        return model.data(model.index(model.row_of(agent_id), COL_ROLE))

    assert role("1001") == "primary at B"  # on B all along
    assert role("1004") == "primary at B"  # A was lost; it failed over to B
    assert role("1002") == "none (A lost)"  # A was lost; not (yet) seen anywhere else
    assert role("1007") == "none"  # logged out


def test_changes_in_place_are_signalled_once_per_run_of_rows(qtbot):
    feed, model = populated(40)  # sorted by agent id: state changes never move a row
    changed, layouts = [], []
    model.dataChanged.connect(lambda tl, br, roles=None: changed.append((tl.row(), br.row())))
    model.layoutChanged.connect(lambda *a: layouts.append(a))
    for agent_id in ("1010", "1011", "1012", "1030"):
        feed.change("AB"[int(agent_id) % 2], agent_id, "after_call_work", T0 + 500)
    model.apply(feed.engine.take_changes().agents)
    assert changed == [(10, 12), (30, 30)]
    assert layouts == []
    assert model.data(model.index(11, COL_STATE)) == "After Call Work"


def test_a_moving_row_keeps_the_selection(qtbot):
    feed, model = populated(20)
    model.sort(COL_STATE, Qt.SortOrder.AscendingOrder)
    selected = QPersistentModelIndex(model.index(model.row_of("1000"), 0))
    feed.change("A", "1000", "after_call_work", T0 + 5)  # ready -> ACW: moves down the table
    model.apply(feed.engine.take_changes().agents)
    assert selected.isValid() and model.agent_at(selected.row()) == "1000"
    assert selected.row() > 6


def test_server_lost_rows_are_highlighted_and_time_ticks(qtbot):
    now = [T0 + 60_000]
    feed, _ = populated(4)
    model = AgentTableModel(feed.engine, wall_ms=lambda: now[0])
    model.apply(set(feed.engine.rows))
    feed.engine.stream_lost("A", "closed", T0 + 60_000)
    model.apply(feed.engine.take_changes().agents)
    row = model.row_of("1000")
    assert model.data(model.index(row, COL_STATE)) == "Server lost"
    assert model.data(model.index(row, COL_STATE), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.data(model.index(model.row_of("1001"), COL_STATE), Qt.ItemDataRole.BackgroundRole) is None
    ticks = []
    model.dataChanged.connect(lambda tl, br, roles=None: ticks.append((tl.column(), br.column(), br.row())))
    now[0] += 65_000
    model.tick()
    assert ticks == [(COL_TIME, COL_TIME, 3)]
    assert model.data(model.index(row, COL_TIME)) == "0:01:05"


def test_the_agents_table_never_measures_rows_to_size_them(qtbot):
    """ResizeToContents would measure every row on every change (docs/architecture.md, pitfalls)."""
    from PySide6.QtWidgets import QHeaderView

    from desktop.supervisor.window import SupervisorWindow

    feed, _ = populated(5)
    window = SupervisorWindow(feed.engine)
    qtbot.addWidget(window)
    for header in (window.table.horizontalHeader(), window.table.verticalHeader()):
        modes = {header.sectionResizeMode(i) for i in range(header.count())}
        assert QHeaderView.ResizeMode.ResizeToContents not in modes
    assert window.table.isSortingEnabled()
    assert window.flush_timer.interval() == 125  # 8 Hz: within the 5-10 Hz the design asks for


def test_filtering_keeps_the_selected_agent_or_disables_the_actions(qtbot):
    from desktop.supervisor.window import SupervisorWindow

    class NoActions:
        def reasons_for(self, agent_id):
            return [p.ReasonInfo(code="break", label="Break")]

    feed, _ = populated(12)
    window = SupervisorWindow(feed.engine, actions=NoActions())
    qtbot.addWidget(window)
    window.model.apply(set(feed.engine.rows))  # the changes were taken by populated()'s own model
    assert window.select_agent("1004")
    assert window.force_logout_button.isEnabled()
    qtbot.keyClicks(window.filter_box, "100")  # 1000-1009: 1004 still shown
    assert window.model.agent_at(window.table.currentIndex().row()) == "1004"
    assert window.force_logout_button.isEnabled()
    window.filter_box.clear()
    qtbot.keyClicks(window.filter_box, "1011")  # 1004 filtered out: nothing to act on
    assert window.selected_label.text() == "No agent selected"
    assert not window.force_logout_button.isEnabled()


def test_the_role_column_says_when_the_primary_cannot_reach_the_agent():
    row = AgentRow("1001", presence="logged_in", state="ready", server="A", epoch=3)
    assert role_text(row) == "primary at A"
    row.reachable = False
    assert role_text(row) == "primary at A, unreachable"
