"""The desktop and the supervisor view in French, the second language: every marked string has its
translation, the shipped .qm is built from the .ts, and the real windows built in French show no
English word a translation should have replaced (a string nobody marked fails here too), the
interaction widgets included in every state that shows words (an offer, a call on hold with the
transfer picker open, a consultation, a chat, an email, After Call Work), and the French mnemonics
of what shows at once never clash."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest
from PySide6.QtCore import QLocale, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QStatusBar,
    QTableView,
    QTabWidget,
    QWidget,
)

from desktop.core import events as ev
from desktop.ui import interaction_presenter as ip
from desktop.ui import transfer_presenter as tp
from desktop.ui import translations
from desktop.ui.attention import OfferPopup
from desktop.ui.settings import DesktopSettings, Site
from desktop.ui.widgets import MainWindow
from installer import translations as tooling  # the tool that regenerates the .ts and .qm
from server_stub import protocol as p

LETTERS = re.compile(r"[A-Za-z]{3}")
OWN_WORDS = {"English", "Français"}  # each language named in its own words, in every language
QT_OWN = {"Scroll Left", "Scroll Right"}  # Qt's own tab bar buttons (Qt's translations, not the product's)
# What the scenes below show as the server's or the customer's words (data: never translated).
DATA = ("Dana Ortiz", "Invoice question", "Wants the invoice re-sent.", "sales", "support", "billing", "Resolved",
        "Follow-up needed", "Hello, my parcel is late.", "Name", "Account")
T0 = 1_767_254_400_000


def test_every_marked_string_has_its_french_translation(tmp_path):
    """What pyside6-lupdate finds in the code today, against the committed translations."""
    ts = tmp_path / "agent_desktop_fr.ts"
    shutil.copy(tooling.ts_path("fr"), ts)
    tooling.update(out=tmp_path)
    missing = tooling.untranslated(ts)
    assert missing == [], (f"{len(missing)} string(s) without a French translation: {missing[:10]}; add them to "
                           f"resources/translations/agent_desktop_fr.ts (installer/translations.py updates it)")


def test_the_shipped_qm_is_built_from_the_ts(tmp_path):
    ts = tmp_path / "agent_desktop_fr.ts"
    shutil.copy(tooling.ts_path("fr"), ts)
    subprocess.run([tooling.tool("pyside6-lrelease"), str(ts), "-qm", str(tmp_path / "fr.qm")], check=True,
                   capture_output=True)
    assert (tmp_path / "fr.qm").read_bytes() == translations.qm_path("fr").read_bytes(), \
        "run installer/translations.py to rebuild resources/translations/agent_desktop_fr.qm"


def test_the_language_is_the_settings_one_else_the_systems_else_english():
    assert translations.choose("fr") == "fr"
    assert translations.choose("en", QLocale("fr_FR")) == "en"
    assert translations.choose("", QLocale("fr_CA")) == "fr"
    assert translations.choose("", QLocale("de_DE")) == "en"
    assert translations.choose("xx") == "en"


def messages() -> list[tuple[str, str]]:
    """(source, French) of every message in the shipped translation."""
    return [(message.findtext("source") or "", message.findtext("translation") or "")
            for message in ET.parse(tooling.ts_path("fr")).getroot().iter("message")]


def same_in_french() -> list[re.Pattern]:
    """The sources whose French is the same text ("Site {0}", "URL"), as patterns of what they show."""
    out = []
    for source, translation in messages():
        if source == translation:
            out.append(re.compile(re.sub(r"\\\{[^}]*\\\}", ".*", re.escape(source)) + r"\Z"))
    return out


def texts(window: QWidget) -> dict[str, str]:
    """Every text a person reads or hears in ``window``, keyed by where it is."""
    out: dict[str, str] = {}

    def walk(widget: QWidget, path: str) -> None:
        for what, text in (("title", widget.windowTitle()), ("name", widget.accessibleName()),
                           ("description", widget.accessibleDescription()), ("tip", widget.toolTip())):
            out[f"{path}:{what}"] = text
        if isinstance(widget, (QLabel, QAbstractButton)):
            out[f"{path}:text"] = widget.text()
        if isinstance(widget, (QLineEdit, QPlainTextEdit)):
            out[f"{path}:placeholder"] = widget.placeholderText()
        if isinstance(widget, QListWidget):
            for i in range(widget.count()):
                out[f"{path}:row{i}"] = widget.item(i).text()
        if isinstance(widget, QStatusBar):
            out[f"{path}:message"] = widget.currentMessage()
        if isinstance(widget, QComboBox):
            for i in range(widget.count()):
                out[f"{path}:item{i}"] = widget.itemText(i)
        if isinstance(widget, QTabWidget):
            for i in range(widget.count()):
                out[f"{path}:tab{i}"] = widget.tabText(i)
        if isinstance(widget, QTableView) and widget.model() is not None:  # QTableWidget too
            model = widget.model()
            for i in range(model.columnCount()):
                out[f"{path}:column{i}"] = str(model.headerData(i, Qt.Orientation.Horizontal) or "")
        if isinstance(widget, QMainWindow):
            for i, action in enumerate(widget.menuBar().actions()):
                out[f"{path}:menu{i}"] = action.text()
                menu = action.menu()
                for j, sub in enumerate(menu.actions() if isinstance(menu, QMenu) else ()):
                    out[f"{path}:menu{i}.{j}"] = sub.text()
        for index, child in enumerate(widget.findChildren(QWidget, options=_direct())):
            walk(child, f"{path}/{type(child).__name__}[{index}]")

    walk(window, type(window).__name__)
    return out


def _direct():
    return Qt.FindChildOption.FindDirectChildrenOnly


def build(qtbot, user_store) -> list[QWidget]:
    from desktop.supervisor.window import LoginPanel, SupervisorWindow
    from desktop.ui.settings_window import SettingsWindow
    from desktop.ui.widgets import LoginWindow
    from tests.supervisor.test_model import populated

    settings = DesktopSettings(sites=(Site("A", "ws://127.0.0.1:9"),), preferred_site="A")
    feed, _ = populated(3)
    settings_window = SettingsWindow(user_store)
    windows = [LoginWindow(settings, None), MainWindow(), settings_window, OfferPopup(),
               SupervisorWindow(feed.engine), LoginPanel()]
    for window in windows:
        qtbot.addWidget(window)
    settings_window.show_for()
    return windows


def scenes(qtbot) -> list[MainWindow]:
    """Main windows showing every interaction word: a transferred offer over a call on hold with the
    transfer picker open (Done refused, a hold refused), a consultation, a chat and an email in hand,
    After Call Work after a missed offer."""
    customer = {"name": "Dana Ortiz", "account": "88-1203"}
    call = p.Interaction(interaction_id="c1", media="voice", queue="sales", created_ms=T0, subject="Invoice question",
                         customer=customer)
    transferred = p.Interaction(interaction_id="c2", media="voice", queue="billing", created_ms=T0, customer=customer,
                                notes="Wants the invoice re-sent.",
                                transfers=[p.TransferStep(kind="blind", from_agent="1002", at_ms=T0,
                                                          to_queue="billing")])
    chat = p.Interaction(interaction_id="h1", media="chat", queue="support", created_ms=T0)
    email = p.Interaction(interaction_id="m1", media="email", queue="support", created_ms=T0,
                          subject="Invoice question", body="Hello, my parcel is late.")
    ready = ev.AgentStatus("ready", None, T0, 3, "A")
    now = T0 + 65_000

    def window(held: tuple[ev.HeldInfo, ...], offer: ev.OfferInfo | None = None,
               status: ev.AgentStatus = ready) -> MainWindow:
        made = MainWindow()
        qtbot.addWidget(made)
        made.set_reasons({})
        made.interactions.set_dispositions([("Resolved", "resolved"), ("Follow-up needed", "follow_up")])
        made.interactions.render_held(held, ip.acw_text(status, now), now)
        made.offer_toast.render_offer(offer, now)
        offers = (offer,) if offer is not None else ()
        made.render_state(ip.handling_state(status, offers, held, {}, now), True, "1001")
        return made

    on_hold = window((ev.HeldInfo(call, T0, "", "A", 3, False, T0 + 5_000),),
                     ev.OfferInfo(transferred, now, now + 20_000, "A", 3))
    on_hold.interactions.controls.transfer_button.click()  # the picker opens
    on_hold.interactions.done_button.click()  # refused here: no disposition chosen
    refused = ev.InteractionFailed("r1", ev.InteractionIntent("resume", "c1"), "not_available", "")
    on_hold.interactions.controls.show_failure(refused)
    on_hold.statusBar().showMessage(ip.ended_text(ev.InteractionEnded("c0", "completed", "resolved", "", "A"),
                                                  {"resolved": "Resolved"}))
    consulting = window((ev.HeldInfo(call, T0, "", "A", 3, False, None, ev.TransferInfo("accepted", "1002", None)),),
                        ev.OfferInfo(transferred, now, now + 20_000, "A", 3, consult_from="1003", consulting=True))
    consulting.statusBar().showMessage(tp.failed_text(
        ev.InteractionFailed("r2", ev.InteractionIntent("complete_transfer", "c1"), "not_accepted", "")))
    held = (ev.HeldInfo(chat, T0, "", "A", 3, False), ev.HeldInfo(email, T0, "", None, None, False))
    chatting, mailing = window(held), window(held)
    lines = (p.ChatLine(seq=1, line_id="l1", sender="customer", text="Hello, my parcel is late.", at_ms=T0),
             p.ChatLine(seq=2, line_id="l2", sender="agent", text="Dana Ortiz", at_ms=T0 + 1_000))
    for made in (chatting, mailing):
        made.interactions.conversation.render_chats((ev.ChatInfo("h1", lines, (("l3", "Resolved"),), ""),),
                                                    {"h1", "m1"})
    mailing.interactions.list.setCurrentRow(1)
    assert mailing.interactions.conversation.email_box.isVisibleTo(mailing.interactions.conversation)
    wrap_up = window((), None, ev.AgentStatus("after_call_work", None, T0, 3, "A", until_ms=now + 30_000))
    wrap_up.offer_toast.render_offer(ev.OfferInfo(call, T0, now, "A", 3), now)
    wrap_up.offer_revoked(ev.OfferRevoked("c1", "timeout", "", "A"), now)
    return [on_hold, consulting, chatting, mailing, wrap_up]


@pytest.fixture
def french(qapp):
    yield lambda: translations.install(qapp, "fr")
    translations.install(qapp, "en")


def still_english(text: str, allowed: list[re.Pattern], same: set[str]) -> bool:
    """A text shown the same in both languages that is neither a language's own name, nor a source
    whose French is the same text, nor only words French shares with English and the scenes' data."""
    if not LETTERS.search(text) or text in OWN_WORDS | QT_OWN or any(pattern.match(text) for pattern in allowed):
        return False
    for words in (*DATA, *same):
        text = re.sub(rf"(?<!\w){re.escape(words)}(?!\w)", " ", text)
    return bool(LETTERS.search(text))


