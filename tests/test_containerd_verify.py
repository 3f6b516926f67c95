"""`analyze verify` on the containerd image store, on roots the real dockerd 28.5 made
(the oracle's "containerd" and "containerd-system" scenarios), untouched and tampered
with: a layer blob's byte, its size, the ``containerd.io/uncompressed`` label of its
content record, a manifest and a config. Each tampering runs on a fresh copy and must be
named on the right layer or image, and nothing else."""
from __future__ import annotations

import json
import time
from pathlib import Path

import orjson
import pytest

from analyzer.service import ImageService
from tests.oracle.daemon import copy_root
from tests.oracle.record import Recording, run_analyze

APP = "myorg/app:1.0"           # loaded: its layer blobs are plain tars
BUILT = "bk/app:1"              # built with BuildKit: gzip layer blobs
CLASSIC = "classic/app:1"       # built with DOCKER_BUILDKIT=0: two RUN steps
# What the classic builder's -init snapshot holds beside its directories.
INIT_FILES = {".dockerenv", "etc/hosts", "etc/resolv.conf", "etc/hostname"}


def fresh_copy(recording: Recording, tmp_path: Path) -> Path:
    """A copy of the recorded root; the data root in it (with a system containerd,
    the store is its sibling ``../containerd``, copied with it)."""
    root = recording.root
    system = root.name == "docker"
    copy_root(root.parent if system else root, tmp_path / "copy")
    return tmp_path / "copy" / ("docker" if system else "")


def verify(root: Path) -> tuple[dict, int]:
    out, err, rc = run_analyze(root, time.time(), ["verify", "--json"])
    assert err == "" or rc != 0, err
    return json.loads(out), rc


class ImageBlobs:
    """Where an image's blobs are, and what its top layer is."""

    def __init__(self, root: Path, name: str = APP):
        with ImageService(str(root), lambda message: None) as service:
            images = service.containerd
            record = images.resolve(name)
            content = images.contents[record.target.digest]
            base = images.root.path
            self.blob = lambda digest: Path(base) / images.store.blob_path(digest)
            self.meta_db = Path(base) / images.store.base / "io.containerd.metadata.v1.bolt" \
                / "meta.db"
        self.id = record.target.digest
        manifest = orjson.loads(self.blob(content.manifest).read_bytes())
        self.manifest = self.blob(content.manifest)
        self.config = self.blob(content.config_digest)
        self.top_blob = manifest["layers"][-1]["digest"]
        self.top_diff_id = content.config["rootfs"]["diff_ids"][-1]


def bad(report: dict) -> tuple[list[dict], list[dict]]:
    return ([i for i in report["images"] if not (i["config_ok"] and i["layers_ok"]
                                                  and i.get("manifest_ok", True))],
            [lr for lr in report["layers"] if lr["status"] != "ok"])


def classic_images(root: Path) -> dict[str, int]:
    """The classic build's image and its intermediate one (its first RUN step), with
    how many -init snapshots lie under each: one per RUN step."""
    with ImageService(str(root), lambda message: None) as service:
        images = service.containerd
        top = images.resolve(CLASSIC).target.digest
        steps = len(images.contents[top].config["rootfs"]["diff_ids"]) - 1
        below = [r.target.digest for r in images.records
                 if r.target.digest != top and not r.name.startswith(CLASSIC)]
        config = images.contents[top].config["rootfs"]["diff_ids"]
        first = [d for d in below if images.contents[d].config["rootfs"]["diff_ids"]
                 == config[:2]]
    return {top: steps, **{d: 1 for d in first}}


@pytest.mark.parametrize("scenario", ["containerd", "containerd-system"])
def test_clean_store_verifies_ok_but_the_classic_builds_init_content(
        oracle, scenario: str, tmp_path: Path) -> None:
    """Every blob, layer and snapshot is ok; the classic build's images are not, and
    say why: the build containers' -init snapshots between their layer snapshots, each
    named with its files, are content no digest covers."""
    root = fresh_copy(oracle[scenario], tmp_path)
    report, rc = verify(root)
    assert rc == 1 and not report["ok"] and bad(report) == ([], [])
    assert all(lr["blob"]["compressed_ok"] for lr in report["layers"])
    assert len(report["images"]) >= 9 and report["bytes_hashed"] > 2_000_000
    unverifiable = {i["id"]: i["unverifiable"] for i in report["images"]
                    if "unverifiable" in i}
    assert {i: len(u) for i, u in unverifiable.items()} == classic_images(root)
    for content in (c for found in unverifiable.values() for c in found):
        assert content["snapshot"].endswith("-init") and "-init" in content["reason"]
        assert INIT_FILES <= set(content["files"]) and content["directory"].endswith("/fs")


@pytest.fixture
def store(oracle, tmp_path: Path) -> tuple[Path, ImageBlobs]:
    root = fresh_copy(oracle["containerd"], tmp_path)
    return root, ImageBlobs(root)


def only_layer(report: dict, blob: str) -> dict:
    images, layers = bad(report)
    assert images == [] and [lr["blob"]["digest"] for lr in layers] == [blob], layers
    return layers[0]


