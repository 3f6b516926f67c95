"""Classes 6 and 7 of issue 10: archives of a data root, damaged and as people make them.

A ``.tar.gz`` with a CRC error read as if whole, one broken tar header ending the
archive early (and with it ``image/``: "uses the containerd image store"), a ``ZstdError``
traceback: any fault of the compression or the tar framing is now an error naming the
archive and where in it the fault sits. The intact archive answers as its directory does.

As people make them (class 7): ``tar czf x.tgz /var/lib/docker`` puts the root under
``var/lib/docker/``, a whole disk's tar puts it beside ``etc/`` and ``home/``. A chain of
single top folders is followed (and said, on stderr), ``ARCHIVE:SUBPATH`` names the root
in a bigger tree, and a member with no place in the tree (``../``, a hard link out of the
archive or to nothing) is skipped with a warning naming it: the rest answers.
"""
from __future__ import annotations

import gzip
import io
import json
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
    _fails_naming(path, baseline(path, "ls"), "of the file")


@pytest.mark.parametrize("where", [0.3, 0.7])
def test_zstd_corruption_is_named(scratch, plain_tar, baseline, where):
    whole = bytearray(zstandard.ZstdCompressor(write_checksum=True).compress(plain_tar))
    at = int(len(whole) * where)
    whole[at] ^= 0xFF
    path = _save(scratch, f"bad{where}.tar.zst", bytes(whole))
    _fails_naming(path, baseline(path, "ls"))


@pytest.mark.parametrize("cut", [2, 4])
def test_zstd_cut_in_its_last_checksum_is_named(scratch, plain_tar, baseline, cut):
    """Every byte of the tar is there, end blocks included; only the frame's checksum is
    cut (zstandard's stream_reader read this as a whole stream)."""
    whole = zstandard.ZstdCompressor(write_checksum=True).compress(plain_tar)
    path = _save(scratch, f"cut{cut}.tar.zst", whole[:-cut])
    _fails_naming(path, baseline(path, "ls"), "truncated")


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


# -- class 7: archives as people make them ----------------------------------------------
def _retarred(plain_tar: bytes, prefix: str, extra: list[tuple[tarfile.TarInfo, bytes]] = (),
              ) -> bytes:
    """The sample's tar with every member under ``prefix`` (as tar writes a root named
    by its absolute path), then ``extra`` members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(plain_tar)) as src, \
            tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dest:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isreg() else None
            rel = info.name.removeprefix("./").strip("/")
            info.name = f"{prefix}/{rel}" if rel not in ("", ".") else prefix
            if info.islnk():
                info.linkname = f"{prefix}/{info.linkname.removeprefix('./')}"
            # PAX path records would override the new names.
            info.pax_headers = {k: v for k, v in info.pax_headers.items()
                                if k not in ("path", "linkpath")}
            dest.addfile(info, io.BytesIO(data) if data is not None else None)
        for info, data in extra:
            info.size = len(data)
            dest.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _member(name: str, data: bytes = b"", *, link: str | None = None,
            kind: bytes = tarfile.REGTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if link is not None else kind
    info.linkname = link or ""
    return info, data


def _notes(result) -> list[str]:
    return [line for line in result.err.splitlines()
            if line.startswith("analyze: ") and not line.startswith("analyze: warning:")]


@pytest.mark.parametrize("prefix, flavour", [("var/lib/docker", "tar.gz"),
                                             ("docker", "tar.zst"), ("./srv/docker", "tar")])
def test_root_under_top_folders_is_found_and_said(scratch, sample_root, baseline, plain_tar,
                                                  prefix, flavour):
    tar = _retarred(plain_tar, prefix)
    data = {"tar": tar, "tar.gz": gzip.compress(tar, 1),
            "tar.zst": zstandard.ZstdCompressor().compress(tar)}[flavour]
    path = _save(scratch, f"under-{prefix.replace('/', '_')}.{flavour}", data)
    for args in (("ls",), ("df", "-v"), ("history", "centos:latest")):
        got = baseline(path, *args).check(0)
        assert got.out == baseline(sample_root, *args).out, got.describe()
        assert not got.warnings(), got.describe()
        where = prefix.removeprefix("./")
        assert _notes(got) == [f"analyze: <root>: the data root is under the archive's top "
                               f"folders: read as <root>:{where}"], got.describe()
    doc = json.loads(baseline(path, "reclaim", "centos:latest", "--json").check(0).out)
    assert doc["analysis"]["source"] == f"<root>:{prefix.removeprefix('./')}"  # absolute
    assert doc["complete"] is True


@pytest.fixture(scope="module")
def disk_tar(scratch, plain_tar) -> Path:
    """A whole disk's tar: the data root at var/lib/docker, beside other top folders."""
    tar = _retarred(plain_tar, "var/lib/docker", [
        _member("etc/hostname", b"evidence-host\n"), _member("home/user/.bashrc", b"ls\n"),
        _member("var/lib/containerd/README", b"not docker's\n")])
    return _save(scratch, "disk.tar.gz", gzip.compress(tar, 1))


