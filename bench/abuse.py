"""Abuse benchmark: floods a real server with what a hostile or greedy client does, one attack at a
time, while a legitimate agent logs in and changes state; reports what each attack cost.

Attacks (each for ``--seconds``, each from an address of its own, 127.0.0.2 and up, so the
per-address limits apply as they would to a stranger's address and one attack's lock-out does not
carry into the next; the legitimate agent is 127.0.0.1):
- ``ping_flood``: WebSocket pings that never read their pongs;
- ``non_reading``: sockets that send bad frames and stop reading (the server must close them,
  and drop them when the close cannot complete);
- ``connection_flood``: sockets opened and held until the server refuses more;
- ``login_flood``: password logins for unknown ids, back to back on many sockets;
- ``resubscribe``: a supervisor's sockets re-subscribing (a snapshot each) and never reading.

Per attack: the server's peak resident memory above its level before the attack, the
legitimate login's p99 beside its idle p99 measured in the same run (password check included),
and the legitimate requests that failed. Goals (issue "Hardening"): growth <= 50 MiB, login p99 <=
3 x idle, 0 failures. Prints a human summary, then one JSON line (the last line).

    python bench/abuse.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

from bench.figures import pct, rounded  # noqa: E402
from tests.support.servers import single_server  # noqa: E402

# Each attack from its own address (a source the login flood locked stays so for minutes, with 2
# password checks a second).
ATTACKER = {name: f"127.0.0.{i}" for i, name in enumerate(
    ("ping_flood", "non_reading", "connection_flood", "login_flood", "resubscribe"), start=2)}
PASSWORD = "demo"
GOAL_RSS_MIB, GOAL_LOGIN_RATIO = 50.0, 3.0


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class PeakRss:
    """Samples a process's resident memory every 50 ms on a thread; ``peak`` since ``reset``."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mib(self.pid))

    def reset(self) -> float:
        self.peak = rss_mib(self.pid)
        return self.peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


async def open_ws(url: str, port: int, source: str, *, small_buffer: bool = False) -> ClientConnection:
    raw = socket.socket()
    raw.bind((source, 0))
    if small_buffer:  # so the kernel holds little of what the server sends a client that does not read
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    return await connect(url, sock=raw, ping_interval=None, compression=None, proxy=None, close_timeout=1,
                         max_size=None, open_timeout=10)


async def request(ws: ClientConnection, message: dict, timeout: float = 30.0) -> dict:
    """Send ``message`` with a request id; its answer (EventAck or EventError)."""
    rid = message.setdefault("request_id", f"r{time.monotonic_ns()}")
    await ws.send(json.dumps(message))
    async with asyncio.timeout(timeout):
        while True:
            answer = json.loads(await ws.recv())
            if answer.get("request_id") == rid and answer["type"] in ("EventAck", "EventError"):
                return answer


async def register(ws: ClientConnection) -> None:
    await request(ws, {"type": "RequestRegisterClient", "protocol_version": 1, "client_name": "abuse-bench"})


class Legit:
    """The legitimate agent: log in (password), Not Ready, Ready, log out, again, until stopped."""

    def __init__(self, url: str, port: int):
        self.url, self.port = url, port
        self.logins: list[float] = []
        self.failures: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                ws = await open_ws(self.url, self.port, "127.0.0.1")
                try:
                    await register(ws)
                    t0 = time.perf_counter()
                    ack = await request(ws, {"type": "RequestAgentLogin", "agent_id": "1001", "password": PASSWORD})
                    if ack["type"] != "EventAck":
                        raise RuntimeError(f"login refused: {ack}")
                    self.logins.append((time.perf_counter() - t0) * 1000)
                    for kind, extra in (("RequestAgentNotReady", {"reason": "break"}), ("RequestAgentReady", {}),
                                        ("RequestAgentLogout", {})):
                        answer = await request(ws, {"type": kind, "epoch": ack["epoch"], **extra})
                        if answer["type"] != "EventAck":
                            raise RuntimeError(f"{kind} refused: {answer}")
                finally:
                    await ws.close()
            except (OSError, ConnectionClosed, InvalidStatus, RuntimeError, TimeoutError) as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}"[:200])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await stop.wait()


