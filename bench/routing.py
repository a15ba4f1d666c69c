"""Routing benchmark: offer latency and routed interactions per second on a real server.

One ``interaction-server`` process (no peer) with N agents logged in and Ready in one queue; a
carrier submits interactions at a fixed rate; every agent accepts an offer at once and completes it
at once, so it is Ready again. Offer latency is the time from sending ``RequestSubmitInteraction``
to receiving ``EventInvite`` at the agent, both stamped by this process's clock. Beside it, in the
same run and under the same load, a plain websockets echo round trip (a separate echo process) is
measured, to tell the server's cost from the machine's.

The clients are plain websockets connections speaking the wire protocol (no desktop code).
Prints a human summary, then one JSON line (the last line).

    python bench/routing.py                                          # quick smoke run
    python bench/routing.py --agents 2000 --rate 200 --duration 20   # the reference figure
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from websockets.asyncio.client import connect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_site(tmp: Path, n_agents: int) -> tuple[Path, Path]:
    """A directory of N agents (cheap scrypt: this measures routing, not hashing) and a site config."""
    cheap = hash_password(PASSWORD, n=16, r=1, p=1)
    directory = Directory()
    for i in range(n_agents):
        # One agent in ten in the backup tier: the router walks two penalty tiers.
        penalty = 1 if i % 10 == 9 else 0
        directory.add(AgentRecord(id=f"b{i:05d}", name=f"Bench {i}", password_hash=cheap, queues=("bench",),
                                  penalties=(("bench", penalty),) if penalty else ()))
    directory.add(AgentRecord(id="bench-carrier", name="Bench carrier", password_hash=cheap, role="carrier"))
    agents = tmp / "agents.toml"
    directory.save(agents)
    config = tmp / "site.toml"
    config.write_text("""
[server]
rate_per_s = 5000.0
rate_burst = 10000
heartbeat_interval_ms = 1000
heartbeat_timeout_ms = 10000

