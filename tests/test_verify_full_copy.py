"""`analyze verify` on the drivers whose image layers are full copies of their parents' trees
(vfs copies it; legacy overlay's root/ hard-links its parent's regular files), on roots the
real dockerd 20.10 made. A layer's tar-split names only its own changes: the rest of its
directory is judged against the parent's copy (legacy overlay: the parent's inode; vfs:
moby's ChangesDirs test), and what the parent layer had is there unless a whiteout of the
layer removed it. Clean roots verify ok in every layer; each tampering is named on the
layer at fault and nothing else is.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import NamedTuple

import pytest

from analyzer.sources.tarsplit import iter_runs
from tests.oracle.daemon import copy_root
from tests.oracle.record import run_analyze

DRIVERS = ("vfs", "overlay")       # oracle scenario = storage driver


def verify(root: Path) -> dict[str, dict]:
    out, err, rc = run_analyze(root, 0, ["verify", "--json"])
    assert "Traceback" not in err and rc in (0, 1), err
    return {layer["chain_id"][7:]: layer for layer in json.loads(out)["layers"]}


def layerdb(root: Path, driver: str) -> Path:
    return root / "image" / driver / "layerdb" / "sha256"


def parent_of(root: Path, driver: str, chain: str) -> str | None:
    path = layerdb(root, driver) / chain / "parent"
    return path.read_text().strip()[7:] if path.exists() else None


def directory(root: Path, driver: str, chain: str) -> Path:
    cache_id = (layerdb(root, driver) / chain / "cache-id").read_text().strip()
    return root / driver / ("dir" if driver == "vfs" else "") / cache_id / (
        "root" if driver == "overlay" else "")


def own_files(root: Path, driver: str, chain: str) -> dict[str, int]:
    """The layer's tar-split members by name: size."""
    data = (layerdb(root, driver) / chain / "tar-split.json.gz").read_bytes()
    return {e.name.rstrip("/"): e.size for _, e in iter_runs([data], "t") if e is not None}


class Pick(NamedTuple):
    layer: str          # a layer with a parent and a child of its own
    parent: str         # a base layer
    own: str            # a regular file the layer's tar-split names
    inherited: str      # a regular file of the parent that the layer keeps as it was


def pick(root: Path, driver: str) -> Pick:
    chains = sorted(p.name for p in layerdb(root, driver).iterdir())
    parents = {c: parent_of(root, driver, c) for c in chains}
    for chain in chains:
        parent = parents[chain]
        if parent is None or parents[parent] is not None or chain not in parents.values():
            continue
        own = [n for n, size in own_files(root, driver, chain).items() if size > 0]
        named = own_files(root, driver, chain)
        inherited = [n for n, size in own_files(root, driver, parent).items()
                     if size > 0 and n not in named and not any(
                         m.startswith(p) for m in named for p in (".wh.", "/.wh."))]
        if own and inherited:
            return Pick(chain, parent, sorted(own)[0], sorted(inherited)[0])
    raise AssertionError(f"no layer with a base parent and a child in the {driver} root")


@pytest.mark.parametrize("driver", DRIVERS)
def test_clean_full_copy_roots_verify_ok_in_every_layer(oracle, driver):
    root = oracle[driver].root
    layers = verify(root)
    with_parent = [c for c in layers if parent_of(root, driver, c)]
    assert with_parent and len(with_parent) < len(layers)      # both kinds judged
    assert {c: (x["status"], x["bad_files"]) for c, x in layers.items()} == {
        c: ("ok", []) for c in layers}


def _rewrite(path: Path) -> None:
    """The same number of bytes, others, written in place (the inode stays)."""
    data = path.read_bytes()
    with open(path, "r+b") as f:
        f.write(bytes(b ^ 0xFF for b in data[:16]))


def _replace(path: Path) -> None:
    """Another file with the same bytes put in its place (a new inode, a new mtime)."""
    data = path.read_bytes()
    os.unlink(path)
    path.write_bytes(data)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("case", ["own-content", "own-setuid", "added", "inherited-content",
                                  "inherited-replaced", "inherited-deleted", "parent-added"])
def test_tampering_is_named_on_the_layer_at_fault(oracle, tmp_path, driver, case):
    root = tmp_path / "root"
    copy_root(oracle[driver].root, root)
    p = pick(root, driver)
    here, below = directory(root, driver, p.layer), directory(root, driver, p.parent)
    if case == "own-content":
        _rewrite(here / p.own)
        want = {p.layer: {(p.own, "changed")}}
    elif case == "own-setuid":
        (here / p.own).chmod((here / p.own).stat().st_mode | 0o4000)
        want = {p.layer: {(p.own, "metadata")}}
    elif case == "added":
        (here / p.own).with_name("planted").write_bytes(b"x\n")
        want = {p.layer: {(str(Path(p.own).with_name("planted")), "added")}}
    elif case == "inherited-content":
        # Through the layer's path: legacy overlay's is the parent's own inode, so the
        # parent layer (which owns it) is at fault; vfs's is the layer's copy.
        _rewrite(here / p.inherited)
        owner = p.parent if driver == "overlay" else p.layer
        want = {owner: {(p.inherited, "changed")}}
    elif case == "inherited-replaced":
        _replace(here / p.inherited)
        want = {p.layer: {(p.inherited, "changed")}}
    elif case == "inherited-deleted":
        (here / p.inherited).unlink()
        want = {p.layer: {(p.inherited, "missing")}}
    else:
        # Planted in the parent only: the parent names it; the layer's copy lacking it
        # is not the layer's fault.
        (below / p.inherited).with_name("planted").write_bytes(b"x\n")
        want = {p.parent: {(str(Path(p.inherited).with_name("planted")), "added")}}
    layers = verify(root)
    got = {c: {(b["path"], b["reason"]) for b in x["bad_files"]}
           for c, x in layers.items() if x["bad_files"] or x["status"] != "ok"}
    assert got == want, {c: layers[c]["bad_files"] for c in got}
    for chain in want:
        assert layers[chain]["status"] == "mismatch"


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_parent_copy_that_is_a_link_leaves_its_children_unverifiable(oracle, tmp_path,
                                                                        driver):
    """Hostile: the parent layer's directory is a symbolic link out of the root. It is not
    followed; the parent is missing and its child cannot tell its own files, so it says so."""
    root = tmp_path / "root"
    copy_root(oracle[driver].root, root)
    p = pick(root, driver)
    below = directory(root, driver, p.parent)
    moved = below.parent / (below.name + ".moved") if driver == "vfs" else below.with_name("x")
    below.rename(moved)
    below.symlink_to("/")
    layers = verify(root)
    assert layers[p.parent]["status"] == "missing"
    assert "symbolic link" in layers[p.parent]["reason"]
    child = layers[p.layer]
    assert child["status"] == "unverifiable" and child["bad_files"] == []
    assert "the parent layer's copy" in child["reason"], child
