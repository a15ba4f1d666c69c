"""The site bus's names and permissions, without a broker: what each site's user may publish, and
what a receiver may conclude from a routing key. (The broker enforcing them: test_amqp_bus.py.)"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from server_stub.bus import topology as t


@pytest.mark.parametrize("bad", ["", "a.b", "a*", "#", "x" * 65, "é", "a b"])
def test_a_site_name_must_be_one_plain_routing_key_word(bad):
    with pytest.raises(t.TopologyError, match="routing-key word"):
        t.check_site(bad)


def test_the_sending_site_is_the_second_word_and_foreign_keys_are_refused():
    assert t.parse_routing_key("presence.A.agent.with.dots") == ("presence", "A", "agent.with.dots")
    assert t.parse_routing_key("work.A.B") == ("work", "A", "B")
    assert t.parse_routing_key("hello.site-2") == ("hello", "site-2", "")
    for foreign in ("", "presence", "other.A.x", "presence..x", "presence.a*b.x"):
        with pytest.raises(t.TopologyError):
            t.parse_routing_key(foreign)
    with pytest.raises(t.TopologyError, match="longer than 255"):
        t.routing_key(t.PRESENCE, "A", "x" * 300)


def test_each_site_may_publish_only_keys_of_its_own_site():
    """The regexes the broker applies (Erlang's PCRE; these use nothing Python's re reads differently)."""
    own = t.topic_permissions("A")
    events, work = own[t.EVENTS_EXCHANGE]["write"], own[t.WORK_EXCHANGE]["write"]
    for key in ("presence.A.1001", "broadcast.A", "hello.A", "beat.A", "presence.A.x.y"):
        assert re.search(events, key), key
    for key in ("presence.B.1001", "presence.AB.1001", "broadcast.B", "work.A.B", "presenceXA.1", "beat.B"):
        assert not re.search(events, key), key
    assert re.search(work, "work.A.B") and re.search(work, "work.A.A")
    for key in ("work.B.A", "work.A", "work.A.B.C", "work.AB.C", "presence.A.B"):
        assert not re.search(work, key), key
    assert re.fullmatch(own[t.WORK_EXCHANGE]["read"], t.inbox_binding("A"))
    assert not re.search(own[t.WORK_EXCHANGE]["read"], t.inbox_binding("B")), "no binding to B's work"

    perms = t.permissions("site-1")
    assert re.search(perms["configure"], "site.site-1.inbox") and re.search(perms["configure"], "site.site-1.events.x")
    for resource in ("site.site-2.inbox", "mesh.events", "mesh.work", "amq.default", "site.site-1"):
        assert not re.search(perms["configure"], resource), resource
    for resource in ("mesh.events", "mesh.work", "site.site-1.inbox"):
        assert re.search(perms["write"], resource) and re.search(perms["read"], resource)
    for resource in ("amq.default", "site.site-2.inbox", "amq.topic", "mesh.eventsX"):
        assert not re.search(perms["write"], resource), resource


def test_definitions_give_every_site_a_user_an_inbox_and_its_binding():
    defs = t.definitions({"A": "pa", "B": "pb"})
    assert {u["name"] for u in defs["users"]} == {"site-A", "site-B"}
    assert {q["name"] for q in defs["queues"]} == {"site.A.inbox", "site.B.inbox"}
    assert all(q["durable"] and q["arguments"] == t.inbox_arguments() for q in defs["queues"])
    assert {(b["destination"], b["routing_key"]) for b in defs["bindings"]} == {
        ("site.A.inbox", "work.*.A"), ("site.B.inbox", "work.*.B")}
    assert {(p["user"], p["exchange"]) for p in defs["topic_permissions"]} == {
        (u, x) for u in ("site-A", "site-B") for x in t.EXCHANGES}
    # RabbitMQ's rabbit_password_hashing_sha256: base64(salt + sha256(salt + password)).
    raw = base64.b64decode(defs["users"][0]["password_hash"])
    assert raw[4:] == hashlib.sha256(raw[:4] + b"pa").digest()


def _topic_matches(binding: str, key: str) -> bool:
    """RabbitMQ's topic matching: ``*`` is one word, ``#`` zero or more."""
    def match(b: list[str], k: list[str]) -> bool:
        if not b:
            return not k
        if b[0] == "#":
            return any(match(b[1:], k[i:]) for i in range(len(k) + 1))
        return bool(k) and b[0] in ("*", k[0]) and match(b[1:], k[1:])
    return match(binding.split("."), key.split("."))


def test_a_sites_events_queue_gets_the_others_fan_out_and_never_its_own():
    """Bound from the start to what is addressed to it and to every hello and beat; to another
    site's presence and broadcasts once it hears that site (docs/multisite.md, "Per-message CPU")."""
    bindings = t.events_bindings("A") + t.events_bindings_from("B")

    def reaches(key: str) -> bool:
        return any(_topic_matches(b, key) for b in bindings)
    assert reaches("presence.B.1001") and reaches("presence.B.agent.with.dots") and reaches("broadcast.B")
    assert reaches("broadcast.B.A") and reaches("broadcast.C.A"), "what any site addresses to A alone"
    assert reaches("hello.C") and reaches("beat.C"), "how A hears of a site it has no binding for yet"
    assert not reaches("presence.A.1001") and not reaches("broadcast.A"), "not its own fan-out"
    assert not reaches("presence.C.1001") and not reaches("broadcast.C"), "not a site it has not heard yet"
    assert not reaches("broadcast.B.C"), "not what B addresses to C"
