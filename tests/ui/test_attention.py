"""The agent's desk beyond the call itself, against real (in-process) servers: an offer rings and
pops up a notification that can accept it (one pop-up, never a stack), the ring's settings (and a
clear word where no audio output exists), "Extend wrap-up" with the server keeping the deadline,
the agent's own figures, and the Not Ready reasons the server keeps for itself."""

from __future__ import annotations

import dataclasses
import importlib.util
import re

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.core import events as ev
from desktop.ui import attention
from desktop.ui.attention import OfferPopup
from desktop.ui.settings_window import SettingsWindow
from server_stub import protocol as p
from tests.support.reporting import ReportingWatcher
from tests.ui.test_desktop_gui import WAIT, seconds_shown
from tests.ui.test_interactions_gui import logged_in_ready, submit, wait_reported

pytestmark = pytest.mark.slow

SITE = """
[[queue]]
name = "sales"
accept_timeout = 30
after_call_work = 20
after_call_work_extend = 30
after_call_work_max_extends = 1
"""


@pytest.fixture
def site_pair(make_pair, tmp_path):
    config = tmp_path / "site.toml"
    config.write_text(SITE)
    return make_pair(["--config", str(config)])


@pytest.fixture
def watch_a(site_pair):
    watcher = ReportingWatcher(site_pair[0].url)
    yield watcher
    watcher.close()


def offer(interaction_id: str, name: str, wall_ms: int) -> ev.OfferInfo:
    interaction = p.Interaction(interaction_id=interaction_id, media="chat", queue="sales", created_ms=wall_ms,
                                customer={"name": name})
    return ev.OfferInfo(interaction, wall_ms, wall_ms + 30_000, "A", 1)


def test_the_shipped_ring_is_the_one_the_code_makes():
    assert attention.ring_path().read_bytes() == attention.ring_wav_bytes()


def test_a_new_offer_replaces_the_popup_and_none_stack(qtbot):
    popup = OfferPopup()
    qtbot.addWidget(popup)
    popup.render_offer(offer("chat-1", "Dana Ortiz", 1_000_000), 1_000_000, wanted=True)
    assert popup.isVisible() and popup.title_label.text() == "Chat – sales – Dana Ortiz"
    popup.render_offer(offer("chat-2", "Lee Park", 1_005_000), 1_005_000, wanted=True)
    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, OfferPopup) and w.isVisible()]
    assert shown == [popup] and popup.title_label.text() == "Chat – sales – Lee Park"
    assert popup.countdown_label.text() == "Answer within 00:30"
    popup.render_offer(None, 1_006_000, wanted=True)
    assert not popup.isVisible()


def test_an_offer_rings_and_the_popup_accepts_it(site_pair, watch_a, make_desktop, qtbot):
    a, b = site_pair
    desktop = make_desktop([a, b])
    main, popup = desktop.main_window, desktop.offer_popup
    logged_in_ready(qtbot, desktop, "1001")
    main.showMinimized()  # the agent is in another application: the pop-up is the notification
    submit(qtbot, watch_a, "ring-1", customer={"name": "Dana Ortiz"})
    qtbot.waitUntil(popup.isVisible, timeout=WAIT)
    assert desktop.ringer.ringing
    assert popup.title_label.text() == "Voice call – sales – Dana Ortiz"
    assert re.fullmatch(r"Answer within 00:\d\d", popup.countdown_label.text())
    qtbot.mouseClick(popup.accept_button, Qt.MouseButton.LeftButton)
    wait_reported(qtbot, watch_a, "ring-1", "accepted")
    qtbot.waitUntil(lambda: not popup.isVisible() and main.interactions.detail.isVisible(), timeout=WAIT)
    assert not desktop.ringer.ringing
    assert main.isVisible() and not main.isMinimized()  # the window that works the call comes up


def test_an_unanswered_offer_that_goes_away_stops_the_ring(site_pair, watch_a, make_desktop, qtbot):
    a, b = site_pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    logged_in_ready(qtbot, desktop, "1001")
    submit(qtbot, watch_a, "ring-2")
    qtbot.waitUntil(main.offer_toast.isVisible, timeout=WAIT)
    assert desktop.ringer.ringing
    qtbot.mouseClick(main.offer_toast.reject_button, Qt.MouseButton.LeftButton)
    assert not desktop.ringer.ringing  # at once: the agent answered


