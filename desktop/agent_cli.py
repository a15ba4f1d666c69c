"""``agent-cli``: the headless agent. Same core as the desktop; JSON lines out, commands in.

Every core event is printed as one JSON object per line with ``t`` (monotonic seconds, comparable
across processes on one machine) and ``event`` (its type); with ``--trace-wire`` every frame but
heartbeats too (``event`` "Wire", ``direction`` sent/received, ``endpoint``, ``type``, ``request_id``).
Commands are read from stdin, one per line: ``ready``, ``notready REASON``, ``acw``, ``accept ID``,
``reject ID``, ``notes ID TEXT``, ``done ID DISPOSITION [NOTES]``, ``logout``, ``quit``.

``--auto-answer`` makes a scripted agent: it accepts every offer after ``--answer-delay``, writes
notes halfway through ``--talk-time``, completes with ``--disposition`` and, after ``--wrap-time``
in After Call Work or Not Ready without an interaction, goes Ready again. The timers live in this
process, so an interaction adopted after a failover is completed on the new primary on schedule.
With ``--transfer-share F`` it transfers that share of its calls halfway through the talk time
instead (never one transferred twice already): blind to their queue, or (one in two) consulting
the queue's first free member and completing the hand-over once that agent accepted; a refused
transfer leaves the call to be completed on schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import random
import sys
import time

import msgspec

from server_stub import protocol as p

from .core import events as ev
from .core.config import SessionConfig
from .core.session import AgentSession
from .credentials import obtain_password
from .net.runner import SessionRunner
from .sites import load_sites

HELP_COMMANDS = ("commands: ready | notready REASON | acw | accept ID | reject ID | notes ID TEXT | "
                 "say ID TEXT | draft ID TEXT | done ID DISPOSITION [NOTES] | logout | quit")


_STATE_WORDS: dict[str, p.AgentStateName] = {
    "ready": "ready", "not_ready": "not_ready", "notready": "not_ready",
    "after_call_work": "after_call_work", "acw": "after_call_work",
}


def _parse_state(text: str) -> ev.StateIntent:
    word, _, reason = text.partition(":")
    state = _STATE_WORDS.get(word)
    if state is None:
        raise ValueError(f"unknown agent state {word!r}")
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
    parser.add_argument(
        "--heartbeat-timeout", type=float, help="seconds of silence before a link is dead (default 1.5)"
    )
    parser.add_argument("--failback", choices=["never", "when-idle"], default="never")
    parser.add_argument("--failback-hold", type=_seconds,
                        help="when-idle: seconds the preferred site must be a healthy secondary first (default 5)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--trace-wire", action="store_true",
                        help="also print every frame sent or received but heartbeats (event Wire)")
    auto = parser.add_argument_group("scripted agent")
    auto.add_argument("--auto-answer", action="store_true",
                      help="accept offers, hold, complete, go Ready again (implies --state ready)")
    auto.add_argument("--answer-delay", type=_seconds, default=0.2, help="seconds before accepting (default 0.2)")
    auto.add_argument("--talk-time", type=_seconds, default=2.0, help="seconds holding the interaction (default 2)")
    auto.add_argument("--wrap-time", type=_seconds, default=0.2,
                      help="seconds in After Call Work / Not Ready before going Ready (default 0.2)")
    auto.add_argument("--disposition", default="resolved", help="disposition code to complete with (default resolved)")
    auto.add_argument("--transfer-share", type=_share, default=0.0,
                      help="share of calls transferred halfway, blind or consulting their queue (default 0)")
    return parser


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text}: a share is within 0..1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text}: seconds must be within 0..86400")
    return value


def endpoints_from_args(args) -> list[p.Site]:
    try:
        if args.servers:
            urls = [u.strip() for u in args.servers.split(",") if u.strip()]
            endpoints = [p.Site(chr(ord("A") + i) if i < 26 else str(i), u) for i, u in enumerate(urls)]
        else:
            endpoints = load_sites(args.sites)
    except ValueError as exc:  # a URL that is not ws:// or wss://, a bad sites file
        raise SystemExit(f"agent-cli: {exc}") from None
    if args.preferred:
        names = [e.name for e in endpoints]
        if args.preferred not in names:
            raise SystemExit(f"agent-cli: --preferred {args.preferred!r} is not one of {names}")
        endpoints.sort(key=lambda e: e.name != args.preferred)
    return endpoints


def json_line(event: str, **fields) -> str:
    """One output line: ``t`` (monotonic seconds), ``event``, then the fields."""
    return msgspec.json.encode({"t": round(time.monotonic(), 6), "event": event, **fields}).decode()


def event_line(event) -> str:
    return json_line(type(event).__name__, **msgspec.to_builtins(event))


def trace_wire(direction: str, endpoint: str, message) -> None:
    if not isinstance(message, p.Heartbeat):
        print(json_line("Wire", direction=direction, endpoint=endpoint, type=type(message).__name__,
                        request_id=getattr(message, "request_id", None)), flush=True)


def parse_command(line: str, session: AgentSession):
    """One stdin line -> (core input, args), "quit", or None for a blank line. ValueError if bad."""
    word, _, rest = line.strip().partition(" ")
    rest = rest.strip()
    if not word:
        return None
    if word == "quit":
        return "quit"
    simple = {"ready": session.set_ready, "acw": session.set_after_call_work, "logout": session.logout}
    if word in simple and not rest:
        return simple[word], ()
    if word == "notready" and rest:
        return session.set_not_ready, (rest,)
    if word in ("accept", "reject") and rest and " " not in rest:
        return (session.accept if word == "accept" else session.reject), (rest,)
    if word == "notes" and rest:
        interaction_id, _, text = rest.partition(" ")
        return session.update_notes, (interaction_id, text)
    if word in ("say", "draft") and rest:
        interaction_id, _, text = rest.partition(" ")
        return (session.send_chat if word == "say" else session.update_draft), (interaction_id, text)
    if word == "done" and rest:
        interaction_id, _, rest = rest.partition(" ")
        disposition, _, notes = rest.strip().partition(" ")
        if disposition:
            return session.complete, (interaction_id, disposition, notes.strip() or None)
    raise ValueError(f"unknown command {line.strip()!r}; {HELP_COMMANDS}")


class AutoAnswer:
    """The scripted agent's habits, driven by the core's events (timers on the runner's loop)."""

    def __init__(self, runner: SessionRunner, args):
        self.runner, self.session, self.args = runner, runner.session, args
        self.loop = runner.loop
        self.wrap: asyncio.TimerHandle | None = None
        self.started: set[str] = set()
        self.replies: dict[str, int] = {}  # chat -> customer lines answered
        self.rng = random.Random()

    def later(self, delay: float, method, *args) -> asyncio.TimerHandle:
        def fire() -> None:
            if self.session.snapshot().status != "ended":
                self.runner.feed(method, *args)

        return self.loop.call_later(delay, fire)

    def on_event(self, event) -> None:
        args = self.args
        if isinstance(event, ev.OfferReceived):
            self.later(args.answer_delay, self.session.accept, event.interaction.interaction_id)
        elif isinstance(event, ev.InteractionStarted):
            iid = event.interaction.interaction_id
            if iid not in self.started:  # once per interaction, whichever primary holds it
                self.started.add(iid)
                self.greet(iid, event.interaction.media)
                self.later(args.talk_time / 2, self.session.update_notes, iid, f"auto notes for {iid}")
                if len(event.interaction.transfers) < 2 and self.rng.random() < args.transfer_share:
                    kind: p.TransferKind = "blind" if self.rng.random() < 0.5 else "consult"
                    transfer = functools.partial(self.session.transfer, iid, kind, to_queue=event.interaction.queue)
                    self.later(args.talk_time / 2, transfer)
                self.later(args.talk_time, self.session.complete, iid, args.disposition,
                           f"auto notes for {iid}, done")
        elif isinstance(event, ev.ChatLineAdded) and event.line.sender == "customer":
            answered = self.replies.get(event.interaction_id, 0)
            if answered < 2:  # a scripted agent answers the customer's first lines
                self.replies[event.interaction_id] = answered + 1
                self.later(min(args.answer_delay, args.talk_time / 4), self.session.send_chat,
                           event.interaction_id, f"Thanks, noted ({event.line.seq}).")
        elif isinstance(event, ev.TransferChanged) and event.status == "accepted" \
                and event.from_agent == self.session.snapshot().agent_id:
            self.later(0.0, self.session.end_transfer, event.interaction_id, True)
        elif isinstance(event, (ev.AgentStateChanged, ev.InteractionEnded, ev.IntentFailed)):
            if isinstance(event, ev.InteractionEnded):
                self.started.discard(event.interaction_id)  # it may come back (a transfer): a new turn
            self.maybe_ready()

    def greet(self, iid: str, media: str) -> None:
        """A chat gets a greeting, an email a reply draft, early in the talk time."""
        if media == "chat":
            self.later(self.args.talk_time / 4, self.session.send_chat, iid, "Hello, how can I help?")
        elif media == "email":
            self.later(self.args.talk_time / 4, self.session.update_draft, iid, f"Dear customer, about {iid}: ...")

    def maybe_ready(self) -> None:
        snap = self.session.snapshot()
        idle = snap.agent is not None and snap.agent.state != "ready" and not snap.held and not snap.pending
        if self.wrap is not None:
            self.wrap.cancel()
            self.wrap = None
        if idle and snap.status == "logged_in":
            self.wrap = self.later(self.args.wrap_time, self.session.set_ready)


async def run(args, password: str) -> int:
    overrides = {"heartbeat_timeout": args.heartbeat_timeout} if args.heartbeat_timeout else {}
    if args.failback_hold is not None:
        overrides["failback_hold"] = args.failback_hold
    config = SessionConfig(endpoints=tuple(endpoints_from_args(args)), client_name="agent-cli",
                           failback=args.failback, **overrides)
    session = AgentSession(config, rng=random.Random())
    done = asyncio.Event()
    exit_code = 0
    auto: AutoAnswer | None = None

    def on_event(event) -> None:
        nonlocal exit_code
        print(event_line(event), flush=True)
        if auto is not None:
            auto.on_event(event)
        if isinstance(event, ev.LoggedOut):
            done.set()
        elif isinstance(event, ev.LoginFailed):
            exit_code = 3
            done.set()

    runner = SessionRunner(session, on_event=on_event, ca_file=args.ca_file,
                           on_wire=trace_wire if args.trace_wire else None)
    if args.auto_answer:
        auto = AutoAnswer(runner, args)
    runner.feed(session.start)
    runner.feed(session.login, args.agent, password, place=args.place, initial_state=args.state)
    del password

    async def read_commands() -> None:
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            try:
                command = parse_command(line.decode(errors="replace"), session)
                if command == "quit":
                    done.set()
                    return
                if command is not None:
                    method, command_args = command
                    runner.feed(method, *command_args)
            except ValueError as exc:  # bad syntax, or input the core refuses (e.g. a malformed id)
                print(json_line("CommandError", message=str(exc)), flush=True)

    reader_task = asyncio.create_task(read_commands())
    try:
        await done.wait()
    finally:
        reader_task.cancel()
        runner.shutdown()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.auto_answer and "--state" not in (argv if argv is not None else sys.argv[1:]):
        args.state = ev.StateIntent("ready")
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
