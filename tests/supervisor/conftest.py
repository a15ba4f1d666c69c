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
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
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
