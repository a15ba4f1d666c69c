"""Interaction steps for the server tests, spoken by hand over plain websockets (see wire.py)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from tests.server.wire import DEFAULT_TIMEOUT, WireClient, connect_registered, login, subscribe

_ids = itertools.count(1)

SITE_CONFIG = """
[server]
max_offer_timeouts = {max_timeouts}
orphan_timeout_ms = {orphan_ms}

[[queue]]
name = "sales"
accept_timeout = {accept_timeout}
{acw}
{abandon}
service_level_target = 20
members = {{ "1001" = 0, "1003" = 0, "1007" = 1 }}

[[queue]]
name = "support"
accept_timeout = {accept_timeout}
members = {{ "1002" = 0 }}

[[disposition]]
code = "resolved"
label = "Resolved"
"""


def site_config(tmp_path: Path, *, accept_timeout: float = 30, acw: float | None = None,
                abandon: float | None = None, max_timeouts: int = 3, orphan_ms: int = 300_000) -> list[str]:
    """Command-line arguments for a server with small, known queues (sales: 1001 and 1003 at
    penalty 0, 1007 at 1; support: 1002), on top of the directory's own memberships."""
    path = tmp_path / f"site-{next(_ids)}.toml"
    path.write_text(SITE_CONFIG.format(
        accept_timeout=accept_timeout, max_timeouts=max_timeouts, orphan_ms=orphan_ms,
        acw=f"after_call_work = {acw}" if acw else "", abandon=f"abandon_after = {abandon}" if abandon else "",
    ), encoding="utf-8")
    return ["--config", str(path)]


def new_interaction(queue: str = "sales", media: str = "voice", iid: str | None = None, **extra) -> dict:
    return {"interaction_id": iid or f"call-{next(_ids)}-{time.monotonic_ns() % 10**9}", "media": media,
            "queue": queue, "created_ms": int(time.time() * 1000), "customer": {"name": "Dana Ortiz"}, **extra}


async def carrier(url: str) -> WireClient:
    client, _, _ = await subscribe(url, user="carrier1")
    return client


async def submit(client: WireClient, interaction: dict) -> dict:
    """RequestSubmitInteraction; returns its answer (EventAck or EventError), skipping reporting."""
    request_id = f"submit-{next(_ids)}"
    await client.send({"type": "RequestSubmitInteraction", "request_id": request_id, "interaction": interaction})
    return await answer(client, request_id)


async def answer(client: WireClient, request_id: str, timeout: float = DEFAULT_TIMEOUT) -> dict:
    return await until(client, lambda m: m["type"] in ("EventAck", "EventError") and m.get("request_id") == request_id,
                       timeout, f"the answer to {request_id}")


async def until(client: WireClient, predicate, timeout: float = DEFAULT_TIMEOUT, what: str = "a message") -> dict:
    """The first message matching ``predicate``; others are skipped (interleaved reporting)."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    skipped: list[dict] = []
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"no {what} within {timeout} s; skipped {skipped[-8:]}")
        try:
            message = await client.recv(left)
        except AssertionError:
            raise AssertionError(f"no {what} within {timeout} s; skipped {skipped[-8:]}") from None
        if predicate(message):
            return message
        skipped.append(message)


async def event(client: WireClient, kind: str, iid: str, timeout: float = DEFAULT_TIMEOUT, **fields) -> dict:
    """The reporting EventInteraction ``kind`` for ``iid``."""
    message = await until(client, lambda m: m["type"] == "EventInteraction" and m["event"] == kind
                          and m["interaction_id"] == iid, timeout, f"EventInteraction {kind} {iid}")
    for key, value in fields.items():
        assert message.get(key) == value, f"{kind}.{key}: expected {value!r} in {message}"
    return message


async def invite(desk: WireClient, timeout: float = DEFAULT_TIMEOUT) -> dict:
    return await until(desk, lambda m: m["type"] == "EventInvite", timeout, "EventInvite")


async def agent(url: str, agent_id: str, *, ready: bool = True, **login_args) -> tuple[WireClient, int]:
    """A logged-in desktop (Ready by default): (client, epoch)."""
    desk = await connect_registered(url, f"desktop-{agent_id}")
    ack, _ = await login(desk, agent_id, **login_args)
    epoch = ack["epoch"]
    if ready:
        await desk.send({"type": "RequestAgentReady", "request_id": f"ready-{next(_ids)}", "epoch": epoch})
        await until(desk, lambda m: m["type"] == "EventCurrentAgentStatus" and m["state"] == "ready", what="Ready")
    return desk, epoch


async def agent_request(desk: WireClient, type_: str, epoch: int, **fields) -> dict:
    request_id = f"{type_}-{next(_ids)}"
    await desk.send({"type": type_, "request_id": request_id, "epoch": epoch, **fields})
    return await answer(desk, request_id)


def count_events(client: WireClient, kind: str, iid: str) -> int:
    """How many EventInteraction ``kind`` for ``iid`` this socket has received so far."""
    n = 0
    for frame in client.received:
        m = json.loads(frame)
        if m.get("type") == "EventInteraction" and m["event"] == kind and m["interaction_id"] == iid:
            n += 1
    return n