[[queue]]
name = "bench"
accept_timeout = 30
""", encoding="utf-8")
    return agents, config


def start_server(agents: Path, config: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "INTERACTION_SERVER_SECRET": "bench-secret-0123456789", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "server_stub", "--name", "A", "--port", str(port), "--agents", str(agents),
                             "--config", str(config), "--log-level", "WARNING"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def pump():
        for line in proc.stdout:
            if line.startswith("listening "):
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    if not ready.wait(15):
        proc.kill()
        raise SystemExit("the server did not start")
    return proc, f"ws://127.0.0.1:{port}"


class Bench:
    def __init__(self, url: str):
        self.url = url
        self.submitted: dict[str, float] = {}
        self.invited: dict[str, float] = {}
        self.completed = 0
        self.errors: list[str] = []
        self._ids = itertools.count(1)

    def rid(self) -> str:
        return f"r{next(self._ids)}"

    async def agent(self, agent_id: str, logged_in: asyncio.Semaphore, ready: list) -> None:
        async with connect(self.url, ping_interval=None, compression=None, max_size=None, proxy=None, open_timeout=30) as ws:
            async with logged_in:
                await ws.send(json.dumps({"type": "RequestRegisterClient", "request_id": self.rid(), "protocol_version": 1,
                                          "client_name": "bench", "heartbeat_interval_ms": 5000}))
                await ws.recv()
                await ws.send(json.dumps({"type": "RequestAgentLogin", "request_id": self.rid(), "agent_id": agent_id,
                                          "password": PASSWORD}))
                ack = json.loads(await ws.recv())
                if ack["type"] != "EventAck":
                    self.errors.append(f"{agent_id}: {ack}")
                    return
                epoch = ack["epoch"]
                await ws.recv()  # EventCurrentAgentStatus
                await ws.send(json.dumps({"type": "RequestAgentReady", "request_id": self.rid(), "epoch": epoch}))
            ready.append(agent_id)
            last_tx = time.monotonic()
            while True:
                try:
                    frame = await asyncio.wait_for(ws.recv(), 2.0)
                except TimeoutError:
                    frame = None
                now = time.perf_counter()
                if time.monotonic() - last_tx > 2.0:
                    last_tx = time.monotonic()
                    await ws.send('{"type": "Heartbeat"}')
                if frame is None or '"EventInvite"' not in frame and '"EventAck"' not in frame:
                    continue
                message = json.loads(frame)
                if message["type"] == "EventInvite":
                    iid = message["interaction"]["interaction_id"]
                    self.invited[iid] = now
                    last_tx = time.monotonic()
                    await ws.send(json.dumps({"type": "RequestAccept", "request_id": f"acc:{iid}", "epoch": epoch,
                                              "interaction_id": iid}))
                elif message["request_id"].startswith("acc:"):
                    iid = message["request_id"][4:]
                    await ws.send(json.dumps({"type": "RequestCompleteInteraction", "request_id": f"done:{iid}",
                                              "epoch": epoch, "interaction_id": iid, "disposition": "resolved"}))
                elif message["request_id"].startswith("done:"):
                    self.completed += 1

    async def carrier(self, rate: float, duration: float, go: asyncio.Event) -> None:
        async with connect(self.url, ping_interval=None, compression=None, max_size=None, proxy=None) as ws:
            await ws.send(json.dumps({"type": "RequestRegisterClient", "request_id": self.rid(), "protocol_version": 1,
                                      "client_name": "bench-carrier", "heartbeat_interval_ms": 5000}))
            await ws.recv()
            await ws.send(json.dumps({"type": "RequestSubscribeReporting", "request_id": "sub", "user_id": "bench-carrier",
                                      "password": PASSWORD}))

            async def drain():  # the reporting stream (every event of the run) and the answers
                async for frame in ws:
                    if '"EventError"' in frame:
                        self.errors.append(frame[:200])

            reader = asyncio.create_task(drain())
            await go.wait()
            start = time.perf_counter()
            n = 0
            while True:
                due = start + n / rate
                now = time.perf_counter()
                if due - start >= duration:
                    break
                if due > now:
                    await asyncio.sleep(due - now)
                n += 1
                iid = f"bench-{n:07d}"
                frame = json.dumps({"type": "RequestSubmitInteraction", "request_id": f"s{n}", "interaction": {
                    "interaction_id": iid, "media": "voice", "queue": "bench", "created_ms": int(time.time() * 1000),
                    "customer": {"name": "Bench Customer", "account": f"{n:06d}"}}})
                self.submitted[iid] = time.perf_counter()
                await ws.send(frame)
            self.window = time.perf_counter() - start
            await asyncio.sleep(1.0)  # let the tail be offered
            reader.cancel()


async def raw_rtt(url: str, stop: asyncio.Event, samples: list[float]) -> None:
    async with connect(url, ping_interval=None, compression=None, proxy=None) as ws:
        while not stop.is_set():
            t = time.perf_counter()
            await ws.send("x" * 200)
            await ws.recv()
            samples.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)


async def run(args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        agents_file, config = write_site(Path(tmp), args.agents)
        server, url = start_server(agents_file, config)
        echo = subprocess.Popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
        try:
            echo_url = f"ws://127.0.0.1:{echo.stdout.readline().strip()}"
            bench = Bench(url)
            ready: list[str] = []
            gate = asyncio.Semaphore(50)
            t0 = time.monotonic()
            agent_tasks = [asyncio.create_task(bench.agent(f"b{i:05d}", gate, ready)) for i in range(args.agents)]
            while len(ready) + len(bench.errors) < args.agents:
                if time.monotonic() - t0 > 120:
                    raise SystemExit(f"only {len(ready)} of {args.agents} agents logged in after 120 s")
                await asyncio.sleep(0.1)
            login_s = time.monotonic() - t0
            print(f"{len(ready)} agents logged in and Ready in {login_s:.1f} s", flush=True)
            await asyncio.sleep(0.5)
            go, stop = asyncio.Event(), asyncio.Event()
            rtts: list[float] = []
            pinger = asyncio.create_task(raw_rtt(echo_url, stop, rtts))
            submitter = asyncio.create_task(bench.carrier(args.rate, args.duration, go))
            await asyncio.sleep(0.3)
            go.set()
            await submitter
            stop.set()
            await pinger
            for task in agent_tasks:
                task.cancel()
            await asyncio.gather(*agent_tasks, return_exceptions=True)
        finally:
            server.terminate()
            echo.terminate()
            server.wait(10)
            echo.wait(10)
    latencies = [(bench.invited[i] - t) * 1000 for i, t in bench.submitted.items() if i in bench.invited]
    return {
        "agents": args.agents, "rate": args.rate, "duration_s": args.duration,
        "submitted": len(bench.submitted), "offered": len(latencies), "completed": bench.completed,
        "offer_p50_ms": round(pct(latencies, 50), 2), "offer_p99_ms": round(pct(latencies, 99), 2),
        "offer_max_ms": round(max(latencies), 2) if latencies else None,
        "routed_per_s": round(len(latencies) / bench.window, 1),
        "raw_rtt_p50_ms": round(pct(rtts, 50), 2), "raw_rtt_p99_ms": round(pct(rtts, 99), 2),
        "raw_rtt_samples": len(rtts), "login_s": round(login_s, 1), "errors": len(bench.errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200, help="logged-in Ready agents (default: 200; the reference figure uses 2000)")
    parser.add_argument("--rate", type=float, default=50.0, help="interactions submitted per second (default: 50; reference: 200)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of submissions (default: 3)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(f"offer latency p50 {result['offer_p50_ms']} ms, p99 {result['offer_p99_ms']} ms; "
          f"{result['routed_per_s']} routed/s; raw websockets RTT p50 {result['raw_rtt_p50_ms']} ms "
          f"({result['offered']}/{result['submitted']} offered, {result['errors']} errors)", flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
