"""The native tar-split scan (_csrc/tarsplit.c) against its spec, the Python reader and
verify's own judgement: on any layer, sound or damaged on disk or in its tar-split,
verify gives the same result with the scan as without it, and the scan does judge the
members it is made for."""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer import native
from analyzer.engines.verify import LayerResult, verify_layer
from analyzer.model import Layer, SoundMembers
from analyzer.sources.evidence import open_root
from analyzer.sources.layerfiles import LayerFiles
from analyzer.sources import layerfiles, tarsplit
from analyzer.sources.layout import diff_dir
from analyzer.sources.tarsplit import RunReader
from tests.layerdir import CACHE_ID, write_layer

pytestmark = pytest.mark.skipif(native.BACKEND != "native", reason="the scan is native")


def judge(top: Path, layer: Layer, scan: bool, root_ids: tuple[int, int] = (0, 0),
          after_walk: Callable[[], None] | None = None, readahead: int = -1
          ) -> tuple[LayerResult, int]:
    """verify_layer's result, and how many members the scan judged (its reader thread
    never, always, or as the CPUs allow: readahead 0, 1, -1); after_walk is called once
    the layer's directory is walked, before its tar-split is read."""
    sound: list[int] = []
    with open_root(str(top)) as root:
        files = LayerFiles(root, layer, threading.Lock(), "overlay2", root_ids=root_ids)
        files.readahead = readahead
        if not scan:
            files._scan = lambda reader, sha: None
        if after_walk is not None:
            walk = files.index
            files.index = lambda: (walk(), after_walk())[0]
        read = files.tar_split

        def counting(sha=None):
            members = read(sha)
            if members is None:
                return None
            return (sound.append(m.files) or m if type(m) is SoundMembers else m
                    for m in members)
        files.tar_split = counting
        try:
            return verify_layer(layer, files), sum(sound)
        finally:
            files.close()


def both(top: Path, layer: Layer, root_ids: tuple[int, int] = (0, 0)
         ) -> tuple[LayerResult, int]:
    """The verdict with the scan (its reader thread never and always) and without."""
    with_scan, sound = judge(top, layer, True, root_ids, readahead=1)
    alone, sound_alone = judge(top, layer, True, root_ids, readahead=0)
    without, none = judge(top, layer, False, root_ids)
    assert none == 0
    assert with_scan == alone == without
    assert sound == sound_alone
    return with_scan, sound


def test_sound_plain_files_are_the_scans(tmp_path):
    files = {f"d{i % 4}/f{i}": os.urandom(i * 97 % 5000) for i in range(60)}
    files |= {"big": os.urandom(200_000), ".hidden": b"x", "d0/.also": b"", "empty": b""}
    layer = write_layer(tmp_path, files)
    result, sound = both(tmp_path, layer)
    assert result.status == "ok", result
    # Every regular file but the dot-named ones (the reader's: names that Clean might change).
    assert sound == len(files) - 2
    assert result.files_checked == len(files) + 4        # and the four directories


def test_changed_files_are_left_to_the_reader(tmp_path):
    files = {f"f{i}": b"content %d\n" % i for i in range(10)}
    layer = write_layer(tmp_path, files)
    diff = tmp_path / diff_dir("overlay2", CACHE_ID)
    (diff / "f3").write_bytes(b"Content 3\n")
    os.chmod(diff / "f5", 0o600)
    result, sound = both(tmp_path, layer)
    assert sorted((b.path, b.reason) for b in result.bad_files) == [
        ("f3", "changed"), ("f5", "metadata")]
    assert sound == 8


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_owners_of_a_remapped_root(tmp_path):
    """A userns-remapped daemon stored each header's owner shifted by its root's IDs."""
    files = {f"f{i}": b"%d\n" % i for i in range(6)}
    layer = write_layer(tmp_path, files)
    diff = tmp_path / diff_dir("overlay2", CACHE_ID)
    for path in [diff, *diff.iterdir()]:
        st_ = path.lstat()
        os.lchown(path, st_.st_uid + 100000, st_.st_gid + 100000)
    os.lchown(diff / "f2", 0, 0)                  # not shifted: the header's owner as is
    result, sound = both(tmp_path, layer, (100000, 100000))
    assert [(b.path, b.reason) for b in result.bad_files] == [("f2", "metadata")]
    assert sound == 5


