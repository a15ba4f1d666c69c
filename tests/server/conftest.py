import pytest

from tests.support.inprocess import InProcessServer
from tests.support.servers import start_pair


@pytest.fixture(scope="module")
def server():
    """Site A of a pair (in this process) shared by a module's tests (each brings its own sockets);
    both must stop cleanly."""
    a, b = start_pair(kind=InProcessServer)
    yield a
    assert b.stop() == 0
    assert a.stop() == 0, "server A did not stop cleanly after the module's tests"
