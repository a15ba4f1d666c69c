"""Build the packaged application: the frozen bundle, the Debian package and the Windows installer.

    bash installer/build.sh [--out dist] [--work build/installer] [--xz-level 6] [--no-lintian]
                            [--windows-payload DIR]

On Linux: PyInstaller bundle (installer/agent-desktop.spec) -> ``agent-desktop_<v>-1_amd64.deb``
(checked with lintian) and ``agent-desktop-<v>-setup.exe`` made by NSIS over a placeholder payload
(PyInstaller does not cross-build; the real Windows payload is built on Windows, see
installer/README.md). On Windows: the bundle, then the installer over it. Prints each artefact's
size. The test suite (tests/test_installer.py) calls the same functions.
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SPEC = HERE / "agent-desktop.spec"
PACKAGE = "agent-desktop"
PREFIX = Path("usr/lib") / PACKAGE
COMMANDS = ("agent-desktop", "supervisor-view", "agent-cli", "interaction-server")
SUMMARIES = {
    "agent-desktop": "contact-center agent desktop with failover between two interaction servers",
    "supervisor-view": "live status of every agent of every contact-center site",
    "agent-cli": "headless contact-center agent (JSON lines out, commands in)",
    "interaction-server": "contact-center interaction server for one site, or a local pair",
}
LINUX = sys.platform.startswith("linux")


def log(message: str) -> None:
    print(f"build: {message}", flush=True)


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def run(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; on failure raise with what it printed (captured output included)."""
    result = subprocess.run([str(c) for c in cmd], text=True, **kwargs)
    if result.returncode:
        said = "\n".join(part[-3000:] for part in (result.stdout, result.stderr) if part)
        raise RuntimeError(f"{Path(str(cmd[0])).name} exited {result.returncode}:\n{said}")
    return result


# --------------------------------------------------------------------------- the frozen bundle


def render_icons(work: Path) -> Path:
    """PNG sizes for the icon theme and .ico files for Windows, in ``work/icons``."""
    out = work / "icons"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run([sys.executable, HERE / "icons.py", out], env=env, capture_output=True)
    return out


def freeze(work: Path, dist: Path, system_libraries: bool = LINUX) -> Path:
    """Run PyInstaller; returns the bundle directory ``dist/agent-desktop``. ``system_libraries``:
    leave out what the system's packages provide (for the .deb, which depends on them instead)."""
    env = {**os.environ}
    if system_libraries:
        env["AGENT_DESKTOP_SYSTEM_LIBRARIES"] = "dpkg"
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", dist, "--workpath", work / "pyinstaller", SPEC], env=env)
    bundle = dist / PACKAGE
    if LINUX:
        for name in COMMANDS[1:]:  # the launcher dispatches on the name it was started as
            link = bundle / name
            link.unlink(missing_ok=True)
            link.symlink_to(PACKAGE)
        tidy_elf_files(bundle)
    dangling = [str(p) for p in bundle.rglob("*") if p.is_symlink() and not p.exists()]
    if dangling:
        raise RuntimeError(f"dangling symlinks in the bundle: {dangling}")
    return bundle


