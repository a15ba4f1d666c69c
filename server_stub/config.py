"""Server settings: site configuration (TOML) overlaid by command-line flags."""

from __future__ import annotations

import ssl
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .protocol import ReasonInfo

DUPLICATE_POLICIES = ("force-logout", "deny")

DEFAULT_DISPOSITIONS = (
    ReasonInfo(code="resolved", label="Resolved"),
    ReasonInfo(code="follow_up", label="Follow-up needed"),
    ReasonInfo(code="escalated", label="Escalated"),
    ReasonInfo(code="wrong_queue", label="Wrong queue"),
)

DEFAULT_REASONS = (
    ReasonInfo(code="break", label="Break"),
    ReasonInfo(code="lunch", label="Lunch"),
    ReasonInfo(code="meeting", label="Meeting"),
    ReasonInfo(code="training", label="Training"),
    ReasonInfo(code="system", label="System"),
)


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the file and key."""


@dataclass(frozen=True)
class QueueConfig:
    """One queue of a site. Times in ms (the TOML gives seconds). ``members`` adds agents (id,
    penalty) on top of the memberships in the agent directory and overrides their penalty."""

    name: str
    accept_timeout_ms: int = 30_000
    acw_ms: int | None = None  # After Call Work after a completion; it ends into Ready
    abandon_after_ms: int | None = None  # the customer hangs up after waiting this long
    service_level_target_ms: int = 20_000
    members: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class ServerConfig:
    name: str = "A"
    host: str = "127.0.0.1"
    port: int = 8701
    peer_url: str | None = None
    secret: bytes = b""
    heartbeat_interval_ms: int = 500
    heartbeat_timeout_ms: int = 1500
    register_timeout_ms: int = 10_000
    max_message_bytes: int = 64 * 1024
    duplicate_policy: str = "force-logout"
    token_ttl_ms: int = 10 * 60 * 1000
    replay_buffer: int = 10_000
    rate_per_s: float = 100.0
    rate_burst: int = 200
    max_errors: int = 20  # within error_window_ms, then close 4001
    error_window_ms: int = 10_000
    outbound_queue: int = 10_000  # frames queued for one slow socket before it is dropped
    reasons: tuple[ReasonInfo, ...] = DEFAULT_REASONS
    dispositions: tuple[ReasonInfo, ...] = DEFAULT_DISPOSITIONS
    queues: tuple[QueueConfig, ...] = ()
    max_offer_timeouts: int = 3  # offers let time out in a row before the agent is set Not Ready
    offer_timeout_reason: str = "system"  # the Not Ready reason for that
    orphan_timeout_ms: int = 300_000  # an interaction whose agent left without re-attaching it ends then
    peer_ack_timeout_ms: int = 1_000  # how long accept/complete wait for the peer's confirmation
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_file: Path | None = None  # to verify the peer's certificate when it speaks wss://

    def with_overrides(self, **values) -> "ServerConfig":
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def server_ssl(self) -> ssl.SSLContext | None:
        if not self.tls_cert:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def validate(self) -> "ServerConfig":
        if self.duplicate_policy not in DUPLICATE_POLICIES:
            raise ConfigError(f"duplicate policy must be one of {DUPLICATE_POLICIES}")
        if not self.secret:
            raise ConfigError("a shared secret is required (--secret-file or INTERACTION_SERVER_SECRET)")
        if self.heartbeat_timeout_ms < 2 * self.heartbeat_interval_ms:
            raise ConfigError("heartbeat timeout must be at least twice the heartbeat interval")
        if self.token_ttl_ms < 1000:  # refreshed every TTL/2: 0 would push tokens in a busy loop
            raise ConfigError("token_ttl_ms must be at least 1000")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.offer_timeout_reason not in {r.code for r in self.reasons}:
            raise ConfigError(f"offer_timeout_reason {self.offer_timeout_reason!r} is not a Not Ready reason code")
        if self.max_offer_timeouts < 1:
            raise ConfigError("max_offer_timeouts must be at least 1")
        names = [q.name for q in self.queues]
        if len(names) != len(set(names)):
            raise ConfigError(f"queue names must be unique: {names}")
        return self


_SITE_KEYS = {
    "heartbeat_interval_ms", "heartbeat_timeout_ms", "register_timeout_ms", "max_message_bytes",
    "duplicate_policy", "token_ttl_ms", "replay_buffer", "rate_per_s", "rate_burst",
    "max_offer_timeouts", "offer_timeout_reason", "orphan_timeout_ms", "peer_ack_timeout_ms",
}
_QUEUE_KEYS = {"name", "accept_timeout", "after_call_work", "abandon_after", "service_level_target", "members"}


def _seconds(path, where: str, key: str, value, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{path}: {where}.{key} must be a positive number of seconds")
    return int(round(value * 1000))


def _queue(path, index: int, entry) -> QueueConfig:
    where = f"[[queue]] #{index + 1}"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise ConfigError(f"{path}: {where} needs a name")
    unknown = set(entry) - _QUEUE_KEYS
    if unknown:
        raise ConfigError(f"{path}: {where} has unknown keys {sorted(unknown)}; known: {sorted(_QUEUE_KEYS)}")
    members = entry.get("members", {})
    if not isinstance(members, dict) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in members.values()):
        raise ConfigError(f"{path}: {where}.members maps agent ids to penalties (integers >= 0)")
    return QueueConfig(
        name=entry["name"],
        accept_timeout_ms=_seconds(path, where, "accept_timeout", entry.get("accept_timeout", 30), optional=False),
        acw_ms=_seconds(path, where, "after_call_work", entry.get("after_call_work"), optional=True),
        abandon_after_ms=_seconds(path, where, "abandon_after", entry.get("abandon_after"), optional=True),
        service_level_target_ms=_seconds(path, where, "service_level_target", entry.get("service_level_target", 20), optional=False),
        members=tuple((str(k), v) for k, v in members.items()),
    )


def load_site_config(path: Path, base: ServerConfig = ServerConfig()) -> ServerConfig:
    """Read the ``[server]`` table and ``[[not_ready_reason]]`` list of a site TOML file."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    values = {}
    for key, value in data.get("server", {}).items():
        if key not in _SITE_KEYS:
            raise ConfigError(f"{path}: [server] has unknown key {key!r}; known: {sorted(_SITE_KEYS)}")
        expected = type(getattr(base, key))
        if expected is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, expected):
            raise ConfigError(f"{path}: [server].{key} must be {expected.__name__}")
        values[key] = value
    reasons = data.get("not_ready_reason")
    if reasons is not None:
        try:
            values["reasons"] = tuple(ReasonInfo(code=str(r["code"]), label=str(r["label"])) for r in reasons)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: each [[not_ready_reason]] needs code and label ({exc})") from None
    dispositions = data.get("disposition")
    if dispositions is not None:
        try:
            values["dispositions"] = tuple(ReasonInfo(code=str(r["code"]), label=str(r["label"])) for r in dispositions)
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: each [[disposition]] needs code and label ({exc})") from None
    queues = data.get("queue")
    if queues is not None:
        if not isinstance(queues, list):
            raise ConfigError(f"{path}: queues are [[queue]] tables")
        values["queues"] = tuple(_queue(path, i, q) for i, q in enumerate(queues))
    return replace(base, **values)


@dataclass(frozen=True)
class Site:
    name: str
    url: str


@dataclass(frozen=True)
class SitesFile:
    """The site list clients use (resources/sites.toml): names, URLs, the preferred one."""

    sites: tuple[Site, ...] = field(default_factory=tuple)

    @classmethod
    def load(cls, path: Path) -> "SitesFile":
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            return cls(tuple(Site(str(s["name"]), str(s["url"])) for s in data["site"]))
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: needs [[site]] tables with name and url ({exc})") from None
