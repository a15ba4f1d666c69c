"""``interaction-server traffic``: a simulated carrier that feeds interactions to a pair of sites.

It submits interactions to one site at a chosen rate with a mix of media, watches both sites'
reporting streams as user role ``carrier``, and does what a carrier does when a site fails: after
a grace period it re-submits to the other site every interaction the failed site had not yet
handed to an agent (or that an agent transferred and nobody took since), under the same id (the
servers de-duplicate; ``duplicate_interaction`` counts as delivered). At the end it prints a
ledger (one JSON object, the last line on stdout) saying how each interaction ended, as the two
reporting streams told it.

The bookkeeping (``Ledger``) is free of sockets and clocks; ``SiteLink`` and ``run`` are the thin
asyncio layer around it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from websockets.exceptions import ConnectionClosed

from . import link
from . import protocol as p
from .traffic_chat import ChatCustomers, ChatLedger, ChatOptions

log = logging.getLogger("interaction_server.traffic")

IN_HAND = ("accepted", "adopted")
ENDED = ("completed", "abandoned")


def wall_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------- bookkeeping


@dataclass
class Entry:
    interaction: p.Interaction
    site: str  # where it was last submitted
    status: str = "submitted"  # submitted | delivered | waiting | in_hand | completed | abandoned
    sites: list[str] = field(default_factory=list)
    resubmitted: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    agent_id: str | None = None
    ended_at: str | None = None  # the server that reported the end
    completions: int = 0  # "completed" reports, summed over both servers
    disposition: str | None = None
    reason: str | None = None


class Ledger:
    """What was submitted where, and what the reporting streams said about it."""

    def __init__(self):
        self.entries: dict[str, Entry] = {}
        self.resubmissions = 0
        self.seen: dict[str, tuple[str, int]] = {}  # server -> (stream id, last seq)

    def submitted(self, interaction: p.Interaction, site: str) -> None:
        entry = self.entries.get(interaction.interaction_id)
        if entry is None:
            entry = self.entries[interaction.interaction_id] = Entry(interaction, site)
        else:
            entry.site = site
            entry.resubmitted += 1
            self.resubmissions += 1
        entry.sites.append(site)

    def answered(self, iid: str, site: str, code: str | None, message: str = "") -> None:
        entry = self.entries.get(iid)
        if entry is None:
            return
        if code is None:
            if entry.status == "submitted":
                entry.status = "delivered"
        elif code == "duplicate_interaction":
            entry.duplicates += 1  # the site has it already: delivered
            if entry.status == "submitted":
                entry.status = "delivered"
        else:
            entry.errors.append(f"{site}: {code}: {message}"[:300])

    def fresh(self, server: str, stream_id: str, seq: int) -> bool:
        """True for an event not applied yet (a resumed stream may repeat some)."""
        last = self.seen.get(server)
        if last is not None and last[0] == stream_id and seq <= last[1]:
            return False
        self.seen[server] = (stream_id, seq)
        return True

    def event(self, message: p.EventInteraction) -> None:
        entry = self.entries.get(message.interaction_id)
        if entry is None:
            return  # someone else's interaction
        kind = message.event
        if kind == "completed":
            entry.completions += 1
            entry.status, entry.ended_at = "completed", message.server
            entry.agent_id, entry.disposition = message.agent_id, message.disposition
        elif kind == "abandoned":
            if entry.status != "completed":
                entry.status, entry.ended_at, entry.reason = "abandoned", message.server, message.reason
        elif kind in IN_HAND:
            if entry.status not in ENDED:
                entry.status, entry.agent_id = "in_hand", message.agent_id
        elif kind == "transferred":  # it left its agent's hands: no desktop carries it through a failover now
            if entry.status not in ENDED:
                entry.status, entry.site = "waiting", message.server  # it waits there: re-submitted if it dies
                # ...with what it gathered: a re-submission brings back the notes and the transfer history.
                entry.interaction = msgspec.structs.replace(
                    entry.interaction, notes=message.notes or entry.interaction.notes,
                    transfers=list(message.transfers) or entry.interaction.transfers)
        elif kind in ("queued", "offered", "rejected", "offer_timeout"):
            if entry.status in ("submitted", "delivered") or (entry.status == "waiting"):
                entry.status = "waiting"
        # "withdrawn": that server dropped its copy because the interaction is handled elsewhere.

    def to_resubmit(self, lost_site: str) -> list[p.Interaction]:
        """What the lost site had not handed to an agent (or not even confirmed)."""
        return [e.interaction for e in self.entries.values()
                if e.site == lost_site and e.status in ("submitted", "delivered", "waiting")]

    def open_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.status not in ENDED)

    def summary(self) -> dict:
        entries = self.entries.values()
        by_status = {s: 0 for s in ("submitted", "delivered", "waiting", "in_hand", "completed", "abandoned")}
        for e in entries:
            by_status[e.status] += 1
        return {
            "submitted": len(self.entries),
            "resubmissions": self.resubmissions,
            "duplicates_answered": sum(e.duplicates for e in entries),
            "completed": by_status["completed"],
            "abandoned": by_status["abandoned"],
            "in_hand": by_status["in_hand"],
            "waiting": by_status["waiting"] + by_status["delivered"],
            "unconfirmed": by_status["submitted"],
            "completed_twice": sorted(e.interaction.interaction_id for e in entries if e.completions > 1),
            "errors": sum(len(e.errors) for e in entries),
            "interactions": {
                e.interaction.interaction_id: {
                    k: v for k, v in (
                        ("media", e.interaction.media), ("queue", e.interaction.queue), ("status", e.status),
                        ("sites", e.sites), ("completions", e.completions), ("agent_id", e.agent_id),
                        ("ended_at", e.ended_at), ("disposition", e.disposition), ("reason", e.reason),
                        ("errors", e.errors or None),
                    ) if v is not None
                } for e in entries
            },
        }


# ---------------------------------------------------------------------------- one site


class SiteLink:
    """The carrier's socket to one site: subscribed as a carrier, resumed after a reconnect."""

    def __init__(self, name: str, url: str, user: str, password: str, ledger: Ledger,
                 on_lost: Callable[[str], None], ca_file: str | None = None, rng: random.Random | None = None,
                 chats: ChatCustomers | None = None):
        self.name, self.url, self.user, self.password = name, url, user, password
        self.ledger = ledger
        self.on_lost = on_lost
        self.ca_file = ca_file
        self.conn: link.Link | None = None
        self.up = asyncio.Event()
        self.token: str | None = None
        self.resume: p.ResumePoint | None = None
        self.pending: dict[str, str] = {}  # request id -> interaction id
        self._ids = itertools.count(1)
        self._run_id = secrets.token_hex(3)
        self.ever_up = False
        self.backoff = link.Backoff(first=0.2, cap=2.0, rng=rng)
        self.chats = chats
        self.chat_pending: dict[str, tuple[str, str]] = {}  # request id -> (interaction id, line id)

    async def run(self) -> None:
        while True:
            try:
                conn = link.Link(await link.connect(self.url, ca_file=self.ca_file, open_timeout=3))
                try:
                    await self._serve(conn)
                finally:
                    conn.abort()
            except asyncio.CancelledError:
                raise
            except link.SESSION_ERRORS as exc:
                log.debug("site %s: %s", self.name, exc)
            if self.up.is_set():
                self.up.clear()
                self.conn = None
                log.warning("site %s lost", self.name)
                self.on_lost(self.name)
            await asyncio.sleep(self.backoff.next())

    async def _serve(self, conn: link.Link) -> None:
        await conn.register(self._rid("reg"), "interaction-server traffic", heartbeat_interval=0.5)
        try:
            sub = await conn.request(self._subscription(self.token))
        except link.Refused:
            if not self.token:
                raise
            self.token = None  # expired or void: the password, once
            sub = await conn.request(self._subscription(None))
        self.token = sub.resume_token
        stream_id = sub.stream_id or ""
        self.conn = conn
        self.up.set()
        self.ever_up = True
        self.backoff.reset()
        log.info("site %s up (stream %s)", self.name, stream_id)
        keepalive = asyncio.create_task(conn.keepalive())
        try:
            async for frame in conn.frames():
                try:
                    message = p.decode_server(frame)
                except p.ProtocolError:
                    continue
                self._received(message, stream_id)
        finally:
            keepalive.cancel()
        if conn.silent:
            log.warning("site %s silent for %.1f s", self.name, conn.heartbeat_timeout)

    def _subscription(self, token: str | None) -> p.RequestSubscribeReporting:
        return p.RequestSubscribeReporting(request_id=self._rid("sub"), user_id=self.user, resume=self.resume,
                                           resume_token=token, password=None if token else self.password)

    def _received(self, message, stream_id: str) -> None:
        if isinstance(message, p.EventReportingSnapshot):
            self.resume = p.ResumePoint(stream_id=message.stream_id, seq=message.seq)
            self.ledger.seen[self.name] = (message.stream_id, message.seq)
        elif isinstance(message, p.EventInteraction):
            self.resume = p.ResumePoint(stream_id=stream_id, seq=message.seq)
            if self.ledger.fresh(self.name, stream_id, message.seq):
                self.ledger.event(message)
                if self.chats is not None and message.media == "chat" and message.interaction_id in self.ledger.entries:
                    if message.event in IN_HAND:
                        self.chats.in_hand(message.interaction_id, self.name)
                    elif message.event in ENDED:
                        self.chats.ended(message.interaction_id, None)
        elif isinstance(message, (p.EventChatMessage, p.EventChatTranscript, p.EventAck, p.EventError)) \
                and self.chats is not None and self._chat_received(message, self.chats):
            pass
        elif isinstance(message, (p.EventAgentLogin, p.EventAgentLogout, p.EventAgentStateChanged,
                                  p.EventQueueStatistics)):
            self.resume = p.ResumePoint(stream_id=stream_id, seq=message.seq)
            self.ledger.fresh(self.name, stream_id, message.seq)
        elif isinstance(message, (p.EventAck, p.EventError)) and message.request_id in self.pending:
            iid = self.pending.pop(message.request_id)
            if isinstance(message, p.EventAck):
                self.ledger.answered(iid, self.name, None)
            else:
                self.ledger.answered(iid, self.name, message.code, message.message)
                if message.code not in ("duplicate_interaction",):
                    log.warning("site %s refused %s: %s %s", self.name, iid, message.code, message.message)

    def _chat_received(self, message: p.Message, chats: ChatCustomers) -> bool:
        if isinstance(message, (p.EventChatMessage, p.EventChatTranscript)) \
                and message.interaction_id not in self.ledger.entries:
            pass  # another carrier's chat (every carrier socket hears every chat's agent lines)
        elif isinstance(message, p.EventChatMessage):
            if message.line.sender == "agent":
                chats.agent_line(message.interaction_id, message.line, self.name)
        elif isinstance(message, p.EventChatTranscript):
            if message.final:
                chats.ended(message.interaction_id, message.lines, self.name)
        elif isinstance(message, (p.EventAck, p.EventError)) and message.request_id in self.chat_pending:
            iid, line_id = self.chat_pending.pop(message.request_id)
            if isinstance(message, p.EventAck):
                chats.answered(iid, line_id, message.line_seq, None, self.name)
            else:
                chats.answered(iid, line_id, None, message.code, self.name)
        else:
            return False
        return True

    async def send_chat(self, iid: str, line_id: str, text: str) -> bool:
        """The customer's line, to this site (it takes it if the chat is in an agent's hands here)."""
        conn = self.conn
        if conn is None:
            return False
        request_id = self._rid("chat")
        self.chat_pending[request_id] = (iid, line_id)
        if len(self.chat_pending) > 10_000:  # answers a lost socket never gave
            self.chat_pending.pop(next(iter(self.chat_pending)))
        try:
            await conn.send(p.RequestSendChatMessage(request_id=request_id, interaction_id=iid, line_id=line_id,
                                                     text=text))
        except ConnectionClosed:
            return False
        return True

    def _rid(self, what: str) -> str:
        return f"traffic-{self._run_id}-{what}-{next(self._ids)}"

    async def submit(self, interaction: p.Interaction) -> bool:
        conn = self.conn
        if conn is None:
            return False
        request_id = self._rid("submit")
        self.pending[request_id] = interaction.interaction_id
        try:
            await conn.send(p.RequestSubmitInteraction(request_id=request_id, interaction=interaction))
        except ConnectionClosed:
            return False
        return True


