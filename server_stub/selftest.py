"""``--self-test``: checks an installation can run, one line per check, for IT and the packages.

Each check is a small function returning a :class:`Check`; :func:`report` prints them as they come
and gives the exit code: 0 when every *required* check passed, else 1 (a failed optional check is
a warning). This module holds the shared pieces and the interaction server's checks; the desktop's
are in ``desktop.selftest``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT = 5.0  # seconds a site has to answer a register


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True

    @property
    def status(self) -> str:
        return "ok" if self.ok else ("FAIL" if self.required else "warn")

    def line(self) -> str:
        return f"{self.status:<4}  {self.name}: {self.detail}"


def report(checks: Iterable[Check], out: Callable[[str], None] = print, program: str = "self-test") -> int:
    """Print each check as it completes, then a summary; 0 if no required check failed, else 1."""
    done: list[Check] = []
    for check in checks:
        out(check.line())
        done.append(check)
    failed = [c.name for c in done if c.status == "FAIL"]
    warned = [c.name for c in done if c.status == "warn"]
    verdict = f"FAILED ({', '.join(failed)})" if failed else "passed"
    out(f"{program}: {verdict}; {len(done)} checks, {len(failed)} failed, {len(warned)} warnings")
    return 1 if failed else 0


def guarded(name: str, required: bool = True) -> Callable[[Callable[..., Check]], Callable[..., Check]]:
    """A check that raises anything unexpected fails with the error as its detail, not a traceback."""

    def wrap(function: Callable[..., Check]) -> Callable[..., Check]:
        def run(*args, **kwargs) -> Check:
            try:
                return function(*args, **kwargs)
            except Exception as exc:  # the report must go on to the next check
                return Check(name, False, f"{type(exc).__name__}: {exc}", required)

        run.__name__, run.__doc__ = function.__name__, function.__doc__
        return run

    return wrap


# --------------------------------------------------------------------------- shared checks


@guarded("resources")
def check_resources(names: Iterable[str] = ("sites.toml", "demo_agents.toml")) -> Check:
    from .resources import resource_dir

    where = resource_dir()
    missing = [name for name in names if not (where / name).is_file()]
    if missing:
        return Check("resources", False, f"missing in {where}: {', '.join(missing)}")
    return Check("resources", True, f"{where}")


def tls_context(ca_file: str | Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def check_tls_trust(ca_file: str | Path | None, required: bool) -> Check:
    """The CA file, or the system's trust store, loads and holds certificates. ``required`` when a
    wss:// site depends on it; else a failure is only a warning."""
    name = "TLS trust"
    try:
        context = tls_context(ca_file)
    except (OSError, ssl.SSLError) as exc:
        return Check(name, False, f"cannot load {ca_file or 'the system store'}: {exc}", required)
    count = context.cert_store_stats()["x509_ca"]
    if ca_file:
        return Check(name, count > 0, f"{ca_file}: {count} CA certificates" if count else
                     f"{ca_file} holds no CA certificate", required)
    if count:
        return Check(name, True, f"system store: {count} CA certificates")
    paths = ssl.get_default_verify_paths()
    directory = Path(paths.capath) if paths.capath else None
    if directory is not None and directory.is_dir() and any(directory.iterdir()):
        return Check(name, True, f"system store: CA directory {directory} (certificates loaded when needed)")
    return Check(name, False, f"the system store is empty (looked in {paths.cafile} and {paths.capath}); install "
                 f"the CA certificates or pass --ca-file", required)


async def _register(url: str, ca_file: str | Path | None, timeout: float, client_name: str) -> str:
    """Open ``url``, send RequestRegisterClient, return what the EventAck says (raises otherwise)."""
    from websockets.asyncio.client import connect

    from . import protocol as p

    secure = url.startswith("wss://")
    request = p.RequestRegisterClient(request_id=f"selftest-{secrets.token_hex(4)}",
                                      protocol_version=p.PROTOCOL_VERSION, client_name=client_name)
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        async with connect(url, ssl=tls_context(ca_file) if secure else None, proxy=None, open_timeout=None,
                           ping_interval=None, close_timeout=0.5, compression=None, user_agent_header=None) as ws:
            await ws.send(p.encode(request))
            while True:
                answer = p.decode_server(await ws.recv())
                if isinstance(answer, p.EventError):
                    raise RuntimeError(f"refused: {answer.code} ({answer.message})")
                if isinstance(answer, p.EventAck) and answer.request_id == request.request_id:
                    break
    elapsed_ms = (time.monotonic() - started) * 1000
    version = answer.protocol_version
    if version is not None and version != p.PROTOCOL_VERSION:
        raise RuntimeError(f"server {answer.server} speaks protocol {version}, this client {p.PROTOCOL_VERSION}")
    tls = "TLS verified" if secure else "no TLS (ws://)"
    return f"answered in {elapsed_ms:.0f} ms as server {answer.server}, protocol {version}, {tls}"