def test_settings_turn_the_ring_off_and_say_when_there_is_no_audio_output(site_pair, watch_a, make_desktop, qtbot,
                                                                         user_store):
    window = SettingsWindow(user_store)
    qtbot.addWidget(window)
    window.show_for()
    outputs, problem = attention.audio_outputs()
    if not outputs:  # a headless runner: no sound, and Settings says so in words
        assert window.audio_note.isVisible() and problem and "will not ring" in window.audio_note.text() \
            or "unavailable" in window.audio_note.text()
    assert window.device_combo.itemData(0) == "" and window.device_combo.count() == len(outputs) + 1
    window.volume_spin.setValue(40)
    assert window.ring_check.isChecked()  # on by default
    qtbot.keyClick(window.ring_check, Qt.Key.Key_Space)
    assert not window.volume_spin.isEnabled()
    a, b = site_pair
    desktop = make_desktop([a, b])
    # The window resolves the configured sites; the test's desktop keeps its own servers.
    window.applied.connect(lambda saved: desktop.apply_settings(dataclasses.replace(
        desktop.settings, ring=saved.ring, ring_volume=saved.ring_volume, ring_device=saved.ring_device)))
    assert window.save()
    assert (user_store.value("ring"), int(user_store.value("ring_volume"))) in ((False, 40), ("false", 40))
    logged_in_ready(qtbot, desktop, "1001")
    submit(qtbot, watch_a, "quiet-1")
    qtbot.waitUntil(desktop.main_window.offer_toast.isVisible, timeout=WAIT)
    assert not desktop.ringer.ringing and desktop.ringer.volume == 40


def complete(qtbot, desktop, interaction_id: str, watcher) -> None:
    main = desktop.main_window
    toast, panel = main.offer_toast, main.interactions
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    qtbot.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(panel.detail.isVisible, timeout=WAIT)
    panel.disposition_combo.setCurrentIndex(panel.disposition_combo.findData("resolved"))
    qtbot.mouseClick(panel.done_button, Qt.MouseButton.LeftButton)
    wait_reported(qtbot, watcher, interaction_id, "completed")


def test_extend_wrap_up_once_as_the_queue_allows_and_the_server_keeps_the_end(site_pair, watch_a, make_desktop,
                                                                             qtbot):
    a, b = site_pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    logged_in_ready(qtbot, desktop, "1001")
    assert main.extend_button.isHidden()
    submit(qtbot, watch_a, "wrap-1")
    complete(qtbot, desktop, "wrap-1", watch_a)
    qtbot.waitUntil(lambda: main.state_label.text() == "After Call Work" and main.extend_button.isVisible(),
                    timeout=WAIT)
    before = seconds_shown(main.time_label.text().removesuffix(" left"))
    assert before <= 20 and main.extend_button.toolTip() == "1 extension(s) left"
    qtbot.mouseClick(main.extend_button, Qt.MouseButton.LeftButton)
    # The server moved the end 30 s out and has no extension left to give.
    qtbot.waitUntil(lambda: main.extend_button.isHidden(), timeout=WAIT)
    after = seconds_shown(main.time_label.text().removesuffix(" left"))
    assert 40 <= after <= 50, main.time_label.text()
    assert not main.extend_action.isEnabled()


def test_the_agents_figures_count_the_day_and_show_the_queues(site_pair, watch_a, make_desktop, qtbot):
    a, b = site_pair
    desktop = make_desktop([a, b])
    main, figures = desktop.main_window, desktop.main_window.figures
    logged_in_ready(qtbot, desktop, "1001")
    main.tabs.setCurrentWidget(figures)
    qtbot.waitUntil(lambda: figures.queue_figures() == [("sales", "0", "–")], timeout=WAIT)
    assert figures.handled_label.text() == "0" and figures.average_label.text() == "–"
    assert figures.queues_note.text() == "Figures from site A, counted since that server started."
    submit(qtbot, watch_a, "fig-1")
    complete(qtbot, desktop, "fig-1", watch_a)
    main.tabs.setCurrentWidget(figures)
    qtbot.waitUntil(lambda: figures.handled_label.text() == "1", timeout=WAIT)
    assert re.fullmatch(r"\d\d:\d\d", figures.average_label.text())
    qtbot.waitUntil(lambda: "After Call Work 00:0" in figures.states_label.text(), timeout=WAIT)
    # Not Ready now: two customers wait in the agent's queue, the oldest for a second or more.
    main.reason_combo.setCurrentIndex(main.reason_combo.findData("lunch"))
    qtbot.mouseClick(main.not_ready_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: main.state_label.text().startswith("Not Ready"), timeout=WAIT)
    submit(qtbot, watch_a, "fig-2")
    submit(qtbot, watch_a, "fig-3")
    qtbot.waitUntil(lambda: figures.queue_figures()[0][1] == "2" and figures.queue_figures()[0][2] != "–",
                    timeout=WAIT)
    assert figures.queues.item(0, 1).font().bold()  # someone waits


