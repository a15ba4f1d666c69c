"""The peer transport seam: how the server core's peer messages reach the other sites.

The core addresses each peer frame to one peer or to all (``core.io.PeerSend.to``) and is told
about each peer link going up, speaking and going down (``ServerCore.peer_link_up``,
``peer_link_message``, ``peer_link_down``, each naming the peer). Anything that can do that is a
``PeerTransport``. ``Mesh`` is the embedded one (the default, no extra software): one outbound
``PeerLink`` per other site, each site linked to every other; a message bus (RabbitMQ, see
docs/multisite.md) can stand in for it behind the same interface.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Protocol

from . import protocol as p
from .peer import PeerLink


class PeerTransport(Protocol):
    def send(self, frame: str, to: str | None) -> None:
        """Deliver ``frame`` to the peer ``to`` (None: every peer); dropped where a link is down."""

    def redial(self) -> None:
        """Drop every link and establish it again now (after a stall of this process)."""

    def close(self, to: str | None, code: int, reason: str) -> None:
        """Close the link to ``to`` (None: every one); it is established again after a backoff."""

    async def run(self) -> None:
        """Keep the links up for as long as the server runs."""


class Mesh:
    """One outbound ``PeerLink`` per peer URL (the pair: one). Each link reports up, messages and
    down to the callbacks with its URL, which is how the core names the peer."""

    def __init__(self, urls: tuple[str, ...], *, ca_file: str | None, heartbeat_interval: float,
                 heartbeat_timeout: float, on_up: Callable[[str], None],
                 on_message: Callable[[str, p.Message], None], on_down: Callable[[str], None],
                 rng: random.Random | None = None) -> None:
        self.links: dict[str, PeerLink] = {}
        for url in urls:
            self.links[url] = PeerLink(
                url, ca_file=ca_file, heartbeat_interval=heartbeat_interval, heartbeat_timeout=heartbeat_timeout,
                on_up=lambda url=url: on_up(url),  # type: ignore[misc]
                on_message=lambda message, url=url: on_message(url, message),  # type: ignore[misc]
                on_down=lambda url=url: on_down(url), rng=rng)  # type: ignore[misc]

    def send(self, frame: str, to: str | None) -> None:
        for url, link in self.links.items():
            if to is None or to == url:
                link.send(frame)

    def redial(self) -> None:
        for link in self.links.values():
            link.redial()

    def close(self, to: str | None, code: int, reason: str) -> None:
        for url, link in self.links.items():
            if to is None or to == url:
                link.close(code, reason)

    async def run(self) -> None:
        await asyncio.gather(*(link.run() for link in self.links.values()))
