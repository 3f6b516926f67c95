"""User-namespace-remapped roots (dockerd --userns-remap=default): everything the daemon
keeps is in ``<data-root>/100000.100000/``, and files in layers are owned by host IDs
shifted by 100000.

dockerd 20.10's and dockerd 28.5's remapped roots are oracle scenarios ("userns",
"userns28": every command and rm case, read as ``--data-root ROOT/100000.100000``).
Here: the data root itself (the remapped root found, said on stderr, the others
listed; 28.5's whole command set read that way), and verify's owners.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.oracle.daemon import copy_root
from tests.oracle.record import (analyze_args, commands_for, compare_inspect, compare_text,
                                 is_json_inspect, match_over_time, run_analyze, tar_members)
from tests.oracle.scenarios import SCENARIOS

REMAPPED = "100000.100000"


def _remapped(rec_root: Path) -> Path:
    assert rec_root.name == REMAPPED, rec_root
    return rec_root.parent


def test_the_data_root_reads_its_remapped_root_and_says_so(oracle):
    rec = oracle["userns"]
    top = _remapped(rec.root)
    entry = next(e for e in rec.data["commands"] if e["docker"] == ["image", "ls"])
    out, err, rc = run_analyze(top, entry["t_after"], ["ls"])
    direct = run_analyze(rec.root, entry["t_after"], ["ls"])
    assert (out, rc) == (direct[0], 0) and direct[1] == ""
    assert err == (f"analyze: {top}: a user-namespace-remapped root (dockerd --userns-remap): "
                   f"read {top}/{REMAPPED}\n")


def test_every_remapped_root_is_named_and_the_plain_root_read_first(oracle, tmp_path):
    rec = oracle["userns"]
    top = tmp_path / "docker"
    # Three roots: the plain one (as if the daemon ran unremapped before), two remaps.
    copy_root(rec.root, top / REMAPPED)
    shutil.copytree(rec.root / "image", top / "200000.200000" / "image", symlinks=True)
    shutil.copytree(rec.root / "image", top / "image", symlinks=True)
    (top / "9.x").mkdir()                                  # not <uid>.<gid>: not a root
    out, err, rc = run_analyze(top, 0, ["ls", "-q"])
    assert rc == 0 and out
    assert err == (f"analyze: {top}: read as a plain root; user-namespace-remapped roots "
                   f"(dockerd --userns-remap) there too: {top}/{REMAPPED}, "
                   f"{top}/200000.200000\n")
    shutil.rmtree(top / "image")
    out, err, rc = run_analyze(top, 0, ["ls", "--format", "json"])
    assert rc == 0
    assert err == (f"analyze: {top}: a user-namespace-remapped root (dockerd --userns-remap): "
                   f"read {top}/{REMAPPED}; also remapped there: {top}/200000.200000\n")
    out, err, rc = run_analyze(top, 0, ["verify", "--json"])
    assert json.loads(out)["analysis"]["source"] == f"{top}/{REMAPPED}"


def test_verify_compares_owners_shifted_by_the_remapped_root(oracle, tmp_path):
    rec = oracle["userns"]
    out, err, rc = run_analyze(rec.root, 0, ["verify", "--json"])
    report = json.loads(out)
    assert rc == 0, err
    assert report["layers"] and all(l["status"] == "ok" for l in report["layers"])
    # An owner left as the tar header has it (not shifted) is a change of owner.
    root = tmp_path / REMAPPED
    copy_root(rec.root, root)
    diff = root / "overlay2" / report["layers"][0]["cache_id"] / "diff"
    victim = next(p for p in sorted(diff.rglob("*"))
                  if p.is_file() and not p.is_symlink() and p.stat().st_nlink == 1)
    assert (victim.stat().st_uid, victim.stat().st_gid) == (100000, 100000)
    os.chown(victim, 0, 0)
    out, _, rc = run_analyze(root, 0, ["verify", "--json"])
    bad = [(b["path"], b["reason"], b["detail"])
           for l in json.loads(out)["layers"] for b in l["bad_files"]]
    assert rc == 1
    assert bad == [(str(victim.relative_to(diff)), "metadata",
                    "owner want=100000:100000 got=0:0")]


# -- dockerd 28.5's remapped root -----------------------------------------------------
# The "userns28" scenario: every command and rm case is judged on the remapped root
# itself by the test_oracle_* modules; here each read-only one again through the data
# root above it, where the remapped root is found and said so.
COMMANDS28 = [c for c in commands_for(SCENARIOS["userns28"]) if c[0] != "export"]


@pytest.mark.parametrize("index", range(len(COMMANDS28)),
                         ids=[" ".join(c) for c in COMMANDS28])
def test_dockerd28_remapped_root_as_docker_prints_it(oracle, index):
    rec = oracle["userns28"]
    entry = next(e for e in rec.data["commands"] if e["template"] == COMMANDS28[index])
    args = analyze_args(entry["docker"])
    top = _remapped(rec.root)
    note = (f"analyze: {top}: a user-namespace-remapped root (dockerd "
            f"--userns-remap): read {rec.root}\n")
    want = {**entry, "stderr": note + entry["stderr"]}
    if is_json_inspect(args):
        compare = compare_inspect(want, rec.data["live_root"], rec.root)
    else:
        compare = compare_text(want, rec.created, args[0])
    match_over_time(top, want, args, compare)


def test_dockerd28_remapped_root_exports_through_the_data_root(oracle, tmp_path):
    rec = oracle["userns28"]
    entry = next(e for e in rec.data["commands"] if e["docker"][0] == "export")
    out = tmp_path / "out.tar"
    _, err, rc = run_analyze(_remapped(rec.root), entry["t_after"],
                             [*analyze_args(entry["docker"]), "-o", str(out)])
    assert rc == 0, err
    assert tar_members(out.read_bytes()) == entry["stdout"]


def test_dockerd28_remapped_root_verifies(oracle):
    out, err, rc = run_analyze(oracle["userns28"].root, 0, ["verify", "--json"])
    assert rc == 0, err
    assert all(l["status"] == "ok" for l in json.loads(out)["layers"])


def test_an_absolute_path_in_the_remapped_root_names_its_layer(oracle):
    rec = oracle["userns"]
    out, _, _ = run_analyze(rec.root, 0, ["inspect", "--format",
                                          "{{json .AnalyzerLayers}}", "busybox"])
    layer = json.loads(out)[0]
    path = rec.root / "overlay2" / layer["CacheID"] / "diff"
    out, err, rc = run_analyze(_remapped(rec.root), 0, ["owner", "--json", str(path)])
    assert rc == 0, err
    assert [l["chain_id"] for l in json.loads(out)["layers"]] == [layer["ChainID"]]
