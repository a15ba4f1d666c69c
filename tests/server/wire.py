"""A deliberately plain WebSocket client for the server tests: websockets + json, nothing from the
product. It speaks the wire protocol by hand (docs/protocol.md) so the tests check what a
third-party client would see, not what our own client code believes.

Every receive has a deadline; nothing here sleeps to wait for an event.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl as ssl_module
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

DEFAULT_TIMEOUT = 3.0
PASSWORD = "demo"  # every demo agent's password (resources/demo_agents.toml)
SUPERVISOR = "sup1"

_ids = itertools.count(1)
_open_clients: list[WireClient] = []  # closed by run() at the end of each scenario


def new_request_id(prefix: str = "r") -> str:
    return f"{prefix}-{next(_ids)}"


class Closed(AssertionError):
    """The socket closed while a message was expected; ``code`` is the server's close code."""

    def __init__(self, code: int | None, reason: str):
        super().__init__(f"socket closed by the server: code {code} {reason!r}")
        self.code = code
        self.reason = reason


class WireClient:
    """One socket. ``heartbeat`` (seconds) sends `Heartbeat` while the test sends nothing else;
    ``None`` makes the client silent (for heartbeat-timeout tests)."""

    def __init__(self, ws: ClientConnection, heartbeat: float | None):
        self.ws = ws
        self.heartbeat = heartbeat
        self.received: list[str] = []  # every non-heartbeat text frame, raw, in arrival order
        self.heartbeats = 0
        self._hb_task: asyncio.Task | None = None
        self._last_tx = asyncio.get_running_loop().time()
        _open_clients.append(self)
        if heartbeat:
            self._hb_task = asyncio.create_task(self._beat(heartbeat))

    @classmethod
    async def open(cls, url: str, *, heartbeat: float | None = 0.2, ssl: ssl_module.SSLContext | None = None,
                   open_timeout: float = DEFAULT_TIMEOUT, max_size: int | None = None) -> WireClient:
        kwargs: dict[str, Any] = {"ssl": ssl} if ssl is not None else {}
        ws = await connect(url, open_timeout=open_timeout, ping_interval=None, compression=None,
                           max_size=max_size, proxy=None, close_timeout=1, **kwargs)
        return cls(ws, heartbeat)

    async def _beat(self, every: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                await asyncio.sleep(every / 2)
                if loop.time() - self._last_tx >= every:
                    await self.send({"type": "Heartbeat"})
        except (ConnectionClosed, asyncio.CancelledError):
            pass

    def stop_heartbeats(self) -> None:
        if self._hb_task is not None:
            self._hb_task.cancel()
            self._hb_task = None

    # ------------------------------------------------------------------ sending

    async def send(self, message: dict) -> None:
        await self.send_raw(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        self._last_tx = asyncio.get_running_loop().time()
        await self.ws.send(data)

    async def send_expecting_close(self, data: str | bytes) -> int | None:
        """Send a frame the server must answer by closing the socket (nothing else); the close code."""
        try:
            await self.send_raw(data)
        except ConnectionClosed:
            pass  # closed while still sending: the close code says why
        code, _ = await self.expect_close(allow_messages=False)
        return code

    async def request(self, message: dict, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """Send a request (a request_id is added if missing) and return the next message,
        which must be its answer (EventAck or EventError echoing the request_id)."""
        message = dict(message)
        message.setdefault("request_id", new_request_id())
        await self.send(message)
        answer = await self.recv(timeout)
        assert answer["type"] in ("EventAck", "EventError"), f"expected the answer to {message['type']}, got {answer}"
        assert answer.get("request_id") == message["request_id"], f"answer for another request: {answer}"
        return answer

    # ------------------------------------------------------------------ receiving

    async def recv_raw(self, timeout: float = DEFAULT_TIMEOUT) -> str:
        """The next non-Heartbeat frame as sent by the server (text)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no message within {timeout} s")
            try:
                frame = await asyncio.wait_for(self.ws.recv(), left)
            except TimeoutError:
                raise AssertionError(f"no message within {timeout} s") from None
            except ConnectionClosed as exc:
                raise Closed(exc.rcvd.code if exc.rcvd else None, exc.rcvd.reason if exc.rcvd else "") from None
            assert isinstance(frame, str), f"server sent a binary frame: {frame!r}"
            if json.loads(frame).get("type") == "Heartbeat":
                self.heartbeats += 1
                continue
            self.received.append(frame)
            return frame

    async def recv(self, timeout: float = DEFAULT_TIMEOUT) -> dict:
        message = json.loads(await self.recv_raw(timeout))
        assert isinstance(message, dict) and isinstance(message.get("type"), str), message
        return message

    async def expect(self, type_: str, timeout: float = DEFAULT_TIMEOUT, **fields) -> dict:
        """The next message must be ``type_`` with these field values."""
        message = await self.recv(timeout)
        assert message["type"] == type_, f"expected {type_} {fields or ''}, got {message}"
        for key, value in fields.items():
            assert message.get(key) == value, (
                f"{type_}.{key}: expected {value!r}, got {message.get(key)!r} in {message}"
            )
        return message

    async def expect_error(self, code: str, request_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict:
        message = await self.expect("EventError", timeout, code=code)
        assert isinstance(message.get("message"), str) and message["message"], message
        if request_id is not None:
            assert message.get("request_id") == request_id, message
        return message

    async def wait_heartbeat(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait for a Heartbeat from the server (any other message fails the test)."""
        try:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            raise AssertionError(f"no Heartbeat within {timeout} s") from None
        assert json.loads(frame) == {"type": "Heartbeat"}, f"expected a Heartbeat, got {frame!r}"
        self.heartbeats += 1

    async def expect_close(
        self, timeout: float = DEFAULT_TIMEOUT, allow_messages: bool = True
    ) -> tuple[int | None, list[dict]]:
        """Wait for the server to close; returns (close code, messages received meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen: list[dict] = []
        while True:
            try:
                message = await self.recv(max(0.001, deadline - loop.time()))
            except Closed as closed:
                return closed.code, seen
            except AssertionError:
                raise AssertionError(f"socket still open after {timeout} s; got {seen}") from None
            assert allow_messages, f"expected a close, got {message}"
            seen.append(message)

    async def expect_quiet(self, window: float = 0.3) -> None:
        """Nothing but heartbeats arrives within ``window``. Prefer a positive marker (make a later,
        known event happen and expect it next); this is for when no marker is possible."""
        try:
            message = await self.recv(window)
        except Closed:
            raise
        except AssertionError:
            return
        raise AssertionError(f"expected nothing within {window} s, got {message}")

    async def assert_open(self) -> None:
        assert self.ws.close_code is None, f"socket closed with {self.ws.close_code}"

    async def close(self) -> None:
        self.stop_heartbeats()
        await self.ws.close()
        if self in _open_clients:
            _open_clients.remove(self)

    def abort(self) -> None:
        """Drop the TCP connection at once (no close handshake) and forget the client."""
        self.stop_heartbeats()
        self.ws.transport.abort()
        if self in _open_clients:
            _open_clients.remove(self)


# ---------------------------------------------------------------------- protocol steps


async def register(client: WireClient, name: str = "wire-test", **extra) -> dict:
    ack = await client.request({"type": "RequestRegisterClient", "protocol_version": 1, "client_name": name, **extra})
    assert ack["type"] == "EventAck", ack
    return ack


async def connect_registered(url: str, name: str = "wire-test", **kwargs) -> WireClient:
    client = await WireClient.open(url, **kwargs)
    await register(client, name)
    return client


async def login(client: WireClient, agent_id: str, *, password: str | None = PASSWORD, token: str | None = None,
                epoch: int | None = None, state: dict | None = None, place: str | None = None) -> tuple[dict, dict]:
    """RequestAgentLogin that must succeed: returns (EventAck, EventCurrentAgentStatus)."""
    message: dict[str, Any] = {"type": "RequestAgentLogin", "agent_id": agent_id}
    if token is not None:
        message["resume_token"] = token
    else:
        message["password"] = password
    for key, value in (("epoch", epoch), ("state", state), ("place", place)):
        if value is not None:
            message[key] = value
    ack = await client.request(message)
    assert ack["type"] == "EventAck", f"login of {agent_id} refused: {ack}"
    assert ack["role"] == "primary" and isinstance(ack["epoch"], int) and ack["resume_token"], ack
    status = await client.expect("EventCurrentAgentStatus", agent_id=agent_id, epoch=ack["epoch"])
    return ack, status


async def login_agent(url: str, agent_id: str, *, ssl: ssl_module.SSLContext | None = None,
                      **kwargs) -> tuple[WireClient, dict, dict]:
    client = await connect_registered(url, f"desktop-{agent_id}", ssl=ssl)
    ack, status = await login(client, agent_id, **kwargs)
    return client, ack, status


async def available(client: WireClient, agent_id: str, *, password: str | None = PASSWORD,
                    token: str | None = None) -> dict:
    message: dict[str, Any] = {"type": "RequestAgentAvailable", "agent_id": agent_id}
    if token is not None:
        message["resume_token"] = token
    else:
        message["password"] = password
    return await client.request(message)


async def subscribe(url: str, *, user: str = SUPERVISOR, resume: dict | None = None,
                    **kwargs) -> tuple[WireClient, dict, Any]:
    """A supervisor's reporting socket: (client, EventAck, EventReportingSnapshot or None on replay)."""
    client = await connect_registered(url, "supervisor-view", **kwargs)
    message: dict[str, Any] = {"type": "RequestSubscribeReporting", "user_id": user, "password": PASSWORD}
    if resume is not None:
        message["resume"] = resume
    ack = await client.request(message)
    assert ack["type"] == "EventAck" and ack["stream_id"], ack
    if resume is not None:
        return client, ack, None
    snapshot = await client.expect("EventReportingSnapshot", stream_id=ack["stream_id"])
    return client, ack, snapshot


async def state_request(client: WireClient, type_: str, epoch: int, **fields) -> dict:
    return await client.request({"type": type_, "epoch": epoch, **fields})


async def ready(client: WireClient, epoch: int) -> dict:
    """RequestAgentReady that must succeed (answer and the status after it)."""
    ack = await state_request(client, "RequestAgentReady", epoch)
    assert ack["type"] == "EventAck" and ack["epoch"] == epoch, ack
    status = await client.expect("EventCurrentAgentStatus", state="ready", epoch=epoch)
    return status


async def still_works(client: WireClient, epoch: int, agent_id: str | None = None) -> None:
    """A well-behaved logged-in client is unaffected: a state change acks with its epoch."""
    ack = await state_request(client, "RequestAgentNotReady", epoch, reason="break")
    assert ack["type"] == "EventAck" and ack["epoch"] == epoch, ack
    await client.expect("EventCurrentAgentStatus", state="not_ready", reason="break", epoch=epoch)
    await ready(client, epoch)


def run(coro, timeout: float = 60.0):
    """Run one async scenario from a synchronous test, with an overall deadline."""

    async def bounded():
        try:
            return await asyncio.wait_for(coro, timeout)
        finally:
            clients, _open_clients[:] = list(_open_clients), []
            for client in clients:
                client.stop_heartbeats()
                client.ws.transport.abort()  # no lingering sockets between tests

    return asyncio.run(bounded())
