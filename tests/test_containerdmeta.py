"""containerd's meta.db and the overlayfs snapshotter's metadata.db, read from the store
dockerd 28.5 wrote (the ``containerd`` oracle scenario), and from damaged copies."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzer.containerdmodel import Kind, MetaStore
from analyzer.errors import MalformedError
from analyzer.sources.bbolt import META, PAGE_HEADER
from analyzer.sources.containerdmeta import (go_time, parse_meta_db, parse_snapshotter_db,
                                             uvarint, varint)
from tests.oracle.daemon import JUDGES

DAEMON = "containerd/daemon"
META_DB = f"{DAEMON}/io.containerd.metadata.v1.bolt/meta.db"
OVERLAYFS = f"{DAEMON}/io.containerd.snapshotter.v1.overlayfs"


@pytest.fixture(scope="module")
def rec(oracle):
    return oracle["containerd"]


def _meta(root: Path) -> MetaStore:
    return parse_meta_db((root / META_DB).read_bytes(), META_DB)


def _docker(rec, *argv: str) -> str:
    return next(c for c in rec.data["commands"] if c["docker"] == list(argv))["stdout"]


# -- Go encodings ------------------------------------------------------------------------
@pytest.mark.parametrize("data, value", [(b"\x00", 0), (b"\x01", -1), (b"\x02", 1),
                                         (b"\x80\x80\x05", 40960), (b"\xcc\x06", 422),
                                         (b"\x80", None), (b"", None)])
def test_varint_is_go_zigzag(data, value):
    assert varint(data) == value


@pytest.mark.parametrize("data, value", [(b"\x05", 5), (b"\xac\x02", 300), (b"\xff", None)])
def test_uvarint(data, value):
    assert uvarint(data) == value


def test_go_time_binary():
    # time.Unix(1796646061, 264671198).MarshalBinary() in UTC (offset -1: UTC).
    seconds = 1796646061 + 62135596800
    data = (b"\x01" + seconds.to_bytes(8, "big") + (264671198).to_bytes(4, "big")
            + b"\xff\xff")
    assert go_time(data) == 1796646061_264671198
    assert go_time(data[:10]) is None
    assert go_time(b"\x07" + data[1:]) is None
    assert go_time(None) is None


# -- the judge --------------------------------------------------------------------------
def test_recorded_by_dockerd28_with_containerd21(rec):
    judge = JUDGES[rec.data["judge"]]
    assert judge.containerd_store
    assert rec.data["server_version"].startswith("28.5.")
    assert rec.data["containerd_version"].startswith("2.1.")
    assert (rec.root / META_DB).is_file()
    assert not (rec.root / "image").exists()          # no graph-driver image store


# -- what the daemon said, read from the files --------------------------------------------
def test_images_are_the_daemons(rec):
    """Every image ID `docker image ls -a` printed is the target of a moby image record,
    and every name it printed is one (docker.io/ and library/ spelled out)."""
    meta = _meta(rec.root)
    moby = meta.images_of("moby")
    table = _docker(rec, "image", "ls", "-a", "--no-trunc", "--digests").splitlines()[1:]
    listed = {row.split()[3] for row in table if row}
    assert {i.target.digest for i in moby} == listed
    rows = [json.loads(line) for line in
            _docker(rec, "image", "ls", "-a", "--format", "json").splitlines() if line]
    names = {f"{r['Repository']}:{r['Tag']}" for r in rows if r["Tag"] != "<none>"}
    stored = {i.name.removeprefix("docker.io/").removeprefix("library/") for i in moby
              if "@" not in i.name}
    assert names == stored
    # The newer load of team/tool:v2 left the old image as moby's dangling record.
    assert any(i.name.startswith("moby-dangling@sha256:") for i in moby)
    assert not meta.diagnostics


def test_second_namespace_shares_blobs(rec):
    meta = _meta(rec.root)
    other = {i.target.digest for i in meta.images_of("other")}
    assert other and other <= {i.target.digest for i in meta.images_of("moby")}
    for digest in other:
        assert meta.blob("other", digest) is not None and meta.blob("moby", digest) is not None
    hex_ = next(iter(other)).split(":")[1]
    assert (rec.root / DAEMON / "io.containerd.content.v1.content/blobs/sha256" / hex_).is_file()


def test_leases_and_containers(rec):
    """Moby's per-container leases hold each container's snapshots; the running container
    has a containerd record; ctr's mount lease in `other` holds an active snapshot."""
    meta = _meta(rec.root)
    all_ids = {row.split()[0] for row in
               _docker(rec, "ps", "-a", "--no-trunc").splitlines()[1:] if row}
    running = set(_docker(rec, "ps", "-q").split())
    leases = {(l.namespace, l.id): l for l in meta.leases}
    for cid in all_ids:
        lease = leases[("moby", cid)]
        assert set(lease.snapshots) == {("overlayfs", cid), ("overlayfs", f"{cid}-init")}
    assert {c.id[:12] for c in meta.containers if c.namespace == "moby"} == running
    mount = [l for l in meta.leases if l.namespace == "other"]
    assert len(mount) == 1 and "containerd.io/gc.expire" in mount[0].labels
    key = mount[0].snapshots[0][1]
    snap = next(s for s in meta.snapshots if s.namespace == "other" and s.key == key)
    assert snap.parent and snap.parent.startswith("sha256:")


