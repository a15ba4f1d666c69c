"""A herd of hand-overs (issue 13, docs/multisite.md "Approximations and their bounds"): every site
orders the remote members alike, so two sites may hand interactions to the same agent at once. The
agent's site offers one to that agent; the other goes to its best other available member of the
queue at a penalty no higher than the named agent's, instead of bouncing back to be routed again.
Only when it has no such member does it refuse, as before. In-process over three server cores."""

from __future__ import annotations

from server_stub import protocol as p
from server_stub.config import QueueConfig
from server_stub.core.routing import MOVED, OFFERED
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