# --------------------------------------------------------------------------- the attacks


async def ping_flood(url: str, port: int, stop: asyncio.Event) -> dict:
    sockets = [await open_ws(url, port, ATTACKER["ping_flood"], small_buffer=True) for _ in range(6)]
    for ws in sockets:
        await register(ws)
        ws.transport.pause_reading()
    sent = 0
    while not stop.is_set():
        for ws in sockets:
            with contextlib.suppress(ConnectionClosed, TimeoutError, RuntimeError):
                async with asyncio.timeout(0.05):
                    await ws.ping(sent.to_bytes(8, "big") + b"p" * 117)
                sent += 1
        await asyncio.sleep(0)
    return {"pings_sent": sent, "sockets": len(sockets), "_close": sockets}


async def non_reading(url: str, port: int, stop: asyncio.Event) -> dict:
    """Registered sockets that go quiet and stop reading: the server closes them (heartbeat timeout),
    and since they never answer the close, must drop them; still open at the end is a leak."""
    sockets = []
    for _ in range(30):
        ws = await open_ws(url, port, ATTACKER["non_reading"], small_buffer=True)
        await register(ws)
        ws.transport.pause_reading()
        sockets.append(ws)
    await stop.wait()
    for ws in sockets:
        ws.transport.resume_reading()

    async def closed(ws: ClientConnection) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3.0):
                await ws.wait_closed()
        return ws.close_code is not None or ws.transport.is_closing()

    still_open = sum(not gone for gone in await asyncio.gather(*(closed(ws) for ws in sockets)))
    return {"sockets": len(sockets), "still_open_at_end": still_open, "_close": sockets}


async def connection_flood(url: str, port: int, stop: asyncio.Event, limit: int) -> dict:
    sockets: list[ClientConnection] = []
    refused = 0
    while not stop.is_set() and len(sockets) < limit and refused < 20:
        try:
            ws = await open_ws(url, port, ATTACKER["connection_flood"])
            await register(ws)
            sockets.append(ws)
        except (InvalidStatus, OSError, TimeoutError):
            refused += 1
    await stop.wait()
    return {"held": len(sockets), "refused": refused, "_close": sockets}


async def login_flood(url: str, port: int, stop: asyncio.Event) -> dict:
    tried, refusals = 0, dict[str, int]()

    async def one(k: int) -> None:
        nonlocal tried
        ws = await open_ws(url, port, ATTACKER["login_flood"])
        try:
            await register(ws)
            n = 0
            while not stop.is_set():
                answer = await request(ws, {"type": "RequestAgentLogin", "agent_id": f"nobody-{k}-{n}",
                                            "password": "guess"})
                tried += 1
                n += 1
                code = str(answer.get("code", answer["type"]))
                refusals[code] = refusals.get(code, 0) + 1
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            await ws.close()

    await asyncio.gather(*(one(k) for k in range(50)))
    return {"sockets": 50, "attempts": tried, "refusals": refusals}


async def resubscribe(url: str, port: int, stop: asyncio.Event) -> dict:
    sockets, sent = [], 0
    for _ in range(3):
        ws = await open_ws(url, port, ATTACKER["resubscribe"], small_buffer=True)
        await register(ws)
        ack = await request(ws, {"type": "RequestSubscribeReporting", "user_id": "sup1", "password": PASSWORD})
        assert ack["type"] == "EventAck", ack
        ws.transport.pause_reading()
        sockets.append(ws)
    while not stop.is_set():
        for ws in sockets:
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                async with asyncio.timeout(0.05):
                    await ws.send(json.dumps({"type": "RequestSubscribeReporting", "request_id": f"s{sent}",
                                              "user_id": "sup1", "password": PASSWORD}))
                    sent += 1
        await asyncio.sleep(0.01)
    return {"sockets": len(sockets), "subscriptions_sent": sent, "_close": sockets}


