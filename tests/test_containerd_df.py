"""`df` on the containerd image store: the rules dockerd 28.5 follows that the recorded
scenarios (tests/test_oracle_df.py) do not reach one by one — BuildKit's containerd
worker records sized and shared, container sizes over broken snapshot chains, and
the CLI's negative RECLAIMABLE."""
from __future__ import annotations

from analyzer.engines.containerddiskusage import container_layer_sizes
from analyzer.render.df import reclaimable_text
from analyzer.sources.buildkit import read_containerd_build_cache
from analyzer.sources.layout import buildkit_worker_metadata_db
from tests.test_bbolt import make_bolt
from tests.test_buildkit import by_id, record

SOURCE = buildkit_worker_metadata_db("overlayfs")
B1, B2, B3 = ("sha256:" + c * 64 for c in "123")


def metadata(**records: dict) -> bytes:
    return make_bolt({b"_main": {k.encode(): v for k, v in records.items()}})


def test_negative_reclaimable_is_printed_as_go_truncates_it() -> None:
    # docker/cli: (reclaimable*100)/totalSize in int64, which truncates toward zero.
    assert reclaimable_text(-3_385_000, 4_917_000) == "-3.385e+06B (-68%)"
    assert reclaimable_text(3_385_000, 4_917_000) == "3.385MB (68%)"
    assert reclaimable_text(-5, 0) == "-5B"


def test_worker_records_sized_from_their_snapshot_and_blob() -> None:
    data = metadata(
        base=record(cache_blob=B1, cache_blobonly=True, cache_snapshot=B1, snapshot_size=1000),
        run=record(cache_parent="base", cache_blob=B2),            # size not recorded yet
        lost=record(cache_parent="base", cache_blob=B3),
        src=record(snapshot_committed=None, cache_recordType="source.local"))
    usage = {"run": 4096, "src": 8192}.get
    cache = read_containerd_build_cache(data, SOURCE, {B1: 10, B2: 700}.get, usage, ())
    records = by_id(cache)
    assert records["base"].size == 1000 and records["base"].source == SOURCE
    assert records["run"].size == 4096 + 700          # snapshot usage plus its blob
    assert records["lost"].size == 0                  # no snapshot, blob absent
    assert records["src"].size == 8192
    assert [d.message for d in cache.diagnostics] == [
        "record lost: snapshot lost is not in the snapshotter; size counted as 0"]
    assert cache.held_chain_ids == frozenset()


def test_worker_records_shared_when_their_blob_chain_is_an_images_layers() -> None:
    data = metadata(
        base=record(cache_blob=B1, cache_blobonly=True, snapshot_size=1),
        run=record(cache_parent="base", cache_blob=B2, snapshot_size=1),
        src=record(snapshot_committed=None, cache_recordType="source.local", snapshot_size=1))

    def shared(*images: tuple[str, ...]) -> tuple[bool, ...]:
        blobs = {B1: 1, B2: 1}.get                     # a blob-only record's must be there
        records = by_id(read_containerd_build_cache(data, SOURCE, blobs, {}.get, images))
        return records["base"].shared, records["run"].shared, records["src"].shared

    assert shared((B1, B2)) == (True, True, False)     # the record and its parents
    assert shared((B1,)) == (True, False, False)
    assert shared((B2,), (B1, B2, B3)) == (False, False, False)   # whole lists only
    assert shared(("",)) == (False, False, False)      # a local source has no blob


def test_a_record_without_a_blob_on_an_images_layers_is_that_images() -> None:
    # BuildKit joins a chain's digests with no separator (layerKey) and a record without
    # a blob adds "": a stage's RUN (still mutable) on the base image's layer is the base
    # image's, as dockerd 28.5 marks it; a source with nothing below it never is.
    data = metadata(
        base=record(cache_blob=B1, cache_blobonly=True, snapshot_size=1),
        stage=record(cache_parent="base", snapshot_committed=None, snapshot_size=1),
        src=record(snapshot_committed=None, cache_recordType="source.local", snapshot_size=1))
    records = by_id(read_containerd_build_cache(data, SOURCE, {B1: 1}.get, {}.get, [(B1,)]))
    assert (records["base"].shared, records["stage"].shared, records["src"].shared) == \
        (True, True, False)
    records = by_id(read_containerd_build_cache(data, SOURCE, {B1: 1}.get, {}.get, [(B1, B2)]))
    assert (records["base"].shared, records["stage"].shared) == (False, False)


def test_worker_metadata_absent_or_damaged() -> None:
    assert read_containerd_build_cache(None, SOURCE, {}.get, {}.get, ()).records == ()
    damaged = read_containerd_build_cache(b"\0" * 8192, SOURCE, {}.get, {}.get, ())
    assert damaged.records == () and damaged.diagnostics[0].source == SOURCE


def test_container_sizes_over_the_snapshot_chain() -> None:
    usage = {"ctr": ("ctr-init", 4096), "ctr-init": ("sha256:c2", 8192),
             "sha256:c2": ("sha256:c1", 100), "sha256:c1": (None, 1000),
             "orphan": ("gone", 4096), "view": ("sha256:c1", None)}
    sizes = container_layer_sizes(["ctr", "orphan", "view", "missing"], usage)
    assert sizes["ctr"] == (4096, 4096 + 8192 + 100 + 1000)
    assert sizes["orphan"] == (4096, 4096)            # moby keeps a broken chain's sum
    assert sizes["view"] == (0, 1000)
    assert sizes["missing"] == (-1, 0)
