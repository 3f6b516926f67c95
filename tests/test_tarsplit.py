"""tar-split reading: entries, segment runs and member headers, against Python's tarfile.

The tar-split files here are made by ``disassemble`` below, which cuts a tar the way
tar-split's disassembler does (tar/asm/disassemble.go: each member's segment holds the
previous member's padding, its extension headers and its header; file bodies become a
type-1 entry with their CRC-64). The files dockerd itself wrote are read in
test_oracle_verify.py.
"""
from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
import tracemalloc
import zlib
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.digest import crc64_iso
from analyzer.errors import MalformedError
from analyzer.sources import tarsplit
from analyzer.sources.tarsplit import (HeaderReader, clean_name, iter_runs, parse_pax,
                                       split_tar)


def make_tar(fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8",
                      errors="surrogateescape") as tf:
        def add(name, data=None, **kw):
            info = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
        add("etc", type=tarfile.DIRTYPE, mode=0o755)
        add("etc/passwd", b"root:x:0:0\n", mode=0o644, uid=0, gid=0)
        add("etc/empty", b"", mode=0o600)
        add("bin/su", b"x" * 1000, mode=0o4755, uid=0, gid=0)
        add("home/u/f", b"data", mode=0o640, uid=1000, gid=1000)
        add("etc/link", type=tarfile.SYMTYPE, linkname="passwd", mode=0o777)
        add("etc/hard", type=tarfile.LNKTYPE, linkname="etc/passwd", mode=0o644)
        add("dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
        add("dev/loop0", type=tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o660)
        add("run/fifo", type=tarfile.FIFOTYPE, mode=0o644)
        add("deep/" + "d" * 90 + "/" + "e" * 90 + "/file", b"long name\n")
        add("l/" + "k" * 120, type=tarfile.SYMTYPE, linkname="t" * 200)
        add("caf\xe9-\udcff", b"raw bytes\n")
        add("big/id", b"uid", uid=3_000_000, gid=9_000_000)
        if fmt == tarfile.PAX_FORMAT:
            x = tarfile.TarInfo("x/attr")
            x.pax_headers = {"SCHILY.xattr.user.a": "1", "SCHILY.xattr.security.capability": "cap"}
            tf.addfile(x)
    return buf.getvalue()


def disassemble(tar: bytes) -> list[dict]:
    """tar-split entries of a tar, as tar-split's disassembler writes them."""
    out: list[dict] = []
    pos = 0
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r", encoding="utf-8",
                      errors="surrogateescape") as tf:
        for m in tf.getmembers():
            out.append({"type": 2, "payload": base64.b64encode(tar[pos:m.offset_data]).decode()})
            raw = m.name.encode("utf-8", "surrogateescape")
            entry: dict = {"type": 1}
            try:
                raw.decode("utf-8")
                entry["name"] = m.name + ("/" if m.isdir() else "")
            except UnicodeDecodeError:
                entry["name_raw"] = base64.b64encode(raw).decode()
            size = m.size if m.isreg() else 0
            if size:
                entry["size"] = size
                data = tar[m.offset_data:m.offset_data + size]
                entry["payload"] = base64.b64encode(crc64_iso(data).to_bytes(8, "big")).decode()
            else:
                entry["payload"] = None
            out.append(entry)
            pos = m.offset_data + size
    out.append({"type": 2, "payload": base64.b64encode(tar[pos:]).decode()})
    for i, e in enumerate(out):
        e["position"] = i
    return out


def pack(entries: list[dict]) -> bytes:
    return gzip.compress(b"".join(json.dumps(e).encode() + b"\n" for e in entries))


def reassemble(gz: bytes, tar: bytes, chunk: int | None = None) -> bytes:
    chunks = [gz[i:i + chunk] for i in range(0, len(gz), chunk)] if chunk else [gz]
    members = {m.name: m for m in tarfile.open(fileobj=io.BytesIO(tar), encoding="utf-8",
                                               errors="surrogateescape").getmembers()}
    out = bytearray()
    for run, entry in iter_runs(chunks, "t"):
        out += run
        if entry is not None and entry.size:
            m = members[clean_name(entry.name)]
            out += tar[m.offset_data:m.offset_data + m.size]
    return bytes(out)


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_runs_rebuild_the_stream(fmt):
    tar = make_tar(fmt) if fmt != tarfile.USTAR_FORMAT else _ustar_tar()
    gz = pack(disassemble(tar))
    assert reassemble(gz, tar) == tar
    assert reassemble(gz, tar, chunk=7) == tar          # any chunking


