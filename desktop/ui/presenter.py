"""What the desktop shows, computed without Qt: labels, banner text, log rows, notifications.

Widgets call these with the core's events and snapshots and the current time, so every sentence a
user reads can be tested with plain unit tests and a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..core import events as ev
from .i18n import QT_TRANSLATE_NOOP, translate

STATE_NAMES = {"ready": QT_TRANSLATE_NOOP("Presenter", "Ready"),
               "not_ready": QT_TRANSLATE_NOOP("Presenter", "Not Ready"),
               "after_call_work": QT_TRANSLATE_NOOP("Presenter", "After Call Work")}
UNREACHABLE_AFTER = 5.0  # seconds without any registered server before a login says "unreachable"


# --------------------------------------------------------------------------- small formatters


def _t(text: str) -> str:
    """``text`` (a literal marked with QT_TRANSLATE_NOOP("Presenter", ...)) in the user's language."""
    return translate("Presenter", text)


def site_text(name: str) -> str:
    """"Site A", as the connection panel and the messages name a site."""
    return translate("Presenter", "Site {0}").format(name)


def format_duration(seconds: float) -> str:
    """Time in state as a clock: 04:12, or 1:02:03 past an hour. Negative (clock skew) shows 00:00."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_elapsed(seconds: float) -> str:
    """A short span for failover timings: 84 ms below two seconds, 3.4 s above."""
    if seconds < 2:
        return f"{max(0, round(seconds * 1000))} ms"
    return f"{seconds:.1f} s"


def reason_labels(reasons: Iterable) -> dict[str, str]:
    """Reason code -> label from the server's ReasonInfo list."""
    return {r.code: r.label for r in reasons}


def state_text(state: str | None, reason: str | None, labels: Mapping[str, str] | None = None) -> str:
    """"Not Ready – Lunch": the state name, with the reason's label when there is one."""
    if state is None:
        return translate("Presenter", "Logged out")
    name = _t(STATE_NAMES[state]) if state in STATE_NAMES else state
    if state == "not_ready" and reason:
        return f"{name} – {(labels or {}).get(reason, reason)}"
    return name


def intent_text(intent: ev.StateIntent, labels: Mapping[str, str] | None = None) -> str:
    return state_text(intent.state, intent.reason, labels)


def time_in_state(since_ms: int | None, wall_ms: int) -> str:
    return "" if since_ms is None else format_duration((wall_ms - since_ms) / 1000)


def heartbeat_age(last_heard_ms: int | None, wall_ms: int) -> str:
    if last_heard_ms is None:
        return translate("Presenter", "never")
    age = max(0.0, (wall_ms - last_heard_ms) / 1000)
    return translate("Presenter", "{0:.1f} s ago").format(age) if age < 60 else \
        translate("Presenter", "{0} ago").format(format_duration(age))


def role_text(role: str, failures: int = 0) -> str:
    """The role of one server for this agent, in the words of the connection panel."""
    if role == "reconnecting":
        return translate("Presenter", "down, retrying") if failures > 0 else translate("Presenter", "reconnecting")
    words = {
        "primary": QT_TRANSLATE_NOOP("Presenter", "primary, logged in"),
        "secondary": QT_TRANSLATE_NOOP("Presenter", "secondary, standby"),
        "registered": QT_TRANSLATE_NOOP("Presenter", "connected"),
        "connecting": QT_TRANSLATE_NOOP("Presenter", "connecting"),
        "down": QT_TRANSLATE_NOOP("Presenter", "down"),
    }
    return _t(words[role]) if role in words else role


@dataclass(frozen=True)
class LinkRow:
    site: str
    url: str
    role: str
    role_text: str
    heartbeat: str


def link_rows(snapshot: ev.SessionSnapshot, wall_ms: int) -> list[LinkRow]:
    """One row per server for the connection panel, in preference order."""
    # A lost server keeps the age of the last beat heard from it: "when did we last hear from A".
    return [LinkRow(site_text(link.endpoint), link.url, link.role, role_text(link.role, link.failures),
                    heartbeat_age(link.last_heard_ms, wall_ms))
            for link in snapshot.links]


def state_icon(state: str | None, connected: bool = True) -> str:
    """Icon name (resources/icons/<name>.svg) for the agent's state."""
    if not connected or state is None:
        return "offline"
    return {"ready": "ready", "not_ready": "not-ready", "after_call_work": "acw"}.get(state, "offline")


# --------------------------------------------------------------------------- handling state

