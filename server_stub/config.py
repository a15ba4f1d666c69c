"""Server settings: site configuration (TOML) overlaid by command-line flags."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from . import tomlfile
from .protocol import ReasonCode, ReasonInfo, Site

if TYPE_CHECKING:
    import ssl

DUPLICATE_POLICIES = ("force-logout", "deny")

MINUTE_MS, HOUR_MS, MIB = 60_000, 3_600_000, 1024 * 1024
# The most each numeric setting may be. Where more is unsafe the bound says why; elsewhere it is far
# above any deployment's need and only catches a typo (an extra zero or two) before it turns into a
# server that holds gigabytes for one socket or never ends a silent login.
MOST = {
    "token_ttl_ms": HOUR_MS,  # tokens are bearer credentials
    "heartbeat_interval_ms": 20_000,  # a silence allowed longer than a minute is already a stranded agent
    "heartbeat_timeout_ms": MINUTE_MS,
    # A login kept this long for a desktop nobody hears is a seat nobody can use: five minutes is
    # past Cisco Finesse's longest setting (180 s), see docs/failover.md.
    "client_timeout_ms": 300_000,
    "register_timeout_ms": MINUTE_MS,  # an anonymous socket holds a slot this long
    "max_message_bytes": 16 * MIB,  # each socket may buffer one frame this big
    "replay_buffer": 1_000_000,  # reporting events kept for resumes (~200 bytes each)
    "rate_per_s": 1_000_000.0,  # benchmarks lift the per-socket rate limit with 100,000
    "rate_burst": 1_000_000,
    "max_errors": 10_000,
    "error_window_ms": HOUR_MS,
    "outbound_queue": 1_000_000,
    "password_workers": 64,  # each scrypt check holds ~16 MiB (n=2^14, r=8) while it runs
    "max_offer_timeouts": 1_000_000,  # so many that an agent is never set Not Ready for missed offers
    "orphan_timeout_ms": 24 * HOUR_MS,
    "peer_ack_timeout_ms": MINUTE_MS,  # an accept or completion waits this long for the peer
    "max_outbound_bytes": 1024 * MIB,
    "max_connections": 1_000_000,
    "max_connections_per_source": 1_000_000,
    "max_unauthenticated_per_source": 100_000,
    "max_waiting_per_queue": 1_000_000,
    "max_waiting": 1_000_000,
    "max_interaction_bytes": 4096 * MIB,
}
# A queue member's penalty: ranks, not costs; a thousand levels is more than any routing plan uses.
MOST_PENALTY = 1000
# Extensions of one After Call Work: more than ten is a wrap-up that should have been Not Ready.
MOST_EXTENDS = 10
# An HMAC key shorter than this can be guessed offline from one sniffed token.
MIN_SECRET_BYTES = 16

# The least value of each numeric setting that still gives a working server: smaller ones start a
# server that closes every frame (max_message_bytes 0) or spins (token_ttl_ms 0). Checked for the
# site file, the command line and ServerConfig alike.
LEAST = {
    "heartbeat_interval_ms": 100,
    "heartbeat_timeout_ms": 200,
    "client_timeout_ms": 200,  # and at least heartbeat_timeout_ms (validate)
    "register_timeout_ms": 100,
    "max_message_bytes": 4096,
    "token_ttl_ms": 1000,
    "replay_buffer": 0,
    "rate_per_s": 1.0,
    "rate_burst": 1,
    "max_errors": 1,
    "error_window_ms": 1,
    "outbound_queue": 16,
    "password_workers": 1,
    "max_offer_timeouts": 1,
    "orphan_timeout_ms": 1,
    "peer_ack_timeout_ms": 1,
    "max_outbound_bytes": 65_536,
    "max_connections": 16,
    "max_connections_per_source": 0,
    "max_unauthenticated_per_source": 1,
    "max_waiting_per_queue": 1,
    "max_waiting": 1,
    "max_interaction_bytes": 65_536,
}

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
    # "Extend wrap-up": each extension adds acw_extend_ms to the After Call Work's end, at most
    # acw_max_extends times per wrap-up (None: the queue allows none).
    acw_extend_ms: int | None = None
    acw_max_extends: int = 1


@dataclass(frozen=True)
class ServerConfig:
    name: str = "A"
    host: str = "127.0.0.1"
    port: int = 8701
    peer_url: str | None = None
    more_peers: tuple[str, ...] = ()  # a mesh: further sites' URLs, each linked like peer_url
    bus_url: str | None = None  # instead of peers: the sites' RabbitMQ bus (amqp://, server_stub/bus/transport.py)
    secret: bytes = b""
    heartbeat_interval_ms: int = 500
    heartbeat_timeout_ms: int = 1500
    # An agent's desktop silent past heartbeat_timeout_ms is suspect (offered nothing, reported
    # unreachable); its login ends (EventAgentLogout{disconnected}) only after this much silence.
    # 20 s: a desktop paused for 8 s (a VDI host's hiccup, a GC or swap pause, a blocked GUI thread)
    # keeps its login with room to spare; see docs/failover.md for the reasoning and the anchors.
    client_timeout_ms: int = 20_000
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
    password_workers: int = 2  # scrypt checks at once, for all sockets together
    reasons: tuple[ReasonInfo, ...] = DEFAULT_REASONS
    dispositions: tuple[ReasonInfo, ...] = DEFAULT_DISPOSITIONS
    queues: tuple[QueueConfig, ...] = ()
    max_offer_timeouts: int = 3  # offers let time out in a row before the agent is set Not Ready
    offer_timeout_reason: str = "system"  # the Not Ready reason for that
    orphan_timeout_ms: int = 300_000  # an interaction whose agent left without re-attaching it ends then
    peer_ack_timeout_ms: int = 1_000  # how long accept/complete wait for the peer's confirmation
    # Bytes queued for one socket (our frames and the WebSocket layer's own, pongs included) before
    # it counts as not reading: 32 MiB holds several full snapshots of 10,000 agents.
    max_outbound_bytes: int = 32 * 1024 * 1024
    # Open sockets for the whole server; also capped below the process's open-file limit, so the
    # listener never runs out of descriptors (then asyncio can only log accept errors in a loop).
    max_connections: int = 20_000
    # Open sockets from one address; 0 = no limit of its own (agents behind one NAT or VDI address
    # are many legitimate sockets from one source).
    max_connections_per_source: int = 0
    # Sockets from one address that have not yet logged in, made available or subscribed: what an
    # anonymous client can hold. A legitimate desktop holds at most two for a moment.
    max_unauthenticated_per_source: int = 64
    # What a carrier can make a server hold: waiting interactions per queue and in all, and the
    # bytes of every interaction not yet ended (submissions beyond: queue_full).
    max_waiting_per_queue: int = 5_000
    max_waiting: int = 20_000
    max_interaction_bytes: int = 32 * 1024 * 1024
    tls_cert: Path | None = None
    tls_key: Path | None = None
    ca_file: Path | None = None  # to verify the peer's certificate when it speaks wss://

    @property
    def peer_urls(self) -> tuple[str, ...]:
        """Every peer this server dials: the pair's one, or each other site of a mesh."""
        return ((self.peer_url,) if self.peer_url else ()) + tuple(u for u in self.more_peers if u != self.peer_url)

    def with_overrides(self, **values) -> ServerConfig:
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def server_ssl(self) -> ssl.SSLContext | None:
        if not self.tls_cert:
            return None
        import ssl  # here, not at the top: the server core reads this config and stays free of I/O modules

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    def validate(self) -> ServerConfig:
        for key, least in LEAST.items():
            if getattr(self, key) < least:
                raise ConfigError(f"{key} must be at least {least!r}, not {getattr(self, key)!r}")
        for key, most in MOST.items():
            if getattr(self, key) > most:
                raise ConfigError(f"{key} must be at most {most!r}, not {getattr(self, key)!r}")
        if self.duplicate_policy not in DUPLICATE_POLICIES:
            raise ConfigError(f"duplicate policy must be one of {DUPLICATE_POLICIES}")
        if not self.secret:
            raise ConfigError("a shared secret is required (--secret-file or INTERACTION_SERVER_SECRET)")
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ConfigError(f"the shared secret is {len(self.secret)} bytes; use at least {MIN_SECRET_BYTES} random "
                              f"bytes (e.g. `openssl rand -hex 32`)")
        for what, entries in (("Not Ready reason", self.reasons), ("disposition", self.dispositions)):
            codes = [entry.code for entry in entries]
            if len(codes) != len(set(codes)):
                twice = sorted({code for code in codes if codes.count(code) > 1})
                raise ConfigError(f"{what} codes must be unique; given twice: {', '.join(twice)}")
        if self.heartbeat_timeout_ms < 2 * self.heartbeat_interval_ms:
            raise ConfigError("heartbeat timeout must be at least twice the heartbeat interval")
        if self.client_timeout_ms < self.heartbeat_timeout_ms:
            raise ConfigError(f"client_timeout_ms ({self.client_timeout_ms}) must be at least heartbeat_timeout_ms "
                              f"({self.heartbeat_timeout_ms}): a silent agent is suspect first, logged out after")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.offer_timeout_reason not in {r.code for r in self.reasons}:
            raise ConfigError(f"offer_timeout_reason {self.offer_timeout_reason!r} is not a Not Ready reason code")
        names = [q.name for q in self.queues]
        if len(names) != len(set(names)):
            raise ConfigError(f"queue names must be unique: {names}")
        return self

    def advertised_reasons(self) -> list[ReasonInfo]:
        """The Not Ready reasons as the register EventAck lists them: ``offer_timeout_reason`` is
        always flagged ``server_only`` (the server sets it for missed offers), besides any the site
        file marks so."""
        return [replace_reason(r, server_only=True) if r.code == self.offer_timeout_reason and not r.server_only
                else r for r in self.reasons]

    def server_only_reasons(self) -> frozenset[str]:
        """Codes an agent may not choose itself (RequestAgentNotReady: ``server_only_reason``)."""
        return frozenset(r.code for r in self.advertised_reasons() if r.server_only)