async def measure(name: str, attack: Callable[[asyncio.Event], Coroutine[Any, Any, dict]], seconds: float, url: str,
                  port: int, rss: PeakRss, idle_p99: float | None) -> dict:
    before = rss.reset()
    legit = Legit(url, port)
    stop = asyncio.Event()
    legit_task = asyncio.create_task(legit.run(stop))
    attack_task = asyncio.create_task(attack(stop))
    await asyncio.sleep(seconds)
    stop.set()
    details = await attack_task
    await legit_task
    for ws in details.pop("_close", []):
        ws.transport.abort()
    growth = max(0.0, rss.peak - before)
    p99 = pct(legit.logins, 99)
    ratio = p99 / idle_p99 if p99 is not None and idle_p99 else None
    ok = growth <= GOAL_RSS_MIB and ratio is not None and ratio <= GOAL_LOGIN_RATIO and not legit.failures
    print(f"{name:17s} rss +{growth:6.1f} MiB  legit login p99 {p99 or 0:7.1f} ms ({ratio or 0:4.2f} x idle), "
          f"{len(legit.logins)} logins, {len(legit.failures)} failed  {'OK' if ok else 'MISSED'}  {details}")
    return {"rss_growth_mib": rounded(growth, 1), "login_p99_ms": rounded(p99, 1), "login_p99_ratio": rounded(ratio, 2),
            "legit_logins": len(legit.logins), "legit_failures": len(legit.failures),
            "failures_sample": legit.failures[:3], "ok": ok, **details}


async def run(seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "site.toml"
        config.write_text("[server]\nmax_connections = 600\n", encoding="utf-8")
        server = single_server(extra_args=["--config", str(config), "--log-level", "WARNING"]).start()
        assert server.proc is not None
        rss = PeakRss(server.proc.pid)
        try:
            idle = Legit(server.url, server.port)
            stop = asyncio.Event()
            task = asyncio.create_task(idle.run(stop))
            await asyncio.sleep(max(1.0, seconds / 2))
            stop.set()
            await task
            idle_p50, idle_p99 = pct(idle.logins, 50), pct(idle.logins, 99)
            print(f"idle              legit login p50 {idle_p50 or 0:.1f} ms, p99 {idle_p99 or 0:.1f} ms "
                  f"({len(idle.logins)} logins), server RSS {rss.reset():.1f} MiB")
            url, port = server.url, server.port
            attacks: dict[str, Callable[[asyncio.Event], Coroutine[Any, Any, dict]]] = {
                "ping_flood": lambda stop: ping_flood(url, port, stop),
                "non_reading": lambda stop: non_reading(url, port, stop),
                "connection_flood": lambda stop: connection_flood(url, port, stop, limit=2000),
                "login_flood": lambda stop: login_flood(url, port, stop),
                "resubscribe": lambda stop: resubscribe(url, port, stop),
            }
            results = {}
            for name, attack in attacks.items():
                results[name] = await measure(name, attack, seconds, url, port, rss, idle_p99)
                await asyncio.sleep(min(1.0, seconds))  # let the server settle (closes, throttles) before the next
            alive = server.alive()
        finally:
            rss.stop()
            server.stop()
    return {"seconds_per_attack": seconds, "idle_login_p50_ms": rounded(idle_p50, 1),
            "idle_login_p99_ms": rounded(idle_p99, 1), "attacks": results, "server_survived": alive,
            "all_ok": alive and all(r["ok"] for r in results.values()), "cpus": os.cpu_count()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="how long each attack lasts (default: 8)")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    result = asyncio.run(run(args.seconds))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