def _ustar_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        info = tarfile.TarInfo("p" * 100 + "/" + "n" * 90)    # needs the ustar prefix field
        info.size = 3
        tf.addfile(info, io.BytesIO(b"abc"))
        tf.addfile(tarfile.TarInfo("short"))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_headers_match_tarfile(fmt):
    tar = make_tar(fmt)
    members = tarfile.open(fileobj=io.BytesIO(tar), encoding="utf-8",
                           errors="surrogateescape").getmembers()
    reader = HeaderReader()
    got = [(reader.read(run), entry) for run, entry in iter_runs([pack(disassemble(tar))], "t")
           if entry is not None]
    assert len(got) == len(members)
    for (hdr, entry), m in zip(got, members):
        assert clean_name(hdr.name) == clean_name(entry.name) == m.name
        assert hdr.typeflag == m.type.decode()
        assert (hdr.mode, hdr.uid, hdr.gid) == (m.mode, m.uid, m.gid)
        assert hdr.linkname == m.linkname
        assert hdr.size == m.size == entry.size or not m.isreg()
        if m.ischr() or m.isblk():
            assert (hdr.devmajor, hdr.devminor) == (m.devmajor, m.devminor)
        want_xattrs = {k[len("SCHILY.xattr."):]: v.encode() for k, v in m.pax_headers.items()
                       if k.startswith("SCHILY.xattr.")}
        assert dict(hdr.xattrs) == want_xattrs


def test_entries_fields():
    tar = make_tar()
    entries = [e for _, e in iter_runs([pack(disassemble(tar))], "t") if e is not None]
    by_name = {clean_name(e.name): e for e in entries}
    assert by_name["etc/passwd"].size == 11
    assert by_name["etc/passwd"].crc == crc64_iso(b"root:x:0:0\n")
    assert by_name["etc/empty"].crc is None and by_name["etc/empty"].size == 0
    assert "caf\xe9-\udcff" in by_name                   # name_raw, surrogate-escaped
    assert [e.position for e in entries] == list(range(1, 2 * len(entries), 2))


def test_name_raw_wins():
    entries = [{"type": 1, "name": "ignored", "name_raw": base64.b64encode(b"a\xff").decode(),
                "payload": None, "position": 0}]
    (_, entry), _ = list(iter_runs([pack(entries)], "t"))
    assert entry.name == "a\udcff"


def test_multistream_gzip():
    entries = disassemble(make_tar())
    half = len(entries) // 2
    while entries[half]["type"] != 2:
        half += 1
    gz = pack(entries[:half]) + pack(entries[half:])
    tar = make_tar()
    assert reassemble(gz, tar) == tar


def test_gzip_header_as_go_reads_it():
    """Go's gzip.Reader checks a header's magic, method and (when flagged) its CRC-16,
    not its reserved flag bits: a tar-split whose header sets them reads as any other;
    one whose header CRC is wrong is damage."""
    entries = disassemble(make_tar())
    good = pack(entries)
    reserved = bytearray(good)
    reserved[3] |= 0xE0
    assert list(iter_runs([bytes(reserved)], "t")) == list(iter_runs([good], "t"))
    header = good[:3] + bytes([good[3] | 0x02]) + good[4:10]
    crc16 = (zlib.crc32(header) & 0xFFFF).to_bytes(2, "little")
    assert list(iter_runs([header + crc16 + good[10:]], "t")) == list(iter_runs([good], "t"))
    bad_crc16 = bytes([crc16[0] ^ 1, crc16[1]])
    assert "gzip" in _bad(header + bad_crc16 + good[10:])


def _bad(entries: list[dict] | bytes) -> str:
    data = entries if isinstance(entries, bytes) else pack(entries)
    with pytest.raises(MalformedError) as info:
        list(iter_runs([data], "layerdb/x/tar-split.json.gz"))
    assert info.value.path == "layerdb/x/tar-split.json.gz"
    return info.value.reason


