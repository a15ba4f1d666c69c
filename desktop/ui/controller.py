"""Wires the windows to the session bridge: login, state intents, events into panels and tray.

Decisions about text live in the presenter; this module only routes signals and keeps a 4 Hz
refresh for the ticking clocks (time in state, heartbeat ages, banner elapsed time).
"""

from __future__ import annotations

import logging
import time
from importlib.metadata import PackageNotFoundError, version

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon

from .. import credentials
from ..core import events as ev
from ..core.config import SessionConfig
from ..gui_calls import Chores, GuiCalls
from . import figures as fg
from . import interaction_presenter as ip
from . import presenter as pr
from . import transfer_presenter as tp
from .attention import OfferPopup, Ringer
from .bridge import SessionBridge
from .icons import icon
from .settings import DesktopSettings
from .widgets import LoginWindow, MainWindow, copy_to_clipboard

log = logging.getLogger("desktop.ui")
REFRESH_MS = 250
LOGOUT_GRACE_MS = 3000


def app_version() -> str:
    try:
        return version("agent-desktop")
    except PackageNotFoundError:
        return "dev"


class Tray(QObject):
    """The tray icon (state) and its notifications; a no-op where the platform has no tray."""

    def __init__(self, parent=None, tray_icon: QSystemTrayIcon | None = None):
        """``tray_icon``: use this one (tests: a real object where the platform has no tray)."""
        super().__init__(parent)
        self.icon: QSystemTrayIcon | None = tray_icon
        self.menu: QMenu | None = None  # the icon's context menu, kept alive here
        self.shown: list[pr.Notification] = []
        self.state: tuple[str, str] = ("offline", "")
        if self.icon is None and QSystemTrayIcon.isSystemTrayAvailable():
            self.icon = QSystemTrayIcon(icon("offline"), self)  # an icon before show(): else "No Icon set"
            self.icon.setToolTip(self.tr("Agent Desktop"))
            self.icon.show()
        if self.icon is not None:
            self.icon.setIcon(icon("offline"))
            self.icon.setToolTip(self.tr("Agent Desktop"))

    def set_state(self, name: str, tooltip: str) -> None:
        """Icon and tooltip for the agent's state; only a change reaches the tray (refresh runs 4×/s)."""
        if (name, tooltip) == self.state:
            return
        self.state = (name, tooltip)
        if self.icon is not None:
            self.icon.setIcon(icon(name))
            self.icon.setToolTip(self.tr("Agent Desktop – {0}").format(tooltip))

    def notify(self, note: pr.Notification, bubble: bool = True) -> None:
        """Record ``note`` and show it as the tray's message, which replaces the one before (never a
        stack); ``bubble`` False: recorded only (an offer, which the offer pop-up shows)."""
        self.shown = self.shown[-99:] + [note]
        if bubble and self.icon is not None and QSystemTrayIcon.supportsMessages():
            kind = QSystemTrayIcon.MessageIcon.Warning if note.critical else QSystemTrayIcon.MessageIcon.Information
            self.icon.showMessage(note.title, note.message, kind, 5000)

    def hide(self) -> None:
        if self.icon is not None:
            self.icon.hide()