def test_a_changed_blob_byte_is_named_on_its_layer(store) -> None:
    root, app = store
    path = app.blob(app.top_blob)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    report, rc = verify(root)
    layer = only_layer(report, app.top_blob)
    assert rc == 1 and layer["status"] == "mismatch" and not layer["blob"]["compressed_ok"]
    assert f"blob digest want={app.top_blob}" in layer["reason"]


def test_a_blob_of_another_size_is_named_on_its_layer(store) -> None:
    root, app = store
    path = app.blob(app.top_blob)
    path.write_bytes(path.read_bytes()[:-1])
    report, rc = verify(root)
    layer = only_layer(report, app.top_blob)
    assert rc == 1 and not layer["blob"]["compressed_ok"]
    assert "blob size want=" in layer["reason"]


def test_a_rewritten_uncompressed_label_is_the_records_fault(store) -> None:
    # A compressed blob's label: a plain tar's is its own digest, the record's key too.
    root, _ = store
    app = ImageBlobs(root, BUILT)
    assert app.top_blob != app.top_diff_id
    old = app.top_diff_id.encode()
    new = old[:-1] + (b"0" if old[-1:] != b"0" else b"1")
    db = app.meta_db.read_bytes()
    assert db.count(old) >= 1                   # the label's value, in each namespace
    app.meta_db.write_bytes(db.replace(old, new))
    report, rc = verify(root)
    layer = only_layer(report, app.top_blob)
    assert rc == 1 and layer["fault"] == "metadata" and layer["blob"]["compressed_ok"]
    assert layer["computed_diff_id"] == app.top_diff_id
    assert f"containerd.io/uncompressed={new.decode()}" in layer["reason"]


def test_a_changed_manifest_or_config_is_named_on_its_image(store) -> None:
    root, app = store
    app.manifest.write_bytes(app.manifest.read_bytes() + b" ")
    app.config.write_bytes(app.config.read_bytes() + b"\n")
    report, rc = verify(root)
    images, layers = bad(report)
    assert rc == 1 and layers == [] and [i["id"] for i in images] == [app.id]
    image = images[0]
    assert image["manifest_ok"] is False and image["config_ok"] is False
    assert any("blob digest want=" in p for p in image["problems"])


def snapshot_dir(root: Path, chain_id: str) -> Path:
    """The ``fs`` directory of the namespace's snapshot of a chain ID."""
    with ImageService(str(root), lambda message: None) as service:
        images = service.containerd
        name = next(s.name for s in images.store.meta.snapshots
                    if s.namespace == "moby" and s.key == chain_id)
        ident = images.store.backends["overlayfs"][name].id
        return Path(images.root.path) / images.store.snapshot_path("overlayfs", ident) / "fs"


def only_files(report: dict, blob: str) -> list[tuple[str, str]]:
    layer = only_layer(report, blob)
    assert layer["status"] == "mismatch" and layer["blob"]["compressed_ok"]
    return [(b["path"], b["reason"]) for b in layer["bad_files"]]


def test_snapshot_files_checked_on_a_clean_store(oracle, tmp_path: Path) -> None:
    report, rc = verify(fresh_copy(oracle["containerd"], tmp_path))
    assert all(lr["files_checked"] > 0 for lr in report["layers"])
    assert all(lr["status"] == "ok" for lr in report["layers"])


def test_snapshot_tamperings_are_named_on_their_layer(store) -> None:
    root, app = store
    chain = next(lr["chain_id"] for lr in verify(root)[0]["layers"]
                 if lr["blob"]["digest"] == app.top_blob)
    fs = snapshot_dir(root, chain)
    files = sorted(p for p in fs.rglob("*") if p.is_file() and not p.is_symlink()
                   and p.stat().st_size > 0)
    changed, chmodded = files[0], files[-1]
    assert changed != chmodded
    data = bytearray(changed.read_bytes())
    data[0] ^= 0xFF
    changed.write_bytes(bytes(data))
    chmodded.chmod(chmodded.stat().st_mode | 0o4000)
    (fs / "added.txt").write_bytes(b"planted\n")
    report, rc = verify(root)
    rel = lambda p: str(p.relative_to(fs))
    assert rc == 1 and sorted(only_files(report, app.top_blob)) == sorted([
        (rel(changed), "changed"), (rel(chmodded), "metadata"), ("added.txt", "added")])


