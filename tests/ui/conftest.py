"""GUI test fixtures: a qasync loop that counts as running while pytest-qt spins Qt, isolated
QSettings and keyring, and a controller factory. Any Qt warning fails the test."""

from __future__ import annotations

import asyncio

import keyring
import pytest
import qasync
from PySide6.QtCore import QSettings

from desktop import credentials
from desktop.ui.controller import DesktopController
from desktop.ui.settings import DesktopSettings, Site
from tests.support.memory_keyring import use_memory_keyring
from tests.support.servers import ADDRESS_IN_USE, PortInUse, reserve_port


@pytest.fixture(autouse=True)
def fail_on_qt_warnings(request):
    """pytest-qt fails the test when Qt logs a message at WARNING or above (qtbot's message handler)."""
    request.node.add_marker(pytest.mark.qt_log_level_fail("WARNING"))


@pytest.fixture(autouse=True)
def isolated_keyring():
    before = keyring.get_keyring()
    backend = use_memory_keyring()
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def qloop(qapp, qtbot):
    """qasync's loop in "already running" mode: qtbot.waitUntil processes Qt events, and with them
    the asyncio callbacks, sockets and timers of the session runner."""
    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    # Let closing links finish (their tasks run on Qt events), then detach the loop.
    qtbot.waitUntil(lambda: all(t.done() for t in asyncio.all_tasks(loop)), timeout=5000)
    # Not loop.stop(): in already-running mode it calls QApplication.exit(), which leaves the shared
    # QApplication unable to run timers for the next test's loop.
    loop._QEventLoop__is_running = False
    asyncio.events._set_running_loop(None)
    loop._after_run_forever()
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def user_store(tmp_path):
    return QSettings(str(tmp_path / "user.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_desktop(qloop, qtbot, user_store):
    """``make_desktop(servers, **kw)``: a DesktopController whose sites are the given real servers."""
    made: list[DesktopController] = []

    def make(servers, store=None, settings=None, **kwargs) -> DesktopController:
        """``settings``: extra DesktopSettings fields (heartbeat_timeout, failback)."""
        settings = DesktopSettings(sites=tuple(Site(s.name, s.url) for s in servers),
                                   preferred_site=servers[0].name, **(settings or {}))
        kwargs.setdefault("keyring_reason", credentials.keyring_unavailable_reason())
        controller = DesktopController(settings, store if store is not None else user_store, **kwargs)
        controller.show()
        made.append(controller)
        return controller

    yield make
    # Not qtbot.addWidget: pytest-qt closes those before fixtures end, and closing a logged-in main
    # window logs out and quits. Shut the session down first, then close the windows.
    for controller in made:
        controller.shutdown()
        for window in (controller.login_window, controller.main_window):
            window.close()
            window.deleteLater()


@pytest.fixture
def demo_servers():
    """The demo's own sites (``desktop.demo.DemoServers``) on ports reserved for them (each is in
    the other's peer URL)."""
    from desktop.demo import DemoServers

    servers = DemoServers((reserve_port(), reserve_port()))
    try:
        servers.start()
    except RuntimeError as exc:
        servers.stop()
        raise (PortInUse if ADDRESS_IN_USE in str(exc).lower() else AssertionError)(str(exc)) from exc
    yield servers
    servers.stop()