class DesktopController(QObject):
    """One agent's desktop: the login window, the main window, the tray, and the session bridge."""

    logged_in = Signal()
    logged_out = Signal(str)
    settings_requested = Signal()

    def __init__(self, settings: DesktopSettings, store: QSettings, *, keyring_reason: str | None = None,
                 probe_keyring: bool = False, ca_file: str | None = None,
                 unreachable_after: float = pr.UNREACHABLE_AFTER, tray_icon: QSystemTrayIcon | None = None,
                 parent=None):
        """``keyring_reason``: why "Remember me" is unavailable (None: it is available). With
        ``probe_keyring`` the keyring backend is asked on the chores thread instead, and the login
        window disables "Remember me" once it answers that there is none (the application's way:
        the GUI thread never waits on the keyring, not even to find out whether there is one)."""
        super().__init__(parent)
        self.settings = settings
        self.store = store
        self.keyring_reason = keyring_reason
        self.bridge = SessionBridge(self, ca_file=ca_file)
        # Keyring reads and writes: never on the GUI thread (a locked collection waits on the user).
        self.chores = Chores(GuiCalls(self), name="desktop-keyring")
        self._remembered_agent: str | None = None  # whose password this desktop put in the keyring
        self.login_presenter = pr.LoginPresenter(unreachable_after)
        self.banner = pr.FailoverBanner()
        self.labels: dict[str, str] = {}
        self.disposition_labels: dict[str, str] = {}
        self.remember = False
        self.quit_after_logout = False
        self._remember_password: str | None = None
        self.quit_app = QApplication.quit  # replaceable: tests share one QApplication
        self.agent_id: str | None = None
        self.login_window = LoginWindow(settings, keyring_reason)
        self.main_window = MainWindow()
        self.tray = Tray(self, tray_icon)
        # Attention for offers: the ring, and one pop-up that can accept (desktop/ui/attention.py).
        self.ringer = Ringer(self)
        self.ringer.configure(settings.ring, settings.ring_volume, settings.ring_device)
        self.offer_popup = OfferPopup()
        self._answered: set[str] = set()  # offers the agent answered here: they ring no more
        self.figures = fg.AgentFigures()
        if self.tray.icon is not None:
            menu = QMenu()
            menu.addAction(self.tr("Show Agent Desktop"), self.raise_current_window)
            menu.addAction(self.tr("Quit"), self.logout_and_quit)
            self.tray.icon.setContextMenu(menu)
            self.tray.menu = menu
            self.tray.icon.activated.connect(lambda reason: self.raise_current_window()
                                             if reason == QSystemTrayIcon.ActivationReason.Trigger else None)
            self.tray.icon.messageClicked.connect(self.raise_current_window)
        self._restore_geometry()
        self._prefill()
        if probe_keyring:
            self.chores.run(credentials.keyring_unavailable_reason, then=self._keyring_probed)

        self.login_window.login_requested.connect(self.request_login)
        self.login_window.settings_requested.connect(self.settings_requested)
        self.main_window.settings_requested.connect(self.settings_requested)
        mw = self.main_window
        mw.ready_requested.connect(self.bridge.set_ready)
        mw.not_ready_requested.connect(self.bridge.set_not_ready)
        mw.acw_requested.connect(self.bridge.set_after_call_work)
        mw.extend_requested.connect(self.bridge.extend_after_call_work)
        mw.logout_requested.connect(self.bridge.logout)
        mw.close_requested.connect(self.logout_and_quit)
        mw.banner.dismissed.connect(self._dismiss_banner)
        mw.event_log.copy_requested.connect(self.copy_for_support)
        mw.offer_toast.accept_requested.connect(self._accept)
        mw.offer_toast.reject_requested.connect(self._reject)
        self.offer_popup.accept_requested.connect(self._accept_from_popup)
        self.offer_popup.show_requested.connect(self.raise_current_window)
        mw.interactions.notes_changed.connect(self.bridge.update_notes)
        mw.interactions.done_requested.connect(self.bridge.complete)
        mw.interactions.chat_send_requested.connect(self.bridge.send_chat)
        mw.interactions.draft_changed.connect(self.bridge.update_draft)
        mw.interactions.controls.hold_requested.connect(self.bridge.hold)
        mw.interactions.controls.transfer_requested.connect(self._transfer)
        mw.interactions.controls.end_transfer_requested.connect(self._end_transfer)
        mw.interactions.controls.targets_wanted.connect(self.bridge.request_transfer_targets)
        self.bridge.event.connect(self.on_event)
        self.refresh_timer = QTimer(self)
        self.refresh_timer.setInterval(REFRESH_MS)
        self.refresh_timer.timeout.connect(self.refresh)

    # ------------------------------------------------------------------ windows

    def show(self) -> None:
        self.login_window.show()

    def _restore_geometry(self) -> None:
        for key, window in (("geometry/login", self.login_window), ("geometry/main", self.main_window)):
            saved = self.store.value(key)
            if saved is not None:
                window.restoreGeometry(saved)

    def save_geometry(self) -> None:
        self.store.setValue("geometry/login", self.login_window.saveGeometry())
        self.store.setValue("geometry/main", self.main_window.saveGeometry())
        self.store.sync()

    def _prefill(self) -> None:
        agent = self.store.value("login/agent_id")
        place = self.store.value("login/place")
        if isinstance(agent, str):
            self.login_window.agent_edit.setText(agent)
        if isinstance(place, str):
            self.login_window.place_edit.setText(place)
        remembered = str(self.store.value("login/remember", "false")).lower() == "true"
        if remembered and self.keyring_reason is None and isinstance(agent, str):
            self._remembered_agent = agent
            self.login_window.remember_check.setChecked(True)
            self._fill_remembered_password(agent)

    def _keyring_probed(self, reason: str | None) -> None:
        """The chores thread found out whether a keyring backend exists (``probe_keyring``)."""
        if reason is None or self.keyring_reason is not None:
            return
        self.keyring_reason = reason
        window = self.login_window
        window.remember_check.setChecked(False)
        window.remember_check.setEnabled(False)
        window.remember_reason.setText(reason)
        window.remember_reason.setVisible(True)

    def _fill_remembered_password(self, agent_id: str) -> None:
        """The keyring's password back in the field (a fresh start, or at the login window after a
        logout), read on the chores thread: the window shows at once and the field fills in when the
        keyring answers (it may first ask the user to unlock it)."""

        def fill(stored: str | None) -> None:
            window = self.login_window
            # Only into what it was read for: not over what the user has typed meanwhile, nor once
            # the user is logged in or has turned to another agent id.
            if (stored and not self.main_window.isVisible() and window.agent_edit.text().strip() == agent_id
                    and not window.password_edit.text()):
                window.password_edit.setText(stored)

        self.chores.run(credentials.load_password, agent_id, then=fill)

    def fill_login(self, agent_id: str, password: str, place: str) -> None:
        self.login_window.agent_edit.setText(agent_id)
        self.login_window.password_edit.setText(password)
        self.login_window.place_edit.setText(place)

    def apply_settings(self, settings: DesktopSettings) -> None:
        """New settings take effect at the next login (a live session keeps its servers); the ring's
        at once."""
        self.settings = settings
        self.login_window.set_sites(settings)
        self.ringer.configure(settings.ring, settings.ring_volume, settings.ring_device)

    def _accept(self, interaction_id: str) -> None:
        self._answered.add(interaction_id)
        self.ringer.stop()
        self.offer_popup.render_offer(None, 0, False)
        self.bridge.accept(interaction_id)

    def _accept_from_popup(self, interaction_id: str) -> None:
        """Accepted in the pop-up: the call is the agent's now, and so is the window that works it."""
        self._accept(interaction_id)
        self.raise_current_window()

    def _transfer(self, interaction_id: str, kind: str, target_kind: str, target: str) -> None:
        # Notes typed just before Transfer… go first (not after the debounce): the next agent reads them.
        self.main_window.interactions.flush_notes()
        self.bridge.transfer(interaction_id, kind, target_kind, target)

    def _end_transfer(self, interaction_id: str, complete: bool) -> None:
        self.main_window.interactions.flush_notes()  # the hand-over carries the notes as typed
        self.bridge.end_transfer(interaction_id, complete)

    def _reject(self, interaction_id: str) -> None:
        self._answered.add(interaction_id)
        self.ringer.stop()
        self.offer_popup.render_offer(None, 0, False)
        self.bridge.reject(interaction_id)

    # ------------------------------------------------------------------ intents

    def request_login(self, agent_id: str, password: str, place: str, site: str, remember: bool) -> None:
        problem = self.login_presenter.validate(agent_id, password, site, [s.name for s in self.settings.sites])
        if problem:
            self.login_window.show_error(problem)
            return
        self.login_window.show_error("")
        self.agent_id, self.remember = agent_id, remember and self.keyring_reason is None
        self._remember_password = password if self.remember else None
        config = SessionConfig(
            endpoints=tuple(self.settings.ordered_sites(site)),
            heartbeat_timeout=self.settings.heartbeat_timeout, failback=self.settings.failback,
            queue_statistics=True)  # the Figures tab shows the agent's queues
        self.login_presenter.started(agent_id, time.monotonic())
        self.login_window.set_busy(True, self.tr("Logging in on site {0}…").format(site))
        self.bridge.login(config, agent_id, password, place=place or None)
        self.refresh_timer.start()

    def raise_current_window(self) -> None:
        # Logged in (the main window refuses a plain close) but hidden to the tray: the main window.
        logged_in = not self.main_window.allow_close
        window = self.main_window if logged_in or self.main_window.isVisible() else self.login_window
        window.showNormal()
        window.activateWindow()

    def logout_and_quit(self) -> None:
        """Closing the main window logs out properly (supervisors see a logout, not a lost link),
        then quits; a server that does not answer within LOGOUT_GRACE_MS does not keep the app open."""
        if self.bridge.session is None:
            self.quit_app()
            return
        self.quit_after_logout = True
        self.bridge.logout()
        QTimer.singleShot(LOGOUT_GRACE_MS, self, self.quit_app)

    def copy_for_support(self) -> None:
        text = pr.support_text(self.main_window.event_log.visible_rows(), self.agent_id, self.bridge.snapshot(),
                               app_version())
        copy_to_clipboard(text)
        self.main_window.statusBar().showMessage(self.tr("Copied the session summary and events for support."), 4000)

    def _dismiss_banner(self) -> None:
        self.banner.dismiss()
        self.main_window.banner.render(self.banner, time.monotonic())

    # ------------------------------------------------------------------ core events

    def on_event(self, event: ev.Event) -> None:
        now, wall_ms = time.monotonic(), int(time.time() * 1000)
        snapshot = self.bridge.snapshot()
        if snapshot is not None and snapshot.reasons:
            labels = pr.reason_labels(snapshot.reasons)
            if labels != self.labels:
                self.labels = labels
                self.main_window.set_reasons(pr.agent_reasons(snapshot.reasons))
        failures = 0
        if isinstance(event, ev.LinkRoleChanged) and snapshot is not None:
            failures = next((link.failures for link in snapshot.links if link.endpoint == event.endpoint), 0)
        if snapshot is not None and snapshot.dispositions:
            dispositions = pr.reason_labels(snapshot.dispositions)
            if dispositions != self.disposition_labels:
                self.disposition_labels = dispositions
                self.main_window.interactions.set_dispositions(ip.disposition_items(snapshot.dispositions))
        row = pr.log_row(event, wall_ms, self.labels, failures) or ip.log_row(event, wall_ms, self.disposition_labels) \
            or tp.log_row(event, wall_ms)
        if row is not None:
            self.main_window.event_log.add(row)
        log.debug("event %s", event)
        last_status = snapshot.agent if snapshot is not None else None
        if self.banner.on_event(event, now, snapshot, self.labels, last_status, wall_ms):
            self.main_window.banner.render(self.banner, now)
        note = pr.notification_for(event, self.labels, self.banner, snapshot)
        if note is not None:
            self.tray.notify(note)

        self._on_interaction_event(event)
        if isinstance(event, ev.LoggedIn):
            self._on_logged_in(event)
        elif isinstance(event, ev.LoginFailed):
            # Also during a failover (e.g. the backup refuses the resume token): the login is gone,
            # so the agent is back at the login window with the reason.
            self.login_presenter.finished()
            self._remember_password = None
            self.login_window.set_busy(False)
            self.login_window.show_error(self.login_presenter.failure_text(event))
            if self.main_window.isVisible():
                self.main_window.allow_close = True
                self.login_window.show()
                self.main_window.hide()
                self.login_window.ask_for_password()  # the resume token was refused: a fresh password
        elif isinstance(event, ev.LoggedOut):
            self._on_logged_out(event)
        self.refresh()

    def _on_interaction_event(self, event: ev.Event) -> None:
        """Offers get a tray note and focus; ends and refusals a status bar line. The panels
        themselves are drawn from the snapshot in refresh()."""
        mw = self.main_window
        self.figures.on_event(event)
        if isinstance(event, ev.OfferReceived):
            # The pop-up is the notification (refresh() shows it; a tray message beside it would
            # stack over it: this one is only recorded), and the ring starts (refresh() stops it).
            self.tray.notify(pr.Notification(ip.new_offer_title(event.interaction.media),
                                             ip.offer_title(event.interaction)), bubble=False)
            self._answered.discard(event.interaction.interaction_id)
            self.ringer.ring()
        elif isinstance(event, ev.InteractionStarted):
            mw.tabs.setCurrentWidget(mw.interactions)
        elif isinstance(event, ev.OfferRevoked):
            mw.offer_revoked(event, int(time.time() * 1000))
        elif isinstance(event, ev.TransferTargetsListed):
            mw.interactions.controls.picker.set_targets(event)
        elif isinstance(event, ev.InteractionEnded):
            mw.statusBar().showMessage(ip.ended_text(event, self.disposition_labels), 8000)
        elif isinstance(event, ev.InteractionFailed) and event.code not in ("primary_lost", "duplicate"):
            mw.statusBar().showMessage(ip.failed_text(event), 8000)
            if event.intent.action in ev.TRANSFER_ACTIONS:
                mw.interactions.controls.show_failure(event)
        elif isinstance(event, ev.ChatLineFailed):
            mw.statusBar().showMessage(self.tr("Chat line not sent: {0}").format(event.message), 8000)

    def _on_logged_in(self, event: ev.LoggedIn) -> None:
        self.login_presenter.finished()
        if self.login_window.isVisible() or not self.main_window.isVisible():
            self.figures.start(time.strftime("%Y-%m-%d"))  # a login's figures; a failover keeps them
            self.login_window.set_busy(False)
            self.main_window.allow_close = False
            self.main_window.show()  # before hiding the login, so there is always a window
            self.login_window.hide()
            self.store.setValue("login/agent_id", event.agent_id)
            self.store.setValue("login/place", self.login_window.place_edit.text().strip())
            self.store.setValue("login/remember", "true" if self.remember else "false")
            if self.remember and self._remember_password:
                self._remembered_agent = event.agent_id
                self.chores.run(credentials.store_password, event.agent_id, self._remember_password,
                                then=self._password_stored)
            elif self._remembered_agent is not None and self.keyring_reason is None:
                # "Remember me" was ticked for a password this desktop keeps, and the user unticked
                # it: forget that password. Without that, an unticked box never touches the keyring.
                self.chores.run(credentials.forget_password, self._remembered_agent)
                self._remembered_agent = None
            self._remember_password = None
            if event.replaced:
                self.main_window.statusBar().showMessage(pr.replaced_text(event.replaced) + ".", 15000)
            # From here on resume tokens carry the login; the password need not stay in memory.
            self.login_window.password_edit.clear()
            self.logged_in.emit()

    def _password_stored(self, problem: str | None) -> None:
        if problem:
            self.main_window.statusBar().showMessage(problem, 8000)

    def _on_logged_out(self, event: ev.LoggedOut) -> None:
        self.refresh_timer.stop()
        self.ringer.stop()
        self.offer_popup.render_offer(None, 0, False)
        self.main_window.allow_close = True
        if self.quit_after_logout:
            self.bridge.shutdown()
            self.main_window.hide()
            self.quit_app()
            return
        self.login_window.show()
        self.main_window.hide()
        self.banner = pr.FailoverBanner()
        self.main_window.banner.render(self.banner, time.monotonic())
        self.login_window.set_busy(False)
        self.bridge.shutdown()
        if self.remember and self.agent_id:
            self._fill_remembered_password(self.agent_id)
        self.login_window.show_error(self.login_presenter.logged_out_text(event.reason, event.by))
        self.tray.set_state("offline", self.tr("logged out"))
        self.logged_out.emit(event.reason)

    def refresh(self) -> None:
        """Tick the clocks and the connection panel from the core's snapshot."""
        snapshot = self.bridge.snapshot()
        if snapshot is None:
            return
        now, wall_ms = time.monotonic(), int(time.time() * 1000)
        if self.login_window.isVisible():
            message = self.login_presenter.unreachable_text(snapshot, now)
            if message and self.login_window.error_label.text() != message:
                self.login_window.show_error(message)
                self.login_window.set_busy(False)
        status = snapshot.agent
        connected = snapshot.primary is not None
        state = status.state if status else None
        where = self.tr("site {0}").format(snapshot.primary) if snapshot.primary else \
            self.tr("no server (moving…)") if snapshot.status == "failing_over" else self.tr("no server")
        handling = ip.handling_state(status, snapshot.offers, snapshot.held, self.labels, wall_ms)
        self.main_window.render_state(handling, connected,
                                      self.tr("Agent {0} on {1}").format(snapshot.agent_id or "", where))
        self.main_window.connections.render(pr.link_rows(snapshot, wall_ms))
        self.main_window.offer_toast.render_offer(snapshot.offers[0] if snapshot.offers else None, wall_ms)
        self.main_window.interactions.render_held(snapshot.held, ip.acw_text(status, wall_ms), wall_ms)
        self._render_attention(snapshot, wall_ms)
        self.main_window.render_extend(status.extends_left if status is not None and connected
                                       and status.state == "after_call_work" else 0)
        self.figures.tick(handling.kind, wall_ms, time.strftime("%Y-%m-%d", time.localtime(wall_ms / 1000)))
        if self.main_window.tabs.currentWidget() is self.main_window.figures:
            self.main_window.figures.render_figures(self.figures, snapshot)
        self.main_window.interactions.conversation.render_chats(
            snapshot.chats, {h.interaction.interaction_id for h in snapshot.held})
        if self.banner.in_progress():
            self.main_window.banner.render(self.banner, now)
        self.tray.set_state(pr.state_icon(state, connected), handling.text)

    def _render_attention(self, snapshot: ev.SessionSnapshot, wall_ms: int) -> None:
        """Ring while an offer the agent has not answered waits; the pop-up while the main window is
        not the one in front."""
        offer = snapshot.offers[0] if snapshot.offers else None
        waiting = offer is not None and offer.interaction.interaction_id not in self._answered
        if waiting:
            self.ringer.ring()
        else:
            self.ringer.stop()
        mw = self.main_window
        in_front = mw.isVisible() and mw.isActiveWindow() and not mw.isMinimized()
        self.offer_popup.render_offer(offer if waiting else None, wall_ms, not in_front)

    def shutdown(self) -> None:
        """The app is quitting: close the links (joining the network thread), let a keyring write
        in progress finish (briefly), let the windows close."""
        self.main_window.allow_close = True
        self.refresh_timer.stop()
        self.ringer.stop()
        self.offer_popup.close()
        self.bridge.close()
        self.chores.close()
        self.tray.hide()
