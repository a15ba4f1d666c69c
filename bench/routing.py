"""Routing benchmark: offer latency and routed interactions per second on a real server.

One ``interaction-server`` process (no peer) with N agents logged in and Ready in one queue; a
carrier submits interactions; every agent accepts an offer at once and completes it at once, so it
is Ready again. Two phases:

- steady: interactions at ``--rate`` for ``--duration`` seconds. Offer latency is the time from
  sending ``RequestSubmitInteraction`` to receiving ``EventInvite`` at the agent; ``routed_per_s``
  is offers divided by the time from the first submission to the last offer (it cannot exceed the
  input rate: that is the point of a steady phase);
- burst: ``--burst`` interactions sent as fast as the carrier can; when the submissions outrun the
  router, offers divided by the time from the first submission to the last offer is the *capacity*
  (``burst_routed_per_s``); ``burst_saturated`` says whether submissions did outrun routing.

The agents' sockets are spread over ``--workers`` processes, the carrier and a raw websockets
pinger (against a separate echo process, measured during the steady phase, to tell the server's
cost from the machine's) run in processes of their own, so no client's event loop lag sits on
another's measurement. Every process stamps with CLOCK_MONOTONIC, which is one clock for the whole
machine on Linux, so a submit time in the carrier and an invite time in a worker compare. The
clients are plain websockets connections speaking the wire protocol (no desktop code).

Prints a human summary, then one JSON line (the last line).

    python bench/routing.py                                     # 2,000 agents, 200/s for 5 s, burst of 2,000
    python bench/routing.py --agents 50 --rate 20 --duration 1 --burst 50 --workers 1   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.figures import pct, rounded  # noqa: E402
from server_stub.directory import AgentRecord, Directory, hash_password  # noqa: E402

PASSWORD = "bench"
ECHO_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""
LOGIN_DEADLINE_S = 180.0
SETTLE_DEADLINE_S = 30.0


def mono() -> float:
    """CLOCK_MONOTONIC in seconds: the same clock in every process of the run."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def agent_id(i: int) -> str:
    return f"b{i:05d}"


def write_site(tmp: Path, n_agents: int) -> tuple[Path, Path]:
    """A directory of N agents (cheap scrypt: this measures routing, not hashing) and a site config."""
    cheap = hash_password(PASSWORD, n=16, r=1, p=1)  # the server runs with --allow-weak-hashes
    directory = Directory()
    for i in range(n_agents):
        # One agent in ten in the backup tier: the router walks two penalty tiers.
        penalty = 1 if i % 10 == 9 else 0
        directory.add(AgentRecord(id=agent_id(i), name=f"Bench {i}", password_hash=cheap, queues=("bench",),
                                  penalties=(("bench", penalty),) if penalty else ()))
    directory.add(AgentRecord(id="bench-carrier", name="Bench carrier", password_hash=cheap, role="carrier"))
    agents = tmp / "agents.toml"
    directory.save(agents)
    config = tmp / "site.toml"
    # The carrier's burst goes over one socket: the per-socket rate limit must not be what is measured.
    # Every agent connects from 127.0.0.1 at once: the per-address limit on sockets not yet logged
    # in (64 by default, for a stranger's address) would refuse most of them with 503.
    config.write_text("""
[server]
rate_per_s = 100000.0
rate_burst = 100000
max_unauthenticated_per_source = 100000
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 10000

[[queue]]
name = "bench"
accept_timeout = 30
""", encoding="utf-8")
    return agents, config


def start_server(agents: Path, config: Path) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "INTERACTION_SERVER_SECRET": "bench-secret-0123456789", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "--name", "A", "--port", "0", "--agents", str(agents),
                             "--allow-weak-hashes", "--config", str(config), "--log-level", "WARNING"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    url: list[str] = []
    out, err = proc.stdout, proc.stderr
    assert out is not None and err is not None  # both PIPE above

    def pump() -> None:
        for line in out:
            if line.startswith("listening "):  # listening ws://127.0.0.1:PORT name=A
                url.append(line.split()[1])
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    threading.Thread(target=lambda: [None for _ in err], daemon=True).start()
    if not ready.wait(15):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, url[0]


def register_frame(request_id: str, name: str) -> str:
    return json.dumps({"type": "RequestRegisterClient", "request_id": request_id, "protocol_version": 1,
                       "client_name": name, "heartbeat_interval_ms": 5000})


async def until_stdin_line() -> str:
    """The parent's next command on stdin (read in a thread so the loop keeps serving sockets)."""
    return await asyncio.to_thread(sys.stdin.readline)


# ---------------------------------------------------------------------------- worker: a slice of agents