def same_crc64(data: bytes) -> bytes:
    """Other bytes of the same length and the same CRC-64 (a forgery anyone can make:
    a CRC is linear, so flips of the first bits whose CRC changes cancel out)."""
    from analyzer.digest import crc64_iso
    base, span = crc64_iso(data), min(len(data), 16)
    assert span * 8 > 64, "more bits than the CRC has, so some flips cancel"
    basis: dict[int, tuple[int, int]] = {}
    for bit in range(span * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        crc, bits = crc64_iso(bytes(flipped)) ^ base, 1 << bit
        while crc and (top := crc.bit_length() - 1) in basis:
            crc, bits = crc ^ basis[top][0], bits ^ basis[top][1]
        if crc:
            basis[top] = (crc, bits)
            continue
        out = bytearray(data)
        for i in range(span * 8):
            out[i // 8] ^= (bits >> i & 1) << (i % 8)
        assert bytes(out) != data and crc64_iso(bytes(out)) == base
        return bytes(out)
    raise AssertionError("unreachable: 65 vectors in 64 bits are dependent")


def test_a_snapshot_file_forged_to_its_crc64_is_named_by_its_bytes(store) -> None:
    """The snapshot's files are compared with the blob's stream byte for byte (its diff
    ID is not rebuilt from them): a file changed to keep its size and CRC-64 is named."""
    root, app = store
    chain = next(lr["chain_id"] for lr in verify(root)[0]["layers"]
                 if lr["blob"]["digest"] == app.top_blob)
    fs = snapshot_dir(root, chain)
    forged = next(p for p in sorted(fs.rglob("*")) if p.is_file() and not p.is_symlink()
                  and p.stat().st_size >= 16)
    forged.write_bytes(same_crc64(forged.read_bytes()))
    report, rc = verify(root)
    assert rc == 1 and only_files(report, app.top_blob) == [
        (str(forged.relative_to(fs)), "changed")]
    detail = only_layer(report, app.top_blob)["bad_files"][0]["detail"]
    assert "differs from the layer blob's stream at byte " in detail


def test_each_layer_blob_is_read_once_and_progress_ends_at_its_total(
        oracle, monkeypatch, tmp_path: Path) -> None:
    """The blob's digest, its diff ID and the snapshot's files come from one read of
    the blob; the progress counts the blob bytes read, up to the total it was given."""
    from analyzer.sources.evidence.directory import DirectoryRoot
    reads: list[str] = []
    content = DirectoryRoot.content
    monkeypatch.setattr(DirectoryRoot, "content",
                        lambda self, rel: (reads.append(rel), content(self, rel))[1])
    counted: list[int] = []
    root = fresh_copy(oracle["containerd"], tmp_path)
    with ImageService(str(root), lambda message: None) as service:
        total = service.verify_bytes(None)
        report = service.verify(None, 2, progress=counted.append)
    assert all(lr.files_checked > 0 for lr in report.layers)
    blobs = [r for r in reads if "/blobs/" in r]
    assert sorted(blobs) == sorted({lr.cache_id for lr in report.layers})
    assert sum(counted) == total > 0


def test_layers_verified_at_once_each_have_their_reader_beside(
        oracle, monkeypatch, tmp_path: Path) -> None:
    """-j 2 on two CPUs: two layers at once, each blob read and decompressed beside the
    thread hashing it and judging its snapshot (the two halves weigh alike; one thread
    doing both cost a fifth more CPU), and the verdicts are those of -j 1."""
    from analyzer.engines import blobverify
    monkeypatch.setattr(blobverify, "num_cpu", lambda: 2)
    readers: list[str] = []
    ahead = blobverify._ahead
    monkeypatch.setattr(blobverify, "_ahead", lambda items: (readers.append("reader"),
                                                            ahead(items))[1])
    root = fresh_copy(oracle["containerd"], tmp_path)
    with ImageService(str(root), lambda message: None) as service:
        one = service.verify(None, 1)
        assert len(readers) == len(one.layers) >= 2
        two = service.verify(None, 2)
    assert len(readers) == 2 * len(one.layers)
    assert two == one


def test_snapshots_between_layers_are_found_by_key() -> None:
    """By key, not by the backend's numbers: the walk goes from the top layer's chain
    ID down the parents; a loop or a key the store lacks ends it."""
    from analyzer.engines.containerdverify import snapshots_between
    parents = {"c3": "b-init", "b-init": "c2", "c2": "a-init", "a-init": "c1", "c1": ""}
    assert snapshots_between(["c1", "c2", "c3"], parents) == ["b-init", "a-init"]
    assert snapshots_between(["c1", "c2"], parents) == ["a-init"]
    assert snapshots_between(["c1"], parents) == [] == snapshots_between([], parents)
    assert snapshots_between(["c1", "c2"], {"c2": "x", "x": "c2"}) == ["x"]
    assert snapshots_between(["c1", "c2"], {"c2": "gone"}) == ["gone"]


def test_a_cut_gzip_blob_names_its_layer_and_judges_no_file_against_half_a_stream(
        oracle, tmp_path: Path) -> None:
    """The snapshot is checked from the blob's stream as it passes: a stream cut in
    half would make every later file look added. The blob's fault is named; its files
    are not judged against what is left."""
    root = fresh_copy(oracle["containerd"], tmp_path)
    built = ImageBlobs(root, BUILT)
    path = built.blob(built.top_blob)
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    report, rc = verify(root)
    layer = only_layer(report, built.top_blob)
    assert rc == 1 and layer["status"] == "mismatch" and "gzip stream" in layer["reason"]
    assert layer["bad_files"] == [] and not layer["blob"]["compressed_ok"]
