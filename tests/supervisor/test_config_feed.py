"""The supervisor view's feed says when sites run different shared configurations (issue 13,
docs/multisite.md "One configuration"), from EventConfigVersion on the reporting stream."""

from desktop.reporting import ReportingEngine
from desktop.reporting.messages import decode_frame
from server_stub import protocol as p

T0 = 1_767_254_400_000


def version(generation: int, origin: str) -> p.ConfigVersion:
    return p.ConfigVersion(generation=generation, origin=origin, digest=f"d{generation}{origin}")


def test_sites_that_differ_are_named_in_the_feed_and_agreement_is_said_too():
    engine = ReportingEngine(["A", "B"])
    engine.stream_opened("A", "s-A", T0)
    engine.message("A", p.EventReportingSnapshot(server="A", stream_id="s-A", seq=0, agents=[]), T0)
    frame = p.encode(p.EventConfigVersion(server="A", seq=1, version=version(2, "A"), differs={"B": version(1, "A")}))
    engine.message("A", decode_frame(frame), T0 + 1)
    engine.message("A", p.EventConfigVersion(server="A", seq=2, version=version(2, "A")), T0 + 2)
    feed = [(f.kind, f.text, f.notify) for f in engine.take_changes().feed]
    assert feed == [
        ("config", "Server A runs configuration 2@A; B (1@A) differ: no interaction goes between them until they "
                   "agree", True),
        ("config", "Server A runs configuration 2@A, as every linked site", False),
    ]