def agent_reasons(reasons: Iterable) -> dict[str, str]:
    """The reasons an agent may choose for Not Ready (code -> label): the server's ReasonInfo list
    without those it flags ``server_only`` (it sets them itself, e.g. for missed offers, and refuses
    them from an agent); the state line still names them when the server sets one."""
    return {r.code: r.label for r in reasons if not getattr(r, "server_only", False)}


# --------------------------------------------------------------------------- login


LOGIN_MESSAGES = {
    "bad_credentials": QT_TRANSLATE_NOOP("Presenter", "Wrong agent id or password. Check both and try again."),
    "already_logged_in": QT_TRANSLATE_NOOP(
        "Presenter", "Agent {agent} is already logged in elsewhere, and the server's duplicate-login policy "
        "refused this second login. Log out on the other desktop (or ask a supervisor to) and try again."),
    "forbidden": QT_TRANSLATE_NOOP("Presenter",
                                   "This account may not log in as an agent. Ask your supervisor which id to use."),
    "invalid_token": QT_TRANSLATE_NOOP(
        "Presenter", "Your earlier session could not be resumed. Enter your password and log in again."),
    "token_expired": QT_TRANSLATE_NOOP(
        "Presenter", "Your earlier session has expired. Enter your password and log in again."),
    "stale_epoch": QT_TRANSLATE_NOOP(
        "Presenter", "A newer login of agent {agent} exists. Enter your password to log in here again."),
    "invalid_reason": QT_TRANSLATE_NOOP(
        "Presenter", "The server does not know the Not Ready reason you started with. Log in again."),
}

LOGGED_OUT_MESSAGES = {
    "logout": "",
    "duplicate_login": QT_TRANSLATE_NOOP(
        "Presenter", "You were logged out: agent {agent} logged in on another desktop, and the server's "
        "duplicate-login policy ends the older login."),
    "forced": QT_TRANSLATE_NOOP("Presenter", "Supervisor {by} logged you out."),
    "moved": QT_TRANSLATE_NOOP("Presenter",
                               "Your login was taken over by a newer login of agent {agent} at another site."),
}


class LoginPresenter:
    """Turns login outcomes into one actionable sentence; notices when no server answers at all."""

    def __init__(self, unreachable_after: float = UNREACHABLE_AFTER):
        self.unreachable_after = unreachable_after
        self.agent_id: str | None = None
        self.started_at: float | None = None
        self.reported_unreachable = False

    def started(self, agent_id: str, now: float) -> None:
        self.agent_id, self.started_at, self.reported_unreachable = agent_id, now, False

    def finished(self) -> None:
        self.started_at = None

    def validate(self, agent_id: str, password: str, site: str | None, sites: Iterable[str]) -> str | None:
        """Input problems the user can fix before anything is sent."""
        if not agent_id.strip():
            return translate("Presenter", "Enter your agent id.")
        if not password:
            return translate("Presenter", "Enter your password.")
        if site not in set(sites):
            return translate("Presenter", "Choose a site to log in to (none is configured: ask IT for the site list).")
        return None

    def failure_text(self, event: ev.LoginFailed) -> str:
        template = LOGIN_MESSAGES.get(event.code)
        if template is None:
            return translate("Presenter", "Site {0} refused the login: {1}").format(event.endpoint, event.message)
        return _t(template).format(agent=self.agent_id or "")

    def logged_out_text(self, reason: str, by: str | None = None) -> str:
        if reason == "forced" and not by:
            return translate("Presenter", "A supervisor logged you out.")
        template = LOGGED_OUT_MESSAGES.get(reason, QT_TRANSLATE_NOOP("Presenter", "You were logged out ({reason})."))
        return _t(template).format(agent=self.agent_id or "", reason=reason, by=by)

    def unreachable_text(self, snapshot: ev.SessionSnapshot, now: float) -> str | None:
        """The "server unreachable" sentence once no server registered within ``unreachable_after``
        seconds of the login attempt (the links stay in reconnecting meanwhile); else None."""
        if self.started_at is None or now - self.started_at < self.unreachable_after:
            return None
        if snapshot.status != "logging_in":
            return None
        if any(link.role in ("registered", "secondary", "primary") for link in snapshot.links):
            return None
        tried = ", ".join(translate("Presenter", "site {0} ({1})").format(link.endpoint, link.url)
                          for link in snapshot.links)
        return translate("Presenter", "No server is reachable: tried {0}. Check your network connection, or ask IT "
                                      "whether the servers are running. Still trying…").format(tried)


