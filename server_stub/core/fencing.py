"""Logins and fencing: which epoch each agent is at, here and at the peer, and which resume
tokens still open a login.

Epochs only go up. A server refuses anything older than the newest epoch it knows for an agent
(its own logins, the peer's, the tokens it has seen), so a stale primary can never act for an
agent that moved. Two exceptions are kept here as data: the lost-ack retry of a resume-token
login, and the tokens voided by a logout.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

from .. import protocol as p
from ..directory import AgentRecord
from .io import ConnId

# A login may ask for at most this much above the newest epoch known for the agent: enough for a
# desktop that raises its epoch on every attempt through a long outage, and far from the wire
# limit, which one absurd request would otherwise push the pair's epochs past (breaking peer sync).
EPOCH_LEAP = 1_000


class LostAck(NamedTuple):
    """A login made with a resume token, whose lost-ack retry (the same token) is let through."""

    epoch: int
    token_epoch: int
    until_ms: int


@dataclass(eq=False)
class Login:
    """A login: this server is the agent's primary for ``epoch``."""

    agent: AgentRecord
    epoch: int
    state: p.AgentStateName
    since_ms: int
    login_ms: int
    conn: ConnId
    reason: str | None = None
    place: str | None = None
    refresh_at: float = 0.0  # monotonic time of the next resume-token refresh
    # (issuing site, epoch) of the resume token this login was made with: a logout voids it too,
    # since the login it came from did not end with a logout (a failover or a failback).
    made_from: tuple[str, int] | None = None
    # False while its desktop has been silent past the heartbeat timeout (suspect): offered nothing,
    # reported unreachable, ended only after the client timeout.
    reachable: bool = True

    def report(self, interaction_id: str | None = None) -> p.AgentReport:
        return p.AgentReport(
            agent_id=self.agent.id, name=self.agent.name, epoch=self.epoch, state=self.state,
            since_ms=self.since_ms, login_ms=self.login_ms, reason=self.reason, place=self.place,
            interaction_id=interaction_id, reachable=self.reachable,
        )


