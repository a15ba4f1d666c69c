"""One agent pool across the pair, in-process over two server cores (docs/multisite.md).

The stranded-calls scenario of issue 13: agents work at B, the carrier submits at A. A must offer
every interaction to B's agents (handing it over to B, the agents' own server), never twice, and
what B completes counts once."""

from __future__ import annotations

from server_stub import protocol as p
from server_stub.core.pool import AgentPool
from server_stub.core.routing import COMPLETED, MOVED, MOVING, QUEUED
from tests.server.core_driver import CoreDriver
from tests.server.pair_driver import Mesh, pair


def linked_pair() -> Mesh:
    sites = pair()
    sites.link_all()
    return sites


def test_presence_of_an_agent_at_b_reaches_a_with_its_availability():
    pair = linked_pair()
    pair.b.agent("1001")
    seen = pair.a.core.pool.remote["1001"]
    assert seen.site == "B" and seen.presence.available and seen.presence.state == "ready"
    assert seen.presence.queues == {"sales": 0}
    desk, epoch = pair.b.agent("1002", ready=False)
    assert pair.a.core.pool.remote["1002"].presence.available is False
    pair.b.request(desk, {"type": "RequestAgentNotReady", "epoch": epoch, "reason": "break"} if
                   "break" in pair.b.core.reasons else {"type": "RequestAgentAfterCallWork", "epoch": epoch})
    pair.pump()
    assert pair.a.core.pool.remote["1002"].presence.state != "ready"
    pair.b.request(desk, {"type": "RequestAgentLogout", "epoch": epoch})
    pair.pump()
    assert pair.a.core.pool.remote["1002"].presence.logged_in is False