def replaced_text(site: str) -> str:
    """What the duplicate-login policy (force-logout) did to the agent's other desktop."""
    return translate("Presenter", "Your login on another desktop (site {0}) was ended: the servers log out the "
                                  "older login when the same agent logs in again").format(site)


# --------------------------------------------------------------------------- failover banner


PENDING = QT_TRANSLATE_NOOP("Presenter", "pending")


@dataclass
class PendingAction:
    text: str
    status: str  # "pending", "applied", "replaced", "failed: ..."


@dataclass
class FailoverBanner:
    """The banner's model: shown the moment the primary is lost, walks through the phases with the
    elapsed time, ends in a summary; actions taken meanwhile show as pending, then applied."""

    visible: bool = False
    kind: str = "failover"
    phase: str = "idle"
    from_endpoint: str | None = None
    to_endpoint: str | None = None
    elapsed: float = 0.0
    received_at: float = 0.0
    before: ev.AgentStatus | None = None
    summary: str | None = None
    pending: dict[str, PendingAction] = field(default_factory=dict)

    def on_event(self, event: ev.Event, now: float, snapshot: ev.SessionSnapshot | None = None,
                 labels: Mapping[str, str] | None = None, last_status: ev.AgentStatus | None = None,
                 wall_ms: int | None = None) -> bool:
        """Update from one core event; True when the banner changed."""
        if isinstance(event, ev.FailoverPhase):
            if event.phase in ("detecting", "logging_in") and (self.phase in ("idle", "restored") or not self.visible):
                self.before = last_status
                self.summary = None
                # Actions sent to the lost primary and not yet answered will be replayed on the next.
                self.pending = {rid: PendingAction(intent_text(intent, labels), _t(PENDING))
                                for rid, intent in (snapshot.pending if snapshot else ())}
            self.visible = True
            self.kind, self.phase = event.kind, event.phase
            self.from_endpoint = event.from_endpoint or self.from_endpoint
            self.to_endpoint = event.to_endpoint or self.to_endpoint
            self.elapsed, self.received_at = event.elapsed, now
            if event.phase == "restored":
                self.summary = self._summary(snapshot.agent if snapshot else None, labels, wall_ms)
            elif event.phase == "idle":
                self.summary = translate("Presenter", "The login could not be moved to another site. See the event "
                                                      "log.")
            return True
        if isinstance(event, ev.IntentPending) and (event.queued or self.in_progress()):
            self.pending[event.request_id] = PendingAction(intent_text(event.intent, labels), _t(PENDING))
            return self.visible
        if isinstance(event, (ev.IntentApplied, ev.IntentSuperseded, ev.IntentFailed)):
            action = self.pending.get(event.request_id)
            if action is None:
                return False
            if isinstance(event, ev.IntentApplied):
                action.status = translate("Presenter", "applied")
            elif isinstance(event, ev.IntentSuperseded):
                action.status = translate("Presenter", "replaced by a later choice")
            else:
                action.status = translate("Presenter", "failed: {0}").format(event.message)
            return self.visible
        return False

    def in_progress(self) -> bool:
        return self.visible and self.phase in ("detecting", "logging_in")

    def dismiss(self) -> None:
        self.visible = False

    def _summary(self, after: ev.AgentStatus | None, labels, wall_ms: int | None) -> str:
        where = translate("Presenter", "site {0}").format(self.to_endpoint) if self.to_endpoint else \
            translate("Presenter", "the other site")
        head = (translate("Presenter", "Moved back to {0} in {1}") if self.kind == "failback" else
                translate("Presenter", "Moved to {0} in {1}")).format(where, format_elapsed(self.elapsed))
        if after is None:
            return head
        state = state_text(after.state, after.reason, labels)
        clock = time_in_state(after.since_ms, wall_ms if wall_ms is not None else int(time.time() * 1000))
        before = self.before
        if before is None or (before.state, before.reason, before.since_ms) == (
            after.state,
            after.reason,
            after.since_ms,
        ):
            return translate("Presenter", "{0}; {1}, {2}, kept").format(head, state, clock)
        return translate("Presenter", "{0}; now {1} (was {2})").format(
            head, state, state_text(before.state, before.reason, labels))

    def text(self, now: float) -> str:
        """The banner's headline at monotonic ``now``."""
        if self.summary is not None:
            return self.summary
        running = format_elapsed(self.elapsed + max(0.0, now - self.received_at))
        if self.kind == "failback":
            return translate("Presenter", "Moving back to site {0}… {1}").format(self.to_endpoint, running)
        lost = translate("Presenter", "Site {0} lost").format(self.from_endpoint) if self.from_endpoint else \
            translate("Presenter", "Connection lost")
        if self.phase == "detecting":
            return translate("Presenter", "{0}: detecting… {1}").format(lost, running)
        target = translate("Presenter", "site {0}").format(self.to_endpoint) if self.to_endpoint else \
            translate("Presenter", "the other site")
        return translate("Presenter", "{0}: logging in on {1}… {2}").format(lost, target, running)

    def steps(self) -> list[tuple[str, str]]:
        """(step, status) for the phase list: done, active or waiting."""
        order = ["detecting", "logging_in", "restored"]
        names = {"detecting": translate("Presenter", "Detecting the loss"),
                 "logging_in": translate("Presenter", "Logging in on site {0}").format(self.to_endpoint or "…"),
                 "restored": translate("Presenter", "State restored")}
        if self.kind == "failback":
            order = ["logging_in", "restored"]
        current = order.index(self.phase) if self.phase in order else -1
        out = []
        for i, step in enumerate(order):
            status = "done" if i < current or self.phase == "restored" else "active" if i == current else "waiting"
            out.append((names[step], status))
        return out

    def pending_lines(self) -> list[str]:
        return [f"{a.text}: {a.status}" for a in self.pending.values()]


