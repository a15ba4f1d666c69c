"""The packaged application as IT installs it: the frozen bundle and the Debian package are built
once for this module (installer/build.py), installed with ``dpkg -i`` (as root, which CI is; else
extracted with ``dpkg-deb -x``), and the installed commands are run: the self-test, the headless
demo, a frozen server pair with a real login from the frozen desktop, the server package's service
command as its own user, then remove and purge.

Cost, measured alone on the 2-core machine while other work ran on it, so noisy: 57-60 CPU
seconds (user + system, children included) and 66-75 s wall at load 5-8, up to 99 s and 111 s at
load 7-9 (before lintian ran only its error and warning checks: 69-104 CPU seconds, 92-122 s). The
build is one module-scoped fixture, about 40 s (60 s at load 9): PyInstaller ~20 s, dpkg-shlibdeps
~10 s, a gzip -1 .deb (the release's xz -6 is dpkg-deb's business and would add over a minute).
lintian (~13 s of CPU) then checks the two .deb files in the background while the installed
commands are run (~15 s: the demo beside the self-test and the login), and its test comes last.
Under pytest-xdist the module stays on one worker and is handed out first (tests/conftest.py), so
the rest of the suite runs beside it.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from installer import build
from server_stub import selftest
from tests.support.servers import reserve_adjacent_ports, reserve_port, wait_until

TOOLS = ("dpkg-deb", "dpkg-shlibdeps", "lintian", "patchelf", "objdump")
pytestmark = [pytest.mark.slow,
              # The first test's set-up is the build: 60-75 s alone, over 120 s (pytest's timeout)
              # beside the other workers on a loaded 2-core machine.
              pytest.mark.timeout(600),
              pytest.mark.skipif(not all(map(shutil.which, TOOLS)),
                                 reason=f"needs {', '.join(TOOLS)} (bash .ci/setup --test installs them on Debian)")]
AS_ROOT = os.geteuid() == 0
PACKAGE, SERVER = "agent-desktop", "interaction-server"
COMMANDS = ("agent-desktop", "supervisor-view", "agent-cli", "interaction-server")


@dataclass
class Built:
    work: Path
    bundle: Path
    deb: Path
    server_deb: Path
    lintian: subprocess.Popen


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    work = tmp_path_factory.mktemp("installer")
    bundle = build.freeze(work, work / "bundle")
    version = build.project_version()
    deb = build.build_deb(bundle, work, work / "dist", version, compression="gzip", xz_level=1).path
    server_deb = build.build_server_deb(work, work / "dist", version, compression="gzip", xz_level=1).path
    # Not niced: the suite runs on parallel workers (.ci/test) that keep both cores busy, and a niced
    # lintian got no CPU until they were done (then it outlasted the test's timeout).
    lint = subprocess.Popen(build.lintian_command(deb, server_deb), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    yield Built(work, bundle, deb, server_deb, lint)
    if lint.poll() is None:
        lint.kill()
        lint.wait()


def package_installed() -> bool:
    status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True, text=True).stdout
    return status == "install ok installed"


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory):
    """The root the package's files are under: / after ``dpkg -i``, else an extraction."""
    if not AS_ROOT:
        root = tmp_path_factory.mktemp("extracted")
        for deb in (built.deb, built.server_deb):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=300)
        yield root
        return
    result = subprocess.run(["dpkg", "-i", str(built.deb), str(built.server_deb)], capture_output=True, text=True,
                            timeout=300,
                            env={k: v for k, v in os.environ.items()
                                 if k not in ("DISPLAY", "WAYLAND_DISPLAY", "AGENT_DESKTOP_SETTINGS")})
    assert result.returncode == 0, result.stdout + result.stderr
    # The package ran the self-test's install scope after unpacking.
    assert "agent-desktop self-test: passed" in result.stdout, result.stdout + result.stderr
    yield Path("/")
    if package_installed():  # a failed test before the removal test: leave the machine clean
        subprocess.run(["dpkg", "--purge", SERVER, PACKAGE], capture_output=True, timeout=300)


