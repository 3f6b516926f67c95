"""Class 8 of issue 10: cost bounded by the size of the input.

``verify`` was quadratic in the length of a tar-split line: a 1 MB gzip cost 30 s and
550 MB, an 18 MB one ran for hours. Now a line (and the segments between two file
entries) has a bound, and a file past it is that layer's damage, named; time stays
linear in what is inflated and the total is never capped. Each run here is a child
with a 1 GiB address-space limit (``analyze``), so unbounded memory fails the test.
"""
from __future__ import annotations

import errno
import gzip
import json
import os
import zlib

import pytest

from . import LAYERDB, image_id

CENTOS_LAYER = "2e37a15d485b4f9f8c209a55665cc5f645b61965011ea0cec1379b2f234a3f03"
TAR_SPLIT = f"{LAYERDB}/{CENTOS_LAYER}/tar-split.json.gz"


def endless_line(mib: int) -> bytes:
    """A gzip of one segment line of mib MiB (and no end): about 1 KiB per MiB."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = b"A" * (1 << 20)
    return b"".join([z.compress(b'{"type":2,"payload":"'), *(z.compress(piece) for _ in range(mib)),
                     z.flush()])


def _layers(result) -> dict[str, dict]:
    return {x["chain_id"][7:]: x for x in json.loads(result.out)["layers"]}


def _others_as_before(got: dict, want: dict) -> None:
    assert {c: x["status"] for c, x in got.items() if c != CENTOS_LAYER} == {
        c: x["status"] for c, x in want.items() if c != CENTOS_LAYER}


@pytest.mark.parametrize("mib", [64, 1024])
def test_one_endless_line(sample_root, damaged, baseline, mib):
    """64 MiB of one line from a 64 KiB gzip, and a gzip bomb of 1 GiB from 1 MiB."""
    ev = damaged(sample_root)
    (ev.path / TAR_SPLIT).write_bytes(endless_line(mib))
    ev.seal()
    got = ev.run("verify", "--json").check(1)
    layer = _layers(got)[CENTOS_LAYER]
    assert layer["status"] == "unverifiable", got.describe()
    assert layer["reason"].startswith(f"{TAR_SPLIT}: line 1: longer than "), layer
    _others_as_before(_layers(got), _layers(baseline(sample_root, "verify", "--json")))
    got = ev.run("verify", "redis:alpine").check(0)
    assert got.out == baseline(sample_root, "verify", "redis:alpine").out


def test_many_lines(sample_root, damaged, baseline):
    """A million empty segment lines added (8 MB inflated, 20 KB on disk) change no byte
    of the stream: the layer verifies as before, in time linear in the lines."""
    ev = damaged(sample_root)
    path = ev.path / TAR_SPLIT
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    padding = b'{"type":2}\n' * 1_000_000
    path.write_bytes(gzip.compress(b"\n".join(lines[:1]) + b"\n" + padding
                                   + b"\n".join(lines[1:]), mtime=0))
    ev.seal()
    got = ev.run("verify", "--json").check(1)
    assert _layers(got)[CENTOS_LAYER]["status"] == "ok", got.describe()
    _others_as_before(_layers(got), _layers(baseline(sample_root, "verify", "--json")))
    centos = image_id(sample_root, "centos:latest")
    got = ev.run("verify", centos).check(0)
    assert got.out == baseline(sample_root, "verify", centos).out


def test_many_segment_lines_the_scan_leaves(sample_root, damaged):
    """Half a million segment lines in a form the native scan leaves to the Python reader
    (a space after each colon) pile 1.5 MB up before one file entry: read in time linear
    in the lines (the run is not handed back and forth line by line), and the bytes they
    add to the stream make the layer a mismatch."""
    ev = damaged(sample_root)
    path = ev.path / TAR_SPLIT
    lines = gzip.decompress(path.read_bytes()).split(b"\n")
    extra = b'{"type": 2, "payload": "AAAA"}\n' * 500_000
    path.write_bytes(gzip.compress(b"\n".join(lines[:-3]) + b"\n" + extra
                                   + b"\n".join(lines[-3:]), mtime=0))
    ev.seal()
    got = ev.run("verify", "--json").check(1)
    assert _layers(got)[CENTOS_LAYER]["status"] == "mismatch", got.describe()


def test_segments_without_end(sample_root, damaged):
    """Segment after segment and never a file entry: the run's bound stops it, where
    the bytes would otherwise pile up with the inflated stream."""
    ev = damaged(sample_root)
    line = b'{"type":2,"payload":"' + b"A" * 4096 + b'"}\n'
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    (ev.path / TAR_SPLIT).write_bytes(b"".join([*(z.compress(line) for _ in range(20_000)),
                                                z.flush()]))
    ev.seal()
    got = ev.run("verify", "--json").check(1)
    layer = _layers(got)[CENTOS_LAYER]
    assert layer["status"] == "unverifiable", got.describe()
    assert "bytes of segments before a file entry" in layer["reason"], layer


def test_read_files_is_sized_by_the_file(backend, tmp_path):
    """A limit is a bound, not a buffer: a 4 GiB limit (the containerd database's) on a
    small file costs what the file holds, on every backend."""
    (tmp_path / "small").write_bytes(b"x" * 100)
    (tmp_path / "big").write_bytes(b"y" * 5000)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        got = backend.read_files(fd, [b"small", b"big"] * 3, 1 << 40,
                                 os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        assert got == [b"x" * 100, b"y" * 5000] * 3
        assert backend.read_files(fd, [b"small", b"big"], 4096,
                                  os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK) == [
            b"x" * 100, errno.EFBIG]
    finally:
        os.close(fd)