def elf_files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def search_paths(files: list[Path]) -> dict[Path, list[str]]:
    """Each ELF file's library search path (``RUNPATH`` or ``RPATH`` entries), read for all the
    files at once (``prune.elf_dynamic``: a few objdump runs instead of one patchelf per file)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from prune import elf_dynamic

    dynamic = elf_dynamic(map(str, files))
    return {path: [entry for tag, value in dynamic[str(path)] if tag in ("RUNPATH", "RPATH")
                   for entry in value.split(":")] for path in files}


def tidy_elf_files(bundle: Path) -> None:
    """Search paths of the build host (``/root/.pyenv/...``) out of the bundled modules, keeping
    only the bundle-relative ``$ORIGIN`` ones; shared libraries not executable (lintian)."""
    files = elf_files(bundle)
    for path, entries in search_paths(files).items():
        if entries:
            relative = [entry for entry in entries if entry.startswith("$ORIGIN")]
            if relative != entries:
                if relative:
                    run(["patchelf", "--set-rpath", ":".join(relative), path])
                else:
                    run(["patchelf", "--remove-rpath", path])
        if path.name != PACKAGE:
            path.chmod(0o644)


# --------------------------------------------------------------------------- the Debian package


@dataclass
class Artefact:
    path: Path
    installed_kib: int | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def manpages(stage: Path, version: str, date: str) -> None:
    sys.path.insert(0, str(HERE))
    from manpage import manpage

    from desktop.agent_cli import build_parser as agent_cli_parser
    from desktop.app import build_parser as desktop_parser
    from desktop.supervisor_app import build_parser as supervisor_parser
    from server_stub.cli import _build_parser as server_parser

    settings = [("/etc/agent-desktop/settings.toml", "Machine settings (IT); their values win over the user's."),
                ("~/.config/AgentDesktop/agent-desktop.conf", "The agent's own settings.")]
    parsers = {"agent-desktop": (desktop_parser(), settings), "supervisor-view": (supervisor_parser(), []),
               "agent-cli": (agent_cli_parser(), []), "interaction-server": (server_parser(), [])}
    folder = stage / "usr/share/man/man1"
    folder.mkdir(parents=True)
    for name, (parser, files) in parsers.items():
        text = manpage(parser, SUMMARIES[name], version, date, files=files,
                       see_also=[other for other in COMMANDS if other != name])
        (folder / f"{name}.1.gz").write_bytes(gzip.compress(text.encode(), compresslevel=9, mtime=0))


def installed_size_kib(root: Path) -> int:
    """As dpkg-gencontrol counts it: each file's size rounded up to KiB, 1 per other entry."""
    total = 0
    for path in root.rglob("*"):
        if "DEBIAN" in path.relative_to(root).parts[:1]:
            continue
        total += -(-path.lstat().st_size // 1024) if path.is_file() and not path.is_symlink() else 1
    return total


def shlib_depends(stage: Path, work: Path) -> str:
    """Depends on the system libraries the bundle links against (dpkg-shlibdeps)."""
    scratch = work / "shlibdeps"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "debian").mkdir(parents=True)
    (scratch / "debian/control").write_text(f"Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: amd64\n")
    root = (stage / PREFIX).resolve()
    private = sorted({str(p.parent) for p in root.rglob("*.so*")})
    files = [str(p) for p in elf_files(root)]
    out = run(["dpkg-shlibdeps", "-O", "--warnings=1", *(f"-l{d}" for d in private), *files],
              cwd=scratch, capture_output=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("shlibs:Depends="))
    return line.partition("=")[2]


def stage_deb(bundle: Path, work: Path, version: str) -> Path:
    stage = work / "deb"
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(bundle, stage / PREFIX, symlinks=True)
    bin_dir = stage / "usr/bin"
    bin_dir.mkdir(parents=True)
    for name in COMMANDS:
        (bin_dir / name).symlink_to(Path("../lib") / PACKAGE / name)
    date = time.strftime("%Y-%m-%d", time.gmtime(_source_date()))
    manpages(stage, version, date)

    icons = render_icons(work)
    share = stage / "usr/share"
    for name, svg in (("agent-desktop", REPO / "resources/icons/app.svg"),
                      ("supervisor-view", REPO / "resources/icons/supervisor/supervisor-view.svg")):
        (share / "applications").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HERE / "debian" / f"{name}.desktop", share / "applications" / f"{name}.desktop")
        scalable = share / "icons/hicolor/scalable/apps"
        scalable.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(svg, scalable / f"{name}.svg")
    for png in (icons / "hicolor").rglob("*.png"):
        target = share / "icons" / png.relative_to(icons)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, target)

    package_docs(stage, PACKAGE, HERE / "debian", version)
    etc = stage / "etc" / PACKAGE
    etc.mkdir(parents=True)
    shutil.copyfile(HERE / "settings.toml", etc / "settings.toml")
    control_files(stage, HERE / "debian", conffiles=[f"/etc/{PACKAGE}/settings.toml"], scripts=["postinst"])
    return stage


def package_docs(stage: Path, package: str, source: Path, version: str) -> None:
    """copyright, changelog.Debian.gz and the lintian overrides of ``package`` from ``source``."""
    doc = stage / "usr/share/doc" / package
    doc.mkdir(parents=True)
    shutil.copyfile(source / "copyright", doc / "copyright")
    changelog = (source / "changelog").read_text().replace("@VERSION@", version).replace(
        "@DATE@", email.utils.formatdate(_source_date(), usegmt=False))
    (doc / "changelog.Debian.gz").write_bytes(gzip.compress(changelog.encode(), compresslevel=9, mtime=0))
    overrides = stage / "usr/share/lintian/overrides"
    overrides.mkdir(parents=True)
    shutil.copyfile(source / "lintian-overrides", overrides / package)


def control_files(stage: Path, source: Path, conffiles: list[str], scripts: list[str]) -> None:
    """DEBIAN/: maintainer scripts, conffiles, md5sums; modes normalised (0755 dirs and programs,
    0644 the rest) whatever the checkout's umask was. The control file is written last."""
    control = stage / "DEBIAN"
    control.mkdir()
    for script in scripts:
        shutil.copyfile(source / script, control / script)
    (control / "conffiles").write_text("".join(f"{path}\n" for path in conffiles))
    for path in stage.rglob("*"):
        if not path.is_symlink():
            executable = path.is_dir() or path.stat().st_mode & stat.S_IXUSR
            path.chmod(0o755 if executable else 0o644)
    for script in scripts:
        (control / script).chmod(0o755)
    sums = []
    for path in sorted(stage.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.relative_to(stage).parts[0] != "DEBIAN":
            sums.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(stage)}\n")
    (control / "md5sums").write_text("".join(sums))


