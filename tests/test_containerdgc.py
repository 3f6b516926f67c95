"""The garbage-collection replay against containerd 2.1 itself: for every recorded
`docker image rm`/`prune` on the containerd store, the blobs and snapshots the replay
deletes once the image records the daemon removed are gone are exactly the files that
vanished from the real store; and rules from gc.go on small hand-made stores."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from analyzer.containerdmodel import (BackendSnapshot, Blob, Container, Descriptor, Image,
                                      Kind, Lease, MetaStore, Namespace, Snapshot)
from analyzer.engines.containerdgc import Resource, collect, mark, parse_rfc3339, prune_snapshots
from analyzer.sources.containerdmeta import parse_meta_db, parse_snapshotter_db
from tests.oracle.record import rm_cases
from tests.oracle.scenarios import SCENARIOS

META_DB = "io.containerd.metadata.v1.bolt/meta.db"
OVERLAYFS = "io.containerd.snapshotter.v1.overlayfs"
BLOBS = "io.containerd.content.v1.content/blobs/sha256"


def store_dir(data_root: Path) -> Path:
    """dockerd's own containerd root, or the system containerd's beside the data root."""
    own = data_root / "containerd" / "daemon"
    return own if own.is_dir() else data_root.parent / "containerd"


def _state(data_root: Path):
    root = store_dir(data_root)
    meta = parse_meta_db((root / META_DB).read_bytes(), META_DB)
    backend, _ = parse_snapshotter_db((root / OVERLAYFS / "metadata.db").read_bytes(), "md")
    blobs = {f"sha256:{n}" for n in os.listdir(root / BLOBS)}
    dirs = set(os.listdir(root / OVERLAYFS / "snapshots"))
    return meta, backend, blobs, dirs


def _ns(ts: float) -> int:
    return int(ts * 1_000_000_000)


# Each case but the last: the snapshot before the next case is the state after it.
FOLLOWED = [c for c in rm_cases(containerd_store=True)
            if c.index + 1 < len(SCENARIOS[c.scenario].rm_cases)]


@pytest.mark.parametrize("case", FOLLOWED, ids=str)
def test_replay_deletes_what_containerd_deleted(oracle, case):
    rec = oracle[case.scenario]
    entries = rec.data["rm"]
    entry = entries[case.index]
    before = _state(rec.rm_root(entry))
    after = _state(rec.rm_root(entries[case.index + 1]))
    meta, backend, blobs, dirs = before
    # What the daemon did to the records: image names it removed (and any it added),
    # leases it deleted (a removed container's, a pruned build cache record's).
    names_after = {(i.namespace, i.name) for i in after[0].images}
    images = tuple(i for i in meta.images if (i.namespace, i.name) in names_after)
    added = tuple(i for i in after[0].images
                  if (i.namespace, i.name) not in {(j.namespace, j.name) for j in meta.images})
    leases_after = {(l.namespace, l.id) for l in after[0].leases}
    meta = dataclasses.replace(meta, images=images + added, leases=tuple(
        l for l in meta.leases if (l.namespace, l.id) in leases_after))
    result = collect(meta, _ns(entry["t_after"]), blobs_present=blobs,
                     backends={"overlayfs": backend})
    assert set(result.deleted_blobs) == blobs - after[2]
    gone_ids = {str(backend[k].id) for k in result.deleted_snapshots.get("overlayfs", ())}
    assert gone_ids == dirs - after[3]


# -- rules, on small stores --------------------------------------------------------------
def _meta(**kw) -> MetaStore:
    base = dict(namespaces=(Namespace("moby", {}), Namespace("other", {})), images=(),
                blobs=(), snapshots=(), leases=(), containers=(), ingests=(), sandboxes=())
    base.update(kw)
    return MetaStore(**base)


def _image(ns, name, digest, labels=None):
    return Image(ns, name, Descriptor("m", digest, 1), labels or {}, {}, None, None)


def _blob(ns, digest, labels=None):
    return Blob(ns, digest, 10, labels or {}, None)


def _snap(ns, key, parent=None, labels=None):
    return Snapshot(ns, "overlayfs", key, f"{ns}/{key}", parent, labels or {}, None)


MANIFEST, CONFIG, LAYER = "sha256:" + "a" * 64, "sha256:" + "b" * 64, "sha256:" + "c" * 64


def _manifest_blobs(ns):
    return (_blob(ns, MANIFEST, {"containerd.io/gc.ref.content.config": CONFIG,
                                 "containerd.io/gc.ref.content.l.0": LAYER}),
            _blob(ns, CONFIG, {"containerd.io/gc.ref.snapshot.overlayfs": "chain1"}),
            _blob(ns, LAYER))


def test_image_keeps_its_manifest_config_layer_and_snapshot_chain():
    meta = _meta(images=(_image("moby", "docker.io/a:1", MANIFEST),),
                 blobs=_manifest_blobs("moby"),
                 snapshots=(_snap("moby", "chain0"), _snap("moby", "chain1", "chain0"),
                            _snap("moby", "stray")))
    live = mark(meta, 0)
    keys = {(n.type, n.key) for n in live}
    assert {(Resource.CONTENT, MANIFEST), (Resource.CONTENT, CONFIG), (Resource.CONTENT, LAYER),
            (Resource.SNAPSHOT, "overlayfs/chain1"), (Resource.SNAPSHOT, "overlayfs/chain0")} <= keys
    assert (Resource.SNAPSHOT, "overlayfs/stray") not in keys


def test_blobs_are_shared_between_namespaces():
    """A blob record in another namespace keeps the file when moby's image goes."""
    meta = _meta(blobs=_manifest_blobs("moby") + (_blob("other", LAYER, {
        "containerd.io/gc.root": "2020-01-01T00:00:00Z"}),))
    result = collect(meta, 0, blobs_present={MANIFEST, CONFIG, LAYER}, backends={})
    assert set(result.deleted_blobs) == {MANIFEST, CONFIG}


