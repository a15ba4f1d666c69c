"""A RabbitMQ broker of the test session's own (``server_stub.bus.broker.LocalBroker``) and helpers
for tests of the site bus.

The ``rabbitmq`` fixture (session-scoped, imported by tests/conftest.py) starts one broker the
first time a test asks for it, and stops it, epmd included, at the end of the session; a session
whose tests never ask starts none. ``bus_sites(n)`` provisions ``n`` fresh sites on it (their own
users, permissions and inboxes), so tests sharing the broker never see each other's frames.
Tests that kill the broker start one of their own with ``LocalBroker`` (tests/bus/test_faults.py).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from server_stub.bus.broker import BrokerError, LocalBroker, available

# How long a condition may take to come true in bus tests: generous (a loaded 2-core machine),
# the test returns as soon as it holds.
BUS_DEADLINE = 20.0


def require_rabbitmq() -> None:
    if not available():
        pytest.fail("RabbitMQ is not installed: run `.ci/setup --test` (it installs Debian's rabbitmq-server)")


def start_broker(name: str = "test") -> LocalBroker:
    require_rabbitmq()
    broker = LocalBroker(name=name)
    try:
        return broker.start()
    except BrokerError:
        broker.stop()
        raise


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[LocalBroker]:
    """One broker for the session: loopback only, its own node name, ports and temporary data."""
    broker = start_broker("session")
    try:
        yield broker
    finally:
        broker.stop()


_site_numbers = itertools.count()


@pytest.fixture
def bus_sites(rabbitmq: LocalBroker) -> Callable[[int], list[str]]:
    """``bus_sites(n)``: the names of ``n`` sites new to the session broker, provisioned on it."""

    def make(n: int) -> list[str]:
        batch = f"t{next(_site_numbers)}{uuid.uuid4().hex[:4]}"
        names = [f"{batch}-{chr(ord('a') + i)}" for i in range(n)]
        rabbitmq.add_sites(names)
        return names

    return make


async def until(predicate: Callable[[], Any], what: str, timeout: float = BUS_DEADLINE) -> Any:
    """Wait on the event loop until ``predicate()`` is truthy (checked every few ms); its value."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not (value := predicate()):
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.005)  # polling a condition with a deadline, not a fixed wait
    return value


class Inbox:
    """What one site's bus delivered: ``(from_site, frame)`` in order, the reconnect calls, and
    the other sites' ups and downs (``("up", site)``, ``("down", site)``) in order."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.resyncs = 0
        self.sites: list[tuple[str, str]] = []

    def site_up(self, site: str) -> None:
        self.sites.append(("up", site))

    def site_down(self, site: str) -> None:
        self.sites.append(("down", site))

    def __call__(self, from_site: str, frame: bytes) -> None:
        self.frames.append((from_site, frame))

    def on_reconnect(self) -> None:
        self.resyncs += 1

    def bodies(self, prefix: bytes = b"") -> list[bytes]:
        return [frame for _, frame in self.frames if frame.startswith(prefix)]