def check_site(name: str, url: str, ca_file: str | Path | None = None, timeout: float = DEFAULT_TIMEOUT,
               client_name: str = "self-test", required: bool = True) -> Check:
    """Does the site at ``url`` answer a register within ``timeout`` seconds (over verified TLS
    for wss://)?"""
    label = f"site {name}"
    try:
        detail = asyncio.run(_register(url, ca_file, timeout, client_name))
    except TimeoutError:
        return Check(label, False, f"{url}: no answer within {timeout:g} s", required)
    except ssl.SSLCertVerificationError as exc:
        return Check(label, False, f"{url}: TLS not verified ({exc.verify_message})", required)
    except (OSError, ssl.SSLError) as exc:
        return Check(label, False, f"{url}: unreachable ({exc.strerror or exc})", required)
    except Exception as exc:  # a handshake refused, a bad answer, a version mismatch
        return Check(label, False, f"{url}: {exc}", required)
    return Check(label, True, f"{url}: {detail}", required)


def check_sites(sites: Iterable[tuple[str, str]], ca_file: str | Path | None = None,
                timeout: float = DEFAULT_TIMEOUT, client_name: str = "self-test") -> list[Check]:
    """Every site, concurrently (the whole check takes at most ``timeout``), in the given order."""
    from concurrent.futures import ThreadPoolExecutor

    sites = list(sites)
    if not sites:
        return [Check("sites", False, "no site configured")]
    with ThreadPoolExecutor(len(sites)) as pool:
        futures = [pool.submit(check_site, name, url, ca_file, timeout, client_name) for name, url in sites]
        return [f.result() for f in futures]


# --------------------------------------------------------------------------- the interaction server


def check_port(host: str, port: int) -> Check:
    """Can this server listen where it is configured to? Only a warning: the port is usually taken
    because the service is running already."""
    if port == 0:
        return Check("port", True, "0: any free port", required=False)
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            return Check("port", False, f"{host}:{port} cannot be bound ({exc.strerror or exc}): is the server "
                         f"running already?", required=False)
    return Check("port", True, f"{host}:{port} is free", required=False)


def server_checks(args, build_config: Callable) -> Iterable[Check]:
    """The interaction server's checks for its command-line ``args``; ``build_config(args)`` is the
    CLI's own validation (so the self-test judges exactly what a start would)."""
    from .config import ConfigError, load_site_config
    from .directory import Directory, DirectoryError
    from .resources import resource_path

    yield check_resources()
    config_file = args.config or resource_path("sites.toml")
    try:
        load_site_config(config_file)
        yield Check("configuration", True, f"{config_file}")
    except (ConfigError, OSError) as exc:
        yield Check("configuration", False, f"{config_file}: {exc}")
        return
    agents = args.agents or resource_path("demo_agents.toml")
    try:
        users = len(Directory.load(agents).agents)
        if not users:  # serves, but nobody can log in: the state of a fresh install
            yield Check("agent directory", False, f"{agents}: no users yet (interaction-server add-agent {agents} "
                        f"--id ... --name ...)", required=False)
        else:
            demo = "" if args.agents else " (the shipped demo directory: give --agents for a real one)"
            yield Check("agent directory", True, f"{agents}: {users} users{demo}")
    except (DirectoryError, OSError) as exc:
        yield Check("agent directory", False, f"{agents}: {exc}")
    try:
        config = build_config(args)
    except (ConfigError, SystemExit) as exc:
        yield Check("settings", False, str(exc))
        return
    scheme = "wss" if config.tls_cert else "ws"
    yield Check("settings", True, f"site {config.name} on {scheme}://{config.host}:{config.port}, shared secret set"
                + (f", peer {', '.join(config.peer_urls)}" if config.peer_urls else ", no peer"))
    if config.tls_cert:
        try:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(config.tls_cert, config.tls_key)
            yield Check("TLS certificate", True, f"{config.tls_cert} with its key")
        except (OSError, ssl.SSLError) as exc:
            yield Check("TLS certificate", False, f"{config.tls_cert}: {exc}")
    if any(url.startswith("wss://") for url in config.peer_urls):
        yield check_tls_trust(config.ca_file, required=True)
    yield check_port(config.host, config.port)
    for url in config.peer_urls:  # another site may well be down while this one is checked: a warning
        peer = check_site("peer", url, config.ca_file, DEFAULT_TIMEOUT,
                          client_name=f"interaction-server {config.name} self-test", required=False)
        yield peer
