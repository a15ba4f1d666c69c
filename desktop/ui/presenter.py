"""What the desktop shows, computed without Qt: labels, banner text, log rows, notifications.

Widgets call these with the core's events and snapshots and the current time, so every sentence a
user reads can be tested with plain unit tests and a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..core import events as ev

STATE_NAMES = {"ready": "Ready", "not_ready": "Not Ready", "after_call_work": "After Call Work"}
UNREACHABLE_AFTER = 5.0  # seconds without any registered server before a login says "unreachable"


# --------------------------------------------------------------------------- small formatters


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
        return "Logged out"
    name = STATE_NAMES.get(state, state)
    if state == "not_ready" and reason:
        return f"{name} – {(labels or {}).get(reason, reason)}"
    return name


def intent_text(intent: ev.StateIntent, labels: Mapping[str, str] | None = None) -> str:
    return state_text(intent.state, intent.reason, labels)


def time_in_state(since_ms: int | None, wall_ms: int) -> str:
    return "" if since_ms is None else format_duration((wall_ms - since_ms) / 1000)


def heartbeat_age(last_heard_ms: int | None, wall_ms: int) -> str:
    if last_heard_ms is None:
        return "never"
    age = max(0.0, (wall_ms - last_heard_ms) / 1000)
    return f"{age:.1f} s ago" if age < 60 else f"{format_duration(age)} ago"


def role_text(role: str, failures: int = 0) -> str:
    """The role of one server for this agent, in the words of the connection panel."""
    if role == "reconnecting":
        return "down, retrying" if failures > 0 else "reconnecting"
    return {
        "primary": "primary, logged in",
        "secondary": "secondary, standby",
        "registered": "connected",
        "connecting": "connecting",
        "down": "down",
    }.get(role, role)


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
    return [LinkRow(f"Site {link.endpoint}", link.url, link.role, role_text(link.role, link.failures),
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
    "bad_credentials": "Wrong agent id or password. Check both and try again.",
    "already_logged_in": "Agent {agent} is already logged in elsewhere, and the server's duplicate-login policy "
    "refused this second login. Log out on the other desktop (or ask a supervisor to) and try again.",
    "forbidden": "This account may not log in as an agent. Ask your supervisor which id to use.",
    "invalid_token": "Your earlier session could not be resumed. Enter your password and log in again.",
    "token_expired": "Your earlier session has expired. Enter your password and log in again.",
    "stale_epoch": "A newer login of agent {agent} exists. Enter your password to log in here again.",
    "invalid_reason": "The server does not know the Not Ready reason you started with. Log in again.",
}

LOGGED_OUT_MESSAGES = {
    "logout": "",
    "duplicate_login": "You were logged out: agent {agent} logged in on another desktop, and the server's "
                       "duplicate-login policy ends the older login.",
    "forced": "Supervisor {by} logged you out.",
    "moved": "Your login was taken over by a newer login of agent {agent} at another site.",
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
            return "Enter your agent id."
        if not password:
            return "Enter your password."
        if site not in set(sites):
            return "Choose a site to log in to (none is configured: ask IT for the site list)."
        return None

    def failure_text(self, event: ev.LoginFailed) -> str:
        template = LOGIN_MESSAGES.get(event.code)
        if template is None:
            return f"Site {event.endpoint} refused the login: {event.message}"
        return template.format(agent=self.agent_id or "")

    def logged_out_text(self, reason: str, by: str | None = None) -> str:
        if reason == "forced" and not by:
            return "A supervisor logged you out."
        template = LOGGED_OUT_MESSAGES.get(reason, "You were logged out ({reason}).")
        return template.format(agent=self.agent_id or "", reason=reason, by=by)

    def unreachable_text(self, snapshot: ev.SessionSnapshot, now: float) -> str | None:
        """The "server unreachable" sentence once no server registered within ``unreachable_after``
        seconds of the login attempt (the links stay in reconnecting meanwhile); else None."""
        if self.started_at is None or now - self.started_at < self.unreachable_after:
            return None
        if snapshot.status != "logging_in":
            return None
        if any(link.role in ("registered", "secondary", "primary") for link in snapshot.links):
            return None
        tried = ", ".join(f"site {link.endpoint} ({link.url})" for link in snapshot.links)
        return (f"No server is reachable: tried {tried}. Check your network connection, or ask IT whether "
                f"the servers are running. Still trying…")


def replaced_text(site: str) -> str:
    """What the duplicate-login policy (force-logout) did to the agent's other desktop."""
    return (f"Your login on another desktop (site {site}) was ended: the servers log out the older "
            f"login when the same agent logs in again")


