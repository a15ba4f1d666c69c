"""The core stays sans-I/O: importing it loads no event loop, sockets, TLS, Qt or websockets, and
none of its modules holds a clock. Checked in a fresh interpreter, so nothing another test
imported can hide a violation."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.servers import REPO

# Modules whose presence after the import means the core does I/O or depends on a framework.
FORBIDDEN = ("asyncio", "socket", "ssl", "selectors", "PySide6", "qasync", "websockets")

PROBE = """
import json, sys, types
before = set(sys.modules)
import desktop.core, desktop.core.config, desktop.core.events, desktop.core.session
loaded = sorted(set(sys.modules) - before)
clocks = []
for name in [m for m in sys.modules if m == "desktop.core" or m.startswith("desktop.core.")]:
    for attr, value in vars(sys.modules[name]).items():
        if isinstance(value, types.ModuleType) and value.__name__ in ("time", "datetime"):
            clocks.append(f"{name}.{attr} is the {value.__name__} module")
        elif getattr(value, "__module__", None) in ("time", "datetime"):
            clocks.append(f"{name}.{attr} comes from {value.__module__}")
print(json.dumps({"loaded": loaded, "clocks": clocks}))
"""


def probe(script: str = PROBE) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(out.stdout)


def test_importing_the_core_loads_no_io_framework_and_holds_no_clock():
    result = probe()
    assert "desktop.core.session" in result["loaded"]  # the probe really imported the core
    loaded = {name.split(".")[0] for name in result["loaded"]}
    assert sorted(loaded & set(FORBIDDEN)) == [], result["loaded"]
    # ``time`` is imported by the interpreter itself at start-up, so its presence in sys.modules
    # says nothing; what matters is that no core module can read a clock through it.
    assert result["clocks"] == []


def test_the_probe_sees_a_forbidden_import_and_a_clock():
    """The check above is not vacuous: the same probe flags the asyncio layer and a clock."""
    script = PROBE.replace("import desktop.core,", "import desktop.net.runner, desktop.core,").replace(
        'm == "desktop.core" or m.startswith("desktop.core.")', 'm == "desktop.net.runner"')
    result = probe(script)
    assert {"asyncio", "websockets", "ssl"} <= {name.split(".")[0] for name in result["loaded"]}
    assert "desktop.net.runner.time is the time module" in result["clocks"]