class Fencing:
    """What this server knows of every agent's epochs, here and at the peer."""

    def __init__(self, lost_ack_window_ms: int = p.LOST_ACK_WINDOW_MS) -> None:
        # How long a lost-ack retry is let through: at least LOST_ACK_WINDOW_MS, and (the server
        # passes its token lifetime) as long as the token that made the login may still be valid.
        # A desktop that cannot reach any site for a while (a storm, a starved machine) must not
        # find its only credential refused as stale when it gets through: that would ask the agent
        # for the password because of timing alone.
        self.lost_ack_window_ms = max(lost_ack_window_ms, p.LOST_ACK_WINDOW_MS)
        self.known_epoch: dict[str, int] = {}  # highest epoch ever seen for an agent
        self.peer_logged_in: dict[str, int] = {}  # what the peers say they hold (the newest, per agent)
        self.peer_sites: dict[str, dict[str, int]] = {}  # site -> agent -> epoch it says it holds
        # Agent -> (epoch of its last login made with a resume token, here or at the peer; that
        # token's epoch). A desktop whose failover login was acknowledged but whose link died
        # before the ack arrived retries with the same token; it is the only holder of that
        # token, so the retry is let through, here or (the peer told us) at the peer's survivor.
        # Ends after lost_ack_window_ms, or once that login's socket shows it got its ack.
        self.resumed_from: dict[str, LostAck] = {}
        # Agent -> issuing site -> epoch of the agent's last login there that a logout (not a
        # handover) or a supervisor ended, as seen here or told by the peer: that site's tokens up
        # to that epoch are void, so a copy cannot log in again. Per site, because two sites cut
        # off from each other can both hand out the same epoch, and one's logout must not void
        # the other's live login.
        self.logged_out_epoch: defaultdict[str, dict[str, int]] = defaultdict(dict)

    def saw(self, agent_id: str, epoch: int) -> None:
        self.known_epoch[agent_id] = max(self.known_epoch.get(agent_id, 0), epoch)

    def void(self, agent_id: str, site: str, epoch: int) -> None:
        voids = self.logged_out_epoch[agent_id]
        voids[site] = max(voids.get(site, 0), epoch)

    def voided(self, agent_id: str, site: str | None, epoch: int) -> bool:
        """Was the login of a token from ``site`` at ``epoch`` logged out? (no site: never voided)"""
        if site is None:
            return False
        return epoch <= self.logged_out_epoch.get(agent_id, {}).get(site, 0)

    def is_lost_ack_retry(self, agent_id: str, newest: int, token_epoch: int | None, asked: int | None,
                          now_ms: int) -> bool:
        """The same token again for the login it made, asking above it, within the window: the
        desktop never got that login's ack. A late original asks for no more than the login it
        made, so it can never displace the retry that overtook it."""
        marker = self.resumed_from.get(agent_id)
        return (token_epoch is not None and marker is not None
                and (marker.epoch, marker.token_epoch) == (newest, token_epoch)
                and now_ms <= marker.until_ms and (asked or 0) > newest)

    def logged_in(self, agent_id: str, epoch: int, token_epoch: int | None, now_ms: int) -> None:
        self.known_epoch[agent_id] = epoch
        if token_epoch is not None:
            self.resumed_from[agent_id] = LostAck(epoch, token_epoch, now_ms + self.lost_ack_window_ms)
        else:
            self.resumed_from.pop(agent_id, None)

    def acknowledged(self, agent_id: str, epoch: int) -> None:
        """The login's socket sent a request at its epoch: it has its ack, no retry to expect."""
        marker = self.resumed_from.get(agent_id)
        if marker is not None and marker.epoch == epoch:
            del self.resumed_from[agent_id]

    def peer_resumed(self, held: dict[str, int], now_ms: int) -> dict[str, int]:
        """The lost-ack markers for the peer (which may have to take the retry): of logins held here,
        and of logins that ended here without a newer one known (a desktop whose link closed before
        its ack arrived: its retry carries the token it had). The marked epoch is the held one, or
        the newest known (``known`` of the full state)."""
        return {agent: marker.token_epoch for agent, marker in self.resumed_from.items()
                if marker.until_ms >= now_ms and (held.get(agent) == marker.epoch or (
                    agent not in held and marker.epoch >= self.known_epoch.get(agent, 0)))}

    def peer_lost_ack(self, agent_id: str, epoch: int, token_epoch: int, now_ms: int) -> None:
        """The peer tells the lost-ack marker of a login of ``epoch`` that ended there unacknowledged:
        kept here if that is still the newest epoch known for the agent."""
        if epoch >= self.known_epoch.get(agent_id, 0):
            self.saw(agent_id, epoch)
            self.resumed_from[agent_id] = LostAck(epoch, token_epoch, now_ms + self.lost_ack_window_ms)

    def peer_login(self, agent_id: str, epoch: int, token_epoch: int | None, now_ms: int, site: str = "") -> None:
        """The peer ``site`` holds the agent at ``epoch`` (made with a token at ``token_epoch``, if any)."""
        self.peer_sites.setdefault(site, {})[agent_id] = epoch
        self._merge(agent_id)
        self.saw(agent_id, epoch)
        if token_epoch is not None:
            self.resumed_from[agent_id] = LostAck(epoch, token_epoch, now_ms + self.lost_ack_window_ms)
        elif agent_id in self.resumed_from and self.resumed_from[agent_id].epoch <= epoch:
            # A password login there at this epoch or above: an older marker describes nothing.
            self.resumed_from.pop(agent_id, None)

    def peer_logout(self, site: str, agent_id: str) -> None:
        """The peer ``site`` no longer holds the agent."""
        self.peer_sites.get(site, {}).pop(agent_id, None)
        self._merge(agent_id)

    def peer_forget(self, site: str | None = None) -> None:
        """What ``site`` (every peer when None) holds is unknown now, not still valid."""
        sites = list(self.peer_sites) if site is None else [site]
        for name in sites:
            for agent_id in self.peer_sites.pop(name, {}):
                self._merge(agent_id)

    def peer_site(self, agent_id: str) -> str | None:
        """The peer site holding the agent at the newest epoch, if any."""
        held = [(epoch, site) for site, agents in self.peer_sites.items() if (epoch := agents.get(agent_id))]
        return max(held)[1] if held else None

    def _merge(self, agent_id: str) -> None:
        epochs = [agents[agent_id] for agents in self.peer_sites.values() if agent_id in agents]
        if epochs:
            self.peer_logged_in[agent_id] = max(epochs)
        else:
            self.peer_logged_in.pop(agent_id, None)
