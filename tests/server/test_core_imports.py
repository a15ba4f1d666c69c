"""The server core stays sans-I/O, as the client core does (tests/core/test_core_imports.py):
importing it loads no event loop, sockets, TLS or websockets, no logging handlers, and none of
its modules (the routing engine is one of them) holds a clock."""

from __future__ import annotations

from tests.core.test_core_imports import FORBIDDEN, PROBE, probe

CORE = ("server_stub.core",)
SERVER_PROBE = PROBE.replace(
    "import desktop.core, desktop.core.config, desktop.core.events, desktop.core.session",
    "import server_stub.core, server_stub.core.server_core",
).replace('m == "desktop.core" or m.startswith("desktop.core.")',
          f'm in {CORE!r} or m.startswith("server_stub.core.")')


def test_importing_the_server_core_loads_no_io_framework_and_holds_no_clock():
    result = probe(SERVER_PROBE)
    assert "server_stub.core.server_core" in result["loaded"]  # the probe really imported the core
    loaded = {name.split(".")[0] for name in result["loaded"]} | set(result["loaded"])
    assert sorted(loaded & {*FORBIDDEN, "logging.handlers"}) == [], result["loaded"]
    assert result["clocks"] == []


def test_the_server_probe_sees_the_transport():
    """Not vacuous: the same probe over the transport flags asyncio, websockets and its clock."""
    script = SERVER_PROBE.replace("import server_stub.core,", "import server_stub.server, server_stub.core,").replace(
        f"m in {CORE!r}", "m in ('server_stub.server',)")
    result = probe(script)
    assert {"asyncio", "websockets"} <= {name.split(".")[0] for name in result["loaded"]}
    assert "server_stub.server.time is the time module" in result["clocks"]
