import atexit
import os
import tempfile

import pytest

from desktop.gui_gc import GuiThreadCollector

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.support.inprocess import InProcessServer
from tests.support.rabbitmq import bus_sites, rabbitmq  # noqa: F401 - fixtures (a broker only for tests that ask)
from tests.support.servers import ServerProcess, forget_stopped_servers, start_pair, watched_servers

# The programs the tests run read no machine settings of this computer's: the installer tests put
# /etc/agent-desktop/settings.toml there (dpkg -i) and edit it while other tests run beside them
# (pytest-xdist). An empty file (no key set) in its place, as desktop.ui.settings.SETTINGS_ENV allows;
# tests/test_installer.py gives its installed programs the machine's own again.
_NO_MACHINE_SETTINGS = tempfile.NamedTemporaryFile(prefix="no-machine-settings-", suffix=".toml", delete=False)
_NO_MACHINE_SETTINGS.close()
atexit.register(os.unlink, _NO_MACHINE_SETTINGS.name)
os.environ.setdefault("AGENT_DESKTOP_SETTINGS", _NO_MACHINE_SETTINGS.name)

SHOWN_LINES = 60  # of each server's output, when a test fails

# Under pytest-xdist (.ci/test runs ``-n 5``) tests go to whichever worker is free, one at a time,
# except groups that share an expensive fixture, which one worker runs so it is built once: the
# packaged application (tests/test_installer.py builds it once for the module) and the session's
# RabbitMQ broker (tests/bus/, tests/support/rabbitmq.py). By path, because the scheduler only sees
# node ids (and xdist 3.8's own ``xdist_group`` marks are lost under pytest 9: their node-id suffix
# is no longer applied). A test elsewhere that uses the ``rabbitmq`` fixture still works: its worker
# starts a broker of its own.
XDIST_GROUPS = (("tests/test_installer.py", "installer"), ("tests/bus/", "broker"))


def xdist_group(nodeid: str) -> str | None:
    return next((group for prefix, group in XDIST_GROUPS if nodeid.startswith(prefix)), None)


@pytest.hookimpl(optionalhook=True)  # xdist's hook: pytest without xdist (-p no:xdist) runs serially
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` (what .ci/test asks for) with the groups above."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        """xdist's ``loadscope`` with one test per unit of work, except ``XDIST_GROUPS``."""

        def _split_scope(self, nodeid: str) -> str:
            return xdist_group(nodeid) or nodeid

    return GroupScheduling(config, log)


def _start_rank(item: pytest.Item) -> int:
    """The order the work is handed out in: the two groups first (each to its own worker), then
    the slow tests, so that no long test is left for the end while the other workers idle."""
    group = xdist_group(item.nodeid)
    return {"installer": 0, "broker": 1}.get(group or "", 2 if item.get_closest_marker("slow") else 3)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the same order in every worker (xdist checks)
        items.sort(key=_start_rank)


_gui_collectors: list[GuiThreadCollector] = []


@pytest.fixture(scope="session")
def gui_thread_collector(qapp):
    """From the first Qt test on, garbage is collected as the applications do it (desktop.gui_gc):
    only on the GUI thread. Qt objects left by one test become garbage at odd moments (a window's
    deferred delete drops its slots' references), and the next test's server pumps and watchers
    would otherwise free them in their threads."""
    collector = GuiThreadCollector(qapp).start()
    _gui_collectors.append(collector)
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread(request):
    if {"qapp", "qtbot"} & set(request.fixturenames):
        request.getfixturevalue("gui_thread_collector")
    yield
    for collector in _gui_collectors:  # tests that process no Qt events still collect, here
        collector.collect_due()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the output of the servers it ran (the last lines of each)."""
    report = yield
    if report.failed:
        for server in watched_servers():
            report.sections.append((f"server {server.name} at {server.url} ({server.kind}), last {SHOWN_LINES} lines",
                                    "\n".join(server.lines[-SHOWN_LINES:])))
    if report.when == "teardown":
        forget_stopped_servers()
    return report


def server_kind(request):
    """Servers run in the test process, unless the test is marked ``server_processes`` (it kills,
    stops or restarts them, or needs them to be separate programs)."""
    return ServerProcess if request.node.get_closest_marker("server_processes") else InProcessServer


@pytest.fixture
def pair(request):
    """Sites A and B, peer-linked on loopback ports (see ``server_kind``); stopped after the test."""
    a, b = start_pair(kind=server_kind(request))
    yield a, b
    for server in (a, b):
        server.stop()


@pytest.fixture
def make_pair(request):
    """``make_pair(extra_args)``: a started, peer-linked pair with extra command-line arguments."""
    started: list[ServerProcess | InProcessServer] = []

    def make(extra_args=None):
        a, b = start_pair(extra_args, kind=server_kind(request))
        started.extend((a, b))
        return a, b

    yield make
    _stop_cleanly(started)


@pytest.fixture
def make_server(request):
    """``make_server(extra_args, name=)``: one started server without a peer."""
    started = []

    def make(extra_args=None, name="A"):
        server = server_kind(request)(name, 0, None, list(extra_args or []))
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
