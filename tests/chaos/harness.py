"""The chaos proof: headless agents answer carrier traffic while the servers are killed in turn.

One run: a peer-linked pair of real ``interaction-server`` processes with a ``chaos`` queue whose
members are the run's agents; ``agent-cli --auto-answer`` processes (accept, hold, type notes,
complete), half preferring A and half B, failing back to their preferred site when idle; one
carrier (``interaction-server traffic``) per site, each submitting half the rate there while it is
up; a supervisor tap on each server that re-subscribes (with resume) after every restart.
Meanwhile one server, then the other, is killed with SIGKILL and restarted on the same port, so
each kill finds interactions offered and in hand at the victim. In the freeze mode
(``ChaosOptions.freezes``) nothing is killed: either server, drawn at random, is stopped with
SIGSTOP for a random span (``freeze_min``..``freeze_max`` seconds) at random moments of the
traffic, then continued with SIGCONT; a thawed server must not act on what went stale meanwhile.

The ledger (``Ledger.figures``) then says, per submitted interaction, how it ended as the
supervisors' streams tell it, and checks it against the carrier's ledger and the agents' own
events: completed exactly once, or ended with an explicit reason; none completed twice; none lost;
no copy offered while another server had it offered or in an agent's hands ("double offer"), and
no agent shown offers from two servers at once.

Used by tests/chaos/test_chaos.py and bench/chaos.py.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from server_stub.directory import AgentRecord, Directory, hash_password
from server_stub.resources import resource_path
from tests.support.agents import AgentProcess
from tests.support.reporting import send_heartbeats
from tests.support.servers import REPO, ServerProcess, start_pair, wait_until

QUEUE = "chaos"
HELD_EVENTS = ("accepted", "adopted")
COPY_ENDS = ("rejected", "offer_timeout", "completed", "abandoned", "withdrawn")
# A copy's end that no agent acted on: its offer timed out, was withdrawn, or the interaction went
# back to the queue (if that server offers it again, that offer is judged on its own).
INERT_ENDS = ("offer_timeout", "withdrawn", "queued")


@dataclass
class ChaosOptions:
    agents: int = 20
    cycles: int = 10  # kills in all, alternating A, B, A, ...
    rate: float = 4.0  # interactions per second from the carrier
    duration: float = 40.0  # seconds of traffic; the kills are spread over it
    down_time: float = 0.5  # seconds a killed server stays down before its restart
    talk_time: float = 1.0
    answer_delay: float = 0.2
    drain: float = 20.0  # after the traffic, seconds allowed for every interaction to end
    failback_hold: float = 0.5  # agents move back to their preferred site after it is healthy this long
    seed: int = 1
    log: bool = True
    # Each kill waits (after its due time) until an agent holds one of the victim's interactions:
    # a run too small for chance to do it still kills both servers with work in hand.
    kill_with_work_in_hand: bool = False
    # Freeze mode: this many SIGSTOP/SIGCONT spans instead of the kills (0: the kill mode).
    freezes: int = 0
    freeze_min: float = 2.0
    freeze_max: float = 20.0
    freeze_gap: tuple[float, float] = (0.5, 3.0)  # seconds of steady traffic before each freeze, drawn
    transfer_share: float = 0.0  # calls each agent transfers (blind or consulting their queue): agent-cli
    # Where to leave the servers' logs and the carriers' output when the run ends (None: nowhere):
    # a violation seen once under load is diagnosed from them.
    log_dir: Path | None = None


# The ledger's figures that are violations of the product's promises (bench/chaos.py exits 1 when
# any is not zero).
VIOLATIONS = ("lost", "completed_twice", "double_offers", "carrier_disagreements", "queue_stats_mismatches",
              "chat_lines_lost", "chat_lines_duplicated", "chat_lines_out_of_order")


def wall_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------- supervisor tap


class SupervisorTap:
    """Supervisor ``sup1`` subscribed to one server's reporting stream; after the socket drops it
    reconnects and resubscribes with ``resume`` (a restarted server answers with a snapshot of its
    new stream). Keeps every EventInteraction once, by (stream id, seq).

    A restarted server's events from before the subscription are never replayed (the snapshot
    lists agents, not finished interactions), so the tap races the agents back: it retries every
    50 ms and re-subscribes with its resume token (an HMAC check, where the password costs an
    scrypt and lost that race to agents' token logins)."""

    def __init__(self, url: str, user: str = "sup1", password: str = "demo"):
        self.url, self.user, self.password = url, user, password
        self.events: list[dict] = []
        self.queue_stats: list[dict] = []  # snapshots' and EventQueueStatistics' figures, with their stream
        self.subscriptions = 0
        self._seen: set[tuple[str, int]] = set()
        self._resume: dict | None = None
        self._token: str | None = None
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),), daemon=True)
        self._thread.start()

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._session()
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                pass
            if not self._stop.is_set():
                await asyncio.sleep(0.05)  # the server is down or restarting

    async def _session(self) -> None:
        async with connect(self.url, proxy=None, ping_interval=None, compression=None, open_timeout=2,
                           max_size=None) as ws:
            self._ws = ws
            await ws.send(json.dumps({"type": "RequestRegisterClient", "request_id": "reg", "protocol_version": 1,
                                      "client_name": "chaos-supervisor", "heartbeat_interval_ms": 250}))
            credential = {"resume_token": self._token} if self._token else {"password": self.password}
            subscribe = {"type": "RequestSubscribeReporting", "request_id": "sub", "user_id": self.user, **credential}
            if self._resume:
                subscribe["resume"] = self._resume
            await ws.send(json.dumps(subscribe))
            beat = asyncio.create_task(send_heartbeats(ws, 0.25))
            try:
                async for frame in ws:
                    self._received(json.loads(frame))
                    if self._stop.is_set():
                        break
            finally:
                beat.cancel()

    def _received(self, message: dict) -> None:
        kind = message["type"]
        if kind == "EventAck" and message.get("request_id") == "sub":
            self._stream = message["stream_id"]
            self._token = message.get("resume_token") or self._token
            self.subscriptions += 1
        elif kind == "EventError" and message.get("request_id") == "sub":
            self._token = None  # e.g. expired: the password next time
        elif kind == "EventResumeToken":
            self._token = message["resume_token"]
        elif kind == "EventReportingSnapshot":
            self._resume = {"stream_id": message["stream_id"], "seq": message["seq"]}
            self.queue_stats.append({"server": message["server"], "stream": message["stream_id"], "seq": message["seq"],
                                     "snapshot": True, "queues": message.get("queues", [])})
        elif "seq" in message and kind.startswith("Event"):
            self._resume = {"stream_id": self._stream, "seq": message["seq"]}
            key = (self._stream, message["seq"])
            if key in self._seen:
                return
            self._seen.add(key)
            if kind == "EventInteraction":
                self.events.append({**message, "stream": self._stream})
            elif kind == "EventQueueStatistics":
                self.queue_stats.append({"server": message["server"], "stream": self._stream, "seq": message["seq"],
                                         "snapshot": False, "queues": message["queues"]})

    def work_in_hand(self) -> bool:
        """Does an agent hold (accepted or adopted, not yet ended) an interaction of the current stream?"""
        stream = getattr(self, "_stream", None)
        last = {e["interaction_id"]: e["event"] for e in list(self.events) if e["stream"] == stream}
        return any(event in HELD_EVENTS for event in last.values())

    def close(self) -> None:
        self._stop.set()
        ws = getattr(self, "_ws", None)
        if ws is not None:
            asyncio.run_coroutine_threadsafe(ws.close(), self._loop)
        self._thread.join(5)


