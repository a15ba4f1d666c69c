"""The center-scope reporting stream: this site's events and the agents of every other site.

A supervisor that subscribes with ``scope: "center"`` sees, from any one server, every agent of
the contact center: this server's own reporting events (as a site subscriber sees them) and the
agents logged in at the other sites as the agent pool (pool.py) knows them, each with ``server`` =
its site. The stream has its own ``stream_id`` and ``seq`` counter, so a site subscriber's stream
stays exactly as it was (no gaps). It starts at the first center subscription of this server's life.

What a peer's presence does not carry is approximated (docs/protocol.md): ``login_ms`` is the time
in state first told for that login, ``place`` and ``interaction_id`` are unknown, and a logout's
reason is ``logout``. An agent a site tells nothing of any more (the site's full snapshot omits it)
is logged out; while the link to a site is lost its agents show ``reachable: false``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import msgspec

from .. import protocol as p
from .reporting import ReportingStream

Make = Callable[[int], p.Message]


class CenterStream:
    def __init__(self, server: str, capacity: int, stream_id: str) -> None:
        self.server = server
        self.stream = ReportingStream(server, capacity, f"{stream_id}.center")
        self.shown: dict[str, p.AgentReport] = {}  # remote agent -> what this stream told of it

    def report(self, site: str, presence: p.AgentPresence, name: str, login_ms: int | None = None,
               reachable: bool = True) -> p.AgentReport:
        return p.AgentReport(agent_id=presence.agent_id, name=name, epoch=presence.epoch, state=presence.state,
                             since_ms=presence.since_ms, login_ms=presence.since_ms if login_ms is None else login_ms,
                             reason=presence.reason, server=site, reachable=reachable)

    def told(self, site: str, presences: Iterable[p.AgentPresence], full: bool, name_of: Callable[[str], str],
             local_epoch: Callable[[str], int | None]) -> list[Make]:
        """The events that what ``site`` told (records the pool took) means for the stream."""
        events: list[Make] = []
        listed: set[str] = set()
        for presence in presences:
            listed.add(presence.agent_id)
            events.extend(self._one(site, presence, name_of, local_epoch))
        if full:
            for agent_id, shown in list(self.shown.items()):
                if shown.server == site and agent_id not in listed:
                    events.append(self._logout(site, shown))
        return events

    def _one(self, site: str, presence: p.AgentPresence, name_of: Callable[[str], str],
             local_epoch: Callable[[str], int | None]) -> list[Make]:
        agent_id = presence.agent_id
        shown = self.shown.get(agent_id)
        here = local_epoch(agent_id)
        if here is not None and here >= presence.epoch:
            self.shown.pop(agent_id, None)  # logged in here now: this site's own events say it
            return []
        if not presence.logged_in:
            if shown is not None and shown.server == site and shown.epoch == presence.epoch:
                return [self._logout(site, shown)]
            return []
        if shown is None or shown.server != site or shown.epoch != presence.epoch:
            report = self.shown[agent_id] = self.report(site, presence, name_of(agent_id))
            return [lambda seq: p.EventAgentLogin(server=site, seq=seq, agent=report)]
        if (shown.state, shown.reason, shown.since_ms, shown.reachable) == (
                presence.state, presence.reason, presence.since_ms, True):
            return []
        self.shown[agent_id] = self.report(site, presence, shown.name, shown.login_ms)
        return [lambda seq: p.EventAgentStateChanged(server=site, seq=seq, agent_id=agent_id, epoch=presence.epoch,
                                                     state=presence.state, since_ms=presence.since_ms,
                                                     reason=presence.reason)]

    def _logout(self, site: str, shown: p.AgentReport) -> Make:
        del self.shown[shown.agent_id]
        return lambda seq: p.EventAgentLogout(server=site, seq=seq, agent_id=shown.agent_id, epoch=shown.epoch,
                                              reason="logout")

    def site_lost(self, site: str) -> list[Make]:
        """No link to ``site``: its agents are unknown now, not logged out (``reachable: false``)."""
        events: list[Make] = []
        for agent_id, shown in list(self.shown.items()):
            if shown.server == site and shown.reachable:
                self.shown[agent_id] = msgspec.structs.replace(shown, reachable=False)
                events.append(_unreachable(site, shown))
        return events


def _unreachable(site: str, shown: p.AgentReport) -> Make:
    return lambda seq: p.EventAgentStateChanged(server=site, seq=seq, agent_id=shown.agent_id, epoch=shown.epoch,
                                                state=shown.state, since_ms=shown.since_ms, reason=shown.reason,
                                                reachable=False)