def replace_reason(reason: ReasonInfo, **changes) -> ReasonInfo:
    return msgspec.structs.replace(reason, **changes)


def _setting(key: str):
    kind = type(getattr(ServerConfig, key))
    return Annotated[kind, msgspec.Meta(ge=LEAST[key], le=MOST[key])] | None  # every site key has both bounds


_SITE_KEYS = tuple(LEAST)  # every numeric setting can be set in the site file
# [server]: every key optional; unset ones keep ServerConfig's default.
_ServerTable = msgspec.defstruct(
    "ServerTable",
    [(key, _setting(key), None) for key in _SITE_KEYS]
    + [
        ("duplicate_policy", Literal[DUPLICATE_POLICIES] | None, None),
        ("offer_timeout_reason", ReasonCode | None, None),
    ],
    forbid_unknown_fields=True,
)
# A queue's times, in seconds: an offer, a wrap-up or a service-level target longer than an hour,
# or a customer who waits more than a day, is a typo.
QueueSeconds = Annotated[float, msgspec.Meta(gt=0, le=3600)]
AbandonSeconds = Annotated[float, msgspec.Meta(gt=0, le=86_400)]
Penalty = Annotated[int, msgspec.Meta(ge=0, le=MOST_PENALTY)]


class _QueueTable(msgspec.Struct, forbid_unknown_fields=True):
    """One [[queue]] table; times in seconds."""

    name: Annotated[str, msgspec.Meta(min_length=1)]
    accept_timeout: QueueSeconds = 30
    after_call_work: QueueSeconds | None = None
    abandon_after: AbandonSeconds | None = None
    service_level_target: QueueSeconds = 20
    members: dict[str, Penalty] = {}  # agent id -> penalty
    after_call_work_extend: QueueSeconds | None = None  # seconds one "Extend wrap-up" adds
    after_call_work_max_extends: Annotated[int, msgspec.Meta(ge=1, le=MOST_EXTENDS)] = 1

    def config(self) -> QueueConfig:
        def ms(seconds: float) -> int:
            return int(round(seconds * 1000))

        if self.after_call_work_extend is not None and self.after_call_work is None:
            raise ConfigError(f"queue {self.name!r}: after_call_work_extend extends the After Call Work, so it "
                              f"needs after_call_work")

        return QueueConfig(name=self.name, accept_timeout_ms=ms(self.accept_timeout),
                           acw_ms=ms(self.after_call_work) if self.after_call_work is not None else None,
                           abandon_after_ms=ms(self.abandon_after) if self.abandon_after is not None else None,
                           service_level_target_ms=ms(self.service_level_target), members=tuple(self.members.items()),
                           acw_extend_ms=ms(self.after_call_work_extend) if self.after_call_work_extend else None,
                           acw_max_extends=self.after_call_work_max_extends)