# ---------------------------------------------------------------------------- the run


def parse_mix(text: str, allowed: tuple[str, ...] | None = None) -> list[tuple[str, float]]:
    """``voice=6,chat=3,email=1`` (or ``a,b``: equal weights) -> [(name, weight)]."""
    mix = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, weight = part.partition("=")
        try:
            value = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"bad weight in {part!r}") from None
        if value < 0 or (allowed is not None and name not in allowed):
            raise ValueError(f"{part!r}: expected one of {allowed} with a weight >= 0" if allowed
                             else f"bad entry {part!r}")
        mix.append((name, value))
    if not mix or sum(w for _, w in mix) <= 0:
        raise ValueError(f"empty mix {text!r}")
    return mix


@dataclass
class TrafficOptions:
    sites: list[tuple[str, str]]  # (name, url); the first is where interactions go while it is up
    user: str = "carrier1"
    password: str = "demo"
    rate: float = 1.0
    count: int | None = None
    duration: float | None = 10.0
    media: list[tuple[str, float]] = field(default_factory=lambda: [("voice", 6), ("chat", 3), ("email", 1)])
    queues: list[tuple[str, float]] = field(default_factory=lambda: [("sales", 1), ("support", 1)])
    grace: float = 1.0
    drain: float = 0.0
    prefix: str = ""
    seed: int | None = None
    ca_file: str | None = None
    chat: ChatOptions = field(default_factory=ChatOptions)  # the chats' customers (traffic_chat.py)


