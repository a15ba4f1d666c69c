"""Server settings: site configuration (TOML) overlaid by command-line flags."""

from __future__ import annotations

import ssl
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .protocol import ReasonInfo

DUPLICATE_POLICIES = ("force-logout", "deny")

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
        return self


_SITE_KEYS = {
    "heartbeat_interval_ms", "heartbeat_timeout_ms", "register_timeout_ms", "max_message_bytes",
    "duplicate_policy", "token_ttl_ms", "replay_buffer", "rate_per_s", "rate_burst",
}


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