# --------------------------------------------------------------------------- failover banner


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
                self.pending = {rid: PendingAction(intent_text(intent, labels), "pending")
                                for rid, intent in (snapshot.pending if snapshot else ())}
            self.visible = True
            self.kind, self.phase = event.kind, event.phase
            self.from_endpoint = event.from_endpoint or self.from_endpoint
            self.to_endpoint = event.to_endpoint or self.to_endpoint
            self.elapsed, self.received_at = event.elapsed, now
            if event.phase == "restored":
                self.summary = self._summary(snapshot.agent if snapshot else None, labels, wall_ms)
            elif event.phase == "idle":
                self.summary = "The login could not be moved to another site. See the event log."
            return True
        if isinstance(event, ev.IntentPending) and (event.queued or self.in_progress()):
            self.pending[event.request_id] = PendingAction(intent_text(event.intent, labels), "pending")
            return self.visible
        if isinstance(event, (ev.IntentApplied, ev.IntentSuperseded, ev.IntentFailed)):
            action = self.pending.get(event.request_id)
            if action is None:
                return False
            if isinstance(event, ev.IntentApplied):
                action.status = "applied"
            elif isinstance(event, ev.IntentSuperseded):
                action.status = "replaced by a later choice"
            else:
                action.status = f"failed: {event.message}"
            return self.visible
        return False

    def in_progress(self) -> bool:
        return self.visible and self.phase in ("detecting", "logging_in")

    def dismiss(self) -> None:
        self.visible = False

    def _summary(self, after: ev.AgentStatus | None, labels, wall_ms: int | None) -> str:
        where = f"site {self.to_endpoint}" if self.to_endpoint else "the other site"
        verb = "Moved back to" if self.kind == "failback" else "Moved to"
        head = f"{verb} {where} in {format_elapsed(self.elapsed)}"
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
            return f"{head}; {state}, {clock}, kept"
        return f"{head}; now {state} (was {state_text(before.state, before.reason, labels)})"

    def text(self, now: float) -> str:
        """The banner's headline at monotonic ``now``."""
        if self.summary is not None:
            return self.summary
        running = format_elapsed(self.elapsed + max(0.0, now - self.received_at))
        if self.kind == "failback":
            return f"Moving back to site {self.to_endpoint}… {running}"
        lost = f"Site {self.from_endpoint} lost" if self.from_endpoint else "Connection lost"
        if self.phase == "detecting":
            return f"{lost}: detecting… {running}"
        target = f"site {self.to_endpoint}" if self.to_endpoint else "the other site"
        return f"{lost}: logging in on {target}… {running}"

    def steps(self) -> list[tuple[str, str]]:
        """(step, status) for the phase list: done, active or waiting."""
        order = ["detecting", "logging_in", "restored"]
        names = {"detecting": "Detecting the loss", "logging_in": f"Logging in on site {self.to_endpoint or '…'}",
                 "restored": "State restored"}
        if self.kind == "failback":
            order = ["logging_in", "restored"]
            names["logging_in"] = f"Logging in on site {self.to_endpoint or '…'}"
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
            return Notification("Failover done", banner.summary if banner and banner.summary
                                else f"Moved to site {event.to_endpoint} in {format_elapsed(event.elapsed)}")
        if event.phase == "detecting":
            return Notification("Connection lost", f"Site {event.from_endpoint} stopped answering; "
                                                   f"moving your login to the other site.", critical=True)
    if isinstance(event, ev.LinkRoleChanged) and event.role == "reconnecting" and snapshot is not None:
        if snapshot.status in ("logged_in", "failing_over", "logging_in") and snapshot.agent_id and all(
                link.role in ("reconnecting", "connecting", "down") for link in snapshot.links):
            return Notification("Connection lost", "No server is reachable. Your state is kept and the "
                                                   "desktop keeps trying.", critical=True)
    if isinstance(event, ev.LoggedIn) and event.replaced:
        return Notification("Logged in here", replaced_text(event.replaced) + ".")
    if isinstance(event, ev.AgentStateChanged) and event.forced_by:
        return Notification("State changed by the server",
                            f"{event.forced_by} set you to {state_text(event.state, event.reason, labels)}.")
    if isinstance(event, ev.LoggedOut) and event.reason in ("forced", "duplicate_login", "moved"):
        return Notification("Logged out", LoginPresenter().logged_out_text(event.reason, event.by), critical=True)
    return None
