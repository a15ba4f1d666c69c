"""A hand-driven test bench for AgentSession: a fake clock, the timers the session armed, and the
test playing both servers message by message.

Every message the session sends is round-tripped through the wire codec the server uses
(``decode_client``), and every answer the test gives goes in as a JSON frame, so the session is
exercised on exactly what a real server would see and send.
"""

from __future__ import annotations

import random
from typing import Any, TypeVar, overload

from desktop.core import events as ev
from desktop.core.config import SessionConfig
from desktop.core.session import AgentSession
from server_stub import protocol as p

M = TypeVar("M", bound=p.Message)
E = TypeVar("E", bound=ev.Event)

WALL0 = 1_700_000_000_000
PASSWORD = "correct horse battery staple"
TOKEN1 = "tok-epoch-1"
# The test plays the servers; a silent primary is lost at once, without asking the standby first
# (the witness has tests of its own: tests/core/test_witness.py, tests/world/test_witness.py).
CONFIG = SessionConfig(endpoints=(p.Site("A", "ws://a.test"), p.Site("B", "ws://b.test")), client_name="desk-7",
                       witness_rounds=0)


class Bench:
    def __init__(self, config: SessionConfig = CONFIG, seed: int = 7):
        self.session = AgentSession(config, random.Random(seed))
        self.now = 0.0
        self.timers: dict[object, float] = {}
        self.link: dict[str, int] = {}  # endpoint -> its current link (latest OpenLink)
        self.sent: list[tuple[int, p.Message]] = []
        self.events: list[ev.Event] = []
        self.closed: list[ev.CloseLink] = []
        self.opened: list[ev.OpenLink] = []
        self.outputs: list[ev.Output] = []  # everything, in order

    # ------------------------------------------------------------------ driving

    @property
    def wall(self) -> int:
        return WALL0 + round(self.now * 1000)

    def feed(self, method, *args, **kwargs) -> list[ev.Output]:
        outputs = method(*args, now=self.now, wall_ms=self.wall, **kwargs)
        for out in outputs:
            self.outputs.append(out)
            if isinstance(out, ev.SetTimer):
                self.timers[out.key] = out.at
            elif isinstance(out, ev.CancelTimer):
                self.timers.pop(out.key, None)
            elif isinstance(out, ev.OpenLink):
                self.link[out.endpoint] = out.link
                self.opened.append(out)
            elif isinstance(out, ev.Send):
                self.sent.append((out.link, p.decode_client(p.encode(out.message))))
            elif isinstance(out, ev.CloseLink):
                self.closed.append(out)
            else:
                assert isinstance(out, ev.Event), out
                self.events.append(out)
        return outputs

    def advance(self, seconds: float) -> None:
        """Move the clock, firing due timers in time order (as an event loop would)."""
        end = self.now + seconds
        while self.timers:
            key, at = min(self.timers.items(), key=lambda kv: kv[1])
            if at > end:
                break
            del self.timers[key]
            self.now = max(self.now, at)
            self.feed(self.session.timer_fired, key)
        self.now = end

    # ------------------------------------------------------------------ the test's view

    @overload
    def take_sent(self, endpoint: str | None = None, kind: None = None) -> list[p.Message]: ...
    @overload
    def take_sent(self, endpoint: str | None, kind: type[M]) -> list[M]: ...
    @overload
    def take_sent(self, endpoint: str | None = None, *, kind: type[M]) -> list[M]: ...

    def take_sent(self, endpoint: str | None = None, kind: type[p.Message] | None = None) -> list[Any]:
        """Messages sent since the last call (on one endpoint's current link, of one type), removed."""
        link = self.link.get(endpoint) if endpoint else None
        taken = [
            (on, m) for on, m in self.sent if (link is None or on == link) and (kind is None or isinstance(m, kind))
        ]
        for item in taken:
            self.sent.remove(item)
        return [m for _, m in taken]

    @overload
    def take_events(self, kind: None = None) -> list[ev.Event]: ...
    @overload
    def take_events(self, kind: type[E]) -> list[E]: ...

    def take_events(self, kind: type[ev.Event] | None = None) -> list[Any]:
        taken = [e for e in self.events if kind is None or isinstance(e, kind)]
        for item in taken:
            self.events.remove(item)
        return taken

    def one(self, endpoint: str, kind: type[M]) -> M:
        messages = self.take_sent(endpoint, kind)
        assert len(messages) == 1, (kind.__name__, endpoint, messages)
        return messages[0]

    def roles(self) -> dict[str, str]:
        return {info.endpoint: info.role for info in self.session.snapshot().links}

    # ------------------------------------------------------------------ the servers' side

    def deliver(self, endpoint: str, message: p.Message, link: int | None = None) -> list[ev.Output]:
        frame = p.encode(message)  # as text, the way it comes off the wire
        return self.feed(self.session.message_received, link or self.link[endpoint], frame)

    def ack(self, endpoint: str, request: p.Request, **fields) -> list[ev.Output]:
        return self.deliver(endpoint, p.EventAck(request_id=request.request_id, server=endpoint, **fields))

    def refuse(self, endpoint: str, request: p.Request, code: p.ErrorCode, message: str = "refused") -> list[ev.Output]:
        return self.deliver(endpoint, p.EventError(code=code, message=message, request_id=request.request_id))

    def register(self, endpoint: str) -> None:
        self.feed(self.session.link_opened, self.link[endpoint])
        request = self.one(endpoint, p.RequestRegisterClient)
        self.ack(endpoint, request, protocol_version=1, heartbeat_interval_ms=500, heartbeat_timeout_ms=1500,
                 reasons=[p.ReasonInfo(code="lunch", label="Lunch"), p.ReasonInfo(code="break", label="Break")],
                 dispositions=[p.ReasonInfo(code="resolved", label="Resolved"),
                               p.ReasonInfo(code="callback", label="Call back")])

    def status(self, endpoint: str, epoch: int, state: p.AgentStateName, since_ms: int, reason: str | None = None):
        return self.deliver(endpoint, p.EventCurrentAgentStatus(agent_id="1001", epoch=epoch, server=endpoint,
                                                                state=state, since_ms=since_ms, reason=reason))

    def invite(self, endpoint: str, epoch: int, interaction_id: str = "call-1", expires_in_ms: int = 30_000):
        interaction = p.Interaction(interaction_id=interaction_id, media="voice", queue="billing",
                                    created_ms=WALL0 - 5_000, customer={"name": "Dana Ortiz"})
        return self.deliver(endpoint, p.EventInvite(agent_id="1001", epoch=epoch, interaction=interaction,
                                                    offered_ms=self.wall, expires_ms=self.wall + expires_in_ms))

    def revoke(self, endpoint: str, epoch: int, interaction_id: str = "call-1", reason: p.RevokeReason = "timeout"):
        return self.deliver(endpoint, p.EventInviteRevoked(agent_id="1001", epoch=epoch, interaction_id=interaction_id,
                                                           reason=reason, message=reason))

    def kill(self, endpoint: str, code: int | None = 1006) -> None:
        self.feed(self.session.link_closed, self.link[endpoint], code=code)

    def beat(self, *endpoints: str) -> None:
        for endpoint in endpoints:
            self.deliver(endpoint, p.Heartbeat())


