"""Storing a shared configuration taken from another site (server_stub/config_store.py): the
site's files hold it afterwards, read back to the same digest (so reading them again is no new
change, which would bounce between the sites), with the site's own settings and site list kept."""

from __future__ import annotations

import shutil
from dataclasses import replace

from server_stub import protocol as p
from server_stub.config import QueueConfig, SitesFile, load_site_config
from server_stub.config_store import load_version, store, version_path
from server_stub.core import StoreConfig
from server_stub.core.shared_config import adopt, digest, frames
from server_stub.directory import AgentRecord, Directory
from server_stub.resources import resource_path


def test_a_stored_configuration_reads_back_to_the_same_digest_and_keeps_the_sites_own_settings(tmp_path):
    config_file, agents_file = tmp_path / "site.toml", tmp_path / "agents.toml"
    shutil.copy(resource_path("sites.toml"), config_file)
    own = load_site_config(config_file)
    queues = (QueueConfig(name="sales", accept_timeout_ms=12_500, acw_ms=30_000, members=(("1001", 2),)),
              QueueConfig(name="vip", abandon_after_ms=90_000, service_level_target_ms=15_000))
    reasons = (p.ReasonInfo(code="system", label="System"), p.ReasonInfo(code="coaching", label="Coaching"))
    shared = own.with_overrides(queues=queues, reasons=reasons, offer_timeout_reason="system")
    directory = Directory({"1001": AgentRecord(id="1001", name="Alice", password_hash="scrypt$1$8$1$c2FsdA==$aGFzaA==",
                                               queues=("sales", "vip"), penalties=(("vip", 3),), skills=("fr",)),
                           "sup1": AgentRecord(id="sup1", name="Sup", password_hash="scrypt$1$8$1$c2FsdA==$aGFzaA==",
                                               role="supervisor")})
    version = p.ConfigVersion(generation=4, origin="B", digest=digest(shared, directory))
    store(StoreConfig(shared, directory, version, files=True), config_file, agents_file)

    again = load_site_config(config_file)
    assert digest(again, Directory.load(agents_file, allow_weak=True)) == version.digest
    assert (again.heartbeat_interval_ms, again.name) == (own.heartbeat_interval_ms, own.name)
    assert SitesFile.load(config_file) == SitesFile.load(resource_path("sites.toml")), "the clients' site list is kept"
    assert load_version(agents_file) == version
    assert not list(tmp_path.glob(".*.tmp")), "written beside, then renamed"


def test_only_the_version_when_the_files_already_hold_it_and_a_bad_version_file_counts_as_none(tmp_path):
    agents_file = tmp_path / "agents.toml"
    version = p.ConfigVersion(generation=1, origin="A", digest="x")
    store(StoreConfig(load_site_config(resource_path("sites.toml")), Directory(), version, files=False),
          tmp_path / "absent.toml", agents_file)
    assert load_version(agents_file) == version and not agents_file.exists()
    version_path(agents_file).write_text("{not json")
    assert load_version(agents_file) is None
    assert load_version(None) is None


def test_the_shipped_site_file_stored_as_taken_reads_back_unchanged_with_every_queue_and_reason_setting(tmp_path):
    """What a site takes must be what it stores: a setting the store leaves out (a server-only
    reason, a queue's extend wrap-up) reads back as a change of the site's own that nobody made,
    sent to every site under a new version."""
    config_file, agents_file = tmp_path / "site.toml", tmp_path / "agents.toml"
    shutil.copy(resource_path("sites.toml"), config_file)
    shipped = load_site_config(config_file)
    assert any(r.server_only for r in shipped.reasons) and any(q.acw_extend_ms for q in shipped.queues)
    directory = Directory.load(resource_path("demo_agents.toml"), allow_weak=True)
    version = p.ConfigVersion(generation=1, origin="A", digest=digest(shipped, directory))
    store(StoreConfig(shipped, directory, version, files=True), config_file, agents_file)

    again = load_site_config(config_file)
    assert (again.queues, again.reasons) == (shipped.queues, shipped.reasons)
    assert digest(again, Directory.load(agents_file, allow_weak=True)) == version.digest


def test_a_queues_extend_wrap_up_travels_with_the_shared_configuration():
    shipped = load_site_config(resource_path("sites.toml"))
    directory = Directory.load(resource_path("demo_agents.toml"), allow_weak=True)
    version = p.ConfigVersion(generation=1, origin="A", digest=digest(shipped, directory))
    taken, _ = adopt(frames("A", version, shipped, directory), replace(shipped, queues=(), secret=b"s" * 32))
    assert taken.queues == shipped.queues