# --------------------------------------------------------------------------- event log


@dataclass(frozen=True)
class LogRow:
    wall_ms: int
    category: str  # connection, failover, login, state, action, interaction, error
    text: str

    @property
    def time_text(self) -> str:
        seconds, ms = divmod(self.wall_ms, 1000)
        return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{ms:03d}"

    def line(self) -> str:
        return f"{self.time_text}  {self.category:<10}  {self.text}"


CATEGORIES = ("connection", "failover", "login", "state", "action", "interaction", "error")
CATEGORY_WORDS = {
    "connection": QT_TRANSLATE_NOOP("Presenter", "Connection"),
    "failover": QT_TRANSLATE_NOOP("Presenter", "Failover"),
    "login": QT_TRANSLATE_NOOP("Presenter", "Login"),
    "state": QT_TRANSLATE_NOOP("Presenter", "State"),
    "action": QT_TRANSLATE_NOOP("Presenter", "Action"),
    "interaction": QT_TRANSLATE_NOOP("Presenter", "Interaction"),
    "error": QT_TRANSLATE_NOOP("Presenter", "Error"),
}


def category_text(category: str) -> str:
    """The event log filter's name for a category (the rows keep the English key, for support)."""
    return _t(CATEGORY_WORDS[category]) if category in CATEGORY_WORDS else category.capitalize()


def log_row(event: ev.Event, wall_ms: int, labels: Mapping[str, str] | None = None,
            failures: int = 0) -> LogRow | None:
    """One event log row for a core event (None for events not worth a row)."""
    if isinstance(event, ev.LinkRoleChanged):
        return LogRow(wall_ms, "connection", f"Site {event.endpoint}: {role_text(event.role, failures)}")
    if isinstance(event, ev.FailoverPhase):
        what = "failback" if event.kind == "failback" else "failover"
        detail = {"detecting": f"site {event.from_endpoint} lost, detecting",
                  "logging_in": f"logging in on site {event.to_endpoint}",
                  "restored": f"restored on site {event.to_endpoint}",
                  "idle": "abandoned"}.get(event.phase, event.phase)
        return LogRow(wall_ms, "failover", f"{what.capitalize()}: {detail} ({format_elapsed(event.elapsed)})")
    if isinstance(event, ev.LoggedIn):
        how = "resume token" if event.resumed else "password"
        ended = f". {replaced_text(event.replaced)}" if event.replaced else ""
        return LogRow(wall_ms, "login", f"Logged in as {event.agent_id} on site {event.endpoint} "
                                        f"(epoch {event.epoch}, {how}){ended}")
    if isinstance(event, ev.LoginFailed):
        return LogRow(wall_ms, "login", f"Login refused by site {event.endpoint}: {event.code} – {event.message}")
    if isinstance(event, ev.LoggedOut):
        by = f" by {event.by}" if event.by else ""
        return LogRow(wall_ms, "login", f"Logged out ({event.reason}{by})")
    if isinstance(event, ev.AgentStateChanged):
        forced = f", set by {event.forced_by}" if event.forced_by else ""
        return LogRow(wall_ms, "state", f"{state_text(event.state, event.reason, labels)} on site {event.endpoint} "
                                        f"(epoch {event.epoch}{forced})")
    if isinstance(event, ev.IntentPending):
        queued = ", queued until a server holds the login" if event.queued else ""
        return LogRow(wall_ms, "action", f"{intent_text(event.intent, labels)}: pending{queued}")
    if isinstance(event, ev.IntentApplied):
        return LogRow(wall_ms, "action", f"{intent_text(event.intent, labels)}: applied on site {event.endpoint}")
    if isinstance(event, ev.IntentSuperseded):
        return LogRow(wall_ms, "action", f"{intent_text(event.intent, labels)}: replaced by a later choice")
    if isinstance(event, ev.IntentFailed):
        return LogRow(wall_ms, "action", f"{intent_text(event.intent, labels)}: failed ({event.code}: {event.message})")
    if isinstance(event, ev.ErrorEvent):
        where = f"site {event.endpoint}" if event.endpoint else "session"
        return LogRow(wall_ms, "error", f"{where}: {event.code} – {event.message}")
    if isinstance(event, ev.StaleEventIgnored):
        return LogRow(wall_ms, "error", f"Ignored {event.message_type} from site {event.endpoint} "
                                        f"(epoch {event.epoch}, current {event.current_epoch})")
    return None


