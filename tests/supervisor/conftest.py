"""Supervisor-view tests fail on any Qt warning (qutebrowser's rule): a warning is a defect.

One message is exempt: the offscreen platform plugin says it "does not support
propagateSizeHints()" whenever a top-level window is shown; that is the test platform talking,
not the product.
"""

import asyncio
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
OFFSCREEN_NOISE = r"This plugin does not support propagateSizeHints\(\)"


def pytest_collection_modifyitems(items):
    # Called with every item of the session: each module's path is resolved once, not once per test
    # (1,300 resolves cost each xdist worker ~0.2 s of CPU).
    ours: dict[Path, bool] = {}
    for item in items:
        if item.path not in ours:
            ours[item.path] = _HERE in item.path.resolve().parents
        if ours[item.path]:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE))


@pytest.fixture
def qloop(qapp):
    """An asyncio loop on the Qt event loop (qasync), as the application runs; closed afterwards."""
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)