class _SiteFile(msgspec.Struct, forbid_unknown_fields=True):
    """A site configuration file; clients read only ``site``, servers everything else."""

    site: list[Site] = []
    # _ServerTable is built at run time (msgspec.defstruct), which a static type cannot name.
    server: _ServerTable = msgspec.field(default_factory=_ServerTable)  # type: ignore[valid-type]
    not_ready_reason: list[ReasonInfo] | None = None
    disposition: list[ReasonInfo] | None = None
    queue: list[_QueueTable] = []


def load_site_config(path: Path, base: ServerConfig = ServerConfig()) -> ServerConfig:
    """Read the ``[server]`` table, ``[[not_ready_reason]]``, ``[[disposition]]`` and ``[[queue]]``."""
    data = tomlfile.load(path, _SiteFile, ConfigError)
    values = {key: getattr(data.server, key) for key in data.server.__struct_fields__
              if getattr(data.server, key) is not None}
    if data.not_ready_reason is not None:
        values["reasons"] = tuple(data.not_ready_reason)
    if data.disposition is not None:
        values["dispositions"] = tuple(data.disposition)
    values["queues"] = tuple(q.config() for q in data.queue)
    return replace(base, **values)


@dataclass(frozen=True)
class SitesFile:
    """The site list clients use (resources/sites.toml): names, URLs, the preferred one."""

    sites: tuple[Site, ...] = field(default_factory=tuple)

    @classmethod
    def load(cls, path: Path) -> SitesFile:
        return cls(tuple(tomlfile.load_sites(path, ConfigError)))