@pytest.mark.parametrize("readahead", [0, 1])
def test_a_directory_swapped_for_a_link_after_the_walk_is_not_followed(tmp_path, readahead):
    """The scan opens a file by its one name in its directory, the directory reached
    beneath the layer without links: one replaced by a link after the walk (a live host)
    leaves its files to the reader, though the link leads to the very files the walk saw."""
    layer = write_layer(tmp_path, {"d/f": b"one\n", "d/g": b"two\n", "top": b"3\n"})
    diff = tmp_path / diff_dir("overlay2", CACHE_ID)
    outside = tmp_path / "outside"

    def swap() -> None:
        (diff / "d").rename(outside)
        (diff / "d").symlink_to(outside)

    def restore() -> None:
        (diff / "d").unlink()
        outside.rename(diff / "d")

    with_scan, sound = judge(tmp_path, layer, True, after_walk=swap, readahead=readahead)
    restore()
    without, _ = judge(tmp_path, layer, False, after_walk=swap)
    assert with_scan == without
    assert sound == 1                                   # "top" alone
    assert {(b.path, b.reason) for b in with_scan.bad_files} >= {
        ("d/f", "changed"), ("d/g", "changed")}


def test_more_files_than_the_reader_thread_runs_ahead(tmp_path):
    """Hundreds of files in turn (the reader thread fills its slots and waits for the scan
    many times over), empty, small, mid-sized (the reader hands them over open) and big,
    some changed on disk among them: the verdict of the scan that reads its files itself,
    of the scan with the reader, and of the Python reader alone are one."""
    sizes = (0, 100, 1024, 9000, 70_000)
    files = {f"d{i % 7}/f{i}": os.urandom(sizes[i % 5]) for i in range(400)}
    layer = write_layer(tmp_path, files)
    diff = tmp_path / diff_dir("overlay2", CACHE_ID)
    for i in (151, 203, 304):                          # 100, 9000 and 70,000 bytes
        path = diff / f"d{i % 7}/f{i}"
        data = path.read_bytes()
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    os.chmod(diff / "d2/f352", 0o600)
    (diff / "d0/f399").unlink()
    result, sound = both(tmp_path, layer)
    assert sorted((b.path, b.reason) for b in result.bad_files) == [
        ("d0/f203", "changed"), ("d0/f399", "missing"), ("d2/f352", "metadata"),
        ("d3/f304", "changed"), ("d4/f151", "changed")]
    assert sound == len(files) - 5