def test_the_windows_built_in_french_show_no_untranslated_english(qtbot, qapp, user_store, french):
    english = [texts(w) for w in build(qtbot, user_store) + scenes(qtbot)]
    assert french() == "fr"
    in_french = [texts(w) for w in build(qtbot, user_store) + scenes(qtbot)]
    allowed = same_in_french()
    same = {source.replace("&", "") for source, french in messages() if source == french and "{" not in source}
    left = sorted({(where, text) for en, fr in zip(english, in_french, strict=True) for where, text in en.items()
                   if fr.get(where) == text and still_english(text, allowed, same)})
    assert left == [], f"{len(left)} English text(s) left in the French windows: {left[:15]}"
    # And it is French indeed: the main window's buttons and the supervisor's title, a call on hold.
    assert in_french[1]["MainWindow:title"] == "Poste agent"
    assert in_french[4]["SupervisorWindow:title"] == "Superviseur — état des agents"
    on_hold = scenes(qtbot)[0]
    assert on_hold.state_label.text() == "En attente – Appel vocal"
    assert on_hold.interactions.controls.hold_button.text() == "Re&prendre"


def mnemonics(window: MainWindow) -> list[tuple[str, str]]:
    """(letter, text) of every Alt+letter the window answers to now: its menus, its tabs, and the
    visible, enabled buttons and labels with a buddy."""
    found = [action.text() for action in window.menuBar().actions()]
    for tabs in window.findChildren(QTabWidget):
        found += [tabs.tabText(i) for i in range(tabs.count())]
    for widget in window.findChildren(QWidget):
        if not (widget.isVisibleTo(window) and widget.isEnabled()):
            continue
        if isinstance(widget, QAbstractButton) or (isinstance(widget, QLabel) and widget.buddy() is not None):
            found.append(widget.text())
    return [(match.group(1).lower(), text) for text in found for match in re.finditer(r"&([^&\s])", text)]


