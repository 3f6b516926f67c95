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


@pytest.mark.parametrize("scenario", ["containerd", "containerd-system"])
def test_clean_store_verifies_ok(oracle, scenario: str, tmp_path: Path) -> None:
    report, rc = verify(fresh_copy(oracle[scenario], tmp_path))
    assert rc == 0 and report["ok"] and bad(report) == ([], [])
    assert all(lr["blob"]["compressed_ok"] for lr in report["layers"])
    assert len(report["images"]) >= 9 and report["bytes_hashed"] > 2_000_000


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
    assert rc == 0 and all(lr["files_checked"] > 0 for lr in report["layers"])


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
