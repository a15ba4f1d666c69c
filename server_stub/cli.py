"""``interaction-server``: run one site's server, the local demo pair, or manage the directory."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from .command import server_command
from .config import (
    DUPLICATE_POLICIES,
    LEAST,
    MOST,
    MOST_PENALTY,
    ConfigError,
    ServerConfig,
    SitesFile,
    load_site_config,
)
from .directory import AgentRecord, Directory, DirectoryError, hash_password
from .resources import resource_path

SECRET_ENV = "INTERACTION_SERVER_SECRET"
WATCH_S = 1.0  # how often a server checks whether its files changed (docs/multisite.md, "One configuration")


def _number(kind: type, least: float, most: float | None = None, *, strictly: bool = False):
    """An argparse type: a ``kind`` number >= ``least`` (> when ``strictly``) and <= ``most``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        low = value <= least if strictly else value < least
        if low or (most is not None and value > most):
            bound = f"{'>' if strictly else 'at least'} {least:g}" + (f" and at most {most:g}" if most is not None else "")
            raise argparse.ArgumentTypeError(f"must be {bound}, not {text}")
        return value

    return parse


_PORT = _number(int, 0, 65535)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="interaction-server",
        description="Contact-center interaction server (one site). With no subcommand it serves; "
        "see `interaction-server pair` for the local two-site demo.",
        epilog=f"The shared secret (resume tokens and peer link) comes from --secret-file or ${SECRET_ENV}; "
        "both servers of a pair must use the same one.",
    )
    parser.add_argument("--name", default="A", help="site/server name shown to clients and in reporting (default: A)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=_PORT, default=8701, help="TCP port; 0 picks a free one (default: 8701)")
    parser.add_argument("--peer", metavar="URL", action="append", default=[],
                        help="ws:// or wss:// URL of another site's server, for the peer link; repeat it for "
                        "each other site of a mesh (docs/multisite.md)")
    parser.add_argument("--bus", metavar="URL", help="amqp://user:password@host:port/vhost of the sites' RabbitMQ "
                        "broker, with this site's own user: reach the other sites through it instead of --peer "
                        "links (docs/multisite.md, RabbitMQ)")
    parser.add_argument("--agents", metavar="FILE", type=Path, help="agent directory TOML (default: the shipped demo directory)")
    parser.add_argument("--allow-weak-hashes", action="store_true", help="accept password hashes below the scrypt floor, with a warning (benchmarks and tests only)")
    parser.add_argument("--config", metavar="FILE", type=Path, help="site configuration TOML: [server] settings and [[not_ready_reason]] (default: shipped sites.toml)")
    parser.add_argument("--secret-file", metavar="FILE", type=Path, help=f"file holding the pair's shared secret (else ${SECRET_ENV})")
    parser.add_argument("--duplicate-policy", choices=DUPLICATE_POLICIES, help="what a second login of a logged-in agent does (default: force-logout)")
    parser.add_argument("--heartbeat-interval", metavar="MS", type=_number(int, LEAST["heartbeat_interval_ms"], MOST["heartbeat_interval_ms"]), help="default heartbeat interval in ms (default: 500)")
    parser.add_argument("--heartbeat-timeout", metavar="MS", type=_number(int, LEAST["heartbeat_timeout_ms"], MOST["heartbeat_timeout_ms"]), help="a client silent this long is disconnected; an agent's desktop is only suspect (offered nothing) until --client-timeout (default: 1500)")
    parser.add_argument("--client-timeout", metavar="MS", type=_number(int, LEAST["client_timeout_ms"], MOST["client_timeout_ms"]), help="an agent's desktop silent this long is logged out (disconnected); at least the heartbeat timeout (default: 20000)")
    parser.add_argument("--max-message-bytes", metavar="N", type=_number(int, LEAST["max_message_bytes"], MOST["max_message_bytes"]),
                        help=f"largest accepted frame, at least {LEAST['max_message_bytes']}; bigger ones close the socket with 1009 (default: 65536)")
    parser.add_argument("--tls-cert", metavar="PEM", type=Path, help="certificate chain: serve wss:// instead of ws://")
    parser.add_argument("--tls-key", metavar="PEM", type=Path, help="private key for --tls-cert")
    parser.add_argument("--ca-file", metavar="PEM", type=Path, help="CA bundle to verify a wss:// peer (default: the system store)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="logging verbosity on standard error (default: INFO)")
    parser.add_argument("--self-test", action="store_true",
                        help="check this server's files and settings as given (configuration, directory, shared secret, "
                        "TLS certificate, port, peer) and exit: 0 when every required check passes")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    hp = sub.add_parser("hash-password", help="print the scrypt hash of a password for an agent directory")
    hp.add_argument("--stdin", action="store_true", help="read the password from standard input instead of a prompt")
    aa = sub.add_parser("add-agent", help="add an agent or supervisor to a directory file (created if missing)")
    aa.add_argument("file", type=Path, help="agent directory TOML to add to")
    aa.add_argument("--id", required=True, help="login id: 1-64 of A-Z a-z 0-9 _ . @ -")
    aa.add_argument("--name", dest="agent_name", required=True, help="display name shown in reporting")
    aa.add_argument("--role", choices=["agent", "supervisor", "carrier"], default="agent", help="supervisors may subscribe to reporting; carriers submit interactions (default: agent)")
    aa.add_argument("--queue", action="append", default=[], metavar="NAME[=PENALTY]",
                    help="queue membership, with a penalty (lower is preferred; default 0) (repeatable)")
    aa.add_argument("--skill", action="append", default=[], help="skill (repeatable)")
    aa.add_argument("--stdin", action="store_true", help="read the password from standard input instead of a prompt")
    pr = sub.add_parser("pair", help="run sites A and B (peer-linked, demo agents) in the foreground")
    pr.add_argument("--base-port", type=_number(int, 1, 65534), default=8701, help="site A gets this port, site B the next (default: 8701)")
    cl = sub.add_parser("cluster", help="run N sites A, B, C, ... each peer-linked to every other (a mesh, demo "
                        "agents) in the foreground", description="N local sites sharing one agent pool: each "
                        "server dials every other (docs/multisite.md). Ports base-port, base-port+1, ...")
    cl.add_argument("--sites", type=_number(int, 2, 26), default=3, help="how many sites (2-26; default: 3)")
    cl.add_argument("--base-port", type=_number(int, 1, 65000), default=8701,
                    help="the first site's port; the others follow (default: 8701)")
    cl.add_argument("--bus", dest="cluster_bus", metavar="URL|local", help="link the sites through RabbitMQ instead of a mesh: 'local' "
                    "starts a private broker (Debian's rabbitmq-server) with a user per site; or an amqp:// URL "
                    "of a provisioned broker, where {site} stands for the site's name (e.g. "
                    "amqp://site-{site}:PASSWORD-{site}@host/)")
    sc = sub.add_parser("schema", help="print the protocol's JSON Schema (as in docs/protocol.schema.json)")
    sc.add_argument("--output", type=Path, help="write to this file instead of standard output")
    tr = sub.add_parser("traffic", help="simulated carrier: submit interactions to a site, re-submit to the other "
                        "site what a failed site had not handed to an agent, print a JSON ledger at the end",
                        description="Submits interactions at --rate to the first site (or --to) while it is up, "
                        "else to another; watches every site's reporting stream as a carrier; after a site fails "
                        "and --grace has passed, re-submits there what it had not handed to an agent (same ids). "
                        "The last line on stdout is the ledger (JSON). SIGINT/SIGTERM stop it early, ledger printed.")
    tr.add_argument("--sites", metavar="FILE", type=Path, help="site list TOML with [[site]] name and url (default: the shipped sites.toml)")
    tr.add_argument("--site", action="append", default=[], metavar="NAME=URL", help="a site to use (repeatable); replaces --sites")
    tr.add_argument("--to", metavar="NAME", help="submit to this site while it is up (default: the first site)")
    tr.add_argument("--user", default="carrier1", help="directory user with role carrier (default: carrier1)")
    tr.add_argument("--password-stdin", action="store_true", help="read the carrier's password from standard input "
                    "(else $INTERACTION_CARRIER_PASSWORD, else the demo password)")
    tr.add_argument("--rate", type=_number(float, 0, strictly=True), default=1.0, help="interactions per second; above 90/s raise the servers' rate_per_s (default: 1)")
    tr.add_argument("--count", type=_number(int, 0), help="stop after this many interactions")
    tr.add_argument("--duration", type=_number(float, 0, strictly=True), help="stop submitting after this many seconds (default: 10 unless --count)")
    tr.add_argument("--media", default="voice=6,chat=3,email=1", help="media mix as name=weight, comma-separated (default: voice=6,chat=3,email=1)")
    tr.add_argument("--queues", default="sales,support", help="queue mix as name=weight or names, comma-separated (default: sales,support)")
    tr.add_argument("--grace", type=_number(float, 0), default=1.0, help="seconds after a site is lost before re-submitting its interactions, "
                    "so agents' failover logins adopt theirs first (default: 1)")
    tr.add_argument("--drain", type=_number(float, 0), default=0.0, help="after submitting, wait up to this many seconds for every interaction to end (default: 0)")
    tr.add_argument("--chat-lines", type=_number(int, 0), default=3, help="a chat's customer types this many scripted lines once an agent has it (default: 3)")
    tr.add_argument("--chat-interval", type=_number(float, 0), default=1.0, help="seconds between the customer's scripted lines (default: 1)")
    tr.add_argument("--chat-reply-delay", type=_number(float, 0), default=0.3, help="seconds before the customer answers an agent's line (default: 0.3)")
    tr.add_argument("--chat-replies", type=_number(int, 0), default=3, help="agent lines a chat's customer answers at most (default: 3)")
    tr.add_argument("--prefix", help="interaction id prefix (default: tr-<random>)")
    tr.add_argument("--seed", type=int, help="random seed for the media/queue mix and customer data")
    return parser


def _memberships(specs: list[str]) -> dict:
    """``--queue sales --queue support=2`` -> AgentRecord queues and penalties."""
    queues, penalties = [], []
    for spec in specs:
        name, sep, penalty = spec.partition("=")
        if not name or (sep and not (penalty.isdigit() and int(penalty) <= MOST_PENALTY)):
            raise SystemExit(f"error: --queue takes NAME or NAME=PENALTY (an integer 0..{MOST_PENALTY}), not {spec!r}")
        queues.append(name)
        if sep and int(penalty):
            penalties.append((name, int(penalty)))
    return {"queues": tuple(queues), "penalties": tuple(penalties)}


def _traffic(args) -> int:
    from . import traffic

    if args.site:
        sites = []
        for spec in args.site:
            name, sep, url = spec.partition("=")
            if not sep or not name or not url.startswith(("ws://", "wss://")):
                raise SystemExit(f"error: --site takes NAME=ws://host:port, not {spec!r}")
            sites.append((name, url))
    else:
        sites = [(s.name, s.url) for s in SitesFile.load(args.sites or resource_path("sites.toml")).sites]
    if args.to:
        first = [s for s in sites if s[0] == args.to]
        if not first:
            raise SystemExit(f"error: --to {args.to}: no such site among {[n for n, _ in sites]}")
        sites = first + [s for s in sites if s[0] != args.to]
    try:
        media = traffic.parse_mix(args.media, tuple(getattr(traffic.p.Media, "__args__", ())))
        queues = traffic.parse_mix(args.queues)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.rate > 90:
        print(f"warning: {args.rate:g}/s on one socket exceeds the servers' default rate limit (100 frames/s "
              "with heartbeats and re-submissions); raise rate_per_s in their [server] configuration", file=sys.stderr)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else os.environ.get("INTERACTION_CARRIER_PASSWORD", "demo")
    duration = args.duration if args.duration is not None else (None if args.count is not None else 10.0)
    return traffic.main(traffic.TrafficOptions(
        sites=sites, user=args.user, password=password, rate=args.rate, count=args.count, duration=duration,
        media=media, queues=queues, grace=args.grace, drain=args.drain, prefix=args.prefix or "", seed=args.seed,
        ca_file=str(args.ca_file) if args.ca_file else None,
        chat=traffic.ChatOptions(lines=args.chat_lines, interval=args.chat_interval, reply_delay=args.chat_reply_delay,
                                 replies=args.chat_replies)))


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            raise SystemExit("error: the passwords differ")
    if not password:
        raise SystemExit("error: empty password")
    return password


def _load_secret(args) -> bytes:
    if args.secret_file:
        try:
            return args.secret_file.read_bytes().strip()
        except OSError as exc:
            raise SystemExit(f"error: cannot read --secret-file: {exc}") from None
    return os.environ.get(SECRET_ENV, "").encode()


def _server_config(args) -> ServerConfig:
    config_file = args.config or resource_path("sites.toml")
    base = load_site_config(config_file)
    return base.with_overrides(
        name=args.name, host=args.host, port=args.port, peer_url=args.peer[0] if args.peer else None,
        more_peers=tuple(args.peer[1:]), bus_url=args.bus, secret=_load_secret(args),
        duplicate_policy=args.duplicate_policy, heartbeat_interval_ms=args.heartbeat_interval,
        heartbeat_timeout_ms=args.heartbeat_timeout, client_timeout_ms=args.client_timeout,
        max_message_bytes=args.max_message_bytes,
        tls_cert=args.tls_cert, tls_key=args.tls_key, ca_file=args.ca_file,
    ).validate()


def server_directory(args: argparse.Namespace, warn: Callable[[str], None]) -> tuple[Directory, Path | None]:
    """The agent directory a server runs with, and the file where it may store stronger password
    hashes (the one given with --agents; never the shipped demo directory, nor with
    --allow-weak-hashes). Hashes below today's guidance are named through ``warn``."""
    directory = Directory.load(args.agents or resource_path("demo_agents.toml"), allow_weak=args.allow_weak_hashes)
    weak = directory.below_guidance()
    if weak:
        warn(f"warning: {len(weak)} password hash(es) cost less than OWASP's scrypt guidance ({', '.join(weak[:5])}"
             f"{', ...' if len(weak) > 5 else ''}); set them again with `interaction-server add-agent` or "
             f"`hash-password`")
    return directory, (args.agents if args.agents and not args.allow_weak_hashes else None)


async def _serve(config: ServerConfig, directory: Directory, directory_path: Path | None = None,
                 reload: Callable[[], tuple[ServerConfig, Directory]] | None = None,
                 files: tuple[Path, Path] | None = None, shared_files: tuple[Path, Path] | None = None) -> None:
    """``files``: the (site configuration, directory) files read, watched for changes; ``shared_files``:
    where a configuration taken from another site is stored (docs/multisite.md, "One configuration")."""
    from .gc_tuning import tune_for_many_connections
    from .server import InteractionServer

    tune_for_many_connections()  # no multi-second collector pauses with thousands of sockets
    server = InteractionServer(config, directory, directory_path=directory_path, shared_files=shared_files)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        def reread() -> None:  # SIGHUP: read the site configuration and the directory again
            try:
                server.reload(*reload())
            except (ConfigError, DirectoryError, OSError) as exc:
                logging.getLogger("interaction_server").error("reload refused, the old rules stay: %s", exc)

        loop.add_signal_handler(signal.SIGHUP, reread)
        if files is not None:
            watch = asyncio.create_task(_watch(files, reread, lambda: server.writing_files))
    scheme = "wss" if config.tls_cert else "ws"
    # One machine-readable line on stdout, so scripts and tests know the port (--port 0).
    print(f"listening {scheme}://{config.host}:{server.port} name={config.name}", flush=True)
    await stop.wait()
    if reload is not None and files is not None:
        watch.cancel()
    await server.stop()


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


async def _watch(files: tuple[Path, Path], reread: Callable[[], None], writing: Callable[[], bool]) -> None:
    """Read the files again when one changes (``add-agent`` writes the directory): as SIGHUP does.
    A change is acted on once the file has not changed for one more check (an editor's save), and
    never while the server itself is writing them: a starved writer can leave the new site file
    beside the old directory for longer than a check, and reading that mix would make a change of
    this site's own that nobody made."""
    seen = [_stamp(path) for path in files]
    while True:
        await asyncio.sleep(WATCH_S)
        now = [_stamp(path) for path in files]
        if now != seen and not writing():
            await asyncio.sleep(WATCH_S)
            settled = [_stamp(path) for path in files]
            if settled == now and not writing():
                seen = now
                reread()


def _run_pair(args, count: int = 2) -> int:
    """Sites A, B (and C, ... for a cluster) as child processes, so one can be killed while the
    others serve; each dials every other."""
    secret = os.environ.get(SECRET_ENV) or secrets.token_hex(32)
    env = {**os.environ, SECRET_ENV: secret, "PYTHONUNBUFFERED": "1"}
    ports = {chr(ord("A") + i): args.base_port + i for i in range(count)}
    bus_urls, broker = _cluster_bus(args, list(ports))
    try:
        return _run_sites(args, ports, env, bus_urls)
    finally:
        if broker is not None:
            print("stopping the local broker", flush=True)
            broker.stop()


def _cluster_bus(args, sites: list[str]):
    """Each site's bus URL for ``cluster --bus`` (none: a mesh), and the broker started for ``local``."""
    spec = getattr(args, "cluster_bus", None) or getattr(args, "bus", None)
    if not spec:
        return {}, None
    if spec != "local":
        if not spec.startswith(("amqp://", "amqps://")):
            raise SystemExit(f"error: cluster --bus takes 'local' or an amqp:// URL, not {spec!r}")
        return {site: spec.replace("{site}", site) for site in sites}, None
    from .bus.broker import BrokerError, LocalBroker

    broker = LocalBroker(name="cluster")
    print("starting a private RabbitMQ broker on 127.0.0.1 (several seconds)...", flush=True)
    try:
        broker.start()
        broker.add_sites(sites)
    except BrokerError as exc:
        broker.stop()
        raise SystemExit(f"error: cannot start the local broker: {exc}") from None
    print(f"broker ready in {broker.startup_seconds or 0:.1f} s on amqp://127.0.0.1:{broker.amqp_port}/ "
          f"(data in {broker.dir}; one user per site)", flush=True)
    return {site: broker.url(site) for site in sites}, broker


def _run_sites(args, ports: dict[str, int], env: dict[str, str], bus_urls: dict[str, str]) -> int:
    children = []
    for name in ports:
        peers = [arg for other, port in ports.items() if other != name for arg in ("--peer", f"ws://127.0.0.1:{port}")]
        if bus_urls:
            peers = ["--bus", bus_urls[name]]
        cmd = [*server_command(), "--name", name, "--port", str(ports[name]), *peers, "--log-level", args.log_level]
        if args.agents:
            cmd += ["--agents", str(args.agents)]
        if args.allow_weak_hashes:
            cmd += ["--allow-weak-hashes"]
        if args.config:
            cmd += ["--config", str(args.config)]
        children.append((name, subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                                preexec_fn=_die_with_parent())))

    listening = {name: threading.Event() for name, _ in children}

    def pump(name, proc):
        for line in proc.stdout:
            if line.startswith("listening "):
                listening[name].set()
            print(f"[{name}] {line}", end="", flush=True)

    threads = [threading.Thread(target=pump, args=c, daemon=True) for c in children]
    for t in threads:
        t.start()
    # SIGTERM stops the pair like Ctrl-C does, instead of orphaning the two servers. SIGINT is set
    # too: a shell without job control starts background commands with SIGINT ignored, and Python
    # then leaves it ignored, so `kill -INT` would not stop the pair while it stops each server.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _supervise_pair(children, threads, listening, ports)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: what makes a site get SIGTERM when the pair process dies, even by SIGKILL, so no
    orphan server keeps its port (PR_SET_PDEATHSIG); elsewhere nothing. libc is loaded here, in the
    parent: the child only makes the call."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _supervise_pair(children, threads, listening, ports) -> int:
    """Print how to connect once both sites listen; on Ctrl-C/SIGTERM or a site's exit, stop both."""
    try:
        # Say where to connect only once both sites accept connections.
        while not all(e.is_set() for e in listening.values()):
            if any(proc.poll() is not None for _, proc in children):
                break
            threads[0].join(0.05)
        else:
            sites = "".join(f"  site {name}  ws://127.0.0.1:{port}\n" for name, port in ports.items())
            print(
                ("Local interaction-server pair (Ctrl-C stops both):\n" if len(ports) == 2 else
                 f"Local interaction-server cluster of {len(ports)} sites (Ctrl-C stops them all):\n")
                + sites +
                "Demo users (password 'demo'): agents 1001-1010, supervisor 'sup1', carrier 'carrier1' "
                "(`interaction-server traffic` feeds the queues). Protocol: docs/protocol.md\n",
                flush=True,
            )
        while all(proc.poll() is None for _, proc in children):
            threads[0].join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for _, proc in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc in children:
            proc.wait(10)
        for t in threads:
            t.join(2)
    failed = [name for name, proc in children if proc.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
    if failed:
        print(f"site {', '.join(failed)} exited with an error", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.log_level != "DEBUG":  # websockets' own per-connection lines duplicate ours
        logging.getLogger("interaction_server.ws").setLevel(logging.WARNING)
    try:
        if args.self_test:
            from .selftest import report, server_checks

            return report(server_checks(args, _server_config), program="interaction-server self-test")
        if args.command == "hash-password":
            print(hash_password(_read_password(args.stdin)))
            return 0
        if args.command == "add-agent":
            directory = Directory.load(args.file) if args.file.exists() else Directory()
            directory.add(AgentRecord(id=args.id, name=args.agent_name, password_hash=hash_password(_read_password(args.stdin)),
                                      role=args.role, skills=tuple(args.skill), **_memberships(args.queue)))
            directory.save(args.file)
            print(f"added {args.role} {args.id} to {args.file}")
            return 0
        if args.command == "schema":
            from .protocol import json_schema_text

            text = json_schema_text()
            if args.output:
                args.output.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
            return 0
        if args.command == "traffic":
            return _traffic(args)
        if args.bus and args.peer:
            print("error: --bus and --peer are two ways to reach the other sites; give one of them "
                  "(docs/multisite.md)", file=sys.stderr)
            return 2
        if args.bus and not args.bus.startswith(("amqp://", "amqps://")):
            print(f"error: --bus takes an amqp:// or amqps:// URL, not {args.bus!r}", file=sys.stderr)
            return 2
        if args.command in ("pair", "cluster"):
            config_file = args.config or resource_path("sites.toml")
            load_site_config(config_file)  # fail here on a bad file, not twice in the children
            SitesFile.load(config_file)
            if args.agents:
                Directory.load(args.agents, allow_weak=args.allow_weak_hashes)
            return _run_pair(args, args.sites if args.command == "cluster" else 2)
        config = _server_config(args)
        directory, writable = server_directory(args, warn=lambda line: print(line, file=sys.stderr))
        def reload() -> tuple[ServerConfig, Directory]:
            return _server_config(args), server_directory(args, warn=lambda line: print(line, file=sys.stderr))[0]

        files = (args.config or resource_path("sites.toml"), args.agents or resource_path("demo_agents.toml"))
        shared = (args.config, args.agents) if args.config and args.agents else None
        asyncio.run(_serve(config, directory, writable, reload, files, shared))
        return 0
    except (ConfigError, DirectoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # port in use, unreadable certificate, ...
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
