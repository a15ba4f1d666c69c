import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.support.servers import server_pair  # noqa: E402


@pytest.fixture
def pair():
    """Sites A and B as real, peer-linked processes on loopback ports; stopped after the test."""
    a, b = server_pair()
    a.start()
    b.start()
    yield a, b
    for server in (a, b):
        server.stop()
