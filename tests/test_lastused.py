"""An image's last use by the evidence a snapshot holds (engines/lastused.py): the
latest of its containers' times, its tag time and its build cache's use; ties by the
documented order; an image's own Created and Go's zero time count for nothing. The
daemon's own times judge the same rule in tests/test_oracle_timeline.py."""
from __future__ import annotations

import dataclasses

from analyzer.engines.lastused import LastUse, last_used, tag_times
from analyzer.goapi.time import parse_rfc3339_ns
from analyzer.model import BuildCacheRecord
from tests.test_rmi import D1, D2, StoreBuilder

T = {n: f"2025-01-0{n}T00:00:00.123456789Z" for n in range(1, 10)}
GO_ZERO = "0001-01-01T00:00:00Z"


def ns(n: int) -> int:
    return parse_rfc3339_ns(T[n])


def _record(ident: str, chain_id: str, last_used_at: str | None, created_at: str
            ) -> BuildCacheRecord:
    return BuildCacheRecord(id=ident, cache_type="regular", size=1, created_at=created_at,
                            last_used_at=last_used_at, usage_count=1, in_use=False,
                            shared=False, description="", layer_chain_ids=(chain_id,),
                            source="")


def test_the_latest_evidence_wins_and_ties_go_by_kind():
    b = StoreBuilder()
    ran = b.image("a", [D1], ["ran:1"], created=T[9])       # built after its last use
    tagged = b.image("b", [D1, D2], ["tagged:1"])
    built = b.image("c", [D2], ["built:1"])
    unused = b.image("d", [D2, D1], ["unused:1"])
    old = b.container("old", ran)
    new = b.container("new", ran, running=True)
    never = b.container("never", tagged)
    store = b.build()
    ctrs = dict(store.containers)
    ctrs[old] = dataclasses.replace(ctrs[old], created=T[1], started_at=T[2], finished_at=T[5])
    ctrs[new] = dataclasses.replace(ctrs[new], created=T[3], started_at=T[5],
                                    finished_at=GO_ZERO)
    ctrs[never] = dataclasses.replace(ctrs[never], created=T[4], started_at=GO_ZERO,
                                      finished_at=GO_ZERO)
    images = dict(store.images)
    images[tagged] = dataclasses.replace(images[tagged], last_updated=T[4])
    top_of_built = images[built].top_layer
    store = dataclasses.replace(store, containers=ctrs, images=images, build_cache=(
        _record("used", top_of_built, T[6], T[2]),
        _record("fresh", top_of_built, None, T[7]),
        _record("other", "sha256:" + "f" * 64, T[8], T[8])))
    got = last_used(store, tag_times(store))
    # old finished and new started at the same time: a start is named first.
    assert got[ran] == LastUse(ns(5), "container_started", new, True)
    assert got[tagged] == LastUse(ns(4), "container_created", never, False)
    assert got[built] == LastUse(ns(7), "build_cache_used", "fresh", False)
    assert got[unused] is None


def test_tag_times_given_by_the_store_and_unreadable_times_are_none():
    b = StoreBuilder()
    image = b.image("a", [D1], ["a:1"])
    ctr = b.container("c", image)
    store = b.build()
    store = dataclasses.replace(store, containers={ctr: dataclasses.replace(
        store.containers[ctr], created="yesterday")})
    assert last_used(store, {}) == {image: None}
    assert last_used(store, {image: ns(3)}) == {image: LastUse(ns(3), "tagged", image, False)}