async def worker(url: str, first: int, count: int) -> None:
    """Logs in agents ``first .. first+count-1``, answers every offer, reports invite times on 'stop'."""
    invited: dict[str, float] = {}
    errors: list[str] = []
    completed = [0]
    ready = [0]
    ids = itertools.count(1)
    gate = asyncio.Semaphore(50)

    async def agent(name: str) -> None:
        async with connect(url, ping_interval=None, compression=None, max_size=None, proxy=None,
                           open_timeout=60) as ws:
            async with gate:
                await ws.send(register_frame(f"r{next(ids)}", "bench"))
                await ws.recv()
                await ws.send(json.dumps({"type": "RequestAgentLogin", "request_id": f"r{next(ids)}",
                                          "agent_id": name, "password": PASSWORD}))
                ack = json.loads(await ws.recv())
                if ack["type"] != "EventAck":
                    errors.append(f"{name}: {ack}")
                    return
                epoch = ack["epoch"]
                await ws.recv()  # EventCurrentAgentStatus
                await ws.send(json.dumps({"type": "RequestAgentReady", "request_id": f"r{next(ids)}", "epoch": epoch}))
            ready[0] += 1
            last_tx = mono()
            while True:
                try:
                    # Not wait_for: on 3.11 it can swallow the cancel that ends this worker, which
                    # then never reports (the benchmark hung now and then).
                    async with asyncio.timeout(2.0):
                        frame = await ws.recv()
                except TimeoutError:
                    frame = None
                now = mono()
                if now - last_tx > 2.0:
                    last_tx = now
                    await ws.send('{"type": "Heartbeat"}')
                if frame is None or '"EventInvite"' not in frame and '"EventAck"' not in frame:
                    continue
                message = json.loads(frame)
                if message["type"] == "EventInvite":
                    iid = message["interaction"]["interaction_id"]
                    invited[iid] = now
                    last_tx = now
                    await ws.send(json.dumps({"type": "RequestAccept", "request_id": f"acc:{iid}", "epoch": epoch,
                                              "interaction_id": iid}))
                elif message["request_id"].startswith("acc:"):
                    iid = message["request_id"][4:]
                    await ws.send(json.dumps({"type": "RequestCompleteInteraction", "request_id": f"done:{iid}",
                                              "epoch": epoch, "interaction_id": iid, "disposition": "resolved"}))
                elif message["request_id"].startswith("done:"):
                    completed[0] += 1

    async def guarded(name: str) -> None:
        try:
            await agent(name)
        except Exception as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    tasks = [asyncio.create_task(guarded(agent_id(i))) for i in range(first, first + count)]
    deadline = mono() + LOGIN_DEADLINE_S
    # Polled: every agent's login task counts itself in ``ready`` or ``errors``; this waits for all.
    while ready[0] + len(errors) < count and mono() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    print(json.dumps({"ready": ready[0], "errors": errors[:5], "error_count": len(errors)}), flush=True)
    await until_stdin_line()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(json.dumps({"invited": invited, "completed": completed[0], "error_count": len(errors)}), flush=True)


async def pinger(echo_url: str) -> None:
    """Raw websockets round trips (200-byte frames, 20 a second) until 'stop'; prints the samples."""
    samples: list[float] = []
    stop = asyncio.create_task(until_stdin_line())
    async with connect(echo_url, ping_interval=None, compression=None, proxy=None) as ws:
        print("{}", flush=True)
        while not stop.done():
            t = mono()
            await ws.send("x" * 200)
            await ws.recv()
            samples.append((mono() - t) * 1000)
            await asyncio.sleep(0.05)
    print(json.dumps({"rtt_ms": samples}), flush=True)


# ---------------------------------------------------------------------------- the carrier (parent process)