_NAMES = ("Dana Ortiz", "Lee Wong", "Mika Sato", "Ravi Iyer", "Sofia Rossi", "Tom Berg", "Ana Silva", "Jan Novak")
_SUBJECTS = {"voice": "Call", "chat": "Chat", "email": "Email"}


async def run(options: TrafficOptions, stop: asyncio.Event | None = None) -> dict:
    ledger = Ledger()
    stop = stop or asyncio.Event()
    rng = random.Random(options.seed)
    prefix = options.prefix or f"tr-{secrets.token_hex(3)}"
    loop = asyncio.get_running_loop()
    links: dict[str, SiteLink] = {}
    lost_at: dict[str, float] = {}
    resubmit_tasks: set[asyncio.Task] = set()
    chat_ledger = ChatLedger()
    chats = ChatCustomers(options.chat, chat_ledger, lambda: list(links.values()))

    async def resubmit(lost: str) -> None:
        await asyncio.sleep(options.grace)  # let the agents' failover logins adopt what they hold first
        todo = ledger.to_resubmit(lost)
        if not todo:
            return
        while True:
            # Another site if one is up; else the lost one once it is back (restarted, it has
            # forgotten them; merely unreachable, it answers duplicate_interaction).
            up = [site for site in links.values() if site.up.is_set()]
            target = next((site for site in up if site.name != lost), up[0] if up else None)
            if target is not None or stop.is_set():
                break
            await asyncio.sleep(0.1)
        if target is None:
            return
        log.warning("re-submitting %d interactions of site %s to site %s", len(todo), lost, target.name)
        for interaction in ledger.to_resubmit(lost):
            ledger.submitted(interaction, target.name)
            await target.submit(interaction)
            await asyncio.sleep(0.012)  # about 80/s: under the server's per-socket rate limit

    def on_lost(name: str) -> None:
        lost_at[name] = loop.time()
        task = loop.create_task(resubmit(name))
        resubmit_tasks.add(task)
        task.add_done_callback(resubmit_tasks.discard)

    for name, url in options.sites:
        links[name] = SiteLink(name, url, options.user, options.password, ledger, on_lost, options.ca_file,
                               chats=chats)
    runners = [loop.create_task(link.run()) for link in links.values()]
    try:
        home = links[options.sites[0][0]]
        try:
            async with asyncio.timeout(10):
                await home.up.wait()
        except TimeoutError:
            raise SystemExit(f"error: site {home.name} ({home.url}) did not accept the carrier {options.user} "
                             "within 10 s") from None
        media_names, media_weights = zip(*options.media, strict=True)
        queue_names, queue_weights = zip(*options.queues, strict=True)
        start = loop.time()
        n = 0
        while not stop.is_set():
            if options.count is not None and n >= options.count:
                break
            if options.duration is not None and loop.time() - start >= options.duration:
                break
            due = start + n / options.rate
            if due > loop.time():
                try:
                    async with asyncio.timeout(due - loop.time()):
                        await stop.wait()
                    break
                except TimeoutError:
                    pass
            target = next((site for site in links.values() if site.up.is_set()), None)
            if target is None:
                await asyncio.sleep(0.05)  # no site up: the customers wait at the carrier
                continue
            n += 1
            media = rng.choices(media_names, media_weights)[0]
            interaction = p.Interaction(
                interaction_id=f"{prefix}-{n:06d}", media=media, queue=rng.choices(queue_names, queue_weights)[0],
                created_ms=wall_ms(), customer={"name": rng.choice(_NAMES), "account": f"{rng.randrange(10**6):06d}"},
                subject=f"{_SUBJECTS[media]} {n}")
            ledger.submitted(interaction, target.name)
            if not await target.submit(interaction):
                log.info("site %s went away while submitting %s", target.name, interaction.interaction_id)
        drain_until = loop.time() + options.drain
        # Polled: what closes an interaction arrives on either site's stream, and this waits for all.
        while ledger.open_count() and loop.time() < drain_until and not stop.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if resubmit_tasks:
            await asyncio.wait(list(resubmit_tasks), timeout=options.grace + 5)
    finally:
        await chats.close()
        for task in runners + list(resubmit_tasks):
            task.cancel()
        await asyncio.gather(*runners, *resubmit_tasks, return_exceptions=True)
    return {**ledger.summary(), **chat_ledger.summary()}


def main(options: TrafficOptions) -> int:
    """Run the traffic, print the ledger as the last stdout line; SIGINT/SIGTERM end it early."""
    import signal

    async def go() -> dict:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run(options, stop)

    ledger = asyncio.run(go())
    sys.stdout.write(json.dumps(ledger, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0
