"""Settings: defaults < the user's QSettings < IT's TOML file (default location, env or --settings)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from PySide6.QtCore import QSettings, Qt

from desktop.ui import settings as st
from desktop.ui.settings_window import SettingsWindow
from tests.support.servers import REPO

DEFAULT_SITES = [st.Site("A", "ws://127.0.0.1:8701"), st.Site("B", "ws://127.0.0.1:8702")]

IT_FILE = """
preferred_site = "B"
heartbeat_timeout = 3.0
[[site]]
name = "A"
url = "wss://cc-a.example.com:8701"
[[site]]
name = "B"
url = "wss://cc-b.example.com:8701"
"""


@pytest.fixture
def store(tmp_path):
    return QSettings(str(tmp_path / "user.ini"), QSettings.Format.IniFormat)


def test_defaults_then_user_values(store):
    settings = st.resolve(store, None, DEFAULT_SITES)
    assert (settings.preferred_site, settings.heartbeat_timeout, settings.failback) == ("A", 1.5, "never")
    store.setValue("preferred_site", "B")
    store.setValue("heartbeat_timeout", "2.5")  # QSettings INI gives strings back
    store.setValue("failback", "when-idle")
    settings = st.resolve(store, None, DEFAULT_SITES)
    assert (settings.preferred_site, settings.heartbeat_timeout, settings.failback) == ("B", 2.5, "when-idle")
    assert [s.name for s in settings.ordered_sites()] == ["B", "A"]
    assert not settings.locked


def test_it_file_wins_and_locks_its_keys(store, tmp_path):
    store.setValue("preferred_site", "A")
    store.setValue("heartbeat_timeout", 9.0)
    store.setValue("failback", "when-idle")
    it = tmp_path / "it.toml"
    it.write_text(IT_FILE)
    settings = st.resolve(store, it, DEFAULT_SITES)
    assert settings.preferred_site == "B" and settings.heartbeat_timeout == 3.0
    assert settings.failback == "when-idle"  # not in IT's file: the user's value stays
    assert [s.url for s in settings.sites] == ["wss://cc-a.example.com:8701", "wss://cc-b.example.com:8701"]
    assert settings.locked == {"sites", "preferred_site", "heartbeat_timeout"}


def test_it_file_location(monkeypatch, tmp_path):
    monkeypatch.delenv(st.SETTINGS_ENV, raising=False)
    assert st.it_file_path("/x/flag.toml") == st.Path("/x/flag.toml")
    monkeypatch.setenv(st.SETTINGS_ENV, str(tmp_path / "env.toml"))
    assert st.it_file_path(None) == tmp_path / "env.toml"
    assert st.it_file_path("/x/flag.toml") == st.Path("/x/flag.toml")  # the flag beats the environment


@pytest.mark.parametrize("text, message", [
    ("heartbeat_timeout = 'soon'", "heartbeat_timeout must be a number"),
    ("heartbeat_timeout = 0.1", "within 0.6..120"),
    ("failback = 'sometimes'", "failback must be one of"),
    ("colour = 'blue'", "unknown keys ['colour']"),
    ("[[site]]\nname = 'A'\nurl = 'http://x'", "needs a ws:// or wss:// url"),
    ("preferred_site = 'Z'", "preferred_site 'Z' is not one of the sites"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_it_file_is_a_clear_error(store, tmp_path, text, message):
    it = tmp_path / "it.toml"
    it.write_text(text)
    with pytest.raises(st.SettingsError, match=message.replace("[", r"\[").replace("(", r"\(")) as info:
        st.resolve(store, it, DEFAULT_SITES)
    assert str(it) in str(info.value)


def test_damaged_user_value_falls_back_to_the_default(store):
    store.setValue("heartbeat_timeout", "banana")
    store.setValue("failback", "when-idle")
    settings = st.resolve(store, None, DEFAULT_SITES)
    assert settings.heartbeat_timeout == 1.5 and settings.failback == "when-idle"


def test_settings_window_saves_user_values_and_greys_out_it_keys(qtbot, store, tmp_path):
    it = tmp_path / "it.toml"
    it.write_text("heartbeat_timeout = 4.0\n")
    window = SettingsWindow(store, str(it))
    qtbot.addWidget(window)
    window.show_for()
    assert not window.timeout_spin.isEnabled() and window.timeout_spin.value() == 4.0
    assert str(it) in window.locked_label.text()
    assert window.failback_combo.isEnabled()
    window.failback_combo.setCurrentIndex(window.failback_combo.findData("when-idle"))
    window.preferred_combo.setCurrentIndex(window.preferred_combo.findData("B"))
    with qtbot.waitSignal(window.applied) as applied:
        qtbot.mouseClick(window.save_button, Qt.MouseButton.LeftButton)
    assert applied.args[0].failback == "when-idle" and applied.args[0].preferred_site == "B"
    assert store.value("failback") == "when-idle" and store.value("heartbeat_timeout") is None
    # A broken URL is refused inline, nothing saved.
    window.sites_table.item(0, 1).setText("http://nope")
    assert not window.save()
    assert "ws:// or wss://" in window.error_label.text()


def test_command_line_settings_flag_reports_a_bad_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("failback = 'sometimes'\n")
    result = subprocess.run([sys.executable, "-m", "desktop.app", "--settings", str(bad)], cwd=REPO,
                            capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip() == (f"agent-desktop: settings file {bad}: failback must be one of "
                                     f"('never', 'when-idle'), got 'sometimes'")


def test_a_preferred_site_fixed_by_it_is_locked_in_the_login_window(qtbot, store, tmp_path):
    from desktop.ui.widgets import LoginWindow

    it = tmp_path / "it.toml"
    it.write_text(IT_FILE)
    window = LoginWindow(st.resolve(store, it, DEFAULT_SITES), keyring_reason=None)
    qtbot.addWidget(window)
    requests = []
    window.login_requested.connect(lambda *args: requests.append(args))
    combo = window.site_combo
    assert combo.currentData() == "B" and not combo.isEnabled()
    assert combo.toolTip() == f"Set by IT in {it}"
    window.set_sites(st.resolve(store, it, DEFAULT_SITES))  # settings re-applied: still IT's choice
    assert combo.currentData() == "B" and not combo.isEnabled()
    window.agent_edit.setText("1001")
    window.password_edit.setText("pw")
    qtbot.mouseClick(window.login_button, Qt.MouseButton.LeftButton)
    assert requests[-1][3] == "B"
    # Without IT's lock the agent chooses.
    window.set_sites(st.resolve(store, None, DEFAULT_SITES))
    assert combo.isEnabled() and combo.toolTip() == ""


def test_the_default_it_file_location_is_used_when_present(monkeypatch, tmp_path):
    monkeypatch.delenv(st.SETTINGS_ENV, raising=False)
    assert st.DEFAULT_IT_FILE == st.Path("/etc/agent-desktop/settings.toml")
    default = tmp_path / "etc" / "agent-desktop" / "settings.toml"
    assert st.it_file_path(None, default=default) is None  # absent: nothing to apply, no error
    default.parent.mkdir(parents=True)
    default.write_text("heartbeat_timeout = 4.5\n")
    assert st.it_file_path(None, default=default) == default
    settings = st.resolve(QSettings(str(tmp_path / "u.ini"), QSettings.Format.IniFormat),
                          st.it_file_path(None, default=default), DEFAULT_SITES)
    assert settings.heartbeat_timeout == 4.5 and settings.locked == {"heartbeat_timeout"}
    monkeypatch.setenv(st.SETTINGS_ENV, str(tmp_path / "env.toml"))
    assert st.it_file_path(None, default=default) == tmp_path / "env.toml"  # the environment beats it


def test_theme_and_font_size_apply_at_once_are_kept_and_go_back_to_the_systems(qtbot, store, tmp_path):
    from PySide6.QtWidgets import QApplication

    from desktop.ui.looks import apply_look
    from desktop.ui.widgets import ErrorLabel

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before = (app.palette().window().color().name(), app.font().pointSize())
    window = SettingsWindow(store)
    qtbot.addWidget(window)
    label = ErrorLabel("Probe")
    qtbot.addWidget(label)
    try:
        window.show_for()
        assert window.theme_combo.currentData() == "system" and window.font_combo.currentData() == 0
        window.theme_combo.setCurrentIndex(window.theme_combo.findData("dark"))
        window.font_combo.setCurrentIndex(window.font_combo.findData(14))
        assert window.save()
        assert app.palette().window().color().lightness() < 128 and app.font().pointSize() == 14
        # The error colour follows the theme.
        qtbot.waitUntil(lambda: label.palette().windowText().color().name() == "#ff8a80")
        assert (store.value("theme"), int(store.value("font_size"))) == ("dark", 14)
        # The next start (a new settings window over the same store) starts dark, at 14 pt.
        apply_look("system", 0)
        again = SettingsWindow(store)
        qtbot.addWidget(again)
        assert app.palette().window().color().lightness() < 128 and app.font().pointSize() == 14
        again.show_for()
        again.theme_combo.setCurrentIndex(again.theme_combo.findData("system"))
        again.font_combo.setCurrentIndex(0)
        assert again.save()
        assert (app.palette().window().color().name(), app.font().pointSize()) == before
    finally:
        apply_look("system", 0)  # one QApplication for the whole test session


def test_the_offer_toast_and_the_failover_banner_follow_a_theme_switch(qtbot):
    """Both carry a style sheet (their border, the banner's colours); their words and buttons must not
    keep the light palette when the agent switches to dark, with or without an offer on screen."""
    from PySide6.QtGui import QPalette

    from desktop.core import events as ev
    from desktop.ui import presenter as pr
    from desktop.ui.looks import apply_look
    from desktop.ui.widgets import MainWindow
    from server_stub import protocol as p

    main = MainWindow()
    qtbot.addWidget(main)
    call = p.Interaction(interaction_id="c1", media="voice", queue="sales", created_ms=0, subject="Invoice",
                         customer={"name": "Dana Ortiz"})
    main.offer_toast.render_offer(ev.OfferInfo(call, 60_000, 90_000, "A", 3), 65_000)
    main.banner.render(pr.FailoverBanner(visible=True, phase="logging_in", from_endpoint="A", to_endpoint="B"), 0.0)
    main.show()
    toast = main.offer_toast

    def text_lightness(widget) -> int:
        return widget.palette().color(QPalette.ColorRole.WindowText).lightness()

    try:
        qtbot.waitUntil(lambda: toast.isVisible() and main.banner.isVisible())
        assert text_lightness(toast.title_label) < 128
        apply_look("dark", 0)
        qtbot.waitUntil(lambda: text_lightness(toast.title_label) > 128
                        and text_lightness(toast.customer_label) > 128
                        and toast.accept_button.palette().color(QPalette.ColorRole.Button).lightness() < 128)
        apply_look("system", 0)
        qtbot.waitUntil(lambda: text_lightness(toast.title_label) < 128
                        and toast.accept_button.palette().color(QPalette.ColorRole.Button).lightness() > 128)
    finally:
        apply_look("system", 0)  # one QApplication for the whole test session