# ---------------------------------------------------------------------------- set-up


def write_site_files(folder: Path, agent_ids: list[str]) -> tuple[Path, Path]:
    """An agent directory (the demo one plus the run's agents, members of ``chaos``) and a site
    configuration (the shipped one plus the ``chaos`` queue: no After Call Work, short accept timeout)."""
    directory = Directory.load(resource_path("demo_agents.toml"))
    password_hash = hash_password("demo")  # one scrypt for all: the same password
    for agent_id in agent_ids:
        directory.add(AgentRecord(id=agent_id, name=f"Chaos Agent {agent_id}", password_hash=password_hash,
                                  queues=(QUEUE,)))
    agents_file = folder / "agents.toml"
    directory.save(agents_file)
    config_file = folder / "site.toml"
    config_file.write_text(resource_path("sites.toml").read_text(encoding="utf-8") + f"""
[[queue]]
name = "{QUEUE}"
accept_timeout = 5
abandon_after = 60
service_level_target = 10
""", encoding="utf-8")
    return agents_file, config_file


# ---------------------------------------------------------------------------- the ledger


@dataclass
class Ledger:
    submitted: list[str]
    carrier: dict
    streams: list[dict]  # EventInteraction of both servers (each once)
    agents: dict[str, list[dict]]  # agent id -> its JSON event lines
    kills: list[tuple[str, int]]  # (server, wall ms)
    restarts: int = 0
    subscriptions: int = 0
    queue_stats: list[dict] = field(default_factory=list)  # SupervisorTap.queue_stats of both taps
    freezes: list[tuple[str, int, int]] = field(default_factory=list)  # (server, SIGSTOP wall ms, SIGCONT wall ms)
    traffic_s: float | None = None  # seconds of traffic (in the freeze mode, until the last thaw at least)
    figures: dict = field(default_factory=dict)

    def compute(self) -> dict:
        by_id: dict[str, list[dict]] = collections.defaultdict(list)
        for event in self.streams:
            by_id[event["interaction_id"]].append(event)
        agent_completed = collections.Counter()
        ended_reasons = collections.Counter()
        for events in self.agents.values():
            for e in events:
                if e["event"] == "InteractionEnded":
                    ended_reasons[e["reason"]] += 1
                    if e["reason"] == "completed":
                        agent_completed[e["interaction_id"]] += 1
        completed, twice, ended, lost, unreported = [], [], [], [], []
        for iid in self.submitted:
            events = by_id.get(iid, [])
            completions = [e for e in events if e["event"] == "completed"]
            if len(completions) > 1:
                twice.append(iid)
            if completions:
                completed.append(iid)
            elif any(e["event"] == "abandoned" for e in events):
                ended.append(iid)
            elif agent_completed[iid]:  # the agent's completion was acknowledged; no stream told it
                completed.append(iid)
                unreported.append(iid)
            else:
                lost.append(iid)
        carrier = self.carrier
        carrier_open, carrier_disagreements = self.carrier_reconciliation(by_id, completed, ended)
        stats_checked, stats_nontrivial, stats_mismatches = self.queue_statistics_reconciliation()
        stream_doubles, inert = self.double_offers(by_id)
        doubles = stream_doubles + self.agent_double_offers()
        figures = {
            "submitted": len(self.submitted),
            "completed": len(completed),
            "ended_with_reason": len(ended),
            "lost": len(lost),
            "unreported": len(unreported),  # completions acknowledged to the agent that no stream showed
            "completed_twice": len(twice),
            "double_offers": len(doubles),
            "kills": len(self.kills),
            "restarts": self.restarts,
            "freezes": len(self.freezes),
            "frozen_s": round(sum(end - start for _, start, end in self.freezes) / 1000, 1),
            # Copies a frozen server held, that it ended without acting on them once thawed (see double_offers).
            "copies_ended_after_thaw": inert,
            # The stream's double offers if those copies were not cut (for a reader who judges the cut).
            "stream_double_offers_uncut": len(self.double_offers(by_id, cut_at_freezes=False)[0]),
            "agents": len(self.agents),
            "carrier_submitted": carrier.get("submitted"),
            "carrier_completed": carrier.get("completed"),
            "carrier_abandoned": carrier.get("abandoned"),
            "carrier_completed_twice": len(carrier.get("completed_twice", [])),
            "carrier_resubmissions": carrier.get("resubmissions"),
            "carrier_duplicates_answered": carrier.get("duplicates_answered"),
            "carrier_open": len(carrier_open),  # the carrier never saw these end (see carrier_reconciliation)
            "carrier_disagreements": len(carrier_disagreements),
            "queue_stats_checked": stats_checked,
            "queue_stats_with_events": stats_nontrivial,
            "queue_stats_mismatches": len(stats_mismatches),
            "agents_completed": sum(agent_completed.values()),
            "agents_completed_twice": sum(1 for n in agent_completed.values() if n > 1),
            "agents_ended": dict(ended_reasons),
            "adopted": sum(1 for e in self.streams if e["event"] == "adopted"),
            "transferred": sum(1 for e in self.streams if e["event"] == "transferred"),
            "consultations": sum(1 for e in self.streams if e["event"] == "consult_offered"),
            "adopted_by": dict(collections.Counter(e["server"] for e in self.streams if e["event"] == "adopted")),
            "failover_logins": sum(
                1 for ev in self.agents.values() for e in ev if e["event"] == "LoggedIn" and e["resumed"]
            ),
            "offers_lost_with_primary": sum(
                1
                for ev in self.agents.values()
                for e in ev
                if e["event"] == "OfferRevoked" and e["reason"] == "primary_lost"
            ),
            "stale_invites_ignored": sum(
                1
                for ev in self.agents.values()
                for e in ev
                if e["event"] == "StaleEventIgnored" and e["message_type"] == "EventInvite"
            ),
            "supervisor_subscriptions": self.subscriptions,
            "lost_ids": lost[:20],
            "unreported_ids": unreported[:20],
            "completed_twice_ids": twice[:20],
            "carrier_open_ids": carrier_open[:20],
            "carrier_disagreement_examples": carrier_disagreements[:5],
            "queue_stats_mismatch_examples": stats_mismatches[:5],
            "double_offer_examples": doubles[:5],
            # Chats: the customers' lines and the agents' lines the carriers saw, checked against the
            # final transcript the completing server sent (0 lost, 0 duplicated expected).
            **{key: carrier.get(key, 0) for key in CHAT_FIGURES},
            "chats_without_final_transcript": len(carrier.get("chats_without_final_transcript", [])),
            # What was lost or disordered (server_stub/traffic_chat.py, ChatLedger.samples).
            "chat_lost_samples": carrier.get("chat_lost_samples", [])[:5],
            "chat_disorder_samples": carrier.get("chat_disorder_samples", [])[:5],
        }
        self.figures = figures
        return figures

    def carrier_reconciliation(self, by_id: dict[str, list[dict]], completed: list[str],
                               ended: list[str]) -> tuple[list[str], list[str]]:
        """The carrier's ledger against the supervisors' streams, interaction by interaction.

        Where the carrier saw an end, it must be the same end: completed at the same server by the
        same agent with the same disposition, or abandoned. Where it did not (``open``), the
        streams must show it ended: the carrier's own subscriptions reconnect with a backoff of up
        to 2 s, so a completion a restarted server reported before the carrier was back reaches
        the taps (which race the agents back within 50 ms) but not the carrier, and a restarted
        server never replays events from before a subscription. So carrier totals cannot equal the
        streams' totals in general; they must equal them once the open ones are added."""
        if not self.carrier.get("interactions"):
            return [], []
        completed_set, ended_set = set(completed), set(ended)
        open_ids, disagreements = [], []
        for iid in self.submitted:
            seen = self.carrier["interactions"].get(iid)
            if seen is None:
                disagreements.append(f"{iid}: not in the carrier's ledger")
                continue
            status = seen["status"]
            if status == "completed":
                ends = [(e["server"], e.get("agent_id"), e.get("disposition"))
                        for e in by_id.get(iid, []) if e["event"] == "completed"]
                mine = (seen.get("ended_at"), seen.get("agent_id"), seen.get("disposition"))
                if iid not in completed_set or (ends and mine not in ends):
                    disagreements.append(f"{iid}: carrier says completed {mine}, streams say {ends or 'not completed'}")
            elif status == "abandoned":
                if iid not in ended_set:
                    disagreements.append(f"{iid}: carrier says abandoned, streams do not")
            elif iid in completed_set or iid in ended_set:
                open_ids.append(iid)
            else:
                disagreements.append(f"{iid}: open at the carrier ({status}) and ended nowhere")
        return open_ids, disagreements

    def queue_statistics_reconciliation(self) -> tuple[int, int, list[str]]:
        """Per-queue statistics against the interaction events of the same stream.

        A server counts offered / answered / abandoned since its process started, so figures are
        compared within one stream (one server process): the figures of every EventQueueStatistics
        minus those of the stream's snapshot (the tap's starting point; what came before it is never
        replayed) must equal the ``offered`` / ``accepted`` / ``abandoned`` events between the two.
        ``adopted`` is not ``answered`` (the server counts an answer once, where it was accepted).
        Events after a stream's last statistics (a kill came first) are in no figure: totals over a
        run cannot be compared, only each published figure. Returns (figures checked, figures that
        counted at least one event, mismatches)."""
        counted = {"offered": "offered", "accepted": "answered", "abandoned": "abandoned"}
        events_by_stream: dict[str, list[dict]] = collections.defaultdict(list)
        for e in self.streams:
            if e.get("stream") is not None:
                events_by_stream[e["stream"]].append(e)
        baseline: dict[str, tuple[int, dict]] = {}
        checked, nontrivial, mismatches = 0, 0, []
        for figure in sorted(self.queue_stats, key=lambda f: (f["stream"], f["seq"], not f["snapshot"])):
            queues = {q["queue"]: q for q in figure["queues"]}
            if figure["snapshot"]:
                baseline[figure["stream"]] = (figure["seq"], queues)
                continue
            if figure["stream"] not in baseline:
                mismatches.append(f"{figure['server']} seq {figure['seq']}: statistics before any snapshot")
                continue
            start, base = baseline[figure["stream"]]
            events = [e for e in events_by_stream[figure["stream"]] if start < e["seq"] < figure["seq"]]
            for name, now in queues.items():
                before = base.get(name, {})
                expected = {field: sum(1 for e in events if e["queue"] == name and e["event"] == kind)
                            for kind, field in counted.items()}
                got = {field: now[field] - before.get(field, 0) for field in counted.values()}
                checked += 1
                nontrivial += any(expected.values())
                if got != expected:
                    mismatches.append(f"{figure['server']} {name} seq {start}..{figure['seq']}: statistics {got}, "
                                      f"events {expected}")
        return checked, nontrivial, mismatches

    def double_offers(self, by_id: dict[str, list[dict]], cut_at_freezes: bool = True) -> tuple[list[str], int]:
        """Offers of an id made by one server while the other had it offered or in an agent's hands
        (a server's copy ends with its next event for the id, or with the server's kill), and how
        many copies were cut at a freeze.

        A server frozen (SIGSTOP) can neither send nor act, so a copy it held across a freeze and
        ended once thawed without anyone acting on it (``INERT_ENDS``) ends where the freeze began,
        as a killed server's copies end at the kill. A copy that was acted on after the thaw
        (accepted, completed) keeps its whole interval, and an offer made after the thaw is judged
        as any other: a thawed server that acts on a stale copy while the other server had it is a
        double offer."""
        found = []
        inert = 0
        for iid, events in by_id.items():
            intervals = collections.defaultdict(list)  # server -> [(start, end, kind)]
            per_server = collections.defaultdict(list)
            for e in events:
                per_server[e["server"]].append(e)
            for server, evs in per_server.items():
                evs.sort(key=lambda e: (e["at_ms"], e["seq"]))
                deaths = sorted(t for s, t in self.kills if s == server)
                for i, e in enumerate(evs):
                    if e["event"] not in ("offered",) + HELD_EVENTS:
                        continue
                    end = evs[i + 1]["at_ms"] if i + 1 < len(evs) else float("inf")
                    end = min([end] + [t for t in deaths if t >= e["at_ms"]])
                    frozen = [start for srv, start, thawed in self.freezes
                              if srv == server and e["at_ms"] <= start and thawed <= end]
                    if cut_at_freezes and frozen and i + 1 < len(evs) and evs[i + 1]["event"] in INERT_ENDS:
                        end, inert = min(frozen), inert + 1
                    intervals[server].append((e["at_ms"], end, e["event"]))
            servers = list(intervals)
            for x in servers:
                for start, end, kind in intervals[x]:
                    if kind != "offered":
                        continue
                    for y in servers:
                        clash = [(s, e, k) for s, e, k in intervals[y] if y != x and s < end and start < e]
                        if clash:
                            found.append(f"{iid}: offered by {x} at {start} while {y} had it {clash[0][2]} "
                                         f"({clash[0][0]}..{clash[0][1]})")
        return found, inert

    def agent_double_offers(self) -> list[str]:
        """An agent shown open offers from two servers at the same time."""
        found = []
        for agent, events in self.agents.items():
            open_offers: dict[str, str] = {}
            for e in events:
                kind = e["event"]
                if kind == "OfferReceived":
                    others = {i: ep for i, ep in open_offers.items() if ep != e["endpoint"]}
                    if others:
                        found.append(f"agent {agent}: offered {e['interaction']['interaction_id']} by "
                                     f"{e['endpoint']} with {others} still open (t={e.get('t')})")
                    open_offers[e["interaction"]["interaction_id"]] = e["endpoint"]
                elif kind == "OfferRevoked":
                    open_offers.pop(e["interaction_id"], None)
                elif kind in ("InteractionApplied", "InteractionFailed") and e["intent"]["action"] in (
                    "accept",
                    "reject",
                ):
                    open_offers.pop(e["intent"]["interaction_id"], None)
        return found

    def text(self) -> str:
        f = self.figures
        lines = [
            f"chaos ledger: {f['agents']} agents, {f['kills']} kills ({f['restarts']} restarts), "
            f"{f['freezes']} freezes ({f['frozen_s']} s frozen; copies ended after a thaw: "
            f"{f['copies_ended_after_thaw']})",
            f"  submitted {f['submitted']}: completed {f['completed']}, ended with a reason {f['ended_with_reason']}, "
            f"lost {f['lost']}; completed twice {f['completed_twice']}; double offers {f['double_offers']}; "
            f"completions missing from the supervisors' streams {f['unreported']}",
            f"  carrier ledger: submitted {f['carrier_submitted']}, completed {f['carrier_completed']}, abandoned "
            f"{f['carrier_abandoned']}, completed twice {f['carrier_completed_twice']}, re-submitted "
            f"{f['carrier_resubmissions']} (duplicates answered {f['carrier_duplicates_answered']}); "
            f"never saw the end of {f['carrier_open']}; disagrees with the streams on {f['carrier_disagreements']}",
            f"  queue statistics: {f['queue_stats_checked']} published figures checked against the events of their "
            f"stream ({f['queue_stats_with_events']} with events since the snapshot), "
            f"{f['queue_stats_mismatches']} mismatches",
            f"  agents: completed {f['agents_completed']} (twice {f['agents_completed_twice']}), "
            f"ended {f['agents_ended']}, "
            f"failover logins {f['failover_logins']}, adoptions {f['adopted']}, offers lost with their primary "
            f"{f['offers_lost_with_primary']}, stale invites ignored {f['stale_invites_ignored']}",
            f"  chats: {f['chats']} ({f['chat_transcripts_checked']} final transcripts checked, "
            f"{f['chats_without_final_transcript']} without one): customer lines {f['chat_customer_lines']}, agent "
            f"lines {f['chat_agent_lines']}; lost {f['chat_lines_lost']}, duplicated {f['chat_lines_duplicated']}, "
            f"out of order {f['chat_lines_out_of_order']}, refused {f['chat_lines_refused']}, typed after the end "
            f"{f['chat_lines_after_end']}",
        ]
        if f["lost_ids"] or f["completed_twice_ids"] or f["unreported_ids"]:
            lines.append(
                f"  lost: {f['lost_ids']}  twice: {f['completed_twice_ids']}  unreported: {f['unreported_ids']}"
            )
        for example in (
            f["carrier_disagreement_examples"] + f["queue_stats_mismatch_examples"] + f["double_offer_examples"]
        ):
            lines.append(f"  {example}")
        for sample in f["chat_lost_samples"] + f["chat_disorder_samples"]:
            lines.append(f"  chat: {sample}")
        if f["chat_lost_samples"] or f["chat_disorder_samples"]:
            lines.append(f"  freezes (server, SIGSTOP wall ms, SIGCONT wall ms): {self.freezes}")
        return "\n".join(lines)