def write_control(stage: Path, template: Path, version: str, **fields: str) -> int:
    """DEBIAN/control from ``template``; returns the installed size in KiB."""
    installed = installed_size_kib(stage)
    text = template.read_text().replace("@VERSION@", version).replace("@INSTALLED_SIZE@", str(installed))
    for key, value in fields.items():
        text = text.replace(f"@{key.upper()}@", value)
    (stage / "DEBIAN/control").write_text(text)
    (stage / "DEBIAN/control").chmod(0o644)
    return installed


def pack(stage: Path, deb: Path, compression: str, level: int) -> None:
    deb.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(_source_date())}
    run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", f"-z{level}", "--build", stage, deb], env=env,
        capture_output=True)


def build_deb(bundle: Path, work: Path, out: Path, version: str, xz_level: int = 6,
              compression: str = "xz") -> Artefact:
    """The .deb of ``bundle`` in ``out``. The tests use gzip level 1: the same package, without the
    minute xz takes on two cores."""
    stage = stage_deb(bundle, work, version)
    installed = write_control(stage, HERE / "debian/control", version, depends=shlib_depends(stage, work))
    deb = out / f"{PACKAGE}_{version}-1_amd64.deb"
    pack(stage, deb, compression, xz_level)
    return Artefact(deb, installed)


SERVER = "interaction-server"


def build_server_deb(work: Path, out: Path, version: str, xz_level: int = 6, compression: str = "xz") -> Artefact:
    """The interaction-server package: the systemd unit, its own user and /etc/interaction-server
    (site settings, agent directory, the service's options); the program is agent-desktop's."""
    source = HERE / "debian" / SERVER
    stage = work / "deb-server"
    shutil.rmtree(stage, ignore_errors=True)
    etc = stage / "etc" / SERVER
    etc.mkdir(parents=True)
    shutil.copyfile(REPO / "resources/sites.toml", etc / "sites.toml")
    for name in ("agents.toml", "interaction-server.env"):
        shutil.copyfile(source / name, etc / name)
    unit = stage / "lib/systemd/system"
    unit.mkdir(parents=True)
    shutil.copyfile(source / "interaction-server.service", unit / "interaction-server.service")
    package_docs(stage, SERVER, source, version)
    control_files(stage, source, conffiles=[f"/etc/{SERVER}/{name}" for name in
                                            ("agents.toml", "interaction-server.env", "sites.toml")],
                  scripts=["postinst", "prerm", "postrm"])
    installed = write_control(stage, source / "control", version)
    deb = out / f"{SERVER}_{version}-1_all.deb"
    pack(stage, deb, compression, xz_level)
    return Artefact(deb, installed)


LINTIAN_TAGS = Path("/usr/share/lintian/tags")


def lintian_failing_tags(tags: Path = LINTIAN_TAGS) -> list[str]:
    """Every tag lintian reports as an error or a warning (``E:``/``W:``), named as its profile
    names them (a name-spaced tag by its check), from lintian's own tag descriptions."""
    names = []
    for path in sorted(tags.rglob("*.tag")):
        fields = dict(line.split(":", 1) for line in path.read_text(encoding="utf-8").splitlines()
                      if line[:1].isalpha() and ":" in line)
        fields = {key: value.strip() for key, value in fields.items()}
        if fields.get("Severity") in ("error", "warning") and fields.get("Tag"):
            spaced = fields.get("Name-Spaced") == "yes"
            names.append(f"{fields['Check']}/{fields['Tag']}" if spaced else fields["Tag"])
    return names


def lintian_command(*debs: Path) -> list[str]:
    """lintian limited to its error and warning tags, so it runs only the checks that can report one
    of those: the same errors, warnings and overrides as a plain run, without the time spent on the
    info-level checks whose notes it shows only with ``-I`` (binary spelling alone reads every
    string of every ELF object: a third of its CPU on this bundle). Without lintian's tag
    descriptions, every check."""
    names = lintian_failing_tags()
    only = ["--tags", ",".join(names)] if names else []
    return ["lintian", "--tag-display-limit", "0", "--show-overrides", *only, *map(str, debs)]


@dataclass
class LintianReport:
    errors: list[str]
    warnings: list[str]
    overrides: list[str]
    output: str


