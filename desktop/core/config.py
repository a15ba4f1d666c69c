"""Knobs of one agent session, with defaults chosen for the fastest failover of one agent that stay
sane when a site dies under thousands of agents at once.

Why these defaults:

- ``heartbeat_interval`` 0.5 s / ``heartbeat_timeout`` 1.5 s: the server's own figures. A silent
  primary is declared dead after three missed beats, so a hung server or a cut cable costs at most
  1.5 s of detection instead of TCP keepalive's minutes.
- ``client_heartbeat_interval`` 1.5 s: asymmetric terms. The server keeps beating a login's socket
  every ``heartbeat_interval`` (0.5 s), so a dead or hung server is still found after
  ``heartbeat_timeout`` (1.5 s); we beat it only every 1.5 s when quiet, and the server (told so at
  registration) suspects us after three of those (4.5 s) instead of 1.5 s. A primary link then
  carries 2.67 heartbeat frames a second instead of 4 (a third fewer): the frames that starved a
  loaded pair. The cost: a desktop that really hangs is offered work for 4.5 s instead of 1.5 s
  (an offer it cannot answer times out and goes to another agent), and a supervisor sees it
  "unreachable" 3 s later. A silence we find is still confirmed with a heartbeat at once, and the
  witness is asked only after one (the primary judges whether it hears us by its own 1.5 s).
- ``standby_heartbeat_interval`` 5 s (the servers' ``STANDBY_HEARTBEAT_MS``): a standby link
  (secondary, no login on it) only has to notice a dead backup eventually, and the server keeps a
  standby socket for its 20 s client timeout; both ends heartbeat it this rarely when quiet, and
  it is lost after three intervals (15 s) of silence. That halves the heartbeat frames a pair of
  sites carries (2,000 agents: 16,000 frames/s to about 8,800), the load that made starved sites
  miss their primaries' heartbeats. A login sent on it is judged at the fast terms from that
  moment (``heartbeat_timeout`` after the send), so a failover to a hung backup is still given up
  in 1.5 s.
- ``login_timeout`` 5 s: a link with our login request in flight (a failover login on the standby,
  the first login) is given up after 5 s of silence, not 1.5 s. When a site dies under thousands
  of agents, the backup reads and answers their logins one after the other; at 5,000 agents on a
  2-core pair the last answers came seconds later, the desktops gave the backup up after 1.5 s
  (a hung backup, they thought), closed the link, the backup ended the login it had just made,
  and they came back through the reconnect backoff: the 45 s tail of the 5,000-agent storm. The
  cost: a backup that really hangs while the primary dies is left after 5 s instead of 1.5 s, when
  the agent had nowhere else to go anyway unless a third site is configured.
- ``last_site_timeout`` 5 s: a primary with no other site registered beside it (the other died,
  nothing to move to and no witness to ask) is given up after 5 s of silence, not 1.5 s. Right
  after a site dies under thousands of agents, the survivor is the busiest it will ever be, and
  a desktop that gives it up only logs in there again: at 5,000 agents the desktops lost the
  backup by heartbeat timeout 6,751 times within a minute of the kill. As soon as another site is
  registered again, the fast terms (and the witness) apply.
- ``late_timer`` 0.1 s: a link timer that fires this much after its time shows that this process
  itself was held up (SIGSTOP, a VM or GC pause, starved of CPU); frames may then be waiting
  unread, so a silence it finds is only suspected: the link gets a confirm window of one heartbeat
  interval, and any frame read meanwhile clears it. A silent server is thus declared dead after
  ``heartbeat_timeout`` when the timer is on time, and one ``heartbeat_interval`` later (2 s with
  the defaults, plus the timers' own lateness) when it is late; a closed socket (kill -9) is still
  acted on at once.
- ``witness_rounds`` 2: a silent primary is not left at once while a standby is registered: the
  standby's server, which hears the primary on its own peer link, says whether the primary is
  alive and still hears this desktop (``RequestPrimaryCheck``). A dead or hung primary's peer link
  is closed or silent too, so the answer "not alive" comes at once and the failover is as fast as
  before; a live one keeps the login (a false suspicion under load costs one question, not a
  login, a fencing round and a double login), judged again after another ``heartbeat_timeout``, at
  most twice in a row, so a desktop that cannot hear a live primary still moves within about 5 s.
- ``backup_delay`` 0: the failover login goes on the standby link, which is already open and
  registered. It costs the server one HMAC check (resume token, no password hash), so there is no
  storm to protect against, and any wait is time the agent cannot work.
- ``initial_delay_range`` (0, 1) s: when a site dies, every one of its agents loses its link in the
  same instant. The agent does not need that site any more (its login moved to the standby), so
  its first reconnect waits a random 0-1 s: a site that restarts quickly is not hit by thousands of
  handshakes in the same millisecond. With no standby left the agent pays at most 1 s on top of a
  server restart that takes longer anyway.
- ``retry_delays`` (0.25, 0.5, 1, 2, 5) s, the last repeating, each drawn from
  ``[d * (1 - retry_jitter), d]``: failed attempts back off quickly to one try every 2.5-5 s, and
  the jitter keeps agents that lost the site together from retrying in lockstep for ever.
- ``open_timeout`` 2 s: bounds one connect + register. A blackholed host would otherwise hold the
  attempt for minutes; 2 s is many round trips even for a TLS handshake on a busy server. Each
  attempt in a row that ran past it gets twice as long (at most 8 s), back to 2 s once one
  registers: a site too busy to finish handshakes is not helped by attempts abandoned and made
  again (its half-done work wasted, its load growing).
- ``failback`` "never": moving back to the preferred site means a short logout and a login, which
  supervisors see; it is a site policy, not a default. With "when-idle" the preferred site must
  have been a healthy secondary for ``failback_hold`` (5 s) first, so a flapping site does not
  bounce agents back and forth.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from server_stub import protocol as p
from server_stub.protocol import LOST_ACK_WINDOW_MS, Site

FailbackPolicy = Literal["never", "when-idle"]


@dataclass(frozen=True)
class SessionConfig:
    """Settings of one session. ``endpoints`` is ordered: the preferred site first.

    ``endpoints`` holds ``Site`` objects (``(name, url)`` pairs are converted too).
    """

    endpoints: tuple[Site, ...]
    client_name: str = "agent-desktop"
    heartbeat_interval: float = 0.5
    heartbeat_timeout: float = 1.5
    # How often we heartbeat a quiet login socket (asymmetric terms, see the module docstring).
    client_heartbeat_interval: float = 1.5
    standby_heartbeat_interval: float = p.STANDBY_HEARTBEAT_MS / 1000
    # A link with our login request in flight is given up after this much silence (not
    # heartbeat_timeout): see the module docstring.
    login_timeout: float = 5.0
    # A primary with no other site registered (nowhere to move, no witness to ask) is given up
    # after this much silence, not heartbeat_timeout: see the module docstring.
    last_site_timeout: float = 5.0
    open_timeout: float = 2.0
    late_timer: float = 0.1
    retry_delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 5.0)
    retry_jitter: float = 0.5
    initial_delay_range: tuple[float, float] = (0.0, 1.0)
    backup_delay: float = 0.0
    failback: FailbackPolicy = "never"
    failback_hold: float = 5.0
    # A resume token refused as stale waits this long for the other sites (one may hold a login
    # whose ack was lost); then the agent is asked for the password. As long as the servers let
    # such a retry through.
    token_retry_wait: float = LOST_ACK_WINDOW_MS / 1000
    # Ask every login for the agent's queue figures (EventAgentQueues, about once a second while
    # they change): the desktop's figures panel shows them; headless agents and benches need not.
    queue_statistics: bool = False
    # A primary silent past heartbeat_timeout while a standby is registered: the standby's server is
    # asked first whether the primary is alive and still hears this desktop (the witness); if so the
    # login stays, judged again after another heartbeat_timeout, at most this many times in a row
    # (0: fail over at once, as without a witness).
    witness_rounds: int = 2

    def __post_init__(self) -> None:
        endpoints = tuple(e if isinstance(e, Site) else Site(*e) for e in self.endpoints)
        object.__setattr__(self, "endpoints", endpoints)
        object.__setattr__(self, "retry_delays", tuple(float(d) for d in self.retry_delays))
        object.__setattr__(self, "initial_delay_range", tuple(float(d) for d in self.initial_delay_range))
        names = [e.name for e in endpoints]
        if not endpoints or len(set(names)) != len(names):
            raise ValueError(f"endpoints must be a non-empty list with distinct names, got {names}")
        if not 0.1 <= self.heartbeat_interval <= 60:
            raise ValueError("heartbeat_interval must be within 0.1..60 s (the server's range)")
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise ValueError("heartbeat_timeout must be longer than heartbeat_interval")
        if not self.heartbeat_interval <= self.client_heartbeat_interval <= p.STANDBY_HEARTBEAT_MS / 1000:
            raise ValueError("client_heartbeat_interval must be within heartbeat_interval and "
                             f"{p.STANDBY_HEARTBEAT_MS} ms (the slowest beat a server takes)")
        if not self.heartbeat_interval <= self.standby_heartbeat_interval <= p.STANDBY_HEARTBEAT_MS / 1000:
            raise ValueError("standby_heartbeat_interval must be within heartbeat_interval and the servers' "
                             f"standby heartbeat ({p.STANDBY_HEARTBEAT_MS} ms): a standby is heard no more often")
        if self.login_timeout <= 0 or self.last_site_timeout <= 0:
            raise ValueError("login_timeout and last_site_timeout must be positive")
        if not self.late_timer > 0:
            raise ValueError("late_timer must be positive")
        if not 0 <= self.witness_rounds <= 10:
            raise ValueError("witness_rounds must be within 0..10")
        if self.open_timeout <= 0 or self.backup_delay < 0 or self.failback_hold < 0:
            raise ValueError("open_timeout must be positive, backup_delay and failback_hold not negative")
        if not self.retry_delays or min(self.retry_delays) < 0:
            raise ValueError("retry_delays must be a non-empty list of non-negative delays")
        low, high = self.initial_delay_range
        if not 0 <= low <= high:
            raise ValueError("initial_delay_range must be (low, high) with 0 <= low <= high")
        if not 0 <= self.retry_jitter <= 1:
            raise ValueError("retry_jitter must be within 0..1")
        if self.failback not in ("never", "when-idle"):
            raise ValueError(f"failback must be 'never' or 'when-idle', got {self.failback!r}")

    def reconnect_delay(self, failures: int, rng: random.Random) -> float:
        """Wait before the next attempt: after losing a working link (``failures`` 0) a draw from
        ``initial_delay_range``; after the n-th failed attempt in a row ``retry_delays[n-1]``
        (the last repeats), jittered down by up to ``retry_jitter``."""
        if failures <= 0:
            return rng.uniform(*self.initial_delay_range)
        delay = self.retry_delays[min(failures, len(self.retry_delays)) - 1]
        return delay * (1 - self.retry_jitter * rng.random())
