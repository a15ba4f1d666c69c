"""A chat across failovers in the simulated world: the real desktop core and the real server cores,
a customer at the carrier's sockets sending lines (each one until a site answers it, in order),
the agent sending lines while sites are killed, restarted, frozen and cut. After healing, the
desktop's transcript holds every line both sides sent, each once, in the order each side sent
them, numbered 1..n without a gap, and the server holding the chat agrees with it line for line."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desktop.core import events as ev
from server_stub import protocol as p

from .net import Process
from .reports import Feed
from .steps import two_sites
from .world import World

RETRY_S = 0.3


class Customer:
    """The customer of one chat, typing at the carrier: a line is sent to every site the carrier
    is subscribed at (only the one where the chat is in hand takes it) until one answers it; the
    next line waits for that answer, as a person waits to see their line sent."""

    def __init__(self, world: World, iid: str) -> None:
        self.world, self.iid = world, iid
        self.carrier = world.carrier
        self.typed: list[tuple[str, str]] = []  # (line id, text), in the order typed
        self.acked: dict[str, int] = {}  # line id -> seq
        self.refused: dict[str, str] = {}  # line id -> a final refusal's code
        self._n = 0
        answered = self.carrier.answered

        def on_answer(feed: Feed, kind: str, message: p.EventAck | p.EventError) -> None:
            if kind.startswith("chat:"):
                self._answered(kind[5:], message)
            else:
                answered(feed, kind, message)

        self.carrier.answered = on_answer  # type: ignore[method-assign]
        self._tick()

    def say(self, text: str) -> None:
        self._n += 1
        self.typed.append((f"cust-{self._n}", text))
        self._send()

    def _next(self) -> tuple[str, str] | None:
        return next(((i, t) for i, t in self.typed if i not in self.acked and i not in self.refused), None)

    def _send(self) -> None:
        line = self._next()
        if line is None:
            return
        for feed in self.carrier.feeds.values():
            if feed.up:
                feed.send(p.RequestSendChatMessage(request_id=self.carrier.new_id(), interaction_id=self.iid,
                                                   line_id=line[0], text=line[1]), f"chat:{line[0]}")

    def _answered(self, line_id: str, message: p.EventAck | p.EventError) -> None:
        if isinstance(message, p.EventAck):
            assert message.line_seq is not None
            known = self.acked.setdefault(line_id, message.line_seq)
            assert known == message.line_seq, f"{line_id} answered as {known} and as {message.line_seq}"
            self._send()
        elif message.code in ("chat_line_too_long", "transcript_full", "not_a_chat"):
            self.refused[line_id] = message.code

    def _tick(self) -> None:
        self._send()
        self.carrier.later(RETRY_S, self._tick)


def chat_in_hand(world: World) -> str:
    desk = world.desks[0]
    desk.ready()
    interaction = p.Interaction(interaction_id="chat-1", media="chat", queue="q", created_ms=world.loop.wall_ms)
    world.carrier.waiting.append(interaction)
    world.carrier._flush()
    world.run_for(0.2)
    desk.answer(0, take=True)
    world.run_for(0.2)
    assert [h.interaction.interaction_id for h in desk.session.snapshot().held] == ["chat-1"]
    return "chat-1"


STEPS = st.lists(st.one_of(
    st.tuples(st.just("agent"), st.integers(0, 3)),
    st.tuples(st.just("customer"), st.integers(0, 3)),
    st.tuples(st.just("kill"), st.sampled_from(["A", "B"])),
    st.tuples(st.just("restart"), st.sampled_from(["A", "B"])),
    st.tuples(st.just("freeze"), st.sampled_from(["A", "B"])),
    st.tuples(st.just("cut"), st.sampled_from(["close", "reset"])),
    st.tuples(st.just("wait"), st.sampled_from([0.01, 0.05, 0.2, 1.0, 3.0])),
), min_size=3, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS, seed=st.integers(0, 1_000))
def test_chat_lines_are_delivered_once_and_in_order_across_failovers(steps, seed):
    world = two_sites(agents=1, seed=seed)
    desk = world.desks[0]
    iid = chat_in_hand(world)
    customer = Customer(world, iid)
    added: list[p.ChatLine] = []
    sent: list[str] = []  # the agent's line ids, in the order sent
    failed: set[str] = set()
    observe = desk.observe

    def watch(event: ev.Event) -> None:
        if isinstance(event, ev.ChatLineAdded):
            added.append(event.line)
        elif isinstance(event, ev.ChatLinePending):
            sent.append(event.line_id)
        elif isinstance(event, ev.ChatLineFailed):
            failed.add(event.line_id)
        observe(event)

    desk.observe = watch  # type: ignore[method-assign]
    frozen: list[Process] = []
    for n, (kind, arg) in enumerate(steps):
        if kind == "agent":
            for k in range(arg + 1):
                desk.act(desk.session.send_chat, iid, f"agent line {n}.{k}")
        elif kind == "customer":
            for k in range(arg + 1):
                customer.say(f"customer line {n}.{k}")
        elif kind == "kill":
            world.kill(arg)
        elif kind == "restart":
            world.restart(arg)
        elif kind == "freeze":
            world.freeze(world.sites[arg])
            frozen.append(world.sites[arg])
        elif kind == "cut":
            primary = desk.session.snapshot().primary
            if primary is not None:
                world.cut(primary, arg)
        else:
            world.run_for(arg)
    for site in frozen:
        world.thaw(site)
    world.heal()
    for name in world.sites:
        world.restart(name)
    world.run_for(45.0)

    snap = desk.session.snapshot()
    assert snap.status == "logged_in", snap
    chat = next((c for c in snap.chats if c.interaction_id == iid), ev.ChatInfo(iid, (), (), ""))
    lines = list(chat.lines)
    assert chat.sending == (), f"agent lines never committed: {chat.sending}"
    assert [line.seq for line in lines] == list(range(1, len(lines) + 1)), lines
    ids = [line.line_id for line in lines]
    assert len(ids) == len(set(ids)), f"a line twice: {ids}"
    # Each line was shown once (by seq and by id).
    assert sorted(line.seq for line in added) == [line.seq for line in lines]
    # Every line either side sent is there, in the order it was sent.
    agent_ids = [i for i in sent if i not in failed]
    assert [i for i in ids if i in set(agent_ids)] == agent_ids
    assert not failed, failed
    customer_ids = [i for i, _ in customer.typed]
    assert set(customer.acked) == set(customer_ids), "customer lines never answered"
    assert [i for i in ids if i.startswith("cust-")] == customer_ids
    assert all(lines[customer.acked[i] - 1].line_id == i for i in customer_ids)
    # The server holding the chat agrees, line for line.
    site = world.sites[snap.primary or ""]
    assert site.core is not None
    held = site.core.chat.get(iid)
    assert ([line.line_id for line in held.lines] if held is not None else []) == ids


# Known gap (docs/protocol.md, "Exactly once across failover", remaining windows): A dies, the
# desktop moves to B; the customer's line is committed by B alone (no peer to copy it to) and
# answered, but the desktop's link drops before B's EventChatMessage arrives; then B dies too.
# Both come back with empty memories and the desktop's carried transcript lacks the line:
# answered to the customer, kept by nobody. The carrier does not re-send a line once answered;
# re-sending the lines a lost site answered (by line id, so a known one is not added twice)
# would keep it, but may number it anew.
DOUBLE_FAULT = [("kill", "A"), ("wait", 0.01), ("customer", 0), ("cut", "close"), ("wait", 0.01), ("kill", "B")]


@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="a line answered by a lone survivor that dies before the desktop has it is lost")
def test_known_gap_a_line_only_a_lone_survivor_had_when_it_died():
    test_chat_lines_are_delivered_once_and_in_order_across_failovers.hypothesis.inner_test(  # type: ignore[attr-defined]
        steps=DOUBLE_FAULT, seed=0)



def test_a_customer_line_a_stalled_server_took_is_not_answered_after_the_chat_moved_meanwhile():
    """A thawed server answering a customer line for a chat that moved meanwhile (found while
    chasing bench/chaos.py --freeze losses). The chat is in hand at A; the sites are apart
    (partitioned). A stops for a moment, and as it thaws it reads the customer's line: a carrier's
    socket has no login, so the line was not parked with the agents' requests; A numbered it and,
    having no peer to copy it to, its answer waited for the end of the stall. Meanwhile the agent's
    link to A breaks and the desktop moves to B, which adopts the chat without the line. A's stall
    ends (the peer's silence has lasted long enough), and A used to answer the line then: the
    customer counted it sent, and B, holding the chat, never had it. Now a stalled server parks the
    customer's lines too and, the agent's login there having ended meanwhile, refuses it
    (``unknown_interaction``), so that the customer sends it again, to B."""
    world = two_sites(agents=1, seed=0)
    desk = world.desks[0]
    iid = chat_in_hand(world)
    a, b = world.sites["A"], world.sites["B"]
    answers: list[tuple[str, p.EventAck | p.EventError]] = []
    answered = world.carrier.answered

    def on_answer(feed: Feed, kind: str, message: p.EventAck | p.EventError) -> None:
        if kind.startswith("chat:"):
            answers.append((feed.site, message))
        else:
            answered(feed, kind, message)

    world.carrier.answered = on_answer  # type: ignore[method-assign]

    def send(site: str) -> None:  # as the traffic source does: to the site whose stream holds the chat
        world.carrier.feeds[site].send(p.RequestSendChatMessage(
            request_id=world.carrier.new_id(), interaction_id=iid, line_id="cust-1", text="Still there?"),
            "chat:cust-1")

    world.partition()
    world.freeze(a)
    world.run_for(1.2)  # longer than a stall (server_core.STALL_S), shorter than anybody's patience
    send("A")
    world.thaw(a)
    world.run_for(0.05)
    assert a.core is not None and a.core.stalled_until is not None
    world.cut("A", "reset", desk)  # the agent's link to A breaks: the desktop moves to B
    world.run_for(8.0)
    snap = desk.session.snapshot()
    assert (snap.primary, [h.interaction.interaction_id for h in snap.held]) == ("B", [iid]), snap
    assert [(site, getattr(m, "code", None)) for site, m in answers] == [("A", "unknown_interaction")], answers
    world.end_partition()
    send("B")  # the customer's next try, where the chat is now
    world.run_for(5.0)
    assert [(site, type(m).__name__) for site, m in answers[1:]] == [("B", "EventAck")], answers
    assert b.core is not None
    held = b.core.chat.get(iid)
    assert held is not None and "cust-1" in held.by_id
    desk_chat = next(c for c in desk.session.snapshot().chats if c.interaction_id == iid)
    assert "cust-1" in [line.line_id for line in desk_chat.lines]
