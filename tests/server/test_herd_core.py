"""A herd of hand-overs (issue 13, docs/multisite.md "Approximations and their bounds"): every site
orders the remote members alike, so two sites may hand interactions to the same agent at once. The
agent's site offers one to that agent; the other goes to its best other available member of the
queue at a penalty no higher than the named agent's, instead of bouncing back to be routed again.
Only when it has no such member does it refuse, as before. In-process over three server cores."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server_stub import protocol as p
from server_stub.config import QueueConfig
from server_stub.core.routing import MOVED, OFFERED, Offer, RoutingEngine
from tests.server.core_driver import WALL0, CoreDriver
from tests.server.pair_driver import Mesh

SITES = ("A", "B", "C")


def mesh(members: tuple[tuple[str, int], ...] = ()) -> Mesh:
    """Sites A, B, C linked to each other, one ``sales`` queue with the same rules at each."""
    queues = (QueueConfig(name="sales", members=members),)
    sites = Mesh(names=SITES, settings={name: {"queues": queues} for name in SITES})
    sites.link_all()
    return sites


def submit_unheard(site: CoreDriver, carrier: int, iid: str) -> None:
    """Submit without letting the peers talk: the other sites have not heard of it (nor of its offer)."""
    CoreDriver.request(site, carrier, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": iid, "media": "voice", "queue": "sales", "created_ms": WALL0}})


def acks(sites: Mesh) -> list[p.PeerHandoverAck]:
    """Every hand-over answer on the wire, in order, delivered as it goes."""
    seen: list[p.PeerHandoverAck] = []
    while sites.wire:
        frame = sites.wire.popleft()
        if '"PeerHandoverAck"' in frame.frame:
            msg = p.decode_client(frame.frame)
            assert isinstance(msg, p.PeerHandoverAck)
            seen.append(msg)
        sites.deliver(frame)
    return seen


def test_two_sites_handing_to_one_agent_at_once_give_the_second_to_its_equal_member_nothing_refused():
    sites = mesh()
    first, _ = sites.b.agent("1001")  # idle longest: every site's first choice
    sites.advance(1)
    second, _ = sites.b.agent("1002")
    for name in ("A", "C"):
        assert sites.sites[name].core.pool.remote["1001"].presence.available
    carrier_a, carrier_c = sites.a.carrier(), sites.c.carrier()
    submit_unheard(sites.a, carrier_a, "from-a")
    submit_unheard(sites.c, carrier_c, "from-c")
    assert sites.a.core.engine.interactions["from-a"].agent_id == "1001"
    assert sites.c.core.engine.interactions["from-c"].agent_id == "1001", "both sites chose the same agent"

    answers = acks(sites)

    assert answers and all(ack.accepted for ack in answers), [(a.interaction_id, a.reason) for a in answers]
    offered = {desk: [i["interaction"]["interaction_id"] for i in sites.b.invites(desk)] for desk in (first, second)}
    assert sorted(offered[first] + offered[second]) == ["from-a", "from-c"], offered
    assert len(offered[first]) == 1 and len(offered[second]) == 1, "one offer per agent"
    for site, iid in ((sites.a, "from-a"), (sites.c, "from-c")):
        item = site.core.engine.interactions[iid]
        assert item.status == MOVED and item.moves == 1, "handed over once, never bounced back"
    # The answer for the one the named agent could not take says who took it; its sender's report says so too.
    other = next(a for a in answers if a.offered_to == "1002")
    sender, carrier = (sites.a, carrier_a) if other.interaction_id == "from-a" else (sites.c, carrier_c)
    [withdrawn] = sender.events(carrier, "withdrawn", other.interaction_id)
    assert withdrawn["reason"] == "handed over to agent 1002 at site B", withdrawn
    assert {sites.b.core.engine.interactions[i].status for i in ("from-a", "from-c")} == {OFFERED}
    assert not sites.b.core.engine.refused_moves


def test_the_only_other_member_has_a_higher_penalty_the_hand_over_is_refused_as_before():
    sites = mesh(members=(("1002", 1),))
    first, _ = sites.b.agent("1001")
    second, _ = sites.b.agent("1002")
    carrier_a, carrier_c = sites.a.carrier(), sites.c.carrier()
    submit_unheard(sites.a, carrier_a, "from-a")
    submit_unheard(sites.c, carrier_c, "from-c")
    assert {sites.a.core.engine.interactions["from-a"].agent_id,
            sites.c.core.engine.interactions["from-c"].agent_id} == {"1001"}

    answers = acks(sites)

    refused = [a for a in answers if not a.accepted]
    assert len(refused) == 1 and "1001" in (refused[0].reason or ""), [(a.interaction_id, a.reason) for a in answers]
    assert refused[0].offered_to is None
    # Its sender routed it again: now to 1002 (penalty 1, the best left), a second hand-over.
    sender = sites.a if refused[0].interaction_id == "from-a" else sites.c
    item = sender.core.engine.interactions[refused[0].interaction_id]
    assert item.status == MOVED and item.moves == 2
    assert [i["interaction"]["interaction_id"] for i in sites.b.invites(second)] == [refused[0].interaction_id]
    assert len(sites.b.invites(first)) == 1


def test_a_named_transfer_is_never_given_to_another_member():
    """A blind transfer to an agent by name goes to that agent or is refused: no stand-in."""
    sites = mesh()
    busy, epoch = sites.b.agent("1001")
    sites.b.agent("1002")
    carrier_b = sites.b.carrier()
    submit_unheard(sites.b, carrier_b, "at-b")  # 1001 (idle longest) is offered it at B
    sites.pump()
    assert [i["interaction"]["interaction_id"] for i in sites.b.invites(busy)] == ["at-b"]
    interaction = p.Interaction(interaction_id="named", media="voice", queue="sales", created_ms=WALL0,
                                transfers=[p.TransferStep(kind="blind", from_agent="1003", to_agent="1001",
                                                          at_ms=WALL0)])
    accepted, reason, _ = sites.b.core.engine.take_over(interaction, "1001", 1, WALL0, WALL0 + 5_000, sender="A",
                                                        here=True, penalty=0)
    assert (accepted, reason) == (False, "agent 1001 is not available")
    del epoch


# ---------------------------------------------------------------------- the receiving engine alone


@settings(max_examples=150, deadline=None)
@given(agents=st.lists(st.tuples(st.integers(0, 2), st.booleans(), st.integers(0, 5_000)), min_size=1, max_size=6),
       local_calls=st.integers(0, 3), named=st.integers(0, 5), here=st.booleans())
def test_a_hand_over_goes_to_the_named_agent_or_the_best_member_at_no_higher_penalty_or_is_refused(
        agents: list[tuple[int, bool, int]], local_calls: int, named: int, here: bool) -> None:
    """Whatever the receiver's members (penalty, Ready or not, idle since), some busy with offers of
    its own: the hand-over is offered to the named agent if it can take it, else to the best
    available member (lowest penalty, longest idle) if its penalty is no higher than the named
    agent's, else refused; never to an agent that holds an offer."""
    engine = RoutingEngine([QueueConfig(name="sales")])
    ids = [f"a{n}" for n in range(len(agents))]
    for agent_id, (penalty, ready, idle) in zip(ids, agents, strict=True):
        engine.login(agent_id, {"sales": penalty}, "ready" if ready else "not_ready", WALL0 + idle)
    for n in range(local_calls):
        engine.submit(p.Interaction(interaction_id=f"local-{n}", media="voice", queue="sales",
                                    created_ms=WALL0), WALL0 + 6_000)
    named_id = ids[named % len(ids)]
    bound = engine.agents[named_id].penalties["sales"]
    free = sorted((engine.agents[a].penalties["sales"], engine.agents[a].idle_since, a)
                  for a in ids if engine.agents[a].available)
    named_free = here and engine.agents[named_id].available
    expected = named_id if named_free else free[0][2] if free and free[0][0] <= bound else None

    accepted, reason, effects = engine.take_over(
        p.Interaction(interaction_id="handed", media="voice", queue="sales", created_ms=WALL0), named_id, 1,
        WALL0, WALL0 + 7_000, sender="A", here=here, penalty=bound)

    offers = [e.agent_id for e in effects if isinstance(e, Offer)]
    if expected is None:
        assert not accepted and reason and not offers
    else:
        assert accepted and offers == [expected], (offers, expected, free)
        assert engine.interactions["handed"].agent_id == expected