def test_expired_lease_holds_nothing_flat_lease_holds_only_its_objects():
    exp = "2026-01-01T00:00:00Z"
    lease = Lease("moby", "l1", {"containerd.io/gc.expire": exp}, None, (MANIFEST,), (), (), ())
    flat = Lease("moby", "l2", {"containerd.io/gc.flat": "x"}, None, (MANIFEST,), (), (), ())
    meta = _meta(blobs=_manifest_blobs("moby"), leases=(lease,))
    now = parse_rfc3339(exp)
    assert (Resource.CONTENT, MANIFEST) in {(n.type, n.key) for n in mark(meta, now)}
    assert not any(n.type == Resource.CONTENT for n in mark(meta, now + 1))
    meta = _meta(blobs=_manifest_blobs("moby"), leases=(flat,))
    assert {n.key for n in mark(meta, 0) if n.type == Resource.CONTENT} == {MANIFEST}


def test_container_keeps_its_snapshot_and_its_parents():
    meta = _meta(snapshots=(_snap("moby", "base"), _snap("moby", "rw", "base")),
                 containers=(Container("moby", "c1", "x", "overlayfs", "rw", {}, None),))
    assert {n.key for n in mark(meta, 0)} == {"overlayfs/rw", "overlayfs/base"}


def test_snapshot_parent_cycle_is_never_walked_nor_removed():
    """Damaged backend: a cycle of parents cannot be reached from a root, so the
    snapshotter's prune never visits it (and the replay does not loop)."""
    def b(key, parent, ident):
        return BackendSnapshot(key, ident, Kind.COMMITTED, parent, {}, 0, 0, None)
    backend = {"x": b("x", "y", 1), "y": b("y", "x", 2), "r": b("r", None, 3),
               "c": b("c", "r", 4), "d": b("d", "c", 5)}
    assert prune_snapshots(backend, seen={"c"}) == ["d"]
    assert sorted(prune_snapshots(backend, seen=())) == ["c", "d", "r"]


@pytest.mark.parametrize("text, ns", [
    ("2026-12-08T12:21:07Z", 1796732467_000000000),
    ("2026-12-08T12:21:07.5+01:00", 1796728867_500000000),
    ("2026-12-08 12:21:07Z", None), ("tomorrow", None), ("2026-12-08T12:21:07", None)])
def test_parse_rfc3339_as_go(text, ns):
    assert parse_rfc3339(text) == ns