class Carrier:
    """Submits interactions and follows the reporting stream to know when every one was completed."""

    def __init__(self, url: str):
        self.url = url
        self.submitted: dict[str, float] = {}
        self.completed: set[str] = set()
        self.errors: list[str] = []
        self._n = 0
        self._progress = asyncio.Event()

    async def __aenter__(self):
        self.ws = await connect(self.url, ping_interval=None, compression=None, max_size=None, proxy=None)
        await self.ws.send(register_frame("reg", "bench-carrier"))
        await self.ws.recv()
        await self.ws.send(json.dumps({"type": "RequestSubscribeReporting", "request_id": "sub",
                                       "user_id": "bench-carrier", "password": PASSWORD}))
        # Submissions wait for the subscription's answer: until then the socket has no principal and
        # a submission is refused not_authenticated (docs/protocol.md, "Authentication").
        while True:
            answer = json.loads(await self.ws.recv())
            if answer.get("request_id") == "sub":
                if answer["type"] != "EventAck":
                    raise SystemExit(f"bench: the carrier's subscription was refused: {answer}")
                break
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc):
        self.reader.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        async for data in self.ws:
            frame = data if isinstance(data, str) else data.decode("utf-8", "replace")  # the server sends text
            if '"EventError"' in frame:
                self.errors.append(frame[:200])
            elif '"EventInteraction"' in frame and '"completed"' in frame:
                message = json.loads(frame)
                if message["event"] == "completed":
                    self.completed.add(message["interaction_id"])
                    self._progress.set()

    async def _submit(self) -> str:
        """One interaction submitted now; its id (its submission time is kept for the latency)."""
        self._n += 1
        iid = f"bench-{self._n:07d}"
        frame = json.dumps({"type": "RequestSubmitInteraction", "request_id": f"s{self._n}", "interaction": {
            "interaction_id": iid, "media": "voice", "queue": "bench", "created_ms": int(time.time() * 1000),
            "customer": {"name": "Bench Customer", "account": f"{self._n:06d}"}}})
        self.submitted[iid] = mono()
        await self.ws.send(frame)
        return iid

    async def steady(self, rate: float, duration: float) -> list[str]:
        ids = []
        start = mono()
        for n in itertools.count():
            due = start + n / rate
            if due - start >= duration:
                break
            if due > mono():
                await asyncio.sleep(due - mono())
            ids.append(await self._submit())
        return ids

    async def burst(self, count: int) -> list[str]:
        return [await self._submit() for _ in range(count)]

    async def settled(self, ids: list[str], deadline_s: float) -> bool:
        """Every interaction of ``ids`` completed (so it was offered), or False at the deadline."""
        deadline = mono() + deadline_s
        while not self.completed.issuperset(ids):
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), max(0.0, deadline - mono()))
            except TimeoutError:
                return False
        return True


def phase_figures(
    ids: list[str], submitted: dict[str, float], invited: dict[str, float], window_s: float = 0.0
) -> dict:
    """Latency and throughput of one phase; ``window_s``: the nominal submission window (routing
    cannot be faster than the input, so the throughput is offers over at least that window)."""
    offered = [i for i in ids if i in invited]
    latencies = [(invited[i] - submitted[i]) * 1000 for i in offered]
    first_submit = min((submitted[i] for i in ids), default=None)
    last_submit = max((submitted[i] for i in ids), default=None)
    last_offer = max((invited[i] for i in offered), default=None)  # offered are some of ids
    routing_s = last_offer - first_submit if last_offer is not None and first_submit is not None else None
    submit_s = last_submit - first_submit if last_submit is not None and first_submit is not None else None
    return {
        "submitted": len(ids), "offered": len(offered),
        "offer_p50_ms": rounded(pct(latencies, 50), 2), "offer_p99_ms": rounded(pct(latencies, 99), 2),
        "offer_max_ms": rounded(max(latencies) if latencies else None, 2),
        "submit_s": rounded(submit_s, 3), "routing_s": rounded(routing_s, 3),
        "submit_per_s": rounded(len(ids) / submit_s, 1) if submit_s else None,
        "routed_per_s": rounded(len(offered) / max(routing_s, window_s), 1) if routing_s else None,
    }


def spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=REPO)


def tell(proc: subprocess.Popen, line: str) -> None:
    """One command line to a spawn()ed child."""
    assert proc.stdin is not None  # spawn() pipes it
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def answer(proc: subprocess.Popen, what: str) -> dict:
    assert proc.stdout is not None  # spawn() pipes it
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"a {what} process ended early (exit {proc.wait()})")
    return json.loads(line)