def headless_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """No display, no Python of ours: the frozen program on its own, as on an agent's PC."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM", "PYTHONPATH", "VIRTUAL_ENV",
                        "AGENT_DESKTOP_SETTINGS")}  # the machine's settings (tests/conftest.py)
    return {**env, "XDG_CONFIG_HOME": str(tmp_path / "config"), "QT_FATAL_WARNINGS": "1", **extra}


def command(root: Path, name: str) -> str:
    return str(root / "usr/bin" / name)


def test_the_bundle_is_pruned_to_what_the_product_uses(built):
    internal = built.bundle / "_internal"
    plugins = internal / "PySide6/Qt/plugins"
    assert sorted(p.name for p in (plugins / "platforms").iterdir()) == ["libqoffscreen.so", "libqwayland.so",
                                                                      "libqxcb.so"]
    assert not (internal / "PySide6/Qt/translations").exists()
    assert not (plugins / "platformthemes/libqgtk3.so").exists()
    assert [p.name for p in (plugins / "imageformats").iterdir()] == ["libqsvg.so"]
    names = {p.name for p in internal.rglob("*")}
    assert not {n for n in names if n.startswith(("libgtk", "libcairo", "libpango"))}
    # Of the add-ons, Qt Multimedia's audio for the ring (it links libQt6Network), not its FFmpeg backend.
    assert "libQt6Multimedia.so.6" in names and not (plugins / "multimedia").exists()
    assert not {n for n in names if n.startswith(("libavcodec", "libavformat", "libswscale", "libQt6MultimediaQuick",
                                                  "libQt6Quick", "libQt6Qml"))}
    assert "libicudata.so.73" in names  # QtCore's text handling needs it
    # Debian's own libraries come from its packages, not from the build host.
    assert not {n for n in names if n.startswith(("libX11", "libxcb", "libssl", "libglib", "libstdc++"))}
    for name in COMMANDS[1:]:  # one executable; the others are its names
        assert os.readlink(built.bundle / name) == PACKAGE
    # No search path of the build machine is left in a bundled module (lintian's custom-library-search-path).
    rpaths = build.search_paths(build.elf_files(built.bundle))
    leaked = [f"{path.name}: {':'.join(entries)}" for path, entries in rpaths.items()
              if any(entry and not entry.startswith("$ORIGIN") for entry in entries)]
    assert not leaked


def test_the_package_carries_its_commands_menu_entries_docs_and_the_it_settings(built):
    fields = subprocess.run(["dpkg-deb", "-f", str(built.deb), "Package", "Architecture", "Depends", "Installed-Size"],
                            capture_output=True, text=True, check=True).stdout
    assert "Package: agent-desktop\nArchitecture: amd64\n" in fields
    for dependency in ("libxcb-cursor0", "libssl3", "libfontconfig1", "libc6"):
        assert dependency in fields, fields
    listing = subprocess.run(["dpkg-deb", "-c", str(built.deb)], capture_output=True, text=True, check=True).stdout
    for name in COMMANDS:
        assert f"./usr/bin/{name} -> ../lib/agent-desktop/{name}" in listing
        assert f"./usr/share/man/man1/{name}.1.gz" in listing
        page = gzip.decompress((built.work / "deb/usr/share/man/man1" / f"{name}.1.gz").read_bytes()).decode()
        assert page.startswith(f".TH {name.upper()} 1") and ".SH OPTIONS" in page
        assert ("EXIT STATUS" in page) == (name != "agent-cli")  # what --self-test exits with
    for path in ("./usr/share/applications/agent-desktop.desktop", "./usr/share/applications/supervisor-view.desktop",
                 "./usr/share/icons/hicolor/scalable/apps/agent-desktop.svg",
                 "./usr/share/icons/hicolor/48x48/apps/supervisor-view.png",
                 "./usr/share/doc/agent-desktop/copyright", "./usr/share/doc/agent-desktop/changelog.Debian.gz",
                 "./etc/agent-desktop/settings.toml"):
        assert path in listing, path
    control = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(built.deb)], capture_output=True, check=True).stdout
    assert b"/etc/agent-desktop/settings.toml" in control  # conffiles


class FrozenPair:
    """``interaction-server pair`` from the installed files; its output collected by a thread."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.base = reserve_adjacent_ports(2)
        self.lines: list[str] = []
        self.proc = subprocess.Popen([command(root, "interaction-server"), "pair", "--base-port", str(self.base)],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output = self.proc.stdout
        assert output is not None
        threading.Thread(target=lambda: self.lines.extend(output), daemon=True).start()
        wait_until(lambda: any(line.startswith("Local interaction-server pair") for line in self.lines)
                   or self.proc.poll() is not None, timeout=30, message="the frozen pair to listen")
        assert self.proc.poll() is None, "".join(self.lines)

    def settings(self, path: Path) -> Path:
        path.write_text("".join(f'[[site]]\nname = "{name}"\nurl = "ws://127.0.0.1:{self.base + i}"\n'
                                for i, name in enumerate("AB")))
        return path

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(15)


@pytest.fixture(scope="module")
def frozen_pair(installed, tmp_path_factory):
    pair = FrozenPair(installed, headless_env(tmp_path_factory.mktemp("pair")))
    yield pair
    if pair.proc.poll() is None:
        pair.stop()


@dataclass
class Demo:
    base: int
    proc: subprocess.Popen
    stdout: Path
    stderr: Path


@pytest.fixture(scope="module")
def demo(installed, tmp_path_factory):
    """``agent-desktop --demo`` on the bundled servers, started ahead of its test: its scenario
    mostly waits on the servers' timers, so it runs beside the self-test and login checks. Its
    output goes to files (a pipe nobody reads could fill up and stall it)."""
    cwd = tmp_path_factory.mktemp("demo")
    base = reserve_adjacent_ports(2)
    stdout, stderr = cwd / "stdout.txt", cwd / "stderr.txt"
    with stdout.open("w") as out, stderr.open("w") as err:
        proc = subprocess.Popen([command(installed, "agent-desktop"), "--demo", "--base-port", str(base)],
                                env=headless_env(cwd), stdout=out, stderr=err, text=True, cwd=cwd)
    yield Demo(base, proc, stdout, stderr)
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.mark.usefixtures("demo")  # started here, to run beside this test and the next
def test_installed_self_test_passes_with_the_frozen_pair_and_names_a_dead_site(installed, frozen_pair, tmp_path):
    settings = frozen_pair.settings(tmp_path / "settings.toml")
    dead = tmp_path / "dead.toml"
    dead.write_text('[[site]]\nname = "C"\nurl = "ws://127.0.0.1:9"\n')
    supervisor = subprocess.Popen([command(installed, "supervisor-view"), "--self-test", "--sites", str(dead)],
                                  env=headless_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, cwd=tmp_path)  # beside the desktop's
    result = subprocess.run([command(installed, "agent-desktop"), "--self-test", "--settings", str(settings)],
                            env=headless_env(tmp_path), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for expected in ("ok    Qt platform plugin xcb: libqxcb.so loads", "ok    Qt: offscreen platform started",
                     "ok    icons: 11 SVG icons render", f"ok    machine settings: {settings}: sets sites",
                     f"ok    site A: ws://127.0.0.1:{frozen_pair.base}: answered",
                     f"ok    site B: ws://127.0.0.1:{frozen_pair.base + 1}: answered"):
        assert any(line.startswith(expected) for line in lines), f"{expected!r} not in:\n{result.stdout}"
    assert any(line.startswith("ok    resources: ") and "/usr/lib/agent-desktop/_internal/" in line for line in lines)

    out, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 1, out + err
    assert "FAIL  site C: ws://127.0.0.1:9: unreachable" in out


def test_the_frozen_desktop_logs_in_on_the_frozen_pair(installed, frozen_pair, tmp_path):
    """The GUI, offscreen (the probe clicks Log in, waits for the standby, logs out): any Qt warning
    is fatal, so a plugin the pruning removed but Qt wants would show here."""
    settings = frozen_pair.settings(tmp_path / "settings.toml")
    config = tmp_path / "config/AgentDesktop"
    config.mkdir(parents=True)
    (config / "agent-desktop.conf").write_text("[login]\nagent_id=1002\n")
    env = headless_env(tmp_path, QT_QPA_PLATFORM="offscreen", AGENT_DESKTOP_PROBE="login",
                       AGENT_DESKTOP_BENCH_PASSWORD="demo")
    result = subprocess.run([command(installed, "agent-desktop"), "--settings", str(settings)], env=env,
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "probe logged_in" in result.stdout
    wait_until(lambda: any("agent 1002 logged out" in line for line in frozen_pair.lines), timeout=10,
               message="the logout on the frozen pair")
    assert frozen_pair.stop() == 0, "".join(frozen_pair.lines[-20:])


def test_the_installed_demo_runs_headless_on_the_bundled_servers(demo):
    returncode = demo.proc.wait(timeout=90)
    stdout, stderr = demo.stdout.read_text(), demo.stderr.read_text()
    assert returncode == 0, stdout + stderr
    assert "unrecognized arguments" not in stdout + stderr
    assert f"Sites: A ws://127.0.0.1:{demo.base}, B ws://127.0.0.1:{demo.base + 1}" in stdout
    assert "Banner: Moved to site B in" in stdout and "Site A: secondary, standby" in stdout


def test_installed_commands_answer_help(installed, tmp_path):
    helps = {name: subprocess.Popen([command(installed, name), "--help"], env=headless_env(tmp_path),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
             for name in COMMANDS}  # side by side: each is a start-up, mostly loading the bundle
    for name, proc in helps.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.startswith(f"usage: {name}"), out + err


@pytest.mark.skipif(not AS_ROOT, reason="the service user and its files exist only after dpkg -i (root)")
def test_the_server_package_runs_the_service_command_as_its_own_user(installed, tmp_path):
    """What interaction-server.service runs, run here as its user (CI has no systemd running)."""
    user = subprocess.run(["getent", "passwd", SERVER], capture_output=True, text=True).stdout
    assert user.endswith(":/nonexistent:/usr/sbin/nologin\n"), user
    secret = Path("/etc/interaction-server/secret")
    assert re.fullmatch(r"[0-9a-f]{64}\n", secret.read_text())
    assert (secret.stat().st_mode & 0o777, secret.group()) == (0o640, SERVER)
    unit = Path("/lib/systemd/system/interaction-server.service")
    if shutil.which("systemd-analyze"):
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
    exec_start = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    # As systemd reads them: the EnvironmentFile's value unquoted, "$SERVER_OPTIONS" split at whitespace.
    env_file = Path("/etc/interaction-server/interaction-server.env").read_text().splitlines()
    value = next(shlex.split(line.partition("=")[2])[0] for line in env_file if line.startswith("SERVER_OPTIONS="))
    argv = shlex.split(exec_start.removeprefix("ExecStart=").replace("$SERVER_OPTIONS", value))
    port = reserve_port()
    service = subprocess.Popen([*argv, "--port", str(port)], user=SERVER, group=SERVER, extra_groups=[], cwd="/",
                               env=headless_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    output = service.stdout
    assert output is not None
    threading.Thread(target=lambda: lines.extend(output), daemon=True).start()
    try:
        wait_until(lambda: f"listening ws://127.0.0.1:{port} name=A\n" in lines or service.poll() is not None,
                   timeout=30, message="the service to listen")
        assert service.poll() is None, "".join(lines)
        site = selftest.check_site("A", f"ws://127.0.0.1:{port}", timeout=10)
        assert site.ok, site.detail
    finally:
        service.terminate()
        assert service.wait(15) == 0


@pytest.mark.skipif(not AS_ROOT, reason="dpkg -r/--purge need root (CI runs as root)")
def test_remove_keeps_it_settings_and_purge_deletes_them(installed):
    conffile = Path("/etc/agent-desktop/settings.toml")
    conffile.write_text('[[site]]\nname = "A"\nurl = "wss://cc-a.example.com:8701"\n')  # IT's edit
    subprocess.run(["dpkg", "--remove", SERVER, PACKAGE], check=True, capture_output=True, timeout=300)
    assert not Path("/usr/lib/agent-desktop").exists() and not Path("/usr/bin/agent-desktop").exists()
    assert conffile.read_text().startswith('[[site]]\nname = "A"')
    assert Path("/etc/interaction-server/secret").exists() and Path("/etc/interaction-server/agents.toml").exists()
    subprocess.run(["dpkg", "--purge", SERVER, PACKAGE], check=True, capture_output=True, timeout=300)
    assert not conffile.exists() and not conffile.parent.exists()
    assert not Path("/etc/interaction-server").exists()
    assert shutil.which("agent-desktop") != "/usr/bin/agent-desktop"


def test_lintian_runs_every_check_that_can_report_an_error_or_a_warning():
    """The build runs lintian with its error and warning tags only (build.lintian_command): the
    tags our overrides silence stay in, as do the name-spaced ones; info-level ones stay out."""
    names = set(build.lintian_failing_tags())
    overridden = {line.split()[1] for source in (build.HERE / "debian").rglob("lintian-overrides")
                  for line in source.read_text().splitlines() if line and not line.startswith("#")}
    assert overridden and overridden <= names
    assert {"file-in-usr-local", "team/pkg-perl/testsuite/autopkgtest-needs-use-name"} <= names
    assert not {"spelling-error-in-binary", "hardening-no-fortify-functions"} & names
    command = build.lintian_command(Path("x.deb"))
    assert command[-1] == "x.deb" and set(command[command.index("--tags") + 1].split(",")) == names


# Last: lintian, started with the build, checks the .deb files while the tests above run (the removal too).
def test_lintian_finds_no_error_or_warning_and_every_override_says_why(built):
    output, _ = built.lintian.communicate(timeout=600)
    report = build.lintian_report(output)
    assert report.errors == [] and report.warnings == [], output
    overrides = (build.HERE / "debian/lintian-overrides").read_text().splitlines()
    for i, line in enumerate(overrides):
        if line.startswith(f"{PACKAGE}: "):
            assert overrides[i - 1].startswith("#") or overrides[i - 1].startswith(f"{PACKAGE}: "), line
