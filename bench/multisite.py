"""Multi-site benchmark: one agent pool over N sites, as a mesh and then on RabbitMQ, in one run.

N ``interaction-server`` processes (sites A, B, C, ...) linked as a mesh (``--peer`` to every
other), then the same on a private RabbitMQ broker (``LocalBroker``, as ``cluster --bus local``).
Agents are lightweight raw websocket agents (the wire protocol, no desktop code: far cheaper than
headless desktop sessions), spread round-robin over the sites, in ``--workers`` processes; each
accepts an offer at once and completes it at once. Queues: ``--queues`` shared queues whose members
are at every site with penalties 0, 1, 2 mixed, and one queue per site whose members are only at
that site (so a submission at another site must be handed over). The carrier (this process)
submits ``--rate`` interactions/s for ``--duration`` s, at every site in turn, to a random queue.
Every process stamps CLOCK_MONOTONIC (one clock on Linux), so times compare across processes.

Per mode:

- ``offer_local_p50/p99_ms``, ``offer_remote_p50/p99_ms``: submission until the agent's
  ``EventInvite``, for agents at the submitting site and at another site (same run);
- ``propagation_p50/p99_ms``: the cross-site presence of an agent is not observable from outside
  (no centre-wide reporting scope yet), so it is measured by what it causes: a probe agent, the
  only member of a probe queue, is Not Ready at site X with an interaction of that queue waiting
  at site Y; it goes Ready, and the time until its ``EventInvite`` is its state change reaching Y
  plus Y's hand-over round trip and X's offer: an UPPER bound of propagation to Y.
  ``propagation_local_p50_ms`` is the same probe with the interaction waiting at X (the baseline);
  the probe is repeated for every ordered pair of sites, ``--probes`` times, during the traffic
  (and after it when the probes outlast it: 0.4 s each);
- ``stranded_ms_p99``: per interaction, how long it waited (submit to invite) while some member
  of its queue was idle (Ready, holding nothing, from the agents' own record);
- ``penalty_violations``: invites to an agent of penalty p while a member of penalty < p had been
  idle for all of the preceding ``--penalty-grace-ms`` (the documented bound: one one-way latency);
- ``submitted``, ``completed``, ``completed_twice``, ``lost``, ``double_offers`` (an interaction
  invited twice, or an agent invited while holding one it has not completed); ``lost`` is what no
  agent completed within ``--drain`` s after the traffic (the run waits until every site's
  reporting together shows every interaction completed, at most that long);
- ``offer_p99_ms_by_second``: the offers' p99 per second of traffic (a tail that grows during the
  run is a backlog), and ``first_reoffer_s``: when some agent was first offered a second
  interaction (None: no agent was; at 100/s for 10 s that happens at 1,000 agents, when every
  penalty-0 member of a queue has had one, and not at 2,000 or 4,000).

``MULTISITE_SERVER_LOGS=<dir>`` keeps every server's log (INFO); ``MULTISITE_DUMP=<prefix>`` writes
each mode's raw record (submissions, invites, completions) to ``<prefix>.<mode>.json``.

The carrier here submits once per interaction and does not re-submit (no site is lost in this
run). Prints a human summary, then one JSON line (the last line) with one object per mode and
``ratio_*`` figures against the issue's targets.

    python bench/multisite.py                                   # 5 sites, 2,000 agents, mesh then amqp
    python bench/multisite.py --sites 3 --agents 20 --rate 10 --duration 1 --modes mesh --probes 1  # smoke
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.figures import pct, rounded  # noqa: E402
from bench.routing import PASSWORD, Carrier, answer, mono, register_frame, tell  # noqa: E402
from server_stub.directory import AgentRecord, Directory, hash_password  # noqa: E402
from tests.support.servers import free_port  # noqa: E402

SECRET = "bench-secret-0123456789abcdef"
LOGS = os.environ.get("MULTISITE_SERVER_LOGS")  # a directory: every server's log (INFO) in <site>.log there
DUMP = os.environ.get("MULTISITE_DUMP")  # a path prefix: each mode's raw log in <prefix>.<mode>.json there
DEADLINE_S = 60.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes ``pids`` have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def site_names(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def layout(n_agents: int, sites: list[str], n_queues: int) -> dict[str, dict]:
    """agent id -> {site, queues: {queue: penalty}}; probe agents ``p<site>`` are in ``probe<site>`` only."""
    agents: dict[str, dict] = {}
    for i in range(n_agents):
        site = sites[i % len(sites)]
        agents[f"b{i:05d}"] = {"site": site, "queues": {f"q{i % n_queues}": (i // n_queues) % 3,
                                                        f"s{site}": (i // len(sites)) % 2}}
    for site in sites:
        agents[f"p{site}"] = {"site": site, "queues": {f"probe{site}": 0}}
    return agents


def write_files(tmp: Path, agents: dict[str, dict], sites: list[str], n_queues: int) -> tuple[Path, Path]:
    cheap = hash_password(PASSWORD, n=16, r=1, p=1)  # the servers run with --allow-weak-hashes
    directory = Directory()
    for aid, a in agents.items():
        directory.add(AgentRecord(id=aid, name=f"Bench {aid}", password_hash=cheap, queues=tuple(a["queues"]),
                                  penalties=tuple((q, p) for q, p in a["queues"].items() if p)))
    directory.add(AgentRecord(id="bench-carrier", name="Bench carrier", password_hash=cheap, role="carrier"))
    directory.add(AgentRecord(id="bench-sup", name="Bench supervisor", password_hash=cheap, role="supervisor"))
    agents_file = tmp / "agents.toml"
    directory.save(agents_file)
    queues = [f"q{i}" for i in range(n_queues)] + [f"s{s}" for s in sites] + [f"probe{s}" for s in sites]
    config = tmp / "site.toml"
    config.write_text(
        "[server]\nrate_per_s = 100000.0\nrate_burst = 100000\nheartbeat_interval_ms = 1000\n"
        "heartbeat_timeout_ms = 10000\n"
        # Every agent connects from 127.0.0.1 at once: the per-address limit on sockets not yet logged
        # in (64 by default, for a stranger's address) would refuse most of them with 503.
        "max_unauthenticated_per_source = 100000\n\n"
        + "".join(f"[[not_ready_reason]]\ncode = \"{r}\"\nlabel = \"{r.title()}\"\n\n" for r in ("break", "system"))
        + "".join(f"[[queue]]\nname = \"{q}\"\naccept_timeout = 30\n\n" for q in queues), encoding="utf-8")
    return agents_file, config


def start_sites(sites: list[str], agents_file: Path, config: Path, bus_urls: dict[str, str]) -> tuple[list, dict, dict]:
    """The N servers; their URLs once every one listens; per site, how to start it again (same port)."""
    ports = {s: free_port() for s in sites}
    env = {**os.environ, "INTERACTION_SERVER_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}

    def launch(s: str) -> tuple[subprocess.Popen, threading.Event]:
        links = (["--bus", bus_urls[s]] if bus_urls else
                 [a for o in sites if o != s for a in ("--peer", f"ws://127.0.0.1:{ports[o]}")])
        proc = subprocess.Popen([sys.executable, "-m", "server_stub", "--name", s, "--port", str(ports[s]), *links,
                                 "--agents", str(agents_file), "--allow-weak-hashes", "--config", str(config),
                                 "--log-level", "INFO" if LOGS else "WARNING"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()
        keep = open(Path(LOGS) / f"{s}.log", "a", buffering=1, encoding="utf-8") if LOGS else None

        def pump(out=proc.stdout, ev=ready, name=s) -> None:
            for line in out:
                if keep is not None:
                    keep.write(line)
                if line.startswith("listening "):
                    ev.set()
                elif "error" in line.lower() or "Traceback" in line:
                    sys.stderr.write(f"[{name}] {line}")

        threading.Thread(target=pump, daemon=True).start()
        return proc, ready

    launched = {s: launch(s) for s in sites}
    procs = [proc for proc, _ in launched.values()]
    for s in sites:
        if not launched[s][1].wait(30):
            for p in procs:
                p.kill()
            raise SystemExit(f"bench: site {s} did not start")
    return procs, {s: f"ws://127.0.0.1:{ports[s]}" for s in sites}, {s: (lambda s=s: launch(s)) for s in sites}


# ---------------------------------------------------------------------------- the agents


class Agent:
    """One raw websocket agent: logs in, goes Ready (unless ``ready`` is False), answers every offer."""

    def __init__(self, aid: str, url: str, log: dict, ready: bool = True, fallbacks: list[str] | None = None):
        self.aid, self.url, self.log, self.start_ready = aid, url, log, ready
        self.fallbacks = fallbacks or []  # every site's URL: where to log in again when its site is lost
        self.ids = itertools.count(1)
        self.holding: str | None = None  # offered or accepted, not yet completed
        self.completing: str | None = None  # completion sent, its answer not yet here
        self.invited = asyncio.Event()
        self.done = asyncio.Event()  # set at the completion of what it held

    async def send(self, kind: str, request_id: str | None = None, **fields) -> None:
        await self.ws.send(json.dumps({"type": kind, "request_id": request_id or f"{self.aid}-{next(self.ids)}",
                                       "epoch": self.epoch, **fields}))

    async def login(self, gate: asyncio.Semaphore) -> None:
        self.ws = await connect(self.url, ping_interval=None, compression=None, max_size=None, proxy=None,
                                open_timeout=60)
        async with gate:
            await self.ws.send(register_frame("reg", "bench"))
            await self.ws.recv()
            await self.ws.send(json.dumps({"type": "RequestAgentLogin", "request_id": "login", "agent_id": self.aid,
                                           "password": PASSWORD}))
            ack = json.loads(await self.ws.recv())
            if ack["type"] != "EventAck":
                raise RuntimeError(f"{self.aid}: {ack}")
            self.epoch = ack["epoch"]
            if self.start_ready:
                await self.ready()

    def idle_from(self, t: float) -> None:
        self.log["idle"].setdefault(self.aid, []).append([t, None])

    async def ready(self) -> float:
        t = mono()
        self.idle_from(t)  # idle from Ready until the next invite
        await self.send("RequestAgentReady")
        return t

    async def serve(self) -> None:
        """Answer offers; when the socket is lost (its site killed) and ``fallbacks`` are given, log
        in at the next site that answers, as a desktop fails over, and go on there."""
        while True:
            try:
                await self._serve()
            except (ConnectionClosed, OSError):
                if not self.fallbacks:
                    raise
            now = mono()
            self.log["drops"].append([self.aid, now])
            idle = self.log["idle"].get(self.aid)
            if idle and idle[-1][1] is None:
                idle[-1][1] = now  # not offerable while logged in nowhere
            self.holding = self.completing = None
            await self._log_in_elsewhere()

    async def _log_in_elsewhere(self) -> None:
        """Each agent has its own order of the other sites (as desktops of different agents are
        given different backups), so a lost site's agents spread over the others."""
        others = [u for u in self.fallbacks if u != self.url]
        k = zlib.crc32(self.aid.encode()) % max(1, len(others))
        urls = others[k:] + others[:k] + [self.url]
        gate = asyncio.Semaphore(1)
        for attempt in itertools.count():
            self.url = urls[attempt % len(urls)]
            try:
                async with asyncio.timeout(10):
                    await self.login(gate)
                return
            except (ConnectionClosed, OSError, RuntimeError, TimeoutError):
                await asyncio.sleep(0.2)

    async def _serve(self) -> None:
        last_tx = mono()
        while True:
            try:
                async with asyncio.timeout(2.0):
                    frame = await self.ws.recv()
            except TimeoutError:
                frame = None
            now = mono()
            if now - last_tx > 2.0:
                last_tx = now
                await self.ws.send('{"type": "Heartbeat"}')
            if frame is None or ('"EventInvite"' not in frame and '"EventAck"' not in frame):
                continue
            message = json.loads(frame)
            if message["type"] == "EventInvite":
                iid = message["interaction"]["interaction_id"]
                self.log["invites"].append([iid, self.aid, now, self.holding])
                self.completing = None  # offered again before its completion's answer: it was not idle
                idle = self.log["idle"].get(self.aid)
                if idle and idle[-1][1] is None:
                    idle[-1][1] = now
                self.holding = iid
                self.invited.set()
                last_tx = now
                await self.send("RequestAccept", f"acc:{iid}", interaction_id=iid)
            elif message["request_id"].startswith("acc:"):
                iid = message["request_id"][4:]
                # Holding nothing once the completion is sent: the server may offer the next
                # interaction before it answers (the answer waits for the other sites' confirmation).
                self.holding, self.completing = None, iid
                await self.send("RequestCompleteInteraction", f"done:{iid}", interaction_id=iid,
                                disposition="resolved")
            elif message["request_id"].startswith("done:"):
                iid = message["request_id"][5:]
                self.log["completed"].append([iid, self.aid, now])
                if self.completing == iid:  # idle from the answer, unless offered something meanwhile
                    self.completing = None
                    self.idle_from(now)
                self.done.set()


