"""The RabbitMQ topology of the site bus: exchange and queue names, routing keys, and each site's
broker user with the permissions that let it publish only its own site's keys.

Pure (no I/O): ``server_stub.bus.amqp`` uses the names, and ``definitions()`` is what an operator
(or ``server_stub.bus.broker.LocalBroker``) imports into a broker with
``rabbitmqctl import_definitions FILE``. The design and its reasons: docs/multisite.md, "RabbitMQ".

Routing keys always start ``<kind>.<sending site>``:

==========================  ==================  =============================================
routing key                 exchange            meaning
==========================  ==================  =============================================
``presence.<site>.<agent>`` ``mesh.events``     an agent's presence at its primary site
``broadcast.<site>``        ``mesh.events``     anything else every other site should hear
``hello.<site>``            ``mesh.events``     the site (re)joined: everyone re-publishes
``beat.<site>``             ``mesh.events``     the site is alive (every second, say)
``work.<site>.<to>``        ``mesh.work``       a work hand-over from ``site`` to ``to``
==========================  ==================  =============================================

The broker enforces the second word: a site user's topic write permission on both exchanges
matches only keys whose second word is its own site, so a receiver can trust the sender's site it
reads from the routing key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any

EVENTS_EXCHANGE = "mesh.events"
WORK_EXCHANGE = "mesh.work"
EXCHANGES = (EVENTS_EXCHANGE, WORK_EXCHANGE)

PRESENCE, BROADCAST, HELLO, BEAT, WORK = "presence", "broadcast", "hello", "beat", "work"
KINDS = (PRESENCE, BROADCAST, HELLO, BEAT, WORK)

# A site name is one routing-key word: no dots (word separator), no * or # (binding wildcards),
# nothing a permission regex would read as syntax.
SITE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_ROUTING_KEY = 255  # bytes: AMQP 0-9-1 shortstr

# Events queues (one per running site process) hold at most this many frames; beyond it the oldest
# are dropped by the broker (a site that stalls this long will be re-synced by a hello anyway).
EVENTS_QUEUE_MAX_LENGTH = 200_000


class TopologyError(ValueError):
    """A site name or routing key the bus cannot carry."""


def check_site(site: str) -> str:
    if not SITE_NAME.fullmatch(site):
        raise TopologyError(f"site name {site!r} cannot be a routing-key word: use 1-64 of A-Z a-z 0-9 _ -")
    return site


def site_user(site: str) -> str:
    """The broker user of a site (one per site)."""
    return f"site-{check_site(site)}"


def inbox_queue(site: str) -> str:
    """The durable queue holding work handed over to ``site``."""
    return f"site.{check_site(site)}.inbox"


def events_queue_prefix(site: str) -> str:
    """Events queues are ``<prefix><random>``: exclusive to one connection of one site process."""
    return f"site.{check_site(site)}.events."


def inbox_arguments() -> dict[str, Any]:
    """Arguments of every inbox queue (the broker refuses a re-declaration with other ones)."""
    # Classic durable, not quorum: on Debian's RabbitMQ 3.10 a single node killed with SIGKILL came
    # back with one of two quorum queues stuck without a leader ("leader not known"), and every
    # consume on it hung (in each of 6 trials here; docs/multisite.md). A durable classic queue
    # holding persistent messages, confirmed once written to disk, survives the same crash.
    # Single active consumer: if two processes of one site consume (a frozen old one and its
    # restart), only one gets work at a time, in order; the other takes over when the first goes.
    return {"x-queue-type": "classic", "x-single-active-consumer": True}


def events_arguments() -> dict[str, Any]:
    return {"x-max-length": EVENTS_QUEUE_MAX_LENGTH, "x-overflow": "drop-head"}


def events_bindings(site: str) -> list[str]:
    """The binding keys ``site``'s events queue starts with: what another site addresses to this one
    alone (``broadcast.<from>.<site>``: a full state, a handshake), and every site's hello and beat,
    which is how it learns of the others. Not what a site tells every site: that is bound per
    sending site once it is heard (``events_bindings_from``), so that a site's own fan-out is not
    copied back to it (RabbitMQ has no "no local")."""
    me = check_site(site)
    return [f"{BROADCAST}.*.{me}", f"{HELLO}.*", f"{BEAT}.*"]


def events_bindings_from(sender: str) -> list[str]:
    """The binding keys for what site ``sender`` tells every site (its presence, its broadcasts)."""
    s = check_site(sender)
    return [f"{PRESENCE}.{s}.#", f"{BROADCAST}.{s}"]


def routing_key(kind: str, site: str, rest: str | None = None) -> str:
    key = f"{kind}.{check_site(site)}" if rest is None else f"{kind}.{check_site(site)}.{rest}"
    if len(key.encode()) > MAX_ROUTING_KEY:
        raise TopologyError(f"routing key longer than {MAX_ROUTING_KEY} bytes: {key[:40]!r}...")
    return key


def parse_routing_key(key: str) -> tuple[str, str, str]:
    """``(kind, sending site, rest)`` of a routing key; ``rest`` is "" when there is none."""
    kind, _, tail = key.partition(".")
    site, _, rest = tail.partition(".")
    if kind not in KINDS or not SITE_NAME.fullmatch(site):
        raise TopologyError(f"not a site-bus routing key: {key!r}")
    return kind, site, rest


def inbox_binding(site: str) -> str:
    """The binding key of ``site``'s inbox on the work exchange: work from any site to it."""
    return f"{WORK}.*.{check_site(site)}"