@pytest.mark.parametrize("sub", ["var/lib/docker", "/var/lib/docker/", "./var/lib/docker"])
def test_archive_subpath_names_the_root_in_a_whole_disk(disk_tar, sample_root, baseline, sub):
    for args in (("ls",), ("df", "-v")):
        got = baseline(f"{disk_tar}:{sub}", *args).check(0)
        assert got.out == baseline(sample_root, *args).out
        assert not got.warnings() and not _notes(got), got.describe()


def test_whole_disk_without_subpath_says_what_is_missing(disk_tar, baseline):
    """Several top folders: nothing to follow; the message names the archive."""
    result = baseline(disk_tar, "ls").check(2)
    assert "no image store found" in result.err and "<root>" in result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("sub, says", [("var/lib/nope", "no directory 'var/lib/nope'"),
                                       ("etc/hostname", "no directory 'etc/hostname'"),
                                       ("../../etc", "leads out")])
def test_bad_subpath_is_refused(disk_tar, baseline, sub, says):
    result = baseline(f"{disk_tar}:{sub}", "ls").check(2)
    assert says in result.err and not result.out, result.describe()


def test_a_subpath_above_the_root_follows_the_rest_of_the_chain(disk_tar, baseline):
    result = baseline(f"{disk_tar}:var/lib", "ls")
    # var/lib holds docker/ and containerd/: two folders, nothing to follow, no store.
    result.check(2)
    assert "no image store found" in result.err


_OUT_OF_TREE = [
    _member("../evil", b"outside\n"),
    _member("var/lib/docker/../../../../tmp/escape", b"outside\n"),
    _member("var/lib/docker/hard-out", link="../../etc/shadow"),
    _member("var/lib/docker/hard-nothing", link="var/lib/docker/no-such-file"),
    _member("var/lib/docker/hard-dir", link="var/lib/docker/image"),
]


@pytest.mark.parametrize("flavour", ["tar", "tar.gz"])
def test_members_out_of_the_tree_are_skipped_by_name(scratch, sample_root, baseline, plain_tar,
                                                     flavour):
    tar = _retarred(plain_tar, "var/lib/docker", _OUT_OF_TREE)
    path = _save(scratch, f"outside.{flavour}",
                 tar if flavour == "tar" else gzip.compress(tar, 1))
    for args in (("ls",), ("df", "-v"), ("history", "centos:latest")):
        got = baseline(path, *args).check(0)
        assert got.out == baseline(sample_root, *args).out, got.describe()
        for info, _ in _OUT_OF_TREE:
            assert got.warned(info.name, "archive member not read"), got.describe()
        assert len(got.warnings()) == len(_OUT_OF_TREE), got.describe()
    doc = json.loads(baseline(path, "reclaim", "centos:latest", "--json").check(0).out)
    assert doc["complete"] is False
    assert {d["file"] for d in doc["damaged"]} == {i.name for i, _ in _OUT_OF_TREE}
    assert doc["bytes_freed"] == json.loads(
        baseline(sample_root, "reclaim", "centos:latest", "--json").out)["bytes_freed"]


def test_an_absolute_member_name_is_read_as_tar_extracts_it(scratch, sample_root, baseline,
                                                            plain_tar):
    """tar -P keeps the leading '/'; tar itself drops it on extraction, and so do we."""
    path = _save(scratch, "absolute.tar", _retarred(plain_tar, "/var/lib/docker"))
    got = baseline(path, "ls").check(0)
    assert got.out == baseline(sample_root, "ls").out and not got.warnings()


def test_the_top_is_no_child_of_itself(plain_tar, scratch):
    """A './' member made the top its own child: a walk of the root never ended."""
    from analyzer.sources.evidence import open_root
    root = open_root(str(_save(scratch, "dot.tar", plain_tar)))
    assert "" not in root.listdir("")
    assert sum(1 for path, _ in root.walk("") if path == "") == 1
