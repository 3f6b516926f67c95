"""The forensic commands on hostile roots: entries that are no regular files, links that
lead out, a layer directory that is a link (issue 19 under the issue 10 classes)."""
from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path

from . import Evidence


def _rw_layer(root: Path, name: str) -> Path:
    """The overlay2 directory of the RW layer of the container called name."""
    for ctr in os.listdir(root / "containers"):
        config = json.loads((root / "containers" / ctr / "config.v2.json").read_bytes())
        if config["Name"] == f"/{name}":
            mounts = root / "image/overlay2/layerdb/mounts" / ctr
            return root / "overlay2" / (mounts / "mount-id").read_text().strip()
    raise LookupError(name)


def test_diff_lists_planted_entries_without_opening_or_following_them(sample_root, damaged):
    ev: Evidence = damaged(sample_root)
    diff = _rw_layer(ev.path, "web") / "diff"
    os.mkfifo(diff / "pipe")
    os.mknod(diff / "null", 0o600 | 0o020000, os.makedev(1, 3))
    (diff / "escape").symlink_to("/")
    (diff / "sub").mkdir()
    (diff / "sub" / "f").write_bytes(b"x")
    ev.seal()
    got = ev.run("diff", "web").check(0)
    assert got.out == "A /escape\nA /null\nA /pipe\nA /sub\nA /sub/f\n", got.describe()
    ev.untouched()


def test_diff_of_a_layer_directory_that_is_a_link_names_it(sample_root, damaged):
    ev: Evidence = damaged(sample_root)
    diff = _rw_layer(ev.path, "web") / "diff"
    diff.rename(diff.with_name("diff-moved"))
    diff.symlink_to("/")
    ev.seal()
    got = ev.run("diff", "web").check(2)
    rel = os.path.relpath(diff, ev.path)
    assert f"analyze: error: {rel}: is a symbolic link" in got.err, got.describe()
    assert got.out == ""
    ev.untouched()


def test_export_writes_planted_entries_as_headers_and_never_into_the_evidence(
        sample_root, damaged, tmp_path):
    ev: Evidence = damaged(sample_root)
    diff = _rw_layer(ev.path, "web") / "diff"
    os.mkfifo(diff / "pipe")
    os.mknod(diff / "null", 0o600 | 0o020000, os.makedev(1, 3))
    (diff / "escape").symlink_to("/etc")
    ev.seal()
    out = tmp_path / "web.tar"
    ev.run("export", "web", "-o", str(out)).check(0)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar}
    assert members["null"].ischr() and (members["null"].devmajor, members["null"].devminor) == (1, 3)
    assert members["pipe"].isfifo() and members["escape"].issym()
    assert members["escape"].linkname == "/etc" and "escape/passwd" not in members
    for inside in (ev.path / "web.tar", diff / "web.tar"):
        got = ev.run("export", "web", "-o", str(inside)).check(2)
        assert "inside the evidence" in got.err and not inside.exists(), got.describe()
    ev.untouched()


def _planted(sample_root, damaged) -> tuple[Evidence, str]:
    """A copy of the sample whose container "web" holds hostile entries in /loot, and
    where its RW layer's files are (relative to the root)."""
    ev: Evidence = damaged(sample_root)
    diff = _rw_layer(ev.path, "web") / "diff"
    (diff / "loot").mkdir()
    os.mknod(diff / "loot" / "null", 0o600 | 0o020000, os.makedev(1, 3))
    os.mkfifo(diff / "loot" / "pipe")
    (diff / "loot" / "escape").symlink_to("/")
    (diff / "loot" / "up").symlink_to("../../../../..")
    (diff / "loot" / "suid").write_bytes(b"#!/bin/sh\n")
    os.chmod(diff / "loot" / "suid", 0o6755)
    return ev.seal(), os.path.relpath(diff, ev.path)


def test_cp_writes_only_below_dest_and_makes_no_devices(sample_root, damaged, tmp_path):
    ev, diff = _planted(sample_root, damaged)
    dest = tmp_path / "out"
    dest.mkdir()
    got = ev.run("cp", "web:/loot", str(dest)).check(0)
    loot = dest / "loot"
    assert sorted(os.listdir(loot)) == ["escape", "suid", "up"], got.describe()
    assert got.warned(f"{diff}/loot/null", "not made"), got.describe()
    assert got.warned(f"{diff}/loot/pipe", "not made"), got.describe()
    assert os.readlink(loot / "escape") == "/" and os.readlink(loot / "up") == "../../../../.."
    assert stat.S_IMODE(os.lstat(loot / "suid").st_mode) == 0o755        # set-ID bits gone
    assert sorted(os.listdir(tmp_path)) == ["out"]
    # --preserve keeps them; a path climbing out of the container stays inside it.
    ev.run("cp", "--preserve", "web:/loot/suid", str(tmp_path / "kept")).check(0)
    assert stat.S_IMODE(os.lstat(tmp_path / "kept").st_mode) == 0o6755
    ev.run("cp", "web:/../../../loot/up/loot/suid", str(tmp_path / "climbed")).check(0)
    assert (tmp_path / "climbed").read_bytes() == b"#!/bin/sh\n"
    ev.untouched()


def test_cp_never_writes_through_a_link_in_dest_nor_into_the_evidence(
        sample_root, damaged, tmp_path):
    ev, _ = _planted(sample_root, damaged)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "loot").symlink_to(elsewhere)                 # planted where cp would write
    got = ev.run("cp", "web:/loot", str(dest)).check(2)
    assert "File exists" in got.err and os.listdir(elsewhere) == [], got.describe()
    for inside in (ev.path, ev.path / "containers"):
        got = ev.run("cp", "web:/loot", str(inside)).check(2)
        assert "inside the evidence" in got.err, got.describe()
    ev.untouched()


def test_owner_names_what_a_path_or_id_belongs_to(sample_root, damaged):
    ev: Evidence = damaged(sample_root)
    root = ev.path
    web = next(c for c in os.listdir(root / "containers")
               if json.loads((root / "containers" / c / "config.v2.json").read_bytes())["Name"]
               == "/web")
    rw = _rw_layer(root, "web")
    layerdb = root / "image/overlay2/layerdb/sha256"
    chain = next(c for c in sorted(os.listdir(layerdb)) if (layerdb / c / "parent").exists())
    cache = (layerdb / chain / "cache-id").read_text().strip()
    link = (root / "overlay2" / cache / "link").read_text().strip()
    (root / "overlay2/l/OUT").symlink_to("../../../etc")        # a link leading out
    ev.seal()
    got = ev.run("owner", f"{os.path.relpath(rw, root)}/diff").check(0)
    assert got.out.splitlines()[-1] == f"container  {web} web", got.describe()
    got = ev.run("owner", str(root / "containers" / web / "config.v2.json")).check(0)
    assert f"container  {web} web" in got.out, got.describe()
    by_path = ev.run("owner", f"overlay2/{cache}/diff").check(0)
    by_link = ev.run("owner", f"overlay2/l/{link}").check(0)
    by_id = ev.run("owner", "--json", chain[:12]).check(0)
    assert by_path.out == by_link.out and f"layer      sha256:{chain}" in by_path.out
    doc = json.loads(by_id.out)
    assert [la["chain_id"] for la in doc["layers"]] == [f"sha256:{chain}"]
    assert doc["images"] and all("tags" in i for i in doc["images"]) and "analysis" in doc
    assert ev.run("owner", "overlay2/l/OUT").check(1).out == ""
    assert ev.run("owner", "nothing-of-theirs").check(1).out == ""
    ev.untouched()
