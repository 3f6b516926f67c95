"""Drivers whose image store analyze reads but not their layers' files: btrfs (judged by
dockerd 20.10 on a real btrfs, the oracle scenario "btrfs"), zfs and fuse-overlayfs.

What the image, layer and reference stores answer alone (ls, ps, history, inspect, rm,
image prune) is compared with Docker by the oracle tests like any scenario's; what
needs the layers' files is refused by name, exit 2, never answered wrong.
"""
from __future__ import annotations

import json

import pytest

from tests.oracle.daemon import copy_root
from tests.oracle.record import analyze_args, refused_cases, run_analyze

REFUSED = "the {driver} storage driver is not read yet ("


def _refused(root, args, driver="btrfs", what=None) -> None:
    out, err, rc = run_analyze(root, 0, args)
    assert (out, rc) == ("", 2), (out, err)
    assert err.startswith(f"analyze: error: {root}: " + REFUSED.format(driver=driver)), err
    assert err.count("\n") == 1
    if what is not None:
        assert f"): {what} is not answered;" in err, err


@pytest.mark.parametrize("case", refused_cases(), ids=str)
def test_what_reads_layer_files_is_refused_by_name(oracle, case):
    rec = oracle[case.scenario]
    assert rec.data["judge"].endswith("btrfs")
    _refused(rec.root, analyze_args(case.template))


@pytest.mark.parametrize("args, what", [
    (["verify"], "verify"), (["du"], "du"), (["reclaim", "busybox"], "the bytes a removal frees"),
    (["prune", "-a", "--json"], "the bytes a removal frees"),
    # The meter measures every removal on the root, volumes too.
    (["volume", "prune", "--json"], "the bytes a removal frees"),
])
def test_analyzer_commands_on_layer_files_are_refused(oracle, args, what):
    _refused(oracle["btrfs"].root, args, what=what)


def test_the_layers_are_btrfs_subvolumes_not_read(oracle):
    root = oracle["btrfs"].root
    assert (root / "btrfs" / "subvolumes").is_dir()
    out, err, rc = run_analyze(root, 0, ["inspect", "--format", "{{json .GraphDriver}}",
                                         "busybox"])
    assert (out, err, rc) == ('{"Data":null,"Name":"btrfs"}\n', "", 0)


@pytest.mark.parametrize("driver", ["zfs", "fuse-overlayfs"])
def test_zfs_and_fuse_overlayfs_answer_from_the_image_store_and_refuse_the_rest(
        oracle, tmp_path, driver):
    """The image store of either is the same as btrfs's; inspect is refused too: zfs's
    GraphDriver.Data names the pool's dataset, fuse-overlayfs's is not judged."""
    rec = oracle["btrfs"]
    root = tmp_path / "root"
    copy_root(rec.root / "image" / "btrfs", root / "image" / driver)
    copy_root(rec.root / "containers", root / "containers")
    want, _, _ = run_analyze(rec.root, 0, ["ls", "-a", "--no-trunc"])
    assert run_analyze(root, 0, ["ls", "-a", "--no-trunc"]) == (want, "", 0)
    want, _, _ = run_analyze(rec.root, 0, ["ps", "-a"])
    assert run_analyze(root, 0, ["ps", "-a"]) == (want, "", 0)
    for args, what in ((["inspect", "busybox"], "GraphDriver.Data"), (["df"], "df"),
                       (["verify"], "verify"), (["ps", "-s"], "ps --size")):
        _refused(root, args, driver, what)
    out, err, rc = run_analyze(root, 0, ["du"])
    assert rc == 2 and f"the {driver} storage driver is not read yet" in err


def test_a_subvolume_path_names_its_layer(oracle):
    root = oracle["btrfs"].root
    out, err, rc = run_analyze(root, 0, ["inspect", "--format",
                                         "{{json .AnalyzerLayers}}", "busybox"])
    layer = json.loads(out)[0]
    out, err, rc = run_analyze(root, 0, ["owner", "--json",
                                         f"btrfs/subvolumes/{layer['CacheID']}"])
    assert rc == 0, err
    assert [l["chain_id"] for l in json.loads(out)["layers"]] == [layer["ChainID"]]