def filter_rows(rows: Iterable[LogRow], category: str | None = None, text: str = "") -> list[LogRow]:
    needle = text.strip().lower()
    return [r for r in rows if (not category or r.category == category) and (not needle or needle in r.line().lower())]


def support_text(rows: Iterable[LogRow], agent_id: str | None, snapshot: ev.SessionSnapshot | None,
                 version: str) -> str:
    """Plain text a support engineer can read: who, which servers in which role, then the log."""
    head = [f"agent-desktop {version}", f"agent: {agent_id or '-'}"]
    if snapshot is not None:
        head.append(f"session: {snapshot.status}, primary {snapshot.primary or '-'}, epoch {snapshot.epoch}")
        head += [f"server {link.endpoint} {link.url}: {link.role}" for link in snapshot.links]
    return "\n".join(head + [""] + [r.line() for r in rows]) + "\n"


# --------------------------------------------------------------------------- tray notifications


@dataclass(frozen=True)
class Notification:
    title: str
    message: str
    critical: bool = False


def notification_for(
    event: ev.Event,
    labels: Mapping[str, str] | None = None,
    banner: FailoverBanner | None = None,
    snapshot: ev.SessionSnapshot | None = None,
) -> Notification | None:
    """The tray notifications: failover done, connection lost, and a state forced by the server."""
    if isinstance(event, ev.FailoverPhase):
        if event.phase == "restored" and event.kind == "failover":
            return Notification(translate("Presenter", "Failover done"), banner.summary if banner and banner.summary
                                else translate("Presenter", "Moved to {0} in {1}").format(
                                    translate("Presenter", "site {0}").format(event.to_endpoint),
                                    format_elapsed(event.elapsed)))
        if event.phase == "detecting":
            return Notification(translate("Presenter", "Connection lost"),
                                translate("Presenter", "Site {0} stopped answering; moving your login to the other "
                                                       "site.").format(event.from_endpoint), critical=True)
    if isinstance(event, ev.LinkRoleChanged) and event.role == "reconnecting" and snapshot is not None:
        if snapshot.status in ("logged_in", "failing_over", "logging_in") and snapshot.agent_id and all(
                link.role in ("reconnecting", "connecting", "down") for link in snapshot.links):
            return Notification(translate("Presenter", "Connection lost"),
                                translate("Presenter", "No server is reachable. Your state is kept and the desktop "
                                                       "keeps trying."), critical=True)
    if isinstance(event, ev.LoggedIn) and event.replaced:
        return Notification(translate("Presenter", "Logged in here"), replaced_text(event.replaced) + ".")
    if isinstance(event, ev.AgentStateChanged) and event.forced_by:
        return Notification(translate("Presenter", "State changed by the server"),
                            translate("Presenter", "{0} set you to {1}.").format(
                                event.forced_by, state_text(event.state, event.reason, labels)))
    if isinstance(event, ev.LoggedOut) and event.reason in ("forced", "duplicate_login", "moved"):
        return Notification(translate("Presenter", "Logged out"),
                            LoginPresenter().logged_out_text(event.reason, event.by), critical=True)
    return None
