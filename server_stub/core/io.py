"""What goes into the server core and what comes out of it.

The core is fed inputs, each with the time (``Now``), and answers with a list of outputs for the
transport to carry out. Connections are plain integers chosen by the transport; frames are the
encoded JSON text, so a reporting event fanned out to a thousand subscribers is encoded once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from ..protocol import CloseCode, ConfigVersion

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..directory import Directory

ConnId = int


class Now(NamedTuple):
    """The time of an input: ``mono`` (seconds, monotonic) for timeouts, ``wall_ms`` for what is
    stamped on the wire. The core never reads a clock; a simulated world passes a fake one."""

    mono: float
    wall_ms: int


@dataclass(frozen=True)
class Send:
    """Queue ``frame`` on connection ``conn`` (in order, behind what is already queued)."""

    conn: ConnId
    frame: str


@dataclass(frozen=True)
class Close:
    """Close ``conn`` with ``code`` once what is queued on it has been written. The core has
    already forgotten the connection when it decided to close it for silence; otherwise the
    transport reports ``disconnected`` when the socket is gone (idempotent either way)."""

    conn: ConnId
    code: CloseCode
    reason: str


@dataclass(frozen=True)
class CheckPassword:
    """Verify ``password`` against ``password_hash`` (scrypt, off the loop) and report the result
    with ``ServerCore.password_checked(conn, check, ok, now)``."""

    conn: ConnId
    check: int
    password: str
    password_hash: str
    request: str  # the request's type, for the transport's log
    source: str  # the client's address: checks are shared fairly between addresses


@dataclass(frozen=True)
class Rehash:
    """``agent_id`` just logged in with ``password`` and its stored hash costs less than today's
    guidance: hash it again and store it (where the directory is a file this server may write)."""

    agent_id: str
    password: str


@dataclass(frozen=True)
class PeerSend:
    """Send ``frame`` on the outbound link to the peer ``to`` (the URL it dials), or on every
    outbound peer link when ``to`` is None (dropped where a link is down). This is the seam a
    transport plugs into: a mesh of links, or a bus that delivers to one site or to all."""

    frame: str
    to: str | None = None


@dataclass(frozen=True)
class PeerClose:
    """Close the outbound peer link ``to`` (every one when None) with ``code`` (the peer failed
    authentication); the transport dials again after its usual backoff."""

    code: CloseCode
    reason: str
    to: str | None = None


@dataclass(frozen=True)
class PeerRedial:
    """Drop the outbound peer links (if up) and dial again now: after a stall of this process, a
    fresh link is how the peers' current view reaches us quickly."""


@dataclass(frozen=True)
class StoreConfig:
    """Keep the shared configuration at ``version`` across a restart (docs/multisite.md, "One
    configuration"): with ``files`` (it came from another site), write ``config``'s queues, reasons
    and dispositions and ``directory`` into this site's files first, atomically; then the version.
    Without ``files`` the files already hold it (they were read): store the version only."""

    config: ServerConfig
    directory: Directory
    version: ConfigVersion
    files: bool


Output = Send | Close | CheckPassword | Rehash | PeerSend | PeerClose | PeerRedial | StoreConfig
