"""The native scan of a layer blob's own tar stream (_csrc/tarsplit.c ts_scan_stream,
for containerd's unpacked snapshots) against its spec, split_tar and verify's own
judgement: on any layer, sound or damaged on disk or in its stream, verify gives the
same result with the scan as without it, and the scan does judge the small members it
is made for, whole in a chunk, in ustar and in PAX (times only) form."""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analyzer import native
from analyzer.engines.verify import LayerResult, verify_layer
from analyzer.model import Layer, SoundMembers
from analyzer.sources.evidence import open_root
from analyzer.sources.layerfiles import SnapshotFiles
from analyzer.sources.layout import diff_dir
from tests.layerdir import CACHE_ID, layer_tar, write_layer
from tests.test_tarsplit_scan import DAMAGE, NAMES, _damage

pytestmark = pytest.mark.skipif(native.BACKEND != "native", reason="the scan is native")
UPPER = diff_dir("overlay2", CACHE_ID)


def judge(top: Path, layer: Layer, stream: bytes, scan: bool, chunk: int = 1 << 20
          ) -> tuple[LayerResult, int]:
    """verify_layer's result on the snapshot against the stream (in chunks of chunk
    bytes), and how many members the scan judged."""
    sound: list[int] = []
    chunks = [stream[i:i + chunk] for i in range(0, len(stream), chunk)]
    with open_root(str(top)) as root:
        files = SnapshotFiles(root, layer, threading.Lock(), UPPER, "blob", iter(chunks))
        if not scan:
            files._scan = lambda seen, sha: None
        read = files.tar_split
        files.tar_split = lambda sha=None: (
            sound.append(m.files) or m if type(m) is SoundMembers else m for m in read(sha))
        try:
            return verify_layer(layer, files), sum(sound)
        finally:
            files.close()


def both(top: Path, layer: Layer, stream: bytes, chunk: int = 1 << 20
         ) -> tuple[LayerResult, int]:
    with_scan, sound = judge(top, layer, stream, True, chunk)
    without, none = judge(top, layer, stream, False, chunk)
    assert none == 0
    assert with_scan == without
    return with_scan, sound


@pytest.mark.parametrize("form", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT])
def test_sound_small_files_are_the_scans(tmp_path, form):
    files = {f"d{i % 4}/f{i}": os.urandom(i * 97 % 5000) for i in range(60)}
    files |= {"big": os.urandom(200_000), ".hidden": b"x", "d0/.also": b"", "empty": b""}
    layer = write_layer(tmp_path, files)
    result, sound = both(tmp_path, layer, layer_tar(tmp_path / UPPER, form=form))
    assert result.status == "ok", result
    # Every regular file but the big one and the dot-named ones (the reader's).
    assert sound == len(files) - 3
    assert result.files_checked == len(files) + 4        # and the four directories
    assert result.bytes_hashed == sum(map(len, files.values()))


def test_changed_files_are_left_to_the_reader(tmp_path):
    files = {f"f{i}": b"content %d\n" % i for i in range(10)}
    layer = write_layer(tmp_path, files)
    stream = layer_tar(tmp_path / UPPER)
    diff = tmp_path / UPPER
    (diff / "f3").write_bytes(b"Content 3\n")           # same size, same mode: bytes differ
    os.chmod(diff / "f5", 0o4755)                       # set-uid
    (diff / "f7").write_bytes(b"content 7\n+")
    (diff / "added").write_bytes(b"new")
    result, sound = both(tmp_path, layer, stream)
    assert sorted((b.path, b.reason) for b in result.bad_files) == [
        ("added", "added"), ("f3", "changed"), ("f5", "metadata"), ("f7", "changed")]
    assert sound == 7


def test_members_across_chunks_and_pax_records_of_more_than_times(tmp_path):
    """A member cut by a chunk's end, and one whose PAX header names its path (a long
    name), are the reader's; the scan takes up again after each."""
    long = "p" * 60 + "/" + "q" * 60          # PAX records its path; ustar splits it
    files = {f"f{i}": b"%d\n" % i * 50 for i in range(40)} | {long: b"long name\n"}
    layer = write_layer(tmp_path, files)
    stream = layer_tar(tmp_path / UPPER, form=tarfile.PAX_FORMAT)
    result, whole = both(tmp_path, layer, stream)
    assert result.status == "ok", result
    assert whole == len(files) - 1
    result, cut = both(tmp_path, layer, stream, chunk=3000)
    assert result.status == "ok", result
    assert 0 < cut < whole


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(NAMES, st.binary(max_size=700), min_size=1, max_size=8),
       damages=st.lists(st.tuples(NAMES, DAMAGE), max_size=3),
       edits=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=3),
       pax=st.booleans(), chunk=st.sampled_from([512, 700, 4096, 1 << 20]))
# An unreadable owner in the first header: the members after it are read after its padding.
@example(files={".dot": b"\x00", "a": b"", "d/c": b""}, damages=[], edits=[(108, 1)],
         pax=False, chunk=4096)
def test_same_verdict_with_and_without_the_scan(files, damages, edits, pax, chunk):
    """Damage on disk, and bytes of the stream changed (headers, PAX records, names,
    sizes, content), cut in chunks anywhere: the scan never changes a verdict or a reason."""
    if any(b.startswith(a + "/") for a in files for b in files):
        return                                          # a file where a directory must be
    top = Path(tempfile.mkdtemp(prefix="snapscan-"))
    try:
        layer = write_layer(top, files)
        diff = top / UPPER
        stream = bytearray(layer_tar(diff, form=tarfile.PAX_FORMAT if pax else tarfile.USTAR_FORMAT))
        for name, kind in damages:
            _damage(diff, name, kind)
        for at, byte in edits:
            stream[at % len(stream)] = byte
        both(top, layer, bytes(stream), chunk)
    finally:
        shutil.rmtree(top)