def test_snapshot_records_resolve_to_directories(rec):
    """Each namespace's snapshot record names a snapshot of the overlayfs snapshotter,
    whose directory snapshots/<id>/fs exists; parents agree across both databases."""
    meta = _meta(rec.root)
    backend, diags = parse_snapshotter_db((rec.root / OVERLAYFS / "metadata.db").read_bytes(),
                                          f"{OVERLAYFS}/metadata.db")
    assert not diags
    by_key = {(s.namespace, s.key): s for s in meta.snapshots}
    for s in meta.snapshots:
        assert s.snapshotter == "overlayfs"
        b = backend[s.name]
        assert (rec.root / OVERLAYFS / "snapshots" / str(b.id) / "fs").is_dir()
        if s.parent:
            assert b.parent == by_key[(s.namespace, s.parent)].name
        if b.kind == Kind.COMMITTED:
            assert b.size is not None and b.size >= 0
    assert {s.name for s in meta.snapshots} == set(backend)


# -- damage -------------------------------------------------------------------------------
def test_truncated_meta_db_never_crashes(rec):
    data = (rec.root / META_DB).read_bytes()
    for size in (0, 100, 4096, 4096 * 2 + 17, len(data) // 2, len(data) - 4096):
        try:
            meta = parse_meta_db(data[:size], META_DB)
        except MalformedError as exc:
            assert exc.path == META_DB
        else:
            assert isinstance(meta, MetaStore)


def test_newest_valid_meta_page_is_used(rec):
    """A meta.db copied mid-write: the newer meta page is torn, the older one answers."""
    data = bytearray((rec.root / META_DB).read_bytes())
    page_size = int.from_bytes(data[PAGE_HEADER.size + 8:PAGE_HEADER.size + 12], "little")
    txids = [int.from_bytes(data[p * page_size + PAGE_HEADER.size + 48:
                                 p * page_size + PAGE_HEADER.size + 56], "little")
             for p in (0, 1)]
    newest = 0 if txids[0] > txids[1] else 1
    at = newest * page_size + PAGE_HEADER.size + META.size - 1
    data[at] ^= 0xFF                                   # its checksum no longer matches
    meta = parse_meta_db(bytes(data), META_DB)
    assert meta.images_of("moby")


def test_damaged_record_is_a_diagnostic(rec):
    """Bytes flipped inside one page: whatever can still be read is, never a traceback."""
    data = (rec.root / META_DB).read_bytes()
    page_size = 4096
    for page in range(2, len(data) // page_size):
        damaged = bytearray(data)
        damaged[page * page_size + 20:page * page_size + 60] = b"\xff" * 40
        try:
            meta = parse_meta_db(bytes(damaged), META_DB)
        except MalformedError:
            continue
        for d in meta.diagnostics:
            assert d.source == META_DB
