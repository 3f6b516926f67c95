"""container, builder and system prune on the containerd image store: the rules the
recorded "prunes-c8d" scenario (tests/test_oracle_rm.py, judged by dockerd 28.5) does
not reach one by one — which leases each removal deletes, when a collection runs, a
build cache record an image uses by its blob chain, a blob another namespace keeps."""
from __future__ import annotations

import dataclasses

import pytest

from analyzer.containerdmodel import (BackendSnapshot, Blob, Descriptor, Image, ImageContent,
                                      Kind, Lease, MetaStore, Namespace, Snapshot)
from analyzer.engines.builderprune import plan_builder_prune
from analyzer.engines.containerdprune import plan_prune
from analyzer.engines.containerdremoval import build_cache_leases, collect_after
from analyzer.engines.containerprune import plan_container_prune
from analyzer.engines.daemonapi import API_20_10, API_28_5
from analyzer.errors import DaemonError
from tests.test_builder_prune import NOW, cache_store, record
from tests.test_container_prune import store_with

MANIFEST, CONFIG, LAYER = ("sha256:" + c * 64 for c in "abc")
TEMPORARY = {"buildkit/lease.temporary": "2023-11-14T22:00:00Z"}
EXPIRING = {**TEMPORARY, "containerd.io/gc.expire": "2023-11-14T22:05:00Z"}


def lease(lid: str, ns: str = "moby", labels=None, content=(), snapshots=()) -> Lease:
    return Lease(ns, lid, labels or {}, None, tuple(content),
                 tuple(("overlayfs", k) for k in snapshots), (), ())


def snap(key: str, parent: str | None = None, ns: str = "moby") -> Snapshot:
    return Snapshot(ns, "overlayfs", key, f"{ns}/{key}", parent, {}, None)


def meta(**kw) -> MetaStore:
    base = dict(namespaces=(Namespace("moby", {}), Namespace("moby_history", {})),
                images=(), blobs=(), snapshots=(), leases=(), containers=(), ingests=(),
                sandboxes=())
    base.update(kw)
    return MetaStore(**base)


def backends(*keys: str, parents=None) -> dict:
    parents = parents or {}
    return {"overlayfs": {f"moby/{k}": BackendSnapshot(f"moby/{k}", n, Kind.ACTIVE,
                                                       parents.get(k), {}, None, None, None)
                          for n, k in enumerate(keys, 1)}}


def test_a_build_cache_prune_deletes_each_records_leases_and_the_resolvers() -> None:
    m = meta(leases=(lease("r1"), lease("r1-variants"), lease("r1-view", labels=TEMPORARY),
                     lease("r2"), lease("r2-view", labels=TEMPORARY),
                     lease("cfg", labels=EXPIRING),
                     lease("hist", ns="moby_history", labels=EXPIRING)))
    assert build_cache_leases(m, "moby", ["r1"]) == {"r1", "r1-variants", "r1-view", "cfg"}
    # No record removed: the image resolver's leases go all the same.
    assert build_cache_leases(m, "moby", []) == {"cfg"}


def test_a_containers_lease_holds_its_snapshots_until_it_is_deleted() -> None:
    ctr = "c" * 64
    m = meta(snapshots=(snap("base"), snap(f"{ctr}-init", "base"), snap(ctr, f"{ctr}-init")),
             leases=(lease(ctr, snapshots=(ctr, f"{ctr}-init")), lease("img", snapshots=("base",))))
    found = backends("base", f"{ctr}-init", ctr,
                     parents={f"{ctr}-init": "moby/base", ctr: f"moby/{ctr}-init"})
    result = collect_after(m, "moby", {ctr}, None, 0, blobs_present=(), backends=found)
    assert result is not None
    assert set(result.deleted_snapshots["overlayfs"]) == {f"moby/{ctr}", f"moby/{ctr}-init"}
    # Nothing deleted (no such lease, no image record gone): no collection runs.
    assert collect_after(m, "moby", {"gone"}, None, 0, blobs_present=(), backends=found) is None
    # Another namespace's lease of the same ID is not the container's.
    assert collect_after(m, "other", {ctr}, None, 0, blobs_present=(), backends=found) is None


def test_an_image_prune_line_for_a_blob_another_namespace_keeps() -> None:
    # BuildKit's build history (namespace moby_history) keeps the manifest's file; for
    # Docker the manifest is deleted once the moby namespace's record is.
    target = Descriptor("application/vnd.oci.image.manifest.v1+json", MANIFEST, 500)
    refs = {"containerd.io/gc.ref.content.config": CONFIG, "containerd.io/gc.ref.content.l.0": LAYER}
    m = meta(images=(Image("moby", "bk/app:1", target, {}, {}, None, None),),
             blobs=(Blob("moby", MANIFEST, 500, refs, None), Blob("moby", CONFIG, 70, {}, None),
                    Blob("moby", LAYER, 900, {}, None),
                    Blob("moby_history", MANIFEST, 500, {}, None)),
             leases=(lease("ref_1", ns="moby_history", content=(MANIFEST,)),))
    content = ImageContent(MANIFEST, MANIFEST, CONFIG, None, 1470,
                           present=((MANIFEST, target.media_type, 500),
                                    (CONFIG, "application/vnd.oci.image.config.v1+json", 70),
                                    (LAYER, "application/vnd.oci.image.layer.v1.tar", 900)))
    plan = plan_prune(m, {MANIFEST: content}, [], {}, True, 0,
                      blobs_present=frozenset({MANIFEST, CONFIG, LAYER}), backends={})
    assert [(line.kind, line.value) for line in plan.lines] == [
        ("Untagged", "bk/app:1"), ("Deleted", MANIFEST)]
    assert plan.space_reclaimed == 500 + 70 + 900
    assert MANIFEST not in plan.deleted_blobs and {CONFIG, LAYER} <= set(plan.deleted_blobs)


def test_a_record_an_image_uses_by_its_layer_key_stays_without_all() -> None:
    records = (dataclasses.replace(record("base"), layer_key=LAYER),
               dataclasses.replace(record("run", parent="base"), layer_key=LAYER),
               dataclasses.replace(record("own", parent="base"), layer_key=LAYER + CONFIG))
    store = cache_store(*records, image=False)

    def pruned(all_records: bool, keys=frozenset({LAYER})) -> list[str]:
        result = plan_builder_prune(store, all_records, (), NOW, API_28_5, 0,
                                    image_layer_keys=keys)
        return [r.id for r in result.deleted]
    assert pruned(False) == ["own"]               # "run" is the image's (its key is)
    assert pruned(True) == ["own", "run", "base"]
    assert pruned(False, frozenset()) == ["own", "run", "base"]


@pytest.mark.parametrize("api,message", [(API_20_10, "Invalid filter 'bogus'"),
                                         (API_28_5, "invalid filter 'bogus'")])
def test_container_prune_refuses_a_filter_in_the_daemons_words(api, message) -> None:
    b, _ = store_with(exited={})
    with pytest.raises(DaemonError) as info:
        plan_container_prune(b.build(), [("bogus", "1")], NOW, {}, api=api)
    assert str(info.value) == message