def logged_in_on_a(config: SessionConfig = CONFIG, state: p.AgentStateName = "not_ready",
                   reason: str | None = "lunch") -> Bench:
    """A on epoch 1 (primary, with a status), B secondary: the normal steady state."""
    bench = Bench(config)
    bench.feed(bench.session.start)
    bench.register("A")
    bench.register("B")
    bench.feed(bench.session.login, "1001", PASSWORD, place="desk-7")
    login = bench.one("A", p.RequestAgentLogin)
    bench.ack("A", login, role="primary", epoch=1, resume_token=TOKEN1, token_expires_ms=WALL0 + 600_000)
    bench.status("A", 1, state, WALL0 - 60_000, reason)
    bench.ack("B", bench.one("B", p.RequestAgentAvailable), role="secondary")
    bench.take_events()
    bench.take_sent()
    return bench


def keep_alive(bench: Bench, seconds: float, *alive: str, step: float = 0.25) -> None:
    """Advance the clock with the named servers sending their heartbeats, the others silent."""
    end = bench.now + seconds
    while bench.now < end - 1e-9:
        bench.advance(min(step, end - bench.now))
        for endpoint in alive:
            if endpoint in bench.link and bench.roles()[endpoint] not in ("reconnecting", "down", "connecting"):
                bench.beat(endpoint)