def lintian_report(output: str) -> LintianReport:
    lines = output.splitlines()
    return LintianReport([line for line in lines if line.startswith("E: ")],
                         [line for line in lines if line.startswith("W: ")],
                         [line for line in lines if line.startswith("O: ")], output)


def lintian(deb: Path) -> LintianReport:
    """lintian on ``deb``: errors, warnings and the tags our overrides (with their reasons) silence."""
    result = subprocess.run(lintian_command(deb), capture_output=True, text=True)
    return lintian_report(result.stdout + result.stderr)


# --------------------------------------------------------------------------- the Windows installer


def placeholder_payload(work: Path) -> Path:
    """The shape of the Windows bundle with placeholder files: proves the NSIS script on Linux."""
    payload = work / "windows-placeholder"
    shutil.rmtree(payload, ignore_errors=True)
    (payload / "_internal").mkdir(parents=True)
    for name in COMMANDS:
        (payload / f"{name}.exe").write_text("placeholder: build the real payload on Windows (installer/README.md)\n")
    (payload / "_internal" / "README.txt").write_text("placeholder\n")
    return payload


def build_nsis(payload: Path, work: Path, out: Path, version: str) -> Artefact:
    icons = work / "icons"
    if not (icons / "agent-desktop.ico").exists():
        icons = render_icons(work)
    out.mkdir(parents=True, exist_ok=True)
    setup = out / f"{PACKAGE}-{version}-setup.exe"
    makensis = shutil.which("makensis") or "makensis"
    run([makensis, "-WX", "-V2", f"-DVERSION={version}", f"-DPAYLOAD={payload}",
         f"-DSETTINGS_TEMPLATE={HERE / 'settings.toml'}", f"-DICON={icons / 'agent-desktop.ico'}",
         f"-DOUTFILE={setup}", HERE / "windows/agent-desktop.nsi"], capture_output=True)
    return Artefact(setup)


def _source_date() -> int:
    """Reproducible timestamps: $SOURCE_DATE_EPOCH, else the last commit's time."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        return int(run(["git", "-C", REPO, "log", "-1", "--format=%ct"], capture_output=True).stdout.strip())
    except (RuntimeError, FileNotFoundError, ValueError):
        return int(time.time())


def mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB" if size >= 2**20 else f"{size / 1024:.1f} KiB"


def tree_size(root: Path) -> int:
    """Bytes of the files under ``root`` (symlinks not followed)."""
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="installer/build.sh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="where the artefacts go (default: dist/)")
    parser.add_argument("--work", type=Path, default=REPO / "build/installer",
                        help="scratch space (default: build/installer)")
    parser.add_argument("--xz-level", type=int, choices=range(10), default=6, metavar="0-9",
                        help="xz level of the .deb (default: 6, as dpkg-deb)")
    parser.add_argument("--no-lintian", action="store_true", help="skip the lintian check of the .deb")
    parser.add_argument("--windows-payload", type=Path,
                        help="a frozen Windows bundle to package (default on Windows: the one just built; on "
                             "Linux: a placeholder that proves the script)")
    args = parser.parse_args(argv)
    version = project_version()
    started = time.monotonic()
    args.work.mkdir(parents=True, exist_ok=True)
    bundle = freeze(args.work, args.work / "bundle")
    log(f"bundle {bundle}: {mib(tree_size(bundle))} "
        f"({time.monotonic() - started:.0f} s)")
    artefacts: list[tuple[str, Artefact]] = []
    if LINUX:
        debs = [("Debian package", build_deb(bundle, args.work, args.out, version, args.xz_level)),
                ("Debian package (server service)", build_server_deb(args.work, args.out, version, args.xz_level))]
        artefacts += debs
        for _, deb in debs if not args.no_lintian else ():
            report = lintian(deb.path)
            log(f"lintian {deb.path.name}: {len(report.errors)} errors, {len(report.warnings)} warnings, "
                f"{len(report.overrides)} overridden (installer/debian/**/lintian-overrides say why)")
            for line in report.errors + report.warnings:
                print(line)
            if report.errors:
                return 1
    payload = args.windows_payload or (bundle if sys.platform == "win32" else placeholder_payload(args.work))
    if shutil.which("makensis"):
        label = "Windows installer" + ("" if payload != args.work / "windows-placeholder" else " (placeholder payload)")
        artefacts.append((label, build_nsis(payload, args.work, args.out, version)))
    else:
        log("makensis not found: no Windows installer (apt-get install nsis)")
    for label, artefact in artefacts:
        installed = f", installed {mib(artefact.installed_kib * 1024)}" if artefact.installed_kib else ""
        print(f"{label}: {artefact.path} {mib(artefact.size)}{installed}")
    print(f"build time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
