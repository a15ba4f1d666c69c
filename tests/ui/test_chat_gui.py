"""A chat in the desktop against a real pair of servers: the customer (a carrier's sockets) and the
agent (the reply box, Enter to send) exchange lines while the primary is killed (kill -9); after
the failover the transcript is complete, in order, each line once, and the completing server's
final transcript says the same. And an email: its body, and a reply draft that crosses a failover."""

from __future__ import annotations

import itertools
import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop.core import events as ev
from desktop.ui.chat import SENDING
from desktop.ui.controller import DesktopController
from tests.support.reporting import ReportingWatcher
from tests.ui.test_desktop_gui import WAIT
from tests.ui.test_interactions_gui import demo_accepted, logged_in_ready, submit

pytestmark = pytest.mark.slow

_ids = itertools.count(1)


@pytest.fixture
def carriers(pair):
    made = [ReportingWatcher(server.url, user="carrier1") for server in pair]
    yield made
    for watcher in made:
        watcher.close()


def answer(watcher: ReportingWatcher, request_id: str) -> dict | None:
    return next((e for e in list(watcher.events) if e.get("request_id") == request_id), None)


def customer_says(qtbot, carriers: list[ReportingWatcher], iid: str, line_id: str, text: str) -> int:
    """The customer's line, sent as the traffic source sends it: to every site the carrier is
    subscribed at, again until one of them answers it; its line_seq."""
    for _ in range(100):
        live = [c for c in carriers if not c.closed.is_set()]
        sent = []
        for carrier in live:
            request_id = f"cust-{next(_ids)}"
            carrier.send({"type": "RequestSendChatMessage", "request_id": request_id, "interaction_id": iid,
                          "line_id": line_id, "text": text})
            sent.append((carrier, request_id))
        qtbot.waitUntil(lambda sent=sent: all(answer(c, r) is not None or c.closed.is_set() for c, r in sent),
                        timeout=WAIT)
        acks = [a for a in (answer(c, r) for c, r in sent) if a is not None and a["type"] == "EventAck"]
        if acks:
            return acks[0]["line_seq"]
        qtbot.wait(200)  # retry pacing (a site that does not hold the chat yet refused it), as the carrier's
    raise AssertionError(f"no site took {line_id}")


def in_hand(qtbot, desktop: DesktopController, carrier: ReportingWatcher, iid: str,
            **interaction) -> tuple[DesktopController, list[ev.Event]]:
    """Agent 1001 logged in at A, Ready, in a window at its minimum size (640x600: a chat must be
    workable there), accepts ``iid`` submitted by the carrier; (desktop, the session's events)."""
    main, toast = desktop.main_window, desktop.main_window.offer_toast
    seen: list[ev.Event] = []
    desktop.bridge.event.connect(seen.append)
    logged_in_ready(qtbot, desktop, "1001")
    main.resize(640, 600)
    submit(qtbot, carrier, iid, **interaction)
    qtbot.waitUntil(toast.isVisible, timeout=WAIT)
    qtbot.mouseClick(toast.accept_button, Qt.MouseButton.LeftButton)
    return desktop, seen


def assert_workable(controls) -> None:
    """Every control at least its minimum size (the window at its minimum: nothing squashed)."""
    for widget in controls:
        hint = widget.minimumSizeHint()
        assert widget.isVisible() and widget.width() >= hint.width() and widget.height() >= hint.height(), (
            widget.accessibleName(), widget.size(), hint)


def drafts(desktop: DesktopController) -> list[str]:
    snapshot = desktop.bridge.snapshot()
    return [chat.draft for chat in snapshot.chats] if snapshot is not None else []


def rows(panel) -> list[str]:
    view = panel.conversation.transcript
    return [view.item(i).text() for i in range(view.count())]


def texts(panel) -> list[str]:
    return [row.split("\n", 1)[1] for row in rows(panel)]