async def run(args) -> dict:
    children: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory() as tmp:
        agents_file, config = write_site(Path(tmp), args.agents)
        server, url = start_server(agents_file, config)
        # Started before any load exists (Popen returns at once); the loop has nothing else to do yet.
        echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)  # noqa: ASYNC220
        try:
            assert echo.stdout is not None  # stdout=PIPE above
            echo_url = f"ws://127.0.0.1:{echo.stdout.readline().strip()}"
            t0 = mono()
            workers_n = max(1, min(args.workers, args.agents))
            share, extra = divmod(args.agents, workers_n)
            first = 0
            for index in range(workers_n):
                count = share + (1 if index < extra else 0)
                children.append(spawn("--worker", url, str(first), str(count)))
                first += count
            workers = list(children)
            logins = await asyncio.gather(*(asyncio.to_thread(answer, w, "worker") for w in workers))
            ready = sum(r["ready"] for r in logins)
            login_errors = sum(r["error_count"] for r in logins)
            login_s = mono() - t0
            if ready < args.agents:
                samples = [e for r in logins for e in r["errors"]]
                raise SystemExit(
                    f"only {ready} of {args.agents} agents logged in ({login_errors} errors, e.g. {samples[:2]})"
                )
            print(
                f"{ready} agents logged in and Ready in {login_s:.1f} s over {workers_n} worker processes", flush=True
            )
            ping = spawn("--pinger", echo_url)
            children.append(ping)
            await asyncio.to_thread(answer, ping, "pinger")
            async with Carrier(url) as carrier:
                await asyncio.sleep(0.5)
                steady_ids = await carrier.steady(args.rate, args.duration)
                steady_done = await carrier.settled(steady_ids, SETTLE_DEADLINE_S)
                tell(ping, "stop")
                rtts = (await asyncio.to_thread(answer, ping, "pinger"))["rtt_ms"]
                burst_ids = await carrier.burst(args.burst) if args.burst else []
                burst_done = await carrier.settled(burst_ids, SETTLE_DEADLINE_S)
            invited: dict[str, float] = {}
            completed = 0
            for w in workers:
                tell(w, "stop")
            for report in await asyncio.gather(*(asyncio.to_thread(answer, w, "worker") for w in workers)):
                invited.update(report["invited"])
                completed += report["completed"]
        finally:
            for proc in children:
                proc.kill()
            for proc in children:
                proc.wait(10)
            server.terminate()
            echo.terminate()
            server.wait(10)
            echo.wait(10)
    steady = phase_figures(steady_ids, carrier.submitted, invited, window_s=len(steady_ids) / args.rate)
    burst = phase_figures(burst_ids, carrier.submitted, invited)
    # Submissions outran routing when the router needed clearly longer than the carrier took to send.
    burst["saturated"] = bool(burst["routing_s"] and burst["submit_s"] is not None
                              and burst["routing_s"] > 1.5 * burst["submit_s"])
    return {
        "agents": args.agents,
        "workers": workers_n,
        "rate": args.rate,
        "duration_s": args.duration,
        "offer_p50_ms": steady["offer_p50_ms"],
        "offer_p99_ms": steady["offer_p99_ms"],
        "routed_per_s": steady["routed_per_s"],
        "burst_routed_per_s": burst["routed_per_s"],
        "burst_saturated": burst["saturated"],
        "raw_rtt_p50_ms": rounded(pct(rtts, 50), 2),
        "raw_rtt_p99_ms": rounded(pct(rtts, 99), 2),
        "raw_rtt_samples": len(rtts),
        "steady": {**steady, "all_completed": steady_done},
        "burst": {**burst, "all_completed": burst_done},
        "completed": completed,
        "login_s": round(login_s, 1),
        "errors": login_errors + len(carrier.errors),
        "carrier_errors": carrier.errors[:3],
        "clock": "CLOCK_MONOTONIC in every process",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=2000, help="logged-in Ready agents (default: 2000)")
    parser.add_argument(
        "--rate", type=float, default=200.0, help="interactions per second in the steady phase (default: 200)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of steady submissions (default: 5)")
    parser.add_argument(
        "--burst",
        type=int,
        default=2000,
        help="interactions sent back to back after the steady phase, to find capacity (default: 2000; 0: none)",
    )
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2),
                        help="processes the agents' sockets are spread over (default: the number of CPUs, at least 2)")
    parser.add_argument("--worker", nargs=3, metavar=("URL", "FIRST", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--pinger", metavar="ECHO_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        url, first, count = args.worker
        asyncio.run(worker(url, int(first), int(count)))
        return
    if args.pinger:
        asyncio.run(pinger(args.pinger))
        return
    if min(args.agents, args.rate, args.duration) <= 0 or args.burst < 0 or args.workers < 1:
        parser.error("--agents, --rate, --duration and --workers must be positive, --burst zero or more")
    result = asyncio.run(run(args))
    steady, burst = result["steady"], result["burst"]
    print(f"steady {args.rate:g}/s: offer latency p50 {result['offer_p50_ms']} ms, p99 {result['offer_p99_ms']} ms; "
          f"{result['routed_per_s']} routed/s ({steady['offered']}/{steady['submitted']} offered); "
          f"raw websockets RTT p50 {result['raw_rtt_p50_ms']} ms", flush=True)
    if burst["submitted"]:
        verdict = ("submissions outran routing: this is capacity" if burst["saturated"]
                   else "routing kept up with the sender: capacity is at least this")
        print(
            f"burst of {burst['submitted']}: sent at {burst['submit_per_s']}/s, routed at {burst['routed_per_s']}/s "
            f"({burst['offered']} offered; {verdict}); "
            f"{result['errors']} errors",
            flush=True,
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
