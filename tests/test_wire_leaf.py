"""The wire module and the link helper stay leaves that client and server can both import:
``server_stub.protocol`` needs msgspec and the standard library only, ``server_stub.link`` adds
websockets; neither loads another module of the server or anything of the desktop. Checked in a
fresh interpreter, so nothing another test imported can hide a violation."""

from __future__ import annotations

from tests.core.test_core_imports import probe

PROBE = """
import json, sys
before = set(sys.modules)
import {module}
print(json.dumps({{"loaded": sorted(set(sys.modules) - before)}}))
"""


def project_modules(module: str) -> list[str]:
    loaded = probe(PROBE.format(module=module))["loaded"]
    assert module in loaded  # the probe really imported it
    return [name for name in loaded if name.split(".")[0] in ("server_stub", "desktop", "tests", "bench")]


def test_the_wire_module_imports_nothing_else_of_the_project():
    assert project_modules("server_stub.protocol") == ["server_stub", "server_stub.protocol"]


def test_the_link_helper_imports_only_the_wire_module_of_the_project():
    assert project_modules("server_stub.link") == ["server_stub", "server_stub.link", "server_stub.protocol"]


def test_the_probe_sees_a_module_that_imports_more():
    """Not vacuous: the server's configuration pulls in other server modules."""
    assert "server_stub.tomlfile" in project_modules("server_stub.config")
