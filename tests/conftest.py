import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.support.servers import server_pair, single_server  # noqa: E402


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread(request):
    """Qt tests collect garbage as the applications do (desktop.gui_gc): only on the GUI thread, and
    everything a test left is collected there before the next test's threads start allocating."""
    if not {"qapp", "qtbot"} & set(request.fixturenames) or request.node.get_closest_marker("own_gc"):
        yield
        return
    from desktop.gui_gc import GuiThreadCollector

    collector = GuiThreadCollector(request.getfixturevalue("qapp")).start()
    yield
    collector.stop()
    collector.deleteLater()


@pytest.fixture
def pair():
    """Sites A and B as real, peer-linked processes on loopback ports; stopped after the test."""
    a, b = server_pair()
    a.start()
    b.start()
    yield a, b
    for server in (a, b):
        server.stop()


@pytest.fixture
def make_pair():
    """``make_pair(extra_args)``: a started, peer-linked pair with extra command-line arguments."""
    started = []

    def make(extra_args=None):
        a, b = server_pair(extra_args)
        started.extend((a, b))
        a.start()
        b.start()
        return a, b

    yield make
    _stop_cleanly(started)


@pytest.fixture
def make_server():
    """``make_server(extra_args, name=)``: one started server without a peer."""
    started = []

    def make(extra_args=None, name="A"):
        server = single_server(name, extra_args)
        started.append(server)
        return server.start()

    yield make
    _stop_cleanly(started)


def _stop_cleanly(servers):
    """Stop every server; one that was running must exit 0 by itself (no hang, no kill)."""
    unclean = []
    for server in servers:
        running = server.alive()
        code = server.stop()
        if running and code != 0:
            unclean.append(f"{server.name} exited {code}:\n" + "\n".join(server.lines[-15:]))
    assert not unclean, "\n".join(unclean)
