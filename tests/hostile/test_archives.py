"""Classes 6 and 7 of issue 10: archives of a data root, damaged and as people make them.

A ``.tar.gz`` with a CRC error read as if whole, one broken tar header ending the
archive early (and with it ``image/``: "uses the containerd image store"), a ``ZstdError``
traceback: any fault of the compression or the tar framing is now an error naming the
archive and where in it the fault sits. The intact archive answers as its directory does.
"""
from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from . import SAMPLE_ARCHIVE

ARGS = [("ls",), ("df", "-v"), ("inspect", "centos:latest"), ("reclaim", "centos:latest")]


def _tar_of_sample() -> bytes:
    """The sample root as one plain tar, members in their order, end blocks included."""
    return gzip.decompress(SAMPLE_ARCHIVE.read_bytes())


def _member_offsets(tar: bytes) -> list[tuple[str, int]]:
    """(name, offset of its header) of each member, as tar lays them out."""
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        return [(m.name, m.offset) for m in tf.getmembers()]


@pytest.fixture(scope="module")
def plain_tar() -> bytes:
    return _tar_of_sample()


def _save(scratch: Path, name: str, data: bytes) -> Path:
    path = scratch / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("flavour", ["tar", "tar.gz", "tar.zst"])
def test_intact_archive_answers_as_its_directory(scratch, sample_root, baseline, plain_tar,
                                                 flavour):
    data = {"tar": plain_tar, "tar.gz": gzip.compress(plain_tar, 1),
            "tar.zst": zstandard.ZstdCompressor().compress(plain_tar)}[flavour]
    path = _save(scratch, f"intact.{flavour}", data)
    for args in ARGS[:3]:
        got = baseline(path, *args).check(0)
        want = baseline(sample_root, *args)
        if args[0] == "inspect":
            continue          # the archive's paths are not the directory's
        assert got.out == want.out


def _fails_naming(path: Path, result, *words: str) -> None:
    result.check(2)
    assert str(path.name) in result.err or "<root>" in result.err, result.describe()
    assert "byte" in result.err, result.describe()
    for word in words:
        assert word in result.err, result.describe()
    assert not result.out


def test_gzip_crc_error_is_named(scratch, plain_tar, baseline):
    whole = bytearray(gzip.compress(plain_tar, 1))
    whole[-8] ^= 0x01                      # the CRC-32 in the trailer
    path = _save(scratch, "crc.tar.gz", bytes(whole))
    for args in ARGS:
        _fails_naming(path, baseline(path, *args), "CRC")


@pytest.mark.parametrize("where", [0.3, 0.7, 0.999])
def test_gzip_cut_short_is_named(scratch, plain_tar, baseline, where):
    whole = gzip.compress(plain_tar, 1)
    path = _save(scratch, f"cut{where}.tar.gz", whole[:int(len(whole) * where)])
    _fails_naming(path, baseline(path, "ls"))


@pytest.mark.parametrize("where", [0.3, 0.7])
def test_zstd_corruption_is_named(scratch, plain_tar, baseline, where):
    whole = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(plain_tar))
    at = int(len(whole) * where)
    whole[at] ^= 0xFF
    path = _save(scratch, f"bad{where}.tar.zst", bytes(whole))
    _fails_naming(path, baseline(path, "ls"))


def test_broken_header_does_not_end_the_archive_quietly(scratch, plain_tar, baseline):
    """A header with a bad checksum before image/: tarfile would end the archive there,
    and every command would have said 'uses the containerd image store'."""
    members = _member_offsets(plain_tar)
    name, offset = next((n, o) for n, o in members if "/image/" in f"/{n}/")
    broken = bytearray(plain_tar)
    broken[offset + 148] ^= 0x07           # the header's checksum field
    path = _save(scratch, "header.tar", bytes(broken))
    result = baseline(path, "ls")
    _fails_naming(path, result, f"byte {offset}")
    assert "containerd" not in result.err


def test_cut_between_members_is_named(scratch, plain_tar, baseline):
    members = _member_offsets(plain_tar)
    _, offset = members[len(members) // 2]
    path = _save(scratch, "between.tar", plain_tar[:offset])
    _fails_naming(path, baseline(path, "ls"), "cut short", f"byte {offset}")


def test_end_blocks_missing_is_named(scratch, plain_tar, baseline):
    """Cut exactly where the end-of-archive blocks begin: every member is whole, but
    nothing says the archive is."""
    with tarfile.open(fileobj=io.BytesIO(plain_tar)) as tf:
        tf.getmembers()
        end = tf.offset
    path = _save(scratch, "noend.tar", plain_tar[:end])
    _fails_naming(path, baseline(path, "ls"), "cut short")


def test_a_fifo_named_as_the_archive_is_refused(scratch, baseline):
    import os
    path = scratch / "fifo.tar"
    os.mkfifo(path)
    result = baseline(path, "ls")
    assert "Traceback" not in result.err and result.rc == 2, result.describe()