def test_a_reason_the_server_keeps_for_itself_is_not_offered_and_refused_if_sent(site_pair, make_desktop, qtbot):
    a, b = site_pair
    desktop = make_desktop([a, b])
    main = desktop.main_window
    seen: list[ev.Event] = []
    desktop.bridge.event.connect(seen.append)
    logged_in_ready(qtbot, desktop, "1001")
    offered = [main.reason_combo.itemData(i) for i in range(main.reason_combo.count())]
    assert "system" not in offered and "lunch" in offered
    desktop.bridge.set_not_ready("system")  # a desktop that offered it anyway
    qtbot.waitUntil(lambda: any(isinstance(e, ev.IntentFailed) for e in seen), timeout=WAIT)
    failed = next(e for e in seen if isinstance(e, ev.IntentFailed))
    assert failed.code == "server_only_reason"
    assert main.state_label.text() == "Ready"


def test_without_qt_multimedia_the_desktop_still_works_and_settings_say_why(monkeypatch, qtbot, user_store):
    """A seat without PySide6-Addons (or without libpulse): no ring, a sentence in Settings, nothing else."""
    monkeypatch.setattr(attention._Multimedia, "loaded", True)
    monkeypatch.setattr(attention._Multimedia, "module", None)
    monkeypatch.setattr(attention._Multimedia, "problem", "import: libpulse.so.0: cannot open shared object file")
    window = SettingsWindow(user_store)
    qtbot.addWidget(window)
    window.show_for()
    assert window.audio_note.isVisible() and window.audio_note.text().startswith("Sound is unavailable")
    ringer = attention.Ringer()
    ringer.ring()
    assert ringer.ringing and ringer.effect is None and ringer.problem == window.audio_note.text()
    ringer.stop()
    assert not ringer.ringing


def test_without_a_sound_server_qt_multimedia_is_not_even_loaded(tmp_path):
    assert attention.no_sound_server({"XDG_RUNTIME_DIR": str(tmp_path)}, "linux") is not None
    (tmp_path / "pulse").mkdir()
    (tmp_path / "pulse" / "native").touch()
    assert attention.no_sound_server({"XDG_RUNTIME_DIR": str(tmp_path)}, "linux") is None
    assert attention.no_sound_server({"PULSE_SERVER": "tcp:sound-host"}, "linux") is None
    assert attention.no_sound_server({}, "win32") is None  # WASAPI: Qt Multimedia finds out itself


def test_qt_multimedia_probes_quietly_where_it_loads(monkeypatch, qtbot):
    """The real Qt Multimedia (where PySide6-Addons and libpulse are installed): its probe's chatter
    about missing optional libraries and an absent server stays out of the log (no Qt warning)."""
    # PySide6-Addons is a dependency (pyproject.toml): its absence is a broken install, not a skip.
    assert importlib.util.find_spec("PySide6.QtMultimedia") is not None, "PySide6-Addons is not installed"
    monkeypatch.setattr(attention, "no_sound_server", lambda *a, **k: None)
    monkeypatch.setattr(attention._Multimedia, "loaded", False)
    monkeypatch.setattr(attention._Multimedia, "module", None)
    monkeypatch.setattr(attention._Multimedia, "problem", None)
    outputs, problem = attention.audio_outputs()
    if attention._Multimedia.module is None:  # installed, but a library it needs is not (libpulse): said so
        assert problem and problem.startswith("Sound is unavailable")
    else:
        assert outputs or "will not ring" in (problem or "")


@pytest.mark.server_processes
def test_the_agents_figures_survive_a_kill9_failover_and_the_queues_come_from_the_new_primary(
        site_pair, watch_a, make_desktop, qtbot):
    a, b = site_pair
    desktop = make_desktop([a, b])
    main, figures = desktop.main_window, desktop.main_window.figures
    logged_in_ready(qtbot, desktop, "1001")
    submit(qtbot, watch_a, "kept-1")
    complete(qtbot, desktop, "kept-1", watch_a)
    main.tabs.setCurrentWidget(figures)
    qtbot.waitUntil(lambda: figures.handled_label.text() == "1"
                    and figures.queues_note.text().startswith("Figures from site A"), timeout=WAIT)
    a.kill9()
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "primary, logged in", timeout=WAIT)
    qtbot.waitUntil(lambda: figures.queues_note.text() == "Figures from site B, counted since that server started.",
                    timeout=WAIT)
    # Still today's one interaction (its wrap-up, carried over, still counts towards the average).
    assert figures.handled_label.text() == "1" and figures.average_label.text() != "–"
    assert figures.queue_figures() == [("sales", "0", "–")]