def test_malformed():
    good = pack(disassemble(make_tar()))
    assert "gzip" in _bad(good[:len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    assert "gzip" in _bad(bytes(flipped))
    assert "not gzip" in _bad(b"")
    assert "gzip" in _bad(b"plain text")
    assert "not a tar-split entry" in _bad(gzip.compress(b"{not json}\n"))
    assert "not a tar-split entry" in _bad(gzip.compress(b"[1, 2]\n"))
    assert "unknown entry type" in _bad([{"type": 3, "payload": None}])
    assert "base64" in _bad([{"type": 2, "payload": "!!!!"}])
    assert "without a name" in _bad([{"type": 1, "payload": None}])
    assert "no checksum" in _bad([{"type": 1, "name": "a", "size": 3, "payload": None}])
    assert "not 8" in _bad([{"type": 1, "name": "a", "size": 3, "payload": "AAAA"}])
    assert "bad size" in _bad([{"type": 1, "name": "a", "size": -1, "payload": None}])


def test_duplicate_cleaned_names_are_refused():
    # tar-split jsonUnpacker.Next: filepath.Clean'ed names must be unique.
    dup = [{"type": 1, "name": "a/b", "payload": None}, {"type": 1, "name": "./a//b", "payload": None}]
    assert "duplicate path" in _bad(dup)


def test_inflate_bounded_on_zero_heavy_input():
    # 8 MiB of zeros compress to ~8 KiB: decompression must come in bounded pieces.
    payload = base64.b64encode(bytes(8 * 1024 * 1024)).decode()
    runs = list(iter_runs([pack([{"type": 2, "payload": payload}])], "t"))
    assert len(runs[0][0]) == 8 * 1024 * 1024


def _endless_line(mib: int) -> bytes:
    """A gzip of one segment line of mib MiB that never ends: a few KiB per MiB."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = b"A" * (1 << 20)
    return b"".join([z.compress(b'{"type":2,"payload":"'), *(z.compress(piece) for _ in range(mib)),
                     z.flush()])


def test_one_endless_line_stops_at_the_bound():
    """A gzip bomb of one 1 GiB line (1 MB on disk) is refused where the line passes
    MAX_LINE, its memory bounded by the line's bound (it cost a joined copy per block,
    quadratic, before)."""
    data = _endless_line(1024)
    assert len(data) < 2 << 20
    tracemalloc.start()
    try:
        reason = _bad(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert reason == f"line 1: longer than {tarsplit.MAX_LINE} bytes; not a tar-split entry"
    assert peak < 3 * tarsplit.MAX_LINE


def test_line_and_run_bounds_are_exact(monkeypatch):
    monkeypatch.setattr(tarsplit, "MAX_LINE", 64)
    monkeypatch.setattr(tarsplit, "MAX_RUN", 6)
    fits = b'{"type":2,"payload":"QUJD"}'.ljust(64)          # 3 bytes, padded to the bound
    entry = b'{"type":1,"name":"a","payload":null}'
    lines = [fits, fits, entry, fits, fits, entry.replace(b'"a"', b'"b"'), b""]
    assert [run for run, _ in iter_runs([gzip.compress(b"\n".join(lines))], "t")] == [
        b"ABCABC", b"ABCABC", b""]
    assert _bad(gzip.compress(b"\n".join([fits, entry, fits + b" "]))) == (
        "line 3: longer than 64 bytes; not a tar-split entry")
    assert _bad(gzip.compress(b"\n".join([fits, fits, fits, entry]))) == (
        "line 3: more than 6 bytes of segments before a file entry")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=8),
       st.lists(st.integers(0, 400), max_size=6))
def test_lines_whatever_the_blocks(lines, cuts):
    """Lines come out whole however the inflated stream is cut into blocks."""
    text = b"\n".join(lines)
    points = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    blocks = [text[a:b] for a, b in zip(points, points[1:])]
    with mock.patch.object(tarsplit, "_inflate", lambda chunks, source: iter(chunks)):
        got = list(tarsplit._lines(blocks, "t"))
    want = text.split(b"\n")
    if not want[-1].strip():
        want.pop()
    assert got == want


@pytest.mark.parametrize("name,want", [("a/b/", "a/b"), ("./a", "a"), ("//a", "/a"), ("/a/../b", "/b"),
                                       ("", "."), ("..", ".."), ("a/./b", "a/b"), ("a", "a"),
                                       (".wh.x", ".wh.x"), ("a/.b", "a/.b")])
def test_clean_name_is_go_clean(name, want):
    assert clean_name(name) == want


def test_pax_records():
    assert parse_pax(b"12 path=abc\n13 uid=12345\n") == {"path": b"abc", "uid": b"12345"}
    assert parse_pax(b"8 a=b=c\n\x00\x00") == {"a": b"b=c"}
    with pytest.raises(ValueError):
        parse_pax(b"99 path=abc\n")


def test_global_header_is_a_member_and_its_padding_carries_over():
    # Go returns a PAX global header ('g') from Next() as a member; its data padding is
    # consumed by the next Next(), so it opens the next member's segment.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT,
                      pax_headers={"comment": "x" * 10}) as tf:
        info = tarfile.TarInfo("after")
        info.mode = 0o600
        tf.addfile(info)
    tar = buf.getvalue()
    assert tar[156:157] == b"g"
    gsize = int(tar[124:136].rstrip(b"\0 ") or b"0", 8)
    first = tar[:512 + gsize]
    second = tar[512 + gsize:512 + gsize + -gsize % 512 + 512]
    reader = HeaderReader()
    g = reader.read(first)
    assert g.typeflag == "g"
    after = reader.read(second)
    assert (after.name, after.mode) == ("after", 0o600)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.data())
def test_damage_is_malformed_or_parses(data):
    good = pack(disassemble(make_tar()))
    pos = data.draw(st.integers(0, len(good) - 1))
    new = data.draw(st.binary(min_size=0, max_size=8))
    damaged = good[:pos] + new + good[pos + data.draw(st.integers(0, 8)):]
    try:
        list(iter_runs([damaged], "t"))
    except MalformedError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=2048))
def test_garbage_headers_raise_value_error_only(blob):
    try:
        HeaderReader().read(blob)
    except ValueError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=600), max_size=6))
def test_decompressed_lines_of_any_payloads(payloads):
    entries = [{"type": 2, "payload": base64.b64encode(p).decode()} for p in payloads]
    runs = list(iter_runs([pack(entries)], "t"))
    assert runs == [(b"".join(payloads), None)]

# -- split_tar: a tar stream cut as tar-split cuts it (containerd snapshots' judge) -------

def _archive(members: list[tuple[str, bytes]], fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for n, (name, data) in enumerate(members):
            info = tarfile.TarInfo(f"m{n}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "m0/" + "x" * 120
        tf.addfile(link)
    return buf.getvalue()


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.text("ab/.", min_size=1, max_size=150), st.binary(max_size=2000)),
                max_size=5),
       st.sampled_from([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]), st.integers(1, 1500))
def test_split_tar_runs_and_contents_rebuild_the_stream(members, fmt, chunk) -> None:
    data = _archive(members, fmt)
    contents = [d for _, d in members]
    parts, n = [], 0
    sunk: dict[str, list[bytes]] = {}

    def sink(name: str, size: int):
        assert name not in sunk and size > 0
        return sunk.setdefault(name, []).append
    for run, entry, header in split_tar(_pieces(data, chunk), "layer", sink):
        parts.append(run)
        if entry is None:
            continue
        assert not isinstance(header, str) and entry.name == header.name
        if header.name.startswith("m"):
            content = contents[n]
            n += 1
            assert entry.size == len(content)
            assert entry.crc == (crc64_iso(content) if content else None)
            # The sink took the content piece by piece as it passed, before the entry.
            assert b"".join(sunk.get(entry.name, ())) == content
            parts.append(content)
    assert n == len(members) and b"".join(parts) == data


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 700))
def test_split_tar_of_a_cut_stream_is_malformed_or_shorter(cut, chunk) -> None:
    data = _archive([("f", b"x" * 3000), ("g", b"y" * 100)], tarfile.PAX_FORMAT)[:cut]
    try:
        out = list(split_tar(_pieces(data, chunk), "layer"))
    except MalformedError as exc:
        assert exc.path == "layer"
    else:
        assert out[-1][1] is None


@pytest.mark.parametrize("typeflag", [b"x", b"g", b"L", b"K"])
def test_split_tar_refuses_an_extended_header_past_go_s_limit(typeflag) -> None:
    """An extended header is gathered whole before it is read, so its size is bounded
    where Go's archive/tar bounds it (1 MiB), not by what the stream claims: a small blob
    inflating to gigabytes of zeros under a header claiming them must not be held."""
    header = tarfile.TarInfo("x")
    header.size = (1 << 20) + 1
    block = bytearray(header.tobuf(tarfile.USTAR_FORMAT))
    block[156:157] = typeflag
    block[148:156] = b" " * 8
    block[148:155] = b"%06o\0" % sum(block)
    zeros = iter([bytes(block)] + [bytes(1 << 16)] * 64)
    taken = []
    with pytest.raises(MalformedError, match="at most 1048576"):
        for item in split_tar(zeros, "layer"):
            taken.append(item)
    assert next(zeros, None) is not None        # refused before reading what it claims
    within = bytearray(block)
    within[124:136] = b"%011o\0" % (1 << 20)
    within[148:156] = b" " * 8
    within[148:155] = b"%06o\0" % sum(within)
    with pytest.raises(MalformedError, match="ends inside an extended header"):
        list(split_tar([bytes(within), bytes(1000)], "layer"))


def test_split_tar_hands_out_what_follows_the_end_chunk_by_chunk() -> None:
    """A stream may go on long after its end-of-archive blocks (a bomb of zeros): what
    follows is passed on as it comes, never gathered in one run."""
    data = _archive([("f", b"x" * 10)], tarfile.PAX_FORMAT)
    tail = [bytes(1 << 16)] * 50
    out = list(split_tar([data, *tail], "layer"))
    assert [run for run, entry, _ in out if entry is None][-50:] == tail
    assert b"".join(run + (b"x" * 10 if entry and entry.size else b"")
                    for run, entry, _ in out) == data + b"".join(tail)