# ---------------------------------------------------------------------------- the run


def _say(options: ChaosOptions, text: str) -> None:
    if options.log:
        print(f"[chaos {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _restart(server: ServerProcess, other: ServerProcess, tap: SupervisorTap) -> None:
    subscriptions = tap.subscriptions
    server.start()
    wait_until(lambda: tap.subscriptions > subscriptions, 10, interval=0.005, message=f"the tap back on {server.name}")
    wait_until(lambda: server.log_has(f"peer link from {other.name}"), 10, message=f"{server.name} peer-linked again")


def _carrier_ledger(proc: subprocess.Popen, options: ChaosOptions) -> dict:
    out, err = proc.communicate(timeout=options.duration + options.drain + 60)
    if proc.returncode != 0:
        raise AssertionError(f"traffic exited {proc.returncode}: {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


# The carriers' chat figures (server_stub/traffic_chat.py), summed over the carriers.
CHAT_FIGURES = ("chats", "chat_customer_lines", "chat_agent_lines", "chat_transcripts_checked", "chat_lines_lost",
                "chat_lines_duplicated", "chat_lines_out_of_order", "chat_lines_refused", "chat_lines_after_end")


def merge_carrier_ledgers(ledgers: list[dict]) -> dict:
    """The carriers' ledgers as one (their ids are distinct: one prefix per carrier)."""
    merged = {"interactions": {}, "completed_twice": []}
    for ledger in ledgers:
        merged["interactions"].update(ledger["interactions"])
        merged["completed_twice"] += ledger["completed_twice"]
        for key in ("submitted", "completed", "abandoned", "resubmissions", "duplicates_answered", "in_hand",
                    "waiting", "unconfirmed", "errors", *CHAT_FIGURES):
            merged[key] = merged.get(key, 0) + ledger.get(key, 0)
        for key in ("chats_without_final_transcript", "chat_lost_samples", "chat_disorder_samples"):
            merged[key] = merged.get(key, []) + ledger.get(key, [])
    return merged


def freeze_schedule(options: ChaosOptions) -> list[tuple[float, str, float]]:
    """(seconds into the traffic, server, seconds frozen) per freeze, one after the other, drawn
    from ``options.seed``: a gap of steady traffic, then either server frozen for a random span."""
    rng = random.Random(options.seed)
    schedule, at = [], 0.0
    for _ in range(options.freezes):
        at += rng.uniform(*options.freeze_gap)
        span = rng.uniform(options.freeze_min, options.freeze_max)
        schedule.append((at, rng.choice("AB"), span))
        at += span
    return schedule


def stopped(pid: int) -> bool:
    """Is the process stopped (SIGSTOP took effect), as /proc says?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("T", "t")


def _freeze(server: ServerProcess, span: float, freezes: list[tuple[str, int, int]]) -> None:
    """SIGSTOP ``server`` for ``span`` seconds; the freeze is recorded from inside the time it was
    stopped: its start stamped once it stopped (SIGSTOP takes effect later than it is sent, and a
    busy machine may hold this thread between a stamp and the signal), its end before SIGCONT. So
    an event the server stamped (``at_ms``) before it stopped is never after the start, nor one it
    stamped after it continued before the end: the ledger tells a copy held across a freeze from
    one made or ended inside it (``Ledger.double_offers``)."""
    server.sigstop()
    try:
        wait_until(lambda: stopped(server.running().pid), 10, interval=0.001, message=f"{server.name} to stop")
        started = wall_ms()
        thaw_at = time.monotonic() + span  # the freeze lasts this long
        wait_until(lambda: time.monotonic() >= thaw_at, span + 10, interval=0.02, message="the end of the freeze")
        thawed = wall_ms()
    finally:
        server.sigcont()
    freezes.append((server.name, started, thawed))


def _leave_logs(directory: Path, servers: list[ServerProcess], agents: dict[str, AgentProcess],
                taps: list[SupervisorTap]) -> None:
    """Each server's log, each agent's events and each supervisor stream, one file apiece."""
    directory.mkdir(parents=True, exist_ok=True)
    for server in servers:
        (directory / f"server-{server.name}.log").write_text("\n".join(server.lines) + "\n")
    for agent_id, agent in agents.items():
        (directory / f"agent-{agent_id}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in agent.events))
        (directory / f"agent-{agent_id}.stderr").write_text("".join(agent.stderr))
    for i, tap in enumerate(taps):
        (directory / f"stream-{'AB'[i]}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in tap.events))
        (directory / f"statistics-{'AB'[i]}.jsonl").write_text("".join(json.dumps(f) + "\n" for f in tap.queue_stats))


def run_chaos(options: ChaosOptions) -> Ledger:
    agent_ids = [f"{2001 + i}" for i in range(options.agents)]
    schedule = freeze_schedule(options)
    if schedule:  # the traffic lasts until a second after the last thaw at least
        options = dataclasses.replace(options, duration=max(options.duration, schedule[-1][0] + schedule[-1][2] + 1))
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        agents_file, config_file = write_site_files(Path(tmp), agent_ids)
        a, b = start_pair(["--agents", str(agents_file), "--config", str(config_file)])
        agents: list[AgentProcess] = []
        taps: list[SupervisorTap] = []
        carriers: list[subprocess.Popen] = []
        kills: list[tuple[str, int]] = []
        freezes: list[tuple[str, int, int]] = []
        restarts = 0
        try:
            wait_until(lambda: a.log_has("peer link from B") and b.log_has("peer link from A"), 10, message="peer link")
            taps = [SupervisorTap(a.url), SupervisorTap(b.url)]
            urls = [a.url, b.url]
            for i, agent_id in enumerate(agent_ids):
                extra = ["--auto-answer", "--talk-time", str(options.talk_time), "--answer-delay",
                         str(options.answer_delay), "--wrap-time", "0.1", "--failback", "when-idle",
                         "--failback-hold", str(options.failback_hold)]
                if options.transfer_share:
                    extra += ["--transfer-share", str(options.transfer_share)]
                # Half prefer A, half prefer B: both servers hold primaries when either is killed.
                agents.append(AgentProcess(agent_id, urls if i % 2 == 0 else urls[::-1], *extra))
            for agent in agents:
                agent.wait_for("AgentStateChanged", timeout=30, state="ready")
            _say(options, f"{len(agents)} agents Ready; traffic at {options.rate}/s for {options.duration} s")
            carriers = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "server_stub",
                        "traffic",
                        "--site",
                        f"A={a.url}",
                        "--site",
                        f"B={b.url}",
                        "--to",
                        site,
                        "--rate",
                        str(options.rate / 2),
                        "--duration",
                        str(options.duration),
                        "--queues",
                        QUEUE,
                        "--grace",
                        "1",
                        "--drain",
                        str(options.drain),
                        "--seed",
                        str(options.seed),
                        "--prefix",
                        f"chaos{site}",
                    ],
                    cwd=REPO,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for site in ("A", "B")
            ]
            if schedule:
                # A carrier logs in at its first site before it submits anything; a freeze drawn for
                # the first second would stop that site before it could, and the carrier gives up
                # after 10 s. The schedule counts from the first submission of each carrier.
                def both_carriers_submitting() -> bool:
                    seen = {e["interaction_id"][:6] for tap in taps for e in list(tap.events)}
                    return {"chaosA", "chaosB"} <= seen or any(c.poll() is not None for c in carriers)

                wait_until(both_carriers_submitting, 30, interval=0.05, message="both carriers submitting")
            started = time.monotonic()
            for at, name, span in schedule:
                due = started + at
                wait_until(lambda due=due: time.monotonic() >= due or any(c.poll() is not None for c in carriers),
                           at + 30, interval=0.05, message="the next freeze")
                _freeze(a if name == "A" else b, span, freezes)
                _say(options, f"freeze {len(freezes)}/{len(schedule)}: {name} stopped for {span:.1f} s and continued")
            period = options.duration / (options.cycles + 1)
            for cycle in range(0 if schedule else options.cycles):
                victim, other = (a, b) if cycle % 2 == 0 else (b, a)
                due = started + period * (cycle + 1)
                wait_until(lambda due=due: time.monotonic() >= due or any(c.poll() is not None for c in carriers),
                           period + 30, interval=0.05, message="the next kill")
                if options.kill_with_work_in_hand:
                    tap = taps[0 if victim is a else 1]
                    wait_until(tap.work_in_hand, 10, interval=0.01, message=f"an interaction in hand at {victim.name}")
                # Its copies end when SIGKILL is sent (it runs nothing after that); kill9 returns
                # only once the process is reaped, and under load the survivor may already have
                # offered what the carrier re-submitted, which must not count as a double offer.
                kills.append((victim.name, wall_ms()))
                victim.kill9()
                back_at = time.monotonic() + options.down_time  # the outage lasts this long
                wait_until(
                    lambda back_at=back_at: time.monotonic() >= back_at,
                    10,
                    interval=0.02,
                    message="the end of the outage",
                )
                _restart(victim, other, taps[0 if victim is a else 1])
                restarts += 1
                _say(options, f"kill {cycle + 1}/{options.cycles}: {victim.name} killed and back")
            carrier = merge_carrier_ledgers([_carrier_ledger(c, options) for c in carriers])
            submitted = sorted(carrier["interactions"])
            # The carrier saw every end; give the supervisors' streams a moment to have them too.
            ends = ("completed", "abandoned")
            wait_until(lambda: {e["interaction_id"] for tap in taps for e in tap.events if e["event"] in ends}
                       >= {i for i, v in carrier["interactions"].items() if v["status"] in ends}, 10,
                       interval=0.05, message="the supervisors' streams to show every end")
            for agent in agents:
                agent.command("quit")
            for agent in agents:
                agent.proc.wait(10)
            return Ledger(
                submitted=submitted,
                carrier=carrier,
                streams=[e for tap in taps for e in tap.events],
                agents={aid: list(agent.events) for aid, agent in zip(agent_ids, agents, strict=True)},
                kills=kills,
                restarts=restarts,
                freezes=freezes,
                traffic_s=options.duration,
                subscriptions=sum(tap.subscriptions for tap in taps),
                queue_stats=[f for tap in taps for f in tap.queue_stats],
            )
        finally:
            for carrier_proc in carriers:
                if carrier_proc.poll() is None:
                    carrier_proc.kill()
                    carrier_proc.wait(5)
            for agent in agents:
                agent.stop()
            for tap in taps:
                tap.close()
            for server in (a, b):
                server.stop()
            if options.log_dir is not None:
                _leave_logs(options.log_dir, [a, b], dict(zip(agent_ids, agents, strict=False)), taps)
