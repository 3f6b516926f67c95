"""User-namespace-remapped roots (dockerd --userns-remap=default): everything the daemon
keeps is in ``<data-root>/100000.100000/``, and files in layers are owned by host IDs
shifted by 100000.

dockerd 20.10's remapped root is an oracle scenario ("userns": every command and rm
case, read as ``--data-root ROOT/100000.100000``). Here: the data root itself (the
remapped root found, said on stderr, the others listed), dockerd 28.5's remapped root
judged by its own daemon, and verify's owners.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.oracle.build import ImageSpec, busybox_layer, save_archive, synthetic_layer
from tests.oracle.daemon import JUDGES, Daemon, copy_root
from tests.oracle.record import (analyze_args, compare_text, match_over_time, run_analyze,
                                 tar_members, timed)

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

COMMANDS = [
    ["ps", "-a"],
    ["image", "ls", "--format", "{{.ID}} {{.Repository}}:{{.Tag}} {{.Size}}"],
    ["image", "history", "app:1"],
    ["diff", "writer"],
    ["export", "writer"],
]


@pytest.fixture(scope="module")
def live28(tmp_path_factory) -> tuple[Path, list[dict], dict[str, int]]:
    tmp = tmp_path_factory.mktemp("userns28")
    rng = random.Random(516)
    with Daemon(judge=JUDGES["dockerd28-userns"]) as d:
        d.run("load", input=save_archive([
            ImageSpec([busybox_layer()], datetime(2024, 1, 1, tzinfo=timezone.utc),
                      ["base:1"]),
            ImageSpec([busybox_layer(), synthetic_layer(rng, "app", 4, (100, 5000))],
                      datetime(2024, 2, 1, tzinfo=timezone.utc), ["app:1"])]))
        d.run("run", "--network", "none", "--name", "writer", "app:1", "sh", "-c",
              "echo rw > /rwfile; rm -r /app; mkdir /new; chown 5:6 /new")
        d.run("create", "--network", "none", "--name", "idle", "base:1", "true")
        entries = [timed(d, argv) for argv in COMMANDS]
        created = {i["Id"][7:]: int(datetime.fromisoformat(i["Created"][:19]).replace(
            tzinfo=timezone.utc).timestamp()) for i in d.inspect("image", "base:1", "app:1")}
        root = d.snapshot(tmp / "root")
    assert root.name == REMAPPED
    return root, entries, created


@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[" ".join(c) for c in COMMANDS])
def test_dockerd28_remapped_root_as_docker_prints_it(live28, index, tmp_path):
    root, entries, created = live28
    entry = entries[index]
    args = analyze_args(entry["docker"])
    if args[0] == "export":
        out = tmp_path / "out.tar"
        _, err, rc = run_analyze(_remapped(root), entry["t_after"],
                                 [*args, "-o", str(out)])
        assert rc == 0, err
        assert tar_members(out.read_bytes()) == entry["stdout"]
        return
    # Read through the data root: the remapped root is found, and said so on stderr.
    note = (f"analyze: {_remapped(root)}: a user-namespace-remapped root (dockerd "
            f"--userns-remap): read {root}\n")
    want = {**entry, "stderr": note + entry["stderr"]}
    match_over_time(_remapped(root), want, args, compare_text(want, created, args[0]))


def test_dockerd28_remapped_root_verifies(live28):
    root, _, _ = live28
    out, err, rc = run_analyze(root, 0, ["verify", "--json"])
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