@pytest.mark.server_processes
def test_a_chat_keeps_every_line_once_and_in_order_across_a_kill9_of_the_primary(pair, carriers, make_desktop,
                                                                                  qtbot):
    a, b = pair
    carrier_a, carrier_b = carriers
    desktop, seen = in_hand(qtbot, make_desktop([a, b]), carrier_a, "chat-gui-1", media="chat",
                            customer={"name": "Dana Ortiz"})
    main, panel = desktop.main_window, desktop.main_window.interactions
    view = panel.conversation
    qtbot.waitUntil(lambda: view.isVisible() and view.transcript.isVisible() and view.reply.isVisible()
                    and not main.offer_toast.isVisible(), timeout=WAIT)
    assert not view.email_box.isVisible()
    controls = (view.transcript, view.reply, view.send_button, panel.notes_edit, panel.disposition_combo,
                panel.done_button)
    assert_workable(controls)

    assert customer_says(qtbot, carriers, "chat-gui-1", "c-1", "Hi, my parcel is late.") == 1
    qtbot.waitUntil(lambda: texts(panel) == ["Hi, my parcel is late."], timeout=WAIT)
    assert rows(panel)[0].startswith("Dana Ortiz · ")
    view.reply.setFocus()
    qtbot.keyClicks(view.reply, "Sorry to hear that.")
    qtbot.keyClick(view.reply, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)  # a new line, not sent
    qtbot.keyClicks(view.reply, "Order number?")
    assert view.reply.toPlainText() == "Sorry to hear that.\nOrder number?"
    qtbot.keyClick(view.reply, Qt.Key.Key_Return)  # sent
    assert view.reply.toPlainText() == ""
    qtbot.waitUntil(lambda: texts(panel)[-1:] == ["Sorry to hear that.\nOrder number?"]
                    and SENDING not in rows(panel)[-1], timeout=WAIT)
    assert rows(panel)[-1].startswith("You · ")

    # The customer types, and A dies at once: that line was taken by A (and is at B), or is sent
    # again to B by the carrier; the agent types two lines while the desktop is moving to B.
    carrier_a.send({"type": "RequestSendChatMessage", "request_id": "cust-late", "interaction_id": "chat-gui-1",
                    "line_id": "c-2", "text": "It is 88-1203."})
    a.kill9()
    qtbot.waitUntil(main.banner.isVisible, timeout=WAIT)
    QApplication.sendPostedEvents()  # the layout requests the banner posted
    assert_workable(controls)  # the failover banner takes room too
    for line in ("Let me look.", "One moment please."):
        qtbot.keyClicks(view.reply, line)
        qtbot.keyClick(view.reply, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "primary, logged in", timeout=WAIT)
    customer_says(qtbot, carriers, "chat-gui-1", "c-2", "It is 88-1203.")  # sent again where it is now (B)
    customer_says(qtbot, carriers, "chat-gui-1", "c-3", "Thanks!")
    expected_agent = ["Sorry to hear that.\nOrder number?", "Let me look.", "One moment please."]
    expected_customer = ["Hi, my parcel is late.", "It is 88-1203.", "Thanks!"]
    qtbot.waitUntil(lambda: sorted(texts(panel)) == sorted(expected_agent + expected_customer)
                    and not any(SENDING in row for row in rows(panel)), timeout=WAIT)
    shown = texts(panel)
    assert [t for t in shown if t in expected_agent] == expected_agent  # in the order typed
    assert [t for t in shown if t in expected_customer] == expected_customer
    added = [e.line for e in seen if isinstance(e, ev.ChatLineAdded)]
    assert sorted(line.seq for line in added) == list(range(1, 7)), "each line delivered once"
    snapshot = desktop.bridge.snapshot()
    assert snapshot is not None
    (chat,) = snapshot.chats
    assert [line.seq for line in chat.lines] == list(range(1, 7))

    # Done: B's final transcript (to the carrier) is the desktop's, line for line.
    panel.disposition_combo.setCurrentIndex(panel.disposition_combo.findData("resolved"))
    qtbot.mouseClick(panel.done_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(e["type"] == "EventChatTranscript" and e.get("final") for e in carrier_b.events),
                    timeout=WAIT)
    final = next(e for e in carrier_b.events if e["type"] == "EventChatTranscript" and e.get("final"))
    assert [line["text"] for line in final["lines"]] == shown
    assert len({line["line_id"] for line in final["lines"]}) == 6
    assert json.dumps(final).count('"c-2"') == 1


@pytest.mark.server_processes
def test_an_email_shows_its_body_and_its_reply_draft_survives_a_kill9(pair, carriers, make_desktop, qtbot):
    a, b = pair
    desktop, seen = in_hand(qtbot, make_desktop([a, b]), carriers[0], "mail-gui-1", media="email",
                            body="My parcel has not arrived.\nOrder 88-1203.")
    main, panel = desktop.main_window, desktop.main_window.interactions
    view = panel.conversation
    qtbot.waitUntil(lambda: view.email_box.isVisible(), timeout=WAIT)
    assert not view.chat_box.isVisible()
    assert view.body.toPlainText() == "My parcel has not arrived.\nOrder 88-1203." and view.body.isReadOnly()
    qtbot.keyClicks(view.draft, "Dear Dana,")
    qtbot.waitUntil(lambda: any(isinstance(e, ev.DraftSaved) and e.endpoint == "A" for e in seen), timeout=WAIT)
    a.kill9()
    qtbot.keyClicks(view.draft, " your parcel left today.")  # typed while the desktop moves to B
    qtbot.waitUntil(lambda: main.connections.role_of("B") == "primary, logged in", timeout=WAIT)
    qtbot.waitUntil(lambda: any(isinstance(e, ev.DraftSaved) and e.endpoint == "B" for e in seen)
                    and drafts(desktop) == ["Dear Dana, your parcel left today."],
                    timeout=WAIT)
    assert view.draft.toPlainText() == "Dear Dana, your parcel left today."


def test_the_demo_sends_a_test_chat_whose_customer_types_and_answers(demo_servers, make_desktop, qtbot):
    """The whole path a newcomer takes: the demo's carrier (``interaction-server traffic``) plays
    the customer of a test chat, the agent answers with Enter, and the customer answers that."""
    desktop = demo_accepted(qtbot, make_desktop, demo_servers, Qt.Key.Key_H, "Chat – sales")  # Send a test chat
    panel = desktop.main_window.interactions
    view = panel.conversation
    qtbot.waitUntil(lambda: len(rows(panel)) >= 1, timeout=WAIT)  # the customer's first line
    assert not rows(panel)[0].startswith("You")
    view.reply.setFocus()
    qtbot.keyClicks(view.reply, "Hello! How can I help?")
    qtbot.keyClick(view.reply, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Hello! How can I help?" in texts(panel)
                    and any(not row.startswith("You") for row in rows(panel)[texts(panel).index(
                        "Hello! How can I help?") + 1:]), timeout=WAIT)  # the customer answered