def new_log() -> dict:
    return {"invites": [], "completed": [], "idle": {}, "drops": []}


async def worker(spec: str, fallbacks: list[str]) -> None:
    """Agents ``id@url,...`` logged in and Ready; on 'stop' from stdin, prints their log."""
    log = new_log()
    agents = [Agent(aid, url, log, fallbacks=fallbacks)
              for aid, url in (item.split("@", 1) for item in spec.split(","))]
    gate = asyncio.Semaphore(50)

    async def start(agent: Agent) -> asyncio.Task[None]:
        await agent.login(gate)
        return asyncio.create_task(agent.serve())  # at once: it beats while the others log in

    results = await asyncio.gather(*(start(a) for a in agents), return_exceptions=True)
    errors = [f"{type(r).__name__}: {r}" for r in results if isinstance(r, BaseException)]
    tasks = [r for r in results if isinstance(r, asyncio.Task)]
    print(json.dumps({"ready": len(tasks), "errors": errors[:5], "error_count": len(errors)}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps(log), flush=True)


# ---------------------------------------------------------------------------- the carrier and the probes (parent)


async def submit(carrier: Carrier, iid: str, queue: str) -> None:
    carrier.submitted[iid] = mono()
    await carrier.ws.send(json.dumps({"type": "RequestSubmitInteraction", "request_id": f"s-{iid}", "interaction": {
        "interaction_id": iid, "media": "voice", "queue": queue, "created_ms": int(time.time() * 1000),
        "customer": {"name": "Bench Customer", "account": iid}}}))


async def probes(sites: list[str], urls: dict[str, str], carriers: Mapping[str, Carrier], rounds: int) -> dict:
    """Probe agent at X goes Ready while its queue's interaction waits at Y: Ready until invite."""
    log = new_log()
    agents = {s: Agent(f"p{s}", urls[s], log, ready=False) for s in sites}
    gate = asyncio.Semaphore(10)
    for a in agents.values():
        await a.login(gate)
    tasks = [asyncio.create_task(a.serve()) for a in agents.values()]
    local: list[float] = []
    remote: list[float] = []
    n = itertools.count()
    timed_out = 0
    try:
        await asyncio.sleep(0.5)
        for _ in range(rounds):
            for x, y in itertools.product(sites, sites):
                agent = agents[x]
                iid = f"probe-{next(n):05d}-{x}{y}"
                agent.invited.clear()
                agent.done.clear()
                await submit(carriers[y], iid, f"probe{x}")
                await asyncio.sleep(0.2)  # queued at Y, and Y knows the probe agent is Not Ready
                t = await agent.ready()
                async with asyncio.timeout(DEADLINE_S):
                    await agent.invited.wait()
                (local if x == y else remote).append((log["invites"][-1][2] - t) * 1000)
                async with asyncio.timeout(DEADLINE_S):
                    await agent.done.wait()
                await agent.send("RequestAgentNotReady", reason="break")
                await asyncio.sleep(0.2)  # every site hears the Not Ready before the next probe
    except TimeoutError:
        timed_out = 1  # no offer (or no completion) within DEADLINE_S: the run is far behind; no more probes
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for a in agents.values():
            await a.ws.close()
    return {"propagation_p50_ms": rounded(pct(remote, 50), 2), "propagation_p99_ms": rounded(pct(remote, 99), 2),
            "propagation_local_p50_ms": rounded(pct(local, 50), 2),
            "propagation_local_p99_ms": rounded(pct(local, 99), 2), "probes": len(remote) + len(local),
            "probe_timed_out": timed_out}


def spawn_worker(spec: str, fallbacks: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--worker", spec, "--fallbacks", ",".join(fallbacks)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)


def overlap(intervals: list, start: float, end: float) -> list[tuple[float, float]]:
    """Parts of ``intervals`` (sorted [from, to|None]) within [start, end]."""
    starts = [i[0] for i in intervals]
    out = []
    for a, b in intervals[max(0, bisect.bisect_right(starts, start) - 1):bisect.bisect_right(starts, end)]:
        lo, hi = max(a, start), min(end if b is None else b, end)
        if hi > lo:
            out.append((lo, hi))
    return out


def union_length(parts: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for lo, hi in sorted(parts):
        if hi > reach:
            total += hi - max(lo, reach)
            reach = hi
    return total


def analyse(agents: dict[str, dict], log: dict, submitted: dict[str, tuple[float, str, str]], grace_s: float) -> dict:
    first_invite: dict[str, tuple[float, str]] = {}
    invites: dict[str, list[tuple[float, str]]] = {}
    double = 0
    for iid, aid, t, holding in sorted(log["invites"], key=lambda i: i[2]):
        double += holding is not None
        first_invite.setdefault(iid, (t, aid))
        invites.setdefault(iid, []).append((t, aid))
    done: dict[str, int] = {}
    done_at: dict[tuple[str, str], float] = {}
    for iid, aid, t in log["completed"]:
        done[iid] = done.get(iid, 0) + 1
        done_at.setdefault((iid, aid), t)
    drops: dict[str, list[float]] = {}
    for aid, t in log["drops"]:
        drops.setdefault(aid, []).append(t)

    def still_held(iid: str, aid: str, since: float, at: float) -> bool:
        """The offer of ``iid`` made to ``aid`` at ``since`` was still that agent's at ``at``:
        not completed by it, its socket not lost (its site killed) in between."""
        return (done_at.get((iid, aid), float("inf")) > at
                and not any(since < t <= at for t in drops.get(aid, [])))

    # An interaction offered again while an earlier offer of it still stood (or after it was
    # completed): a double offer. Offered again after the agent holding it lost its site: not.
    redone: set[str] = set()
    for iid, seq in invites.items():
        for k, (t, _) in enumerate(seq[1:], 1):
            if any(still_held(iid, a0, t0, t) or done_at.get((iid, a0), float("inf")) <= t for t0, a0 in seq[:k]):
                double += 1
                redone.add(iid)
    # What a double offer looked like: every invite of the interactions concerned, with what the agent held.
    doubled = redone | {iid for iid, aid, t, holding in log["invites"] if holding}
    samples = [[iid, aid, round(t, 4), held] for iid, aid, t, held in log["invites"] if iid in doubled][:12]
    # Offered to an agent whose site was killed before it completed, and never completed after: the
    # raw agents do not carry work in hand across a failover (a desktop does), so these are counted
    # apart from ``lost`` (what no agent was ever offered, or was offered and not lost this way).
    dropped_in_hand = {iid for iid, seq in invites.items() if not done.get(iid)
                       and any(any(t > t0 for t in drops.get(a0, [])) for t0, a0 in seq)}
    members: dict[str, list[tuple[str, int]]] = {}
    for aid, a in agents.items():
        for q, pen in a["queues"].items():
            members.setdefault(q, []).append((aid, pen))
    idle = {aid: sorted(v, key=lambda i: i[0]) for aid, v in log["idle"].items()}
    local: list[float] = []
    remote: list[float] = []
    stranded: list[float] = []
    violations = 0
    start = min((t0 for t0, _, _ in submitted.values()), default=0.0)
    by_second: dict[int, list[float]] = {}  # second of the traffic it was submitted in -> offer latencies
    for iid, (t0, site, queue) in submitted.items():
        if iid not in first_invite:
            continue
        t1, aid = first_invite[iid]
        (local if agents[aid]["site"] == site else remote).append((t1 - t0) * 1000)
        by_second.setdefault(int(t0 - start), []).append((t1 - t0) * 1000)
        parts = [p for m, _ in members[queue] for p in overlap(idle.get(m, []), t0, t1)]
        stranded.append(union_length(parts) * 1000)
        given = dict(members[queue])[aid]
        if any(pen < given and union_length(overlap(idle.get(m, []), t1 - grace_s, t1)) >= grace_s * 0.999
               for m, pen in members[queue]):
            violations += 1
    return {
        "submitted": len(submitted), "offered": sum(1 for i in submitted if i in first_invite),
        "completed": sum(1 for i in submitted if done.get(i)),
        "completed_twice": sum(1 for i in submitted if done.get(i, 0) > 1),
        "lost": sum(1 for i in submitted if not done.get(i) and i not in dropped_in_hand),
        "dropped_in_hand_at_kill": len(dropped_in_hand & submitted.keys()), "double_offers": double,
        "offers_local": len(local), "offers_remote": len(remote),
        "offer_local_p50_ms": rounded(pct(local, 50), 2), "offer_local_p99_ms": rounded(pct(local, 99), 2),
        "offer_remote_p50_ms": rounded(pct(remote, 50), 2), "offer_remote_p99_ms": rounded(pct(remote, 99), 2),
        "stranded_ms_p50": rounded(pct(stranded, 50), 2), "stranded_ms_p99": rounded(pct(stranded, 99), 2),
        "penalty_violations": violations, "double_offer_samples": samples,
        # The offers' p99 per second of traffic (local and remote together): a tail that grows during
        # the run is a backlog, one in its first seconds a start-up transient.
        "offer_p99_ms_by_second": [rounded(pct(by_second.get(k, []), 99), 1)
                                   for k in range(max(by_second, default=-1) + 1)],
        # When an agent was first offered a second interaction (s into the traffic; None: no agent was).
        "first_reoffer_s": rounded(first_reoffer(log["invites"], submitted, start), 2),
    }


def first_reoffer(invites: list, submitted: Mapping[str, object], start: float) -> float | None:
    """Seconds into the traffic when some agent was first offered a traffic interaction after
    having been offered another one: from then on the pool routes to agents that have worked."""
    seen: set[str] = set()
    for iid, aid, t, _ in sorted(invites, key=lambda i: i[2]):
        if iid in submitted:
            if aid in seen:
                return t - start
            seen.add(aid)
    return None


class SiteCarrier(Carrier):
    """The carrier's socket to one site; also keeps, per interaction, the last event that site's
    reporting said about it (what to re-submit when the site is lost)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.last: dict[str, str] = {}
        self.alive = True

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                frame = data if isinstance(data, str) else data.decode("utf-8", "replace")
                if '"EventError"' in frame:
                    self.errors.append(frame[:200])
                elif '"EventInteraction"' in frame:
                    message = json.loads(frame)
                    self.last[message["interaction_id"]] = message["event"]
                    if message["event"] == "completed":
                        self.completed.add(message["interaction_id"])
        except ConnectionClosed:
            pass
        self.alive = False

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.__aexit__(None, None, None)


VIEW_TIMEOUT_S = 5.0  # for one site's snapshot, from dialing it until the snapshot is read
_closing: set[asyncio.Task[None]] = set()  # closes of the views' sockets, kept from the GC until done


async def center_view(url: str) -> dict[str, tuple[str, int, bool]] | None:
    """One site's view of every agent (``scope: center``): agent -> (its site, epoch, reachable);
    None if the site does not answer within ``VIEW_TIMEOUT_S``.

    Only dialing, asking and reading the snapshot are timed. The site goes on streaming its center
    events after the snapshot (a burst of them while its links come up); the socket reads without
    limit (``max_queue=None``) so that its close is seen behind them, and is closed in the
    background. It used to be closed inside the timeout with the client's default flow control,
    which stopped reading after 16 unread frames: the close then waited for an answer it could not
    read, and a snapshot read in milliseconds counted as a site that did not answer
    (tests/bus/test_views_poll.py)."""
    try:
        async with asyncio.timeout(VIEW_TIMEOUT_S):
            ws = await connect(url, ping_interval=None, compression=None, max_size=None, max_queue=None, proxy=None)
            try:
                await ws.send(register_frame("reg", "bench-views"))
                await ws.recv()
                await ws.send(json.dumps({"type": "RequestSubscribeReporting", "request_id": "sub",
                                          "scope": "center", "user_id": "bench-sup", "password": PASSWORD}))
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "EventReportingSnapshot":
                        site = message["server"]
                        return {a["agent_id"]: (a.get("server", site), a["epoch"], a.get("reachable", True))
                                for a in message["agents"]}
                    if message["type"] == "EventError":
                        raise SystemExit(f"bench: center view refused at {url}: {message}")
            finally:
                task = asyncio.get_running_loop().create_task(ws.close())
                _closing.add(task)
                task.add_done_callback(_closing.discard)
    except (OSError, ConnectionClosed, TimeoutError):
        return None


async def views_agree(urls: list[str], agents: list[str], deadline_s: float, why: list[str],
                      polls: list[int] | None = None) -> float | None:
    """Seconds until every site's view of every agent in ``agents`` is the same (where and at which
    epoch it is logged in, reachable), polled; None if not within ``deadline_s``, with samples of
    what still disagreed in ``why``; how many polls it took is appended to ``polls``. States are
    not compared: under traffic they change between two sites' snapshots."""
    start = mono()
    n = 0
    try:
        while mono() - start < deadline_s:
            n += 1
            views = list(await asyncio.gather(*(center_view(u) for u in urls)))
            why[:] = [f"{u} did not answer" for u, v in zip(urls, views, strict=True) if v is None]
            for a in agents:
                seen = {u: v.get(a) for u, v in zip(urls, views, strict=True) if v is not None}
                if len(set(seen.values())) > 1 or None in seen.values() or any(not s[2] for s in seen.values() if s):
                    why.append(f"{a}: {seen}")
                if len(why) >= 5:
                    break
            if not why:
                return mono() - start
            await asyncio.sleep(0.2)
        return None
    finally:
        if polls is not None:
            polls.append(n)


async def until_terminated(coro):
    """SIGTERM (``timeout``, a CI job cancelled) cancels the run, so its ``finally`` blocks stop the
    servers and the broker: terminated outright, the bench left its RabbitMQ node running."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await coro


async def run_mode(mode: str, args, tmp: Path) -> dict:
    sites = site_names(args.sites)
    agents = layout(args.agents, sites, args.queues)
    agents_file, config = write_files(tmp, agents, sites, args.queues)
    broker = None
    bus_urls: dict[str, str] = {}
    if mode == "amqp":
        from server_stub.bus.broker import LocalBroker

        broker = LocalBroker(name="msbench")
        await asyncio.to_thread(broker.start)
        broker.add_sites(sites)
        bus_urls = {s: broker.url(s) for s in sites}
    servers, urls, relaunch = start_sites(sites, agents_file, config, bus_urls)
    procs = dict(zip(sites, servers, strict=True))
    workers: list[subprocess.Popen] = []
    fault: dict = {}
    fallbacks = [urls[s] for s in sites] if args.fault else []
    try:
        t0 = mono()
        await asyncio.sleep(1.0)  # the links come up and exchange their snapshots
        ids = [a for a in agents if not a.startswith("p")]
        for k in range(max(1, min(args.workers, len(ids)))):
            workers.append(spawn_worker(",".join(f"{a}@{urls[agents[a]['site']]}" for a in ids[k::args.workers]),
                                        fallbacks))
        logins = await asyncio.gather(*(asyncio.to_thread(answer, w, "worker") for w in workers))
        ready = sum(r["ready"] for r in logins)
        if ready < len(ids):
            raise SystemExit(f"bench: only {ready} of {len(ids)} agents logged in: {logins[0]['errors'][:2]}")
        login_s = mono() - t0
        print(f"[{mode}] {len(sites)} sites up, {ready} agents Ready in {login_s:.1f} s", flush=True)
        carriers = {s: SiteCarrier(urls[s]) for s in sites}
        every_carrier = list(carriers.values())  # with the ones of a killed site (what they saw counts)
        for c in carriers.values():
            await c.__aenter__()
        submitted: dict[str, tuple[float, str, str]] = {}
        rng = random.Random(1)
        queues = [f"q{i}" for i in range(args.queues)] + [f"s{s}" for s in sites]
        traffic_done = asyncio.Event()

        def completed() -> set[str]:
            return set().union(*(c.completed for c in every_carrier))

        try:
            await asyncio.sleep(0.5)
            server_pids = [proc.pid for proc in servers]
            broker_pids = broker.pids() if broker is not None else []
            cpu0 = [cpu_seconds(server_pids), cpu_seconds(broker_pids)]

            async def traffic() -> None:
                start = mono()
                for n in itertools.count():
                    due = start + n / args.rate
                    if due - start >= args.duration:
                        break
                    if due > mono():
                        await asyncio.sleep(due - mono())
                    site, queue, iid = sites[n % len(sites)], rng.choice(queues), f"{mode}-{n:07d}"
                    if not carriers[site].alive:  # a killed site: the carrier sends its calls elsewhere
                        site = next(s for s in sites[n % len(sites):] + sites if carriers[s].alive)
                    with contextlib.suppress(ConnectionClosed):
                        await submit(carriers[site], iid, queue)
                    submitted[iid] = (carriers[site].submitted[iid], site, queue)
                traffic_done.set()

            async def heartbeats() -> None:  # the carriers' sockets stay alive however long the run
                while True:
                    await asyncio.sleep(2.0)
                    for c in list(carriers.values()):
                        if c.alive:
                            with contextlib.suppress(ConnectionClosed):
                                await c.ws.send('{"type": "Heartbeat"}')

            async def faults() -> None:
                """Steady traffic, then: the broker killed (SIGKILL) and restarted; then the last site
                killed (SIGKILL), what it had not handed to an agent re-submitted elsewhere (as a
                carrier does), and the site restarted. After each restart: until every site's view
                of every agent agrees again."""
                everyone = ids + []
                why: list[str] = []
                await asyncio.sleep(args.fault_after)
                if broker is not None:
                    print(f"[{mode}] SIGKILL the broker", flush=True)
                    spent = cpu_seconds(broker_pids) - cpu0[1]
                    broker.kill()
                    await asyncio.to_thread(broker.restart)
                    broker_pids[:] = broker.pids()  # its CPU from here on (its start-up not counted)
                    cpu0[1] = cpu_seconds(broker_pids) - spent
                    fault["broker_start_s"] = rounded(broker.startup_seconds, 2)
                    polls: list[int] = []
                    took = await views_agree(list(urls.values()), everyone, 60.0, why, polls)
                    fault["views_agree_after_broker_start_s"] = rounded(took, 2)
                    fault["views_polls_after_broker"] = polls[0]
                    if took is None:
                        fault["views_disagreeing_after_broker"] = why[:]
                    print(f"[{mode}] broker back in {fault['broker_start_s']} s; every view agrees "
                          f"{fault['views_agree_after_broker_start_s']} s after", flush=True)
                    await asyncio.sleep(2.0)
                victim = sites[-1]
                print(f"[{mode}] SIGKILL site {victim}", flush=True)
                old_pid = procs[victim].pid
                spent = cpu_seconds([old_pid])
                procs[victim].kill()
                await asyncio.to_thread(procs[victim].wait, 10)
                lost = carriers[victim]
                deadline = mono() + 10
                while lost.alive and mono() < deadline:  # noqa: ASYNC110 (its reader ends with the socket)
                    await asyncio.sleep(0.05)
                await asyncio.sleep(args.grace)
                done = completed()
                todo = [iid for iid, (_, site, _) in list(submitted.items())
                        if site == victim and iid not in done and lost.last.get(iid) != "withdrawn"]
                fault["resubmitted"] = len(todo)
                for iid in todo:
                    site = next(s for s in sites if carriers[s].alive)
                    with contextlib.suppress(ConnectionClosed):
                        await submit(carriers[site], iid, submitted[iid][2])
                    submitted[iid] = (submitted[iid][0], site, submitted[iid][2])
                await asyncio.sleep(max(0.0, args.down_time - args.grace))
                proc, ready = relaunch[victim]()
                procs[victim] = proc
                servers.append(proc)
                server_pids.remove(old_pid)
                server_pids.append(proc.pid)
                cpu0[0] -= spent  # the killed process's CPU is kept; the new one's counted from 0
                launched = mono()
                if not await asyncio.to_thread(ready.wait, 30):
                    raise SystemExit(f"bench: site {victim} did not start again")
                fault["site_restart_listening_s"] = rounded(mono() - launched, 2)
                polls = []
                took = await views_agree(list(urls.values()), everyone, 60.0, why, polls)
                fault["views_polls_after_site_restart"] = polls[0]
                if took is None:
                    fault["views_disagreeing_after_site_restart"] = why[:]
                carrier = SiteCarrier(urls[victim])
                await carrier.__aenter__()
                every_carrier.append(carrier)
                carriers[victim] = carrier  # the traffic goes to the site again
                fault["views_agree_after_site_restart_s"] = rounded(took, 2)
                print(f"[{mode}] site {victim} back; every view agrees {fault['views_agree_after_site_restart_s']} s "
                      "after it listens", flush=True)

            beat = asyncio.create_task(heartbeats())
            # The probes run during the traffic (their queues are their own), and after it if they outlast it.
            jobs = [traffic(), probes(sites, urls, carriers, 0 if args.fault else args.probes)]
            _, probe, *_ = await asyncio.gather(*jobs, *([faults()] if args.fault else []))
            assert isinstance(probe, dict)
            # Until every site's reporting together has shown every interaction completed, or the drain ends.
            end = mono() + args.drain
            # Polled: the carriers' sets together, each filled by its own reader.
            while mono() < end and not completed() >= submitted.keys():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the agents' last answers reach their workers' logs
            beat.cancel()
            cpu = cpu_seconds(server_pids) - cpu0[0], cpu_seconds(broker_pids) - cpu0[1]
            errors = [e for c in every_carrier for e in c.errors]
        finally:
            for c in every_carrier:
                await c.close()
        log = new_log()
        for w in workers:
            tell(w, "stop")
        for report in await asyncio.gather(*(asyncio.to_thread(answer, w, "worker") for w in workers)):
            for key in ("invites", "completed", "drops"):
                log[key] += report[key]
            log["idle"].update(report["idle"])
    finally:
        for proc in workers + servers:
            proc.kill()
        for proc in workers + servers:
            proc.wait(10)
        if broker is not None:
            await asyncio.to_thread(broker.stop)
    figures = analyse(agents, log, submitted, args.penalty_grace_ms / 1000)
    if DUMP:  # every submission, invite and completion, for a closer look than the figures
        await asyncio.to_thread(Path(f"{DUMP}.{mode}.json").write_text, json.dumps(
            {"submitted": submitted, "invites": log["invites"], "completed": log["completed"]}))
    per = 1000 / max(1, len(submitted))
    return {"mode": mode, **figures, **probe, **fault, "login_s": round(login_s, 1),
            "servers_cpu_ms_per_interaction": round(cpu[0] * per, 2),
            "broker_cpu_ms_per_interaction": round(cpu[1] * per, 2), "carrier_errors": len(errors),
            "carrier_error_samples": errors[:3]}


def ratios(r: dict) -> dict:
    def ratio(a, b):
        return None if a is None or not b else round(a / b, 3)
    remote_budget = None if r["offer_local_p99_ms"] is None else r["offer_local_p99_ms"] + 50
    return {"ratio_propagation_p99_to_target": ratio(r["propagation_p99_ms"], 100.0),
            "ratio_remote_offer_p99_to_target": ratio(r["offer_remote_p99_ms"], remote_budget),
            "ratio_stranded_p99_to_target": ratio(r["stranded_ms_p99"], 250.0)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=5, help="sites (2-26; default 5)")
    parser.add_argument("--agents", type=int, default=2000, help="agents over all sites (default 2000)")
    parser.add_argument("--queues", type=int, default=4, help="queues shared by every site (default 4)")
    parser.add_argument("--rate", type=float, default=100.0, help="interactions per second, all sites (default 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of traffic (default 10)")
    parser.add_argument("--probes", type=int, default=3, help="propagation probes per ordered pair of sites")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="at most this many seconds for the last interactions to finish (default 30)")
    parser.add_argument("--penalty-grace-ms", type=float, default=10.0,
                        help="a lower penalty idle this long before an offer makes it a violation (default 10)")
    parser.add_argument("--modes", default="mesh,amqp", help="comma-separated: mesh, amqp (default both)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the agents' sockets (default 2)")
    parser.add_argument("--fault", action="store_true",
                        help="fault run: during the traffic, SIGKILL the broker (amqp) and restart it, then SIGKILL "
                             "the last site and restart it (no propagation probes)")
    parser.add_argument("--fault-after", type=float, default=5.0, help="seconds of traffic before the first kill")
    parser.add_argument("--grace", type=float, default=1.0,
                        help="seconds after a site is lost before the carrier re-submits its calls (default 1)")
    parser.add_argument("--down-time", type=float, default=2.0, help="seconds the killed site stays down (default 2)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--fallbacks", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.worker, [u for u in args.fallbacks.split(",") if u]))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    if not 2 <= args.sites <= 26 or args.agents < args.sites or set(modes) - {"mesh", "amqp"} or not modes:
        parser.error("--sites 2..26, --agents at least --sites, --modes among mesh,amqp")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            try:
                r = asyncio.run(until_terminated(run_mode(mode, args, Path(tmp))))
            except asyncio.CancelledError:
                print(f"[{mode}] terminated: servers and broker stopped", file=sys.stderr, flush=True)
                return 128 + signal.SIGTERM
            r.update(ratios(r))
            results[mode] = r
            print(f"[{mode}] propagation p50/p99 {r['propagation_p50_ms']}/{r['propagation_p99_ms']} ms (upper bound; "
                  f"local baseline p50 {r['propagation_local_p50_ms']} ms); offer local p50/p99 "
                  f"{r['offer_local_p50_ms']}/{r['offer_local_p99_ms']} ms, remote {r['offer_remote_p50_ms']}/"
                  f"{r['offer_remote_p99_ms']} ms; stranded p99 {r['stranded_ms_p99']} ms; penalty violations "
                  f"{r['penalty_violations']}; submitted {r['submitted']}, completed {r['completed']}, twice "
                  f"{r['completed_twice']}, lost {r['lost']}, double offers {r['double_offers']}", flush=True)
    ok = all(r["lost"] == 0 and r["completed_twice"] == 0 and r["double_offers"] == 0 for r in results.values())
    print(json.dumps({"sites": args.sites, "agents": args.agents, "rate": args.rate, "duration_s": args.duration,
                      "modes": results, "all_ok": ok, "clock": "CLOCK_MONOTONIC in every process"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
