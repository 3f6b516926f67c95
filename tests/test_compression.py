"""compression.py's zstd side and blobverify's two threads: every piece bounded, the same
bytes as zstandard's own decoder whatever the chunking, a cut stream named, and a tiny
frame inflating to 1 GiB hashed in a few megabytes."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading

import pytest
import zstandard
from hypothesis import given, strategies as st

from analyzer import compression
from analyzer.compression import OUTPUT_LIMIT, ZSTD_BLOCK_MAX, StreamError
from analyzer.engines import blobverify


def _decompressed(blob: bytes, cuts: list[int]) -> bytes:
    """The stream as Decompressed gives it, pushed in chunks cut at ``cuts``."""
    edges = sorted({0, len(blob), *(c % (len(blob) + 1) for c in cuts)})
    chunks = [blob[a:b] for a, b in zip(edges, edges[1:])]
    out = []
    for piece in compression.Decompressed(chunks):
        assert 0 < len(piece) <= OUTPUT_LIMIT
        out.append(bytes(piece))
    return b"".join(out)


def _skippable(data: bytes) -> bytes:
    return (0x184D2A5A).to_bytes(4, "little") + len(data).to_bytes(4, "little") + data


def _rle_bomb(total: int) -> bytes:
    """A zstd frame of RLE blocks, each 4 bytes that decode to 128 KiB of zeros: the
    format's highest ratio, written by hand (the tools pick it too: zstd -19 of zeros)."""
    header = compression.ZSTD + bytes([0x00, 7 << 3])   # no content size; 128 KiB window
    blocks = total // ZSTD_BLOCK_MAX
    rle = (ZSTD_BLOCK_MAX << 3 | 1 << 1).to_bytes(3, "little") + b"\0"
    last = (ZSTD_BLOCK_MAX << 3 | 1 << 1 | 1).to_bytes(3, "little") + b"\0"
    return header + rle * (blocks - 1) + last


@given(data=st.binary(max_size=3000).map(lambda b: b * 97),
       frames=st.lists(st.tuples(st.sampled_from([1, 3, 19]), st.booleans(), st.booleans()),
                       min_size=1, max_size=3),
       skip=st.booleans(),
       cuts=st.lists(st.integers(min_value=0, max_value=1 << 20), max_size=8))
def test_zstd_frames_come_out_as_zstandard_decodes_them(data, frames, skip, cuts):
    blob = b""
    for level, checksum, size in frames:
        blob += zstandard.ZstdCompressor(level=level, write_checksum=checksum,
                                         write_content_size=size).compress(data)
        if skip:
            blob += _skippable(b"annotation")
    assert _decompressed(blob, cuts) == data * len(frames)


@given(data=st.binary(min_size=1, max_size=2000).map(lambda b: b * 300),
       cut=st.integers(min_value=1))
def test_a_zstd_stream_cut_inside_a_frame_is_broken(data, cut):
    """Anywhere past the magic number (fewer bytes are no zstd stream: a plain one)."""
    blob = zstandard.ZstdCompressor(write_checksum=True).compress(data)
    magic = len(compression.ZSTD)
    with pytest.raises(StreamError):
        _decompressed(blob[:magic + cut % (len(blob) - magic)], [cut // 7])


def test_bytes_after_the_frames_that_are_no_frame_break_the_stream():
    blob = zstandard.ZstdCompressor().compress(b"layer" * 1000)
    with pytest.raises(StreamError):
        _decompressed(blob + b"trailing garbage", [len(blob) + 3])


@pytest.mark.parametrize("chunk", [1, 4096, 1 << 20])
def test_a_zstd_bomb_comes_out_a_bounded_piece_at_a_time(chunk):
    """32 KiB of RLE blocks decode to 1 GiB: zstandard's decompressobj would return it
    from one call; cut where blocks end, every call returns at most OUTPUT_LIMIT."""
    bomb = _rle_bomb(1 << 30)
    assert len(bomb) < 40_000
    pieces = total = 0
    for piece in compression.Decompressed(bomb[i:i + chunk] for i in range(0, len(bomb), chunk)):
        assert 0 < len(piece) <= OUTPUT_LIMIT
        pieces, total = pieces + 1, total + len(piece)
    assert total == 1 << 30 and pieces >= total // OUTPUT_LIMIT


BOMB_RSS = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.test_compression import _rle_bomb
from analyzer.engines.blobverify import digest_stream
got = digest_stream([_rle_bomb(1 << 30)])
assert got.uncompressed_bytes == 1 << 30 and got.error is None, got
status = open("/proc/self/status").read()
print(int(status.split("VmHWM:")[1].split()[0]) // 1024)
"""


def test_a_zstd_bomb_is_verified_in_a_few_megabytes():
    """Hashing the 1 GiB a tiny frame inflates to keeps the process's peak resident
    memory (its own: VmHWM, which a child does not inherit) near an idle interpreter's."""
    root = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    peak_mib = int(subprocess.run([sys.executable, "-c", BOMB_RSS, root], check=True,
                                  capture_output=True, text=True).stdout)
    assert peak_mib < 128, f"peak RSS {peak_mib} MiB"


@pytest.mark.parametrize("beside", [True, False])
def test_digest_stream_hashes_the_blob_and_its_stream(beside):
    """In two threads (a reader beside the hasher) or in the caller's alone."""
    data = bytes(range(256)) * 20_000
    blob = zstandard.ZstdCompressor().compress(data)
    got = blobverify.digest_stream((blob[i:i + 4096] for i in range(0, len(blob), 4096)),
                                   beside=beside)
    assert got.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert got.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (got.size, got.uncompressed_bytes, got.compression) == (len(blob), len(data), "zstd")


def test_a_stream_left_early_stops_its_maker():
    """A consumer that stops (an unpacked check that raised) stops the thread reading
    the blob: it does not read on to the end, nor wait forever for room."""
    read = []

    def chunks():
        for i in range(10_000):
            read.append(i)
            yield bytes(1 << 16)
    before = threading.active_count()
    stream = blobverify.BlobStream(chunks())
    pieces = iter(stream)
    next(pieces)
    pieces.close()
    assert threading.active_count() <= before     # (another test's pool may end meanwhile)
    assert len(read) < 100


def test_what_the_maker_raises_is_raised_in_its_place():
    def items():
        yield 1
        yield 2
        raise ValueError("the evidence broke")
    got = []
    with pytest.raises(ValueError, match="the evidence broke"):
        for item in blobverify._ahead(items()):
            got.append(item)
    assert got == [1, 2]


@pytest.mark.parametrize("window_log, whole", [(28, True), (29, True), (30, False)])
def test_a_frame_takes_the_windows_docker_decodes(window_log, whole):
    """Frames asking for windows up to 512 MiB decode as klauspost/compress decodes them
    for containerd (libzstd stops at 128 MiB unless told); a larger one is broken there
    too. Three copies of a random MiB: only a window over 1 MiB finds the repeats."""
    data = os.urandom(1 << 20) * 3
    params = zstandard.ZstdCompressionParameters(window_log=window_log)
    writer = zstandard.ZstdCompressor(compression_params=params).compressobj()
    blob = writer.compress(data) + writer.flush()   # streamed: no content size to shrink it
    assert zstandard.get_frame_parameters(blob).window_size == 1 << window_log
    if whole:
        assert _decompressed(blob, [7, 1 << 19]) == data
    else:
        with pytest.raises(StreamError):
            _decompressed(blob, [])