def test_an_interaction_submitted_where_no_agent_is_goes_to_an_agent_at_the_other_site():
    pair = linked_pair()
    desk, epoch = pair.b.agent("1001")
    carrier = pair.a.carrier()
    assert pair.a.submit(carrier, "call-1")["type"] == "EventAck"
    invites = pair.b.invites(desk)
    assert [i["interaction"]["interaction_id"] for i in invites] == ["call-1"]
    item = pair.a.core.engine.interactions["call-1"]
    assert item.status == MOVED and item.custody and item.moved_to == "B"
    assert pair.a.events(carrier, "withdrawn", "call-1"), "A reports it handed the interaction over"
    # B's agent accepts and completes it: B counts it; A's custody ends.
    assert pair.b.request(desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": "call-1"})["type"] \
        == "EventAck"
    pair.pump()
    assert pair.b.request(desk, {"type": "RequestCompleteInteraction", "epoch": epoch, "interaction_id": "call-1",
                                 "disposition": "resolved"})["type"] == "EventAck"
    pair.pump()
    assert pair.b.core.engine.interactions["call-1"].status == COMPLETED
    assert not pair.a.core.engine.interactions["call-1"].custody
    assert not pair.a.events(carrier, "completed", "call-1"), "completed once, at B"
    # A re-submission of it at A is a duplicate.
    assert pair.a.submit(carrier, "call-1")["code"] == "duplicate_interaction"


def test_a_local_member_with_a_lower_penalty_is_offered_first_and_an_agent_holds_one_offer():
    pair = linked_pair()
    b_desk, _ = pair.b.agent("1001")
    a_desk, _ = pair.a.agent("1002")
    carrier = pair.a.carrier()
    pair.a.submit(carrier, "call-1")
    pair.a.submit(carrier, "call-2")
    pair.a.submit(carrier, "call-3")
    offered = [i["interaction"]["interaction_id"] for i in pair.a.invites(a_desk) + pair.b.invites(b_desk)]
    assert sorted(offered) == ["call-1", "call-2"], "each agent one offer; the third waits"
    assert len(pair.a.invites(a_desk)) == 1 and len(pair.b.invites(b_desk)) == 1
    assert pair.a.core.engine.interactions["call-3"].status == QUEUED


def test_the_agent_no_longer_available_when_the_hand_over_arrives_refuses_and_a_keeps_it():
    pair = linked_pair()
    desk, epoch = pair.b.agent("1001")
    carrier_a, carrier_b = pair.a.carrier(), pair.b.carrier()
    # B offers its own interaction first while A's hand-over is on the wire: B refuses A's.
    CoreDriver.request(pair.a, carrier_a, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": "from-a", "media": "voice", "queue": "sales", "created_ms": 1}})
    CoreDriver.request(pair.b, carrier_b, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": "from-b", "media": "voice", "queue": "sales", "created_ms": 1}})
    pair.pump()
    assert [i["interaction"]["interaction_id"] for i in pair.b.invites(desk)] == ["from-b"]
    item = pair.a.core.engine.interactions["from-a"]
    assert item.status == QUEUED, item.status
    # Once the agent is free again (it rejects), A hands it over again and it is offered.
    pair.b.request(desk, {"type": "RequestReject", "epoch": epoch, "interaction_id": "from-b"})
    pair.pump()
    ids = [i["interaction"]["interaction_id"] for i in pair.b.invites(desk)]
    assert ids.count("from-a") <= 1 and ids.count("from-b") >= 1


def test_a_lost_answer_is_retried_and_a_repeat_is_harmless():
    pair = linked_pair()
    desk, _ = pair.b.agent("1001")
    carrier = pair.a.carrier()
    CoreDriver.request(pair.a, carrier, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": "call-1", "media": "voice", "queue": "sales", "created_ms": 1}})
    # The hand-over reaches B, B's answer is lost with the links.
    frame = pair.wire.popleft()
    while '"PeerHandover"' not in frame.frame:
        pair.deliver(frame)
        frame = pair.wire.popleft()
    pair.deliver(frame)  # B takes it; its answer is lost with the links
    pair.cut()
    assert pair.a.core.engine.interactions["call-1"].status == MOVING, "not offered at A meanwhile"
    pair.advance(3)
    assert pair.a.core.engine.interactions["call-1"].status == MOVING
    pair.link_both()
    pair.advance(0.5)
    assert pair.a.core.engine.interactions["call-1"].status == MOVED
    assert len(pair.b.invites(desk)) == 1, "offered once, by B only"


def test_what_a_restarted_receiver_never_gave_an_agent_comes_back():
    pair = linked_pair()
    pair.b.agent("1001")
    carrier = pair.a.carrier()
    pair.a.submit(carrier, "call-1")
    assert pair.a.core.engine.interactions["call-1"].status == MOVED
    # B dies (its agent had not accepted); A waits orphan_timeout_ms for it, then takes the call back.
    pair.cut()
    pair.advance(19)
    assert pair.a.core.engine.interactions["call-1"].status == MOVED
    pair.advance(2)
    assert pair.a.core.engine.interactions["call-1"].status == QUEUED
    desk, _ = pair.a.agent("1002")
    assert [i["interaction"]["interaction_id"] for i in pair.a.invites(desk)] == ["call-1"]


def test_one_id_submitted_at_both_sites_handed_across_at_once_is_offered_once():
    """The world found it: a carrier re-submitted an id to B while A still had it; each site handed
    its copy to the other's agent at the same time (each still saw that agent free), each took the
    other's as "here already", and both dropped theirs. Now the site whose name sorts last keeps it."""
    pair = linked_pair()
    a_desk, a_epoch = pair.a.agent("1001")
    b_desk, b_epoch = pair.b.agent("1002")
    carrier_a, carrier_b = pair.a.carrier(), pair.b.carrier()

    def submit(site, carrier, iid):  # not carried to the other site yet
        CoreDriver.request(site, carrier, {"type": "RequestSubmitInteraction", "interaction": {
            "interaction_id": iid, "media": "voice", "queue": "sales", "created_ms": 1}})

    submit(pair.a, carrier_a, "x")  # offered to 1001 at A: B does not know it yet
    submit(pair.b, carrier_b, "y")  # offered to 1002 at B: A does not know it yet
    submit(pair.a, carrier_a, "twice")  # A hands it to 1002, B hands its copy to 1001
    submit(pair.b, carrier_b, "twice")
    pair.pump()
    statuses = {name: site.core.engine.interactions["twice"].status for name, site in pair.sites.items()}
    assert statuses == {"A": "moved", "B": "queued"}, statuses
    # Both agents free again: it is offered once, by B (which kept it).
    for site, desk, epoch, iid in ((pair.a, a_desk, a_epoch, "x"), (pair.b, b_desk, b_epoch, "y")):
        accepted = site.request(desk, {"type": "RequestAccept", "epoch": epoch, "interaction_id": iid})
        assert accepted["type"] == "EventAck"
        assert site.request(desk, {"type": "RequestCompleteInteraction", "epoch": epoch, "interaction_id": iid,
                                   "disposition": "resolved"})["type"] == "EventAck"
    pair.advance(1)
    offers = [i["interaction"]["interaction_id"] for i in pair.a.invites(a_desk) + pair.b.invites(b_desk)]
    assert offers.count("twice") == 1, offers


# ---------------------------------------------------------------------- the pool alone (pool.py)

def presence(agent_id: str, epoch: int, seq: int, *, available: bool = True, idle: int = 0,
             queues: dict[str, int] | None = None) -> p.AgentPresence:
    return p.AgentPresence(agent_id=agent_id, epoch=epoch, seq=seq, state="ready" if available else "not_ready",
                           available=available, idle_since_ms=idle, queues=queues or {"sales": 0})


def told(site: str, *agents: p.AgentPresence, full: bool = False, incarnation: str = "1") -> p.PeerPresence:
    return p.PeerPresence(server=site, incarnation=incarnation, seq=max(a.seq for a in agents) if agents else 0,
                          agents=list(agents), full=full)


def test_presence_is_idempotent_under_repeats_delays_and_reordering():
    pool = AgentPool("A", "a1", 0)
    pool.apply(told("B", presence("1001", 2, 10, available=True)))
    pool.apply(told("B", presence("1001", 2, 7, available=False)))  # older, delayed
    pool.apply(told("B", presence("1001", 2, 10, available=False)))  # a repeat of seq 10 changes nothing
    assert pool.remote["1001"].available
    pool.apply(told("C", presence("1001", 1, 99, available=True)))  # an older login, elsewhere
    assert pool.remote["1001"].site == "B"
    pool.apply(told("C", presence("1001", 3, 1, available=False)))  # the agent moved to C
    assert (pool.remote["1001"].site, pool.remote["1001"].available) == ("C", False)


def test_a_full_snapshot_forgets_what_it_no_longer_lists_and_a_new_incarnation_is_a_restart():
    pool = AgentPool("A", "a1", 0)
    assert not pool.apply(told("B", presence("1001", 1, 5), presence("1002", 1, 6), full=True, incarnation="b1"))
    assert pool.apply(told("B", presence("1002", 2, 9_000), full=True, incarnation="b2"))
    assert set(pool.remote) == {"1002"}


def test_the_best_member_elsewhere_has_the_lowest_penalty_then_the_longest_idle_and_must_beat_the_local_one():
    pool = AgentPool("A", "a1", 0)
    pool.apply(told("B", presence("1001", 1, 1, idle=500, queues={"sales": 1}),
                    presence("1002", 1, 2, idle=900, queues={"sales": 0}),
                    presence("1003", 1, 3, idle=800, queues={"sales": 0})))
    def best(local: tuple[int, int] | None = None) -> str | None:
        chosen = pool.best("sales", local, lambda agent_id: False)
        return chosen.agent_id if chosen is not None else None

    assert best() == "1003"  # penalty 0, idle since 800
    assert best((0, 700)) is None  # the local one is idle longer
    assert best((0, 850)) == "1003"
    pool.reserved["1003"] = "call-1"  # a hand-over to it is in flight
    assert best() == "1002"
    pool.release("1003", "call-1")
    assert best() == "1003"
    pool.unusable("1003")  # it refused (busy)
    pool.unusable("1002")
    assert best() == "1001"
    assert pool.best("support", None, lambda agent_id: False) is None


def test_a_hand_over_never_answered_by_a_site_that_stays_away_comes_back_after_the_custody_timeout():
    sites = linked_pair()
    sites.b.agent("1001")
    carrier = sites.a.carrier()
    CoreDriver.request(sites.a, carrier, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": "call-1", "media": "voice", "queue": "sales", "created_ms": 1}})
    sites.cut()  # the hand-over is lost with the links; B never comes back
    assert sites.a.core.engine.interactions["call-1"].status == MOVING
    sites.advance(21)
    assert sites.a.core.engine.interactions["call-1"].status == QUEUED
    assert sites.a.core.pool.reserved == {}, "the agent at B is not reserved for it any more"


def test_a_hand_over_lost_with_a_site_that_restarts_is_asked_again_and_offered_once():
    """The restarted site's new presence comes before its answer to the repeated hand-over: what
    it never answered must not be taken back then (it is about to take it), only its custody."""
    sites = linked_pair()
    sites.b.agent("1001")
    carrier = sites.a.carrier()
    CoreDriver.request(sites.a, carrier, {"type": "RequestSubmitInteraction", "interaction": {
        "interaction_id": "call-1", "media": "voice", "queue": "sales", "created_ms": 1}})
    b = sites.restart("B")  # the hand-over dies with B
    assert sites.a.core.engine.interactions["call-1"].status == MOVING
    sites.link("B", "A")  # the new B hears A (and A hears B's new life), then its agent logs in again
    desk, _ = b.agent("1001")
    assert sites.a.core.engine.interactions["call-1"].status == MOVING, "not taken back: B will be asked again"
    sites.link("A", "B")  # A's link: the repeated hand-over, after B's new snapshot
    sites.advance(2)
    assert sites.a.core.engine.interactions["call-1"].status == MOVED
    assert [i["interaction"]["interaction_id"] for i in b.invites(desk)] == ["call-1"]