def _escaped(site: str) -> str:
    # Site names are [A-Za-z0-9_-]: only "-" could need escaping, and Erlang's PCRE accepts "\-".
    return re.escape(check_site(site))


def permissions(site: str) -> dict[str, str]:
    """The vhost permissions of a site's user (regexes over resource names)."""
    own = rf"site\.{_escaped(site)}\..*"
    exchanges = "|".join(re.escape(name) for name in EXCHANGES)
    return {
        # Declare and delete only its own queues; the exchanges are the operator's (definitions()).
        "configure": rf"^{own}$",
        # Publish to the two exchanges (not to amq.default: nobody may drop work straight into
        # another site's inbox), and bind its own queues.
        "write": rf"^({own}|{exchanges})$",
        # Consume its own queues; bind them to the two exchanges.
        "read": rf"^({own}|{exchanges})$",
    }


def topic_permissions(site: str) -> dict[str, dict[str, str]]:
    """Per exchange: the routing keys the site may publish (write) and bind to (read)."""
    s = _escaped(site)
    return {
        EVENTS_EXCHANGE: {"write": rf"^({PRESENCE}|{BROADCAST}|{HELLO}|{BEAT})\.{s}(\..*)?$", "read": ".*"},
        WORK_EXCHANGE: {"write": rf"^{WORK}\.{s}\.[^.]+$", "read": rf"^{WORK}\.\*\.{s}$"},
    }


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password))."""
    salt = os.urandom(4) if salt is None else salt
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(passwords: Mapping[str, str], vhost: str = "/") -> dict[str, Any]:
    """Broker definitions (``rabbitmqctl import_definitions``) for the given sites: the two
    exchanges, each site's inbox with its binding, each site's user and permissions. Importing is
    additive: import again with a new site added to add it."""
    exchanges = [{"name": name, "vhost": vhost, "type": "topic", "durable": True, "auto_delete": False,
                  "internal": False, "arguments": {}} for name in EXCHANGES]
    users: list[dict[str, Any]] = []
    perms: list[dict[str, Any]] = []
    topics: list[dict[str, Any]] = []
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for site, password in passwords.items():
        user = site_user(site)
        users.append({"name": user, "password_hash": password_hash(password),
                      "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ""})
        perms.append({"user": user, "vhost": vhost, **permissions(site)})
        topics.extend({"user": user, "vhost": vhost, "exchange": exchange, **rights}
                      for exchange, rights in topic_permissions(site).items())
        queues.append({"name": inbox_queue(site), "vhost": vhost, "durable": True, "auto_delete": False,
                       "arguments": inbox_arguments()})
        bindings.append({"source": WORK_EXCHANGE, "vhost": vhost, "destination": inbox_queue(site),
                         "destination_type": "queue", "routing_key": inbox_binding(site), "arguments": {}})
    return {"vhosts": [{"name": vhost}], "users": users, "permissions": perms, "topic_permissions": topics,
            "exchanges": exchanges, "queues": queues, "bindings": bindings}