def test_a_reader_started_at_once_after_a_long_run(tmp_path):
    """Each directory's entry is the caller's, so the scan is called again for each: after
    a call whose reader went AHEAD_BATCH files or more, the next one's reader starts at
    once (on two CPUs, readahead -1), and after a short run it waits again. Directories of
    many files and of one or two, damage just after the reader's start, in each way the
    same verdict as the scan alone and as the Python reader."""
    counts = [40, 30, 1, 2, 25, 3, 40]
    files = {f"d{d}/f{i:02d}": os.urandom(300 + i) for d, n in enumerate(counts)
             for i in range(n)}
    layer = write_layer(tmp_path, files)
    diff = tmp_path / diff_dir("overlay2", CACHE_ID)
    for name in ("d1/f00", "d1/f01", "d4/f00", "d6/f17"):
        data = (diff / name).read_bytes()
        (diff / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    os.chmod(diff / "d2/f00", 0o600)
    auto, sound = judge(tmp_path, layer, True, readahead=-1)
    with_scan, sound_always = both(tmp_path, layer)
    assert auto == with_scan
    assert sound == sound_always == len(files) - 5
    assert sorted((b.path, b.reason) for b in auto.bad_files) == [
        ("d1/f00", "changed"), ("d1/f01", "changed"), ("d2/f00", "metadata"),
        ("d4/f00", "changed"), ("d6/f17", "changed")]


def test_files_in_many_directories_in_turn(tmp_path):
    """The scan keeps the directory of the last file open for the next: files at the
    top, in directories and deep below, in turn, are judged all the same."""
    names = ["a", "d/b", "d/e/c", "d/f", "g", "d/e/h", "x/y/z/w"]
    layer = write_layer(tmp_path, {n: n.encode() for n in names})
    result, sound = both(tmp_path, layer)
    assert result.status == "ok", result
    assert sound == len(names)


def test_indexes_with_keys_of_their_own(tmp_path, monkeypatch):
    """The scan hashes a name once for the disk index and the reader's names when they
    share a key (LayerFiles makes them so), once for each when they do not: one verdict."""
    files = {f"d{i % 3}/f{i}": b"%d" % i for i in range(12)}
    layer = write_layer(tmp_path, files)
    monkeypatch.setattr(layerfiles, "RunReader", lambda source, key=None: RunReader(source))
    result, sound = both(tmp_path, layer)
    assert result.status == "ok", result
    assert sound == len(files)


def test_a_line_past_the_bound_is_named_by_its_number(tmp_path, monkeypatch):
    """The lines the scan consumed count in the number of a line refused past MAX_LINE."""
    monkeypatch.setattr(tarsplit, "MAX_LINE", 1000)   # a segment line is ~700 bytes
    layer = write_layer(tmp_path, {f"f{i}": b"%d" % i for i in range(5)})
    ts = tmp_path / layer.source / "tar-split.json.gz"
    text = gzip.decompress(ts.read_bytes())
    ts.write_bytes(gzip.compress(text + b'{"type":2,"payload":"' + b"A" * 1200, 1))
    result, sound = both(tmp_path, layer)
    assert sound == 5
    number = text.count(b"\n") + 1
    assert result.reason.endswith(
        f"line {number}: longer than 1000 bytes; not a tar-split entry"), result


NAMES = st.sampled_from(["a", "b", "d/c", "d/e", "d/f/g", ".dot", "d/.wh.x", "h i", "j\u00e9"])
DAMAGE = st.sampled_from(["chmod", "flip", "truncate", "append", "unlink", "add", "xattr",
                          "symlink", "chown"])


def _damage(diff: Path, name: str, kind: str) -> None:
    path = diff / name
    if kind == "add":
        (diff / f"{name.replace('/', '_')}.new").write_bytes(b"new")
        return
    if not path.is_file() or path.is_symlink():
        return
    if kind == "chmod":
        os.chmod(path, 0o640)
    elif kind == "flip":
        data = path.read_bytes()
        if data:
            path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    elif kind == "truncate":
        os.truncate(path, max(0, path.stat().st_size - 1))
    elif kind == "append":
        with open(path, "ab") as f:
            f.write(b"+")
    elif kind == "unlink":
        path.unlink()
    elif kind == "xattr":
        try:
            os.setxattr(path, "user.analyzer", b"1")
        except OSError:
            pass
    elif kind == "symlink":
        path.unlink()
        path.symlink_to("a")
    elif kind == "chown":
        os.lchown(path, 4242, 4242) if os.geteuid() == 0 else None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(NAMES, st.binary(max_size=700), min_size=1, max_size=8),
       damages=st.lists(st.tuples(NAMES, DAMAGE), max_size=3),
       edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=3))
def test_same_verdict_with_and_without_the_scan(files, damages, edits):
    """Damage on disk, and bytes of the tar-split's text changed (bad JSON, base64,
    headers, names, sizes, CRCs): the scan never changes a verdict, a reason or a line
    number in one."""
    if any(b.startswith(a + "/") for a in files for b in files):
        return                                          # a file where a directory must be
    top = Path(tempfile.mkdtemp(prefix="scan-"))
    try:
        layer = write_layer(top, files)
        diff = top / diff_dir("overlay2", CACHE_ID)
        for name, kind in damages:
            _damage(diff, name, kind)
        if edits:
            ts = top / layer.source / "tar-split.json.gz"
            text = bytearray(gzip.decompress(ts.read_bytes()))
            for at, byte in edits:
                text[at % len(text)] = byte
            ts.write_bytes(gzip.compress(bytes(text), 1))
        both(top, layer)
    finally:
        shutil.rmtree(top)
