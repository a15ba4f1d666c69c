"""The answer to ``RequestTransferTargets``: the queues and every agent logged in anywhere in the
center, for the desktop's transfer picker. Pure: the server core passes what it knows (its own
logins with their availability from the routing engine, and the agent pool's records of the agents
at the linked sites); nothing here changes anything.

An agent logged in here is listed from this site's own login (the pool may still hold a record of
an earlier login elsewhere); one known only through the pool is listed at the site that told it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .. import protocol as p

Target = tuple[str, str, p.AgentStateName, bool]  # agent id, site, state, available for a transfer now


def transfer_targets(asker: str, queues: Iterable[str], local: Iterable[Target], remote: Iterable[Target],
                     name_of: Callable[[str], str | None]) -> p.TransferTargets:
    agents: dict[str, p.TransferTargetAgent] = {}
    for group in (local, remote):
        for agent_id, site, state, available in group:
            if agent_id != asker and agent_id not in agents:
                agents[agent_id] = p.TransferTargetAgent(agent_id=agent_id, site=site, state=state,
                                                         available=available, name=name_of(agent_id))
    return p.TransferTargets(queues=sorted(queues), agents=[agents[a] for a in sorted(agents)])