def test_in_french_no_two_controls_shown_at_once_share_a_mnemonic(qtbot, french):
    assert french() == "fr"
    shown = []
    for window in scenes(qtbot):
        letters = mnemonics(window)
        clashes = sorted(pair for pair in letters if [letter for letter, _ in letters].count(pair[0]) > 1)
        assert clashes == [], f"{window.state_label.text()}: {clashes}"
        shown.append({letter for letter, _ in letters})
    # The walk sees them: the offer's, the call's, the picker's (on hold), the consultation's, the chat's, the email's.
    assert set("arpfmnqvsul") <= shown[0] and set("lg") <= shown[1] and set("hp") <= shown[2] \
        and set("eb") <= shown[3], shown
    # The refusal names the disposition's own Alt+letter.
    assert "(Alt+Q)" in scenes(qtbot)[0].interactions.done_error.text()


def test_in_english_no_two_controls_shown_at_once_share_a_mnemonic(qtbot):
    """Alt+letter reaches one control: a clash makes the keyboard-only agent cycle between two
    (Alt+F was both the Figures tab and Transfer…, Alt+S both the State menu and the disposition)."""
    for window in scenes(qtbot):
        letters = mnemonics(window)
        clashes = sorted(pair for pair in letters if [letter for letter, _ in letters].count(pair[0]) > 1)
        assert clashes == [], f"{window.state_label.text()}: {clashes}"
    assert "(Alt+P)" in scenes(qtbot)[0].interactions.done_error.text()


def test_the_event_log_rows_stay_in_english_for_support(french):
    """The French desktop's log rows read as the English one's (support reads them: README)."""
    assert french() == "fr"
    call = p.Interaction(interaction_id="c1", media="voice", queue="sales", created_ms=T0)
    ended = ev.InteractionEnded("c1", "abandoned", None, "", "A")
    events = [ev.OfferReceived(call, T0, T0 + 20_000, "A", 3), ended,
              ev.TransferChanged("c1", "refused", "1001", "1002", None, "", "A")]
    rows = [(ip.log_row(event, T0) or tp.log_row(event, T0)) for event in events]
    assert [row.text for row in rows if row] == [
        "Offered c1: Voice call – sales (site A)", "Interaction c1 ended: the customer hung up",
        "Transfer of c1 to agent 1002: declined; the interaction stays with you"]
    assert ip.ended_text(ended) == "Interaction c1 terminée : le client a raccroché"  # the status bar's: French
