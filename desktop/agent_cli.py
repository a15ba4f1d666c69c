"""``agent-cli``: the headless agent. Same core as the desktop; JSON lines out, commands in.

Every core event is printed as one JSON object per line with ``t`` (monotonic seconds, comparable
across processes on one machine) and ``event`` (its type). Commands are read from stdin, one per
line: ``ready``, ``notready REASON``, ``acw``, ``logout``, ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time

import msgspec

from .core import events as ev
from .core.config import Endpoint, SessionConfig
from .core.session import AgentSession
from .credentials import obtain_password
from .net.runner import SessionRunner
from .sites import load_sites

HELP_COMMANDS = "commands: ready | notready REASON | acw | logout | quit"


def _parse_state(text: str) -> ev.StateIntent:
    state, _, reason = text.partition(":")
    state = {"notready": "not_ready", "acw": "after_call_work"}.get(state, state)
    return ev.StateIntent(state, reason or None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-cli", description=__doc__.split("\n\n")[0],
                                     epilog=HELP_COMMANDS)
    parser.add_argument("--agent", required=True, help="agent id")
    parser.add_argument("--servers", help="comma-separated ws:// or wss:// URLs, preferred first "
                                          "(default: the sites of --sites)")
    parser.add_argument("--sites", help="sites TOML ([[site]] name/url; default: the shipped sites.toml)")
    parser.add_argument("--preferred", help="name of the preferred site (default: the first)")
    parser.add_argument("--password-source", choices=["auto", "env", "keyring", "prompt"], default="auto",
                        help="auto: $AGENT_PASSWORD, else the keyring, else a prompt (default)")
    parser.add_argument("--state", default="not_ready", type=_parse_state,
                        help="initial state: ready, not_ready[:REASON] or acw (default: not_ready)")
    parser.add_argument("--place", help="place/extension")
    parser.add_argument("--ca-file", help="CA bundle to verify wss:// servers (default: system store)")
    parser.add_argument("--heartbeat-timeout", type=float, help="seconds of silence before a link is dead (default 1.5)")
    parser.add_argument("--failback", choices=["never", "when-idle"], default="never")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def endpoints_from_args(args) -> list[Endpoint]:
    if args.servers:
        urls = [u.strip() for u in args.servers.split(",") if u.strip()]
        endpoints = [Endpoint(chr(ord("A") + i) if i < 26 else str(i), u) for i, u in enumerate(urls)]
    else:
        endpoints = [Endpoint(s.name, s.url) for s in load_sites(args.sites)]
    if args.preferred:
        names = [e.name for e in endpoints]
        if args.preferred not in names:
            raise SystemExit(f"agent-cli: --preferred {args.preferred!r} is not one of {names}")
        endpoints.sort(key=lambda e: e.name != args.preferred)
    return endpoints


def event_line(event) -> str:
    body = msgspec.to_builtins(event)
    return msgspec.json.encode({"t": round(time.monotonic(), 6), "event": type(event).__name__, **body}).decode()


async def run(args, password: str) -> int:
    overrides = {"heartbeat_timeout": args.heartbeat_timeout} if args.heartbeat_timeout else {}
    config = SessionConfig(endpoints=tuple(endpoints_from_args(args)), client_name="agent-cli",
                           failback=args.failback, **overrides)
    session = AgentSession(config, rng=random.Random())
    done = asyncio.Event()
    exit_code = 0

    def on_event(event) -> None:
        nonlocal exit_code
        print(event_line(event), flush=True)
        if isinstance(event, ev.LoggedOut):
            done.set()
        elif isinstance(event, ev.LoginFailed):
            exit_code = 3
            done.set()

    runner = SessionRunner(session, on_event=on_event, ca_file=args.ca_file)
    runner.feed(session.start)
    runner.feed(session.login, args.agent, password, place=args.place, initial_state=args.state)
    del password

    commands = {
        "ready": lambda: session.set_ready,
        "acw": lambda: session.set_after_call_work,
        "logout": lambda: session.logout,
    }

    async def read_commands() -> None:
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            word, _, rest = line.decode().strip().partition(" ")
            if not word:
                continue
            if word == "quit":
                done.set()
                return
            if word == "notready" and rest.strip():
                runner.feed(session.set_not_ready, rest.strip())
            elif word in commands:
                runner.feed(commands[word]())
            else:
                print(msgspec.json.encode({"t": round(time.monotonic(), 6), "event": "CommandError",
                                           "message": f"unknown command {line.decode().strip()!r}; {HELP_COMMANDS}"}).decode(),
                      flush=True)

    reader_task = asyncio.create_task(read_commands())
    try:
        await done.wait()
    finally:
        reader_task.cancel()
        runner.shutdown()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        password = obtain_password(args.agent, args.password_source)
    except LookupError as exc:
        print(f"agent-cli: cannot get the password: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args, password))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
