"""Damaged containerd stores (copies of the one dockerd 28.5 wrote): each damage is a
warning naming the file, and the rest still answers — never a traceback or a hang."""
from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.containerdmodel import BackendSnapshot, Kind, MetaStore, Snapshot
from analyzer.containerdservice import ContainerdImages
from analyzer.engines.containerdlisting import snapshot_usage, unpacked_size
from analyzer.errors import EvidenceError
from analyzer.sources.evidence import open_root
from tests.oracle.daemon import copy_root

DAEMON = "containerd/daemon"
BLOBS = f"{DAEMON}/io.containerd.content.v1.content/blobs/sha256"
OVERLAYFS = f"{DAEMON}/io.containerd.snapshotter.v1.overlayfs"
META_DB = f"{DAEMON}/io.containerd.metadata.v1.bolt/meta.db"


@pytest.fixture
def root_copy(oracle, tmp_path) -> Path:
    dest = tmp_path / "root"
    copy_root(oracle["containerd"].root, dest)
    return dest


def _images(root: Path) -> ContainerdImages:
    return ContainerdImages(open_root(str(root)))


def test_missing_blob_is_a_warning_and_ls_still_answers(root_copy):
    intact = _images(root_copy)
    record = intact.resolve("redis:alpine")
    before = {s.id: s.size for s in intact.images({}, False, 0)}
    (root_copy / BLOBS / record.target.digest.split(":")[1]).unlink()
    images = _images(root_copy)
    rows = images.images({}, False, 0)
    assert any(f"{BLOBS}/{record.target.digest.split(':')[1]}" in str(d) and "missing" in str(d)
               for d in images.diagnostics)
    assert {s.id for s in rows} == set(before)
    gone = next(s for s in rows if s.id == record.target.digest)
    assert 0 <= gone.size < before[gone.id]


def test_truncated_snapshotter_db_is_a_warning(root_copy):
    db = root_copy / OVERLAYFS / "metadata.db"
    db.write_bytes(db.read_bytes()[:100])
    images = _images(root_copy)
    rows = images.images({}, True, 0)
    assert rows
    assert any(str(d).startswith(f"{OVERLAYFS}/metadata.db") for d in images.diagnostics)


def test_truncated_meta_db_cannot_be_answered_but_says_which_file(root_copy):
    db = root_copy / META_DB
    db.write_bytes(db.read_bytes()[:3000])
    with pytest.raises(EvidenceError) as info:
        _images(root_copy).records
    assert info.value.path == META_DB


def test_cycle_of_snapshot_parents_is_not_followed():
    def snap(key, parent):
        return Snapshot("moby", "overlayfs", key, f"moby/{key}", parent, {}, None)
    diff = "sha256:" + "1" * 64
    meta = MetaStore((), (), (), (snap(diff, "sha256:" + "2" * 64),
                              snap("sha256:" + "2" * 64, diff)), (), (), (), ())
    backend = {f"moby/{k}": BackendSnapshot(f"moby/{k}", n, Kind.COMMITTED, None, {}, 4096, 1,
                                            None)
               for n, k in enumerate((diff, "sha256:" + "2" * 64))}
    assert unpacked_size(snapshot_usage(meta, {"overlayfs": backend}), [diff]) == 0
