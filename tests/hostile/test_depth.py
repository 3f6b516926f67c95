"""Class 4 of issue 10: depth the evidence chooses.

1,000 to 10,000 nested directories in a layer or a container's read-write layer made
``reclaim``, ``inspect``, ``verify`` and ``df -v`` fail with RecursionError. No walk
recurses over the tree now, and none keeps an fd per level: the answers are whole.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from . import analyze, cache_id, nest

CENTOS_LAYER = "2e37a15d485b4f9f8c209a55665cc5f645b61965011ea0cec1379b2f234a3f03"
DEPTH = 3000            # past Python's recursion limit, and past 1024 open files


def _allocated(inspect_out: str) -> dict[str, int]:
    image = json.loads(inspect_out)[0]
    return {layer["ChainID"][7:]: layer["AllocatedBytes"] for layer in image["AnalyzerLayers"]}


def _deep_layer(ev) -> str:
    diff = ev.path / "overlay2" / cache_id(ev.path, CENTOS_LAYER) / "diff"
    return nest(diff, DEPTH)


def test_deep_layer_inspect_reclaim_verify(sample_root, damaged, baseline):
    ev = damaged(sample_root)
    deepest = _deep_layer(ev)
    ev.seal()
    got = ev.run("inspect", "centos:latest").check()
    want = _allocated(baseline(sample_root, "inspect", "centos:latest").out)
    # Every directory and the file at the bottom counted: at least a block each.
    assert _allocated(got.out)[CENTOS_LAYER] >= want[CENTOS_LAYER] + (DEPTH + 1) * 4096

    got = ev.run("reclaim", "--json", "centos:latest").check()
    freed = json.loads(got.out)["bytes_freed"]
    assert freed >= json.loads(baseline(sample_root, "reclaim", "--json", "centos:latest")
                               .out)["bytes_freed"] + (DEPTH + 1) * 4096

    got = ev.run("verify", "--json", "centos:latest").check(1)
    layer = json.loads(got.out)["layers"][0]
    assert layer["status"] == "mismatch"
    added = {b["path"] for b in layer["bad_files"] if b["reason"] == "added"}
    assert f"{deepest}/leaf" in added and "d" in added and len(added) == DEPTH + 1


def test_deep_container_layer_df(sample_root, damaged, baseline):
    ev = damaged(sample_root)
    mounts = ev.path / "image/overlay2/layerdb/mounts"
    victim = sorted(p.name for p in mounts.iterdir())[0]
    mount_id = (mounts / victim / "mount-id").read_text().strip()
    nest(ev.path / "overlay2" / mount_id / "diff", DEPTH, leaf=b"x" * 1234)
    ev.seal()
    got = ev.run("df", "-v").check()
    row = next(line for line in got.out.splitlines() if line.startswith(victim[:12]))
    assert "1.23kB" in row, got.out
    before = baseline(sample_root, "df", "-v").out
    assert [line for line in got.out.splitlines() if not line.startswith(victim[:12])] == [
        line for line in before.splitlines() if not line.startswith(victim[:12])]


def test_deep_tree_in_an_archive_root(sample_root, damaged, baseline, scratch):
    ev = damaged(sample_root)
    _deep_layer(ev)
    archive = scratch / f"{ev.path.name}.tar.gz"
    subprocess.run(["tar", "czf", str(archive), "-C", str(ev.path), "."], check=True)
    try:
        got = analyze(archive, "inspect", "centos:latest").check()
        want = _allocated(baseline(sample_root, "inspect", "centos:latest").out)
        assert _allocated(got.out)[CENTOS_LAYER] >= want[CENTOS_LAYER] + DEPTH * 4096
        analyze(archive, "verify", "centos:latest").check(1)
    finally:
        archive.unlink()


@pytest.mark.parametrize("depth", [10_000])
def test_ten_thousand_levels(sample_root, damaged, depth):
    ev = damaged(sample_root)
    nest(ev.path / "overlay2" / cache_id(ev.path, CENTOS_LAYER) / "diff", depth)
    ev.seal()
    got = ev.run("reclaim", "--json", "centos:latest").check()
    assert json.loads(got.out)["bytes_freed"] > depth * 4096
    assert not got.warnings()


def test_tar_split_of_many_gzip_members(sample_root, damaged, baseline):
    """The same tar-split stream, written as one gzip member per 4 bytes: Go's reader is
    multistream, so the layer verifies as before; each member is read in a loop."""
    import gzip
    ev = damaged(sample_root)
    path = ev.path / "image/overlay2/layerdb/sha256" / CENTOS_LAYER / "tar-split.json.gz"
    stream = gzip.decompress(path.read_bytes())
    path.write_bytes(b"".join(gzip.compress(stream[i:i + 4], mtime=0)
                              for i in range(0, len(stream), 4)))
    assert len(stream) // 4 > 2000
    ev.seal()
    got = ev.run("verify", "centos:latest").check()
    assert got.out == baseline(sample_root, "verify", "centos:latest").out
