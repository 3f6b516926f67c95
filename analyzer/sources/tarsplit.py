"""tar-split: the layer store's recipe for rebuilding a layer's tar stream byte for byte.

``layerdb/sha256/<chain>/tar-split.json.gz`` is gzip'd JSON, one ``storage.Entry`` a
line: type 2 ("segment") holds raw archive bytes (headers, padding, the end-of-archive
blocks), type 1 ("file") names a member whose content lives in the layer's files and
records its size and CRC-64. Reading is streaming: memory grows with the number of
members, never with the bytes of the layer, and time with the bytes inflated. The
file's total is never capped (a layer of a million files has one near 0.8 GB), but a
line and a run of segments are: a gzip bomb of one endless line stops at the bound.

Segment bytes are handed out in runs (all segments between two file entries joined),
so a caller feeds its hash once per member, and the run before a file entry is exactly
what holds that member's headers: :class:`HeaderReader` parses them (ustar, GNU long
names, PAX records) the way Go's ``archive/tar`` reader does.

References: tar-split tar/storage/entry.go (Entry, GetName, name_raw), tar/storage/
packer.go (jsonUnpacker.Next: ErrDuplicatePath on cleaned names), tar/asm/
disassemble.go (what each segment holds), tar/asm/assemble.go (WriteOutputTarStream);
Go archive/tar reader.go (Next, readHeader, parsePAX, handleRegularFile), format.go,
strconv.go (parseNumeric), common.go (isHeaderOnlyType).
"""
from __future__ import annotations

import binascii
import os
import posixpath
import struct
from typing import Callable, Iterable, Iterator, Mapping, NamedTuple, NoReturn, Protocol

import orjson

from ..compression import GzipError, gzip_member
from ..pathindex import PathIndex
from ..digest import crc64_iso
from ..errors import MalformedError
from ..model import SoundMembers

FILE_TYPE = 1        # storage.FileType
SEGMENT_TYPE = 2     # storage.SegmentType

BLOCK = 512
_INFLATE_STEP = 1 << 20          # decompressed bytes per step: bounds memory on zero-heavy input
# What one line, and the segments between two file entries, may hold. A run is one
# member's headers (tar/asm/disassemble.go), and Go's tar reader refuses a PAX or GNU
# long-name header past 1 MiB (archive/tar reader.go maxSpecialFileSize); base64 and
# JSON make a line 4/3 of its bytes. The bound leaves room many times over.
MAX_LINE = 16 << 20
MAX_RUN = 16 << 20
MAX_SPECIAL = 1 << 20            # archive/tar reader.go maxSpecialFileSize


class FileEntry(NamedTuple):
    """A type-1 entry: one archive member whose content is read from the layer's files.

    ``name`` is the member's path as tar-split recorded it (``GetName``), decoded with
    surrogateescape so non-UTF-8 bytes (``name_raw``) survive a round trip to the
    filesystem; ``crc`` is the CRC-64/GO-ISO of its content, None when ``size`` is 0.
    """
    name: str
    size: int
    crc: int | None
    position: int


def clean_name(name: str) -> str:
    """Go's filepath.Clean: what tar-split compares for duplicates and Docker extracts to."""
    if name and "//" not in name and "/." not in name and name[0] != "." and name[-1] != "/":
        return name                       # already clean: the common case, made fast
    cleaned = posixpath.normpath(name) if name else "."
    # normpath keeps a POSIX-reserved leading "//"; Go collapses it.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _inflate(chunks: Iterable[bytes], source: str) -> Iterator[bytes]:
    """gzip, member after member (Go's gzip.Reader is multistream), checked to the trailer.

    Members follow one another in a loop, never by recursion: the evidence decides how
    many there are (a megabyte holds fifty thousand empty ones).
    """
    d = gzip_member()
    started = False

    def feed(chunk: bytes) -> Iterator[bytes]:
        nonlocal d, started
        while chunk:
            if d.eof:
                d = gzip_member()                   # another member follows
            started = True
            out = d.decompress(chunk, _INFLATE_STEP)
            if out:
                yield out
            # A member may end inside the chunk: what is left is the next one's.
            chunk = d.unused_data if d.eof else d.unconsumed_tail

    try:
        for chunk in chunks:
            yield from feed(chunk)
        while not d.eof and started:
            out = d.decompress(b"", _INFLATE_STEP)
            if not out:
                break
            yield out
    except GzipError as exc:
        raise MalformedError(source, f"not valid gzip: {exc}") from None
    if not started:
        raise MalformedError(source, "empty file, not gzip")
    if not d.eof:
        raise MalformedError(source, "gzip stream is truncated")


def line_blocks(chunks: Iterable[bytes], source: str, lines_read: Callable[[], int]
                ) -> Iterator[tuple[bytes, int, int]]:
    """The inflated text in blocks of whole lines: (block, start, end), the lines being
    block[start:end], which ends with a newline but perhaps the last (an unended last
    line, yielded only if it is not blank). An inflated block is handed out as it is, the
    line unended at its end carried to the next and sent out alone once it ends: copying
    megabytes of lines to cut them cost more than the parsing. That line grows in place,
    so a long one costs time linear in its length (joining it anew to each block made it
    quadratic), and past MAX_LINE it is refused where it stands, named by its number: one
    past lines_read(), the lines the caller has read (all it was handed, by the time it
    asks for more: counting them here again cost as much as handing them out). Ended lines
    are bounded by whoever reads them (RunReader.line)."""
    tail = bytearray()
    for block in _inflate(chunks, source):
        end = block.rfind(b"\n") + 1
        start = 0
        if end and tail:
            start = block.find(b"\n") + 1
            tail += memoryview(block)[:start]
            yield bytes(tail), 0, len(tail)
            tail.clear()
        if end > start:
            yield block, start, end
        tail += memoryview(block)[end:]
        if len(tail) > MAX_LINE:
            _too_long(lines_read() + 1, source)
    if tail.strip():
        yield bytes(tail), 0, len(tail)


def _lines(chunks: Iterable[bytes], source: str) -> Iterator[bytes]:
    read = 0
    for block, start, end in line_blocks(chunks, source, lambda: read):
        lines = block[start:end].split(b"\n")
        if not lines[-1]:
            lines.pop()                   # the block ended with its last line's newline
        yield from lines
        read += len(lines)


def _too_long(number: int, source: str) -> NoReturn:
    raise MalformedError(source, f"line {number}: longer than {MAX_LINE} bytes; "
                                 "not a tar-split entry")


def iter_runs(chunks: Iterable[bytes], source: str) -> Iterator[tuple[bytes, FileEntry | None]]:
    """The entries of a tar-split file, as (segment bytes before the entry, entry).

    Consecutive segments are joined into one bytes object; the last pair is (the
    trailing segments, None). Raises MalformedError as RunReader.line does.

    Args:
        chunks: the compressed file, in pieces of any size.
        source: the file's path relative to the data root, for errors.
    """
    reader = RunReader(source)
    for line in _lines(chunks, source):
        entry = reader.line(line)
        if entry is not None:
            yield reader.take(), entry
    yield reader.take(), None


class RunReader:
    """A tar-split file read one line at a time, with what carries from line to line:
    the segments since the last file entry, every name so far, the line number and the
    header reader's padding. The native scan (nativeio.TarSplitScan) carries the same
    state through the lines it consumes itself."""

    def __init__(self, source: str, key: bytes | None = None):
        self.source = source
        # One buffer, not a list of pieces: a run of a million one-byte segments would
        # cost forty times its bytes in objects.
        self.segments = bytearray()
        # Every cleaned name so far, to refuse a duplicate as tar-split does; a PathIndex
        # keeps a million of them in tens of MB, where a set of str would take a hundred.
        # Its key (random unless given): the native scan hashes a name once for this
        # index and the disk index when they share one (layerfiles.LayerFiles).
        self.seen = PathIndex(key or os.urandom(16), False)
        self.number = 0                   # lines read
        self.headers = HeaderReader()

    @property
    def skip(self) -> int:
        return self.headers.skip

    @skip.setter
    def skip(self, value: int) -> None:
        self.headers.skip = value

    def line(self, line: bytes) -> FileEntry | None:
        """Reads one line (without its newline): the file entry it holds, or None for a
        segment (added to the run) or a blank line. Raises MalformedError for a line past
        MAX_LINE, bad JSON or base64, an unknown type, a file entry without a name, a
        run of segments past MAX_RUN, or a duplicate cleaned name (which tar-split itself
        refuses: ErrDuplicatePath)."""
        self.number += 1
        number, source = self.number, self.source
        if len(line) > MAX_LINE:
            _too_long(number, source)
        if not line.strip():
            return None
        try:
            entry = orjson.loads(line)
            kind = entry["type"]
            payload = entry.get("payload")
            if kind == SEGMENT_TYPE:
                if payload:
                    self.segments += binascii.a2b_base64(payload, strict_mode=True)
                    if len(self.segments) > MAX_RUN:
                        raise MalformedError(source, f"line {number}: more than {MAX_RUN} "
                                                     "bytes of segments before a file entry")
                return None
            if kind != FILE_TYPE:
                raise MalformedError(source, f"line {number}: unknown entry type {kind!r}")
            return _file_entry(entry, payload, number, source, self.seen)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedError(source, f"line {number}: not a tar-split entry: {exc}") from None
        except binascii.Error as exc:
            raise MalformedError(source, f"line {number}: bad base64 payload: {exc}") from None

    def take(self) -> bytes:
        """The run of segments read since the last file entry; the next starts empty."""
        run = bytes(self.segments)
        self.segments.clear()
        return run

    def header(self, run: bytes) -> "TarHeader | str":
        """The header of the member run precedes (HeaderReader.read), or why not."""
        try:
            return self.headers.read(run)
        except ValueError as exc:
            return str(exc)


def _file_entry(entry: dict, payload: str | None, number: int, source: str,
                seen: PathIndex) -> FileEntry:
    raw = entry.get("name_raw")
    if raw:
        # storage.Entry.GetName: name_raw (base64 of the bytes) wins when present.
        name = binascii.a2b_base64(raw, strict_mode=True).decode("utf-8", "surrogateescape")
    else:
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise MalformedError(source, f"line {number}: file entry without a name")
    size = entry.get("size") or 0
    if not isinstance(size, int) or size < 0:
        raise MalformedError(source, f"line {number}: bad size {size!r}")
    crc = None
    if payload:
        digest = binascii.a2b_base64(payload, strict_mode=True)
        if len(digest) != 8:
            raise MalformedError(source, f"line {number}: checksum of {len(digest)} bytes, not 8")
        crc = int.from_bytes(digest, "big")
    elif size:
        raise MalformedError(source, f"line {number}: {name!r} has {size} bytes but no checksum")
    if not seen.add(clean_name(name).encode("utf-8", "surrogateescape")):
        raise MalformedError(source, f"line {number}: duplicate path {name!r}")
    return FileEntry(name, size, crc, entry.get("position", -1))


# -- tar headers inside the segments ----------------------------------------------------

# Go archive/tar format.go: the ustar header block (V7 fields, then the ustar extension;
# GNU keeps atime/ctime where ustar keeps the prefix, STAR a 131-byte prefix).
USTAR_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
MAGIC_USTAR, VERSION_USTAR = b"ustar\x00", b"00"
MAGIC_GNU, VERSION_GNU = b"ustar ", b" \x00"
TRAILER_STAR = b"tar\x00"

TYPE_REG, TYPE_REGA, TYPE_LINK, TYPE_SYMLINK = "0", "\x00", "1", "2"
TYPE_CHAR, TYPE_BLOCK, TYPE_DIR, TYPE_FIFO, TYPE_CONT = "3", "4", "5", "6", "7"
TYPE_XHEADER, TYPE_XGLOBAL = "x", "g"
TYPE_GNU_LONGNAME, TYPE_GNU_LONGLINK = "L", "K"
# Go common.go isHeaderOnlyType: members that carry no data whatever their size field says.
HEADER_ONLY = frozenset((TYPE_LINK, TYPE_SYMLINK, TYPE_CHAR, TYPE_BLOCK, TYPE_DIR, TYPE_FIFO))
PAX_XATTR = "SCHILY.xattr."


class TarHeader(NamedTuple):
    """A member's header as Go's tar reader returns it (extensions applied).

    NamedTuples, not dataclasses, for this and FileEntry: one is made per member, and a
    frozen dataclass costs several times more to build."""
    typeflag: str
    name: str                      # surrogateescape-decoded bytes
    linkname: str
    mode: int                      # permission and set-ID bits as written (& 0o7777 on disk)
    uid: int
    gid: int
    size: int
    devmajor: int
    devminor: int
    xattrs: Mapping[str, bytes]


def _pad(size: int) -> int:
    return -size % BLOCK


def _cstr(field_: bytes) -> bytes:
    end = field_.find(b"\x00")
    return field_ if end < 0 else field_[:end]


def _numeric(field_: bytes, what: str) -> int:
    """Go strconv.go parseNumeric: base-256 when the high bit is set, else octal text
    with leading and trailing spaces and NULs trimmed (parseOctal)."""
    if field_ and field_[0] & 0x80:
        value = int.from_bytes(field_, "big")
        if field_[0] & 0x40:                     # negative two's complement
            value -= 1 << (8 * len(field_))
        else:
            value &= (1 << (8 * len(field_) - 1)) - 1
        return value
    text = field_.strip(b" \x00")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise ValueError(f"bad {what} field {field_!r}") from None


def parse_pax(data: bytes) -> dict[str, bytes]:
    """PAX extended header records ``"%d %s=%s\\n"`` (Go parsePAX), values as raw bytes."""
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            if not data[pos:].strip(b"\x00"):
                break                           # NUL padding after the last record
            raise ValueError("PAX record without a length")
        length = int(data[pos:space])
        record = data[space + 1:pos + length]
        if (length <= space - pos or pos + length > len(data) or not record.endswith(b"\n")
                or b"=" not in record):
            raise ValueError(f"bad PAX record {data[pos:pos + length]!r}")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return records


class HeaderReader:
    """Reads each member's headers from the segment run before its file entry.

    Go's reader consumes the previous member's padding at the start of the next
    ``Next()``, so a run starts with that padding, then any GNU long-name/link and
    PAX headers with their data, then the member's own header block. Only the global
    PAX header ('g') is returned as a member of its own, and its padding is left for
    the next call, as Go does.
    """

    def __init__(self) -> None:
        self.skip = 0                     # the previous member's padding

    def read(self, run: bytes) -> TarHeader:
        """The header of the member the run precedes. Raises ValueError if unreadable."""
        pos, self.skip = self.skip, 0
        pax: dict[str, bytes] = {}
        long_name = long_link = None
        while True:
            if pos + BLOCK > len(run):
                raise ValueError("the segment ends inside a header")
            block = run[pos:pos + BLOCK]
            pos += BLOCK
            # The checksum is not checked: dockerd's reader checked it on extraction,
            # and a header altered since changes the rebuilt stream's digest.
            (name, mode, uid, gid, size_f, _mtime, _chksum, typeflag, linkname, magic, version,
             _uname, _gname, devmajor, devminor, prefix) = USTAR_HEADER.unpack(block)
            kind = typeflag.decode("latin-1")
            size = _numeric(size_f, "size")
            if kind in (TYPE_XHEADER, TYPE_XGLOBAL, TYPE_GNU_LONGNAME, TYPE_GNU_LONGLINK):
                data = run[pos:pos + size]
                if len(data) != size:
                    raise ValueError("the segment ends inside an extended header")
                if kind == TYPE_XGLOBAL:
                    self.skip = _pad(size)
                    return TarHeader(kind, _decode(_cstr(name)), "", 0, 0, 0, 0, 0, 0,
                                     _xattrs(parse_pax(data)))
                pos += size + _pad(size)
                if kind == TYPE_XHEADER:
                    pax.update(parse_pax(data))
                elif kind == TYPE_GNU_LONGNAME:
                    long_name = _cstr(data)
                else:
                    long_link = _cstr(data)
                continue
            full_name = _cstr(name)
            if magic == MAGIC_USTAR and version == VERSION_USTAR:
                # USTAR/PAX: prefix joins the name; STAR keeps a shorter prefix.
                pre = _cstr(prefix[:131] if block[508:512] == TRAILER_STAR else prefix)
                if pre:
                    full_name = pre + b"/" + full_name
            link = _cstr(linkname)
            uid_n, gid_n = _numeric(uid, "uid"), _numeric(gid, "gid")
            if pax:
                # Go reader.go Next: PAX records first, then GNU long names win.
                full_name = pax.get("path", full_name)
                link = pax.get("linkpath", link)
                uid_n = int(pax.get("uid", uid_n))
                gid_n = int(pax.get("gid", gid_n))
                size = int(pax.get("size", size))
            if long_name is not None:
                full_name = long_name
            if long_link is not None:
                link = long_link
            if kind == TYPE_REGA:
                # Legacy archives mark directories with a trailing slash only.
                kind = TYPE_DIR if full_name.endswith(b"/") else TYPE_REG
            physical = 0 if kind in HEADER_ONLY else size
            self.skip = _pad(physical)
            devices = kind in (TYPE_CHAR, TYPE_BLOCK)
            return TarHeader(kind, _decode(full_name), _decode(link) if link else "",
                             _numeric(mode, "mode"), uid_n, gid_n, size,
                             _numeric(devmajor, "devmajor") if devices else 0,
                             _numeric(devminor, "devminor") if devices else 0,
                             _xattrs(pax) if pax else {})


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _xattrs(pax: Mapping[str, bytes]) -> dict[str, bytes]:
    # Go reader.go mergePAX: SCHILY.xattr.<name> records become Header.Xattrs, which
    # Docker's createTarFile sets with lsetxattr.
    return {k[len(PAX_XATTR):]: v for k, v in pax.items() if k.startswith(PAX_XATTR)}


ZERO_BLOCK = bytes(BLOCK)
_EXTENSIONS = (b"x", b"g", b"L", b"K")


# Given a member's name and content size before its content passes: what takes each
# piece of that content as it passes (a layer's unpacked file compared with it), or None.
ContentSink = Callable[[str, int], "Callable[[memoryview], None] | None"]


class _Pieces:
    """A stream of chunks read by the byte count: headers are copied out (a block or a
    few); content is handed out as views of the chunks it lies in, never copied."""

    def __init__(self, stream: Iterable[bytes]):
        self.chunks = iter(stream)
        self.head = bytearray()          # what a read across chunks has gathered
        self.view = memoryview(b"")      # the rest of the chunk after head

    def fill(self, n: int) -> bool:
        """Whether n bytes are held (head, then view); only what a read across the
        chunks' edges needs is gathered into head."""
        if len(self.head) + len(self.view) >= n:
            return True
        self.head += self.view
        self.view = memoryview(b"")
        while len(self.head) < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                return False
            need = n - len(self.head)
            self.head += chunk[:need]
            self.view = memoryview(chunk)[need:]
        return True

    def take(self, n: int) -> bytes | None:
        if not self.head and len(self.view) >= n:      # within a chunk: the common case
            out = bytes(self.view[:n])
            self.view = self.view[n:]
            return out
        if not self.fill(n):
            return None
        held = len(self.head)
        out = bytes(self.head[:n]) + bytes(self.view[:max(0, n - held)])
        del self.head[:n]
        if n > held:
            self.view = self.view[n - held:]
        return out

    def piece(self, left: int) -> "bytes | memoryview | None":
        """Up to left bytes of content, as held; None at the end of the stream."""
        if self.head:
            out = bytes(self.head[:left])
            del self.head[:left]
            return out
        while not self.view:
            chunk = next(self.chunks, None)
            if chunk is None:
                return None
            self.view = memoryview(chunk)
        out = self.view[:left]
        self.view = self.view[len(out):]
        return out

    def chunk(self) -> memoryview:
        """The rest of the chunk being read, the next one once it is used up; empty
        while a read across chunks holds bytes, and at the end of the stream."""
        if self.head:
            return memoryview(b"")
        if not self.view:
            self.view = memoryview(next(self.chunks, b""))
        return self.view

    def rest(self) -> bytes:
        out = bytes(self.head) + bytes(self.view)
        self.head.clear()
        self.view = memoryview(b"")
        return out


class StreamScan(Protocol):
    def scan_stream(self, block: memoryview, pos: int) -> tuple[int, int, int]: ...


def split_tar(stream: Iterable[bytes], source: str, content: ContentSink | None = None,
              scan: StreamScan | None = None
              ) -> Iterator[tuple[bytes, FileEntry | None, "TarHeader | str"] | SoundMembers]:
    """A tar stream cut as tar-split cuts it: each member's headers (with the previous
    member's padding before them) as a run, its content replaced by a file entry (size
    and CRC-64), and the end-of-archive blocks and what follows them as the last runs. A
    layer's unpacked files are then judged as tar-split's are (engines/verify.py).

    Memory is a block and a chunk: content is hashed as it streams by, and handed to
    ``content``'s sink piece by piece (views of the chunks, valid while the call lasts).

    Given the layer's native scan (nativeio.TarSplitScan.scan_stream), the members it
    judges sound within a chunk come as SoundMembers instead, their bytes (and the
    padding before them) in no run: the caller does not rebuild the stream from runs.

    Raises:
        MalformedError: the stream ends inside a header, its data or a member's content.
    """
    pieces = _Pieces(stream)

    def size_of(block: bytes) -> int:
        """A header block's size field, where nothing else says it (damage in it: the
        stream cannot be cut)."""
        try:
            size = _numeric(block[124:136], "size")
        except ValueError as exc:
            raise MalformedError(source, f"{exc}: the tar stream cannot be cut") from None
        if size < 0:
            raise MalformedError(source, f"size {size} in a header: the tar stream cannot "
                                 "be cut")
        return size

    def take(n: int, what: str) -> bytes:
        out = pieces.take(n)
        if out is None:
            raise MalformedError(source, f"the tar stream ends inside {what}")
        return out

    headers = HeaderReader()
    run = bytearray()
    position = 0
    while True:
        if scan is not None and len(pieces.chunk()) > BLOCK:
            used, hashed, files = scan.scan_stream(pieces.view, 0)
            if files:
                pieces.view = pieces.view[used:]
                run = bytearray()
                headers.skip = 0
                position += files
                yield SoundMembers(hashed, hashed, files)
        block = pieces.take(BLOCK)
        if block is None or block == ZERO_BLOCK:
            # The end of the archive: the zero blocks and whatever padding follows,
            # chunk by chunk (a stream may go on for gigabytes after its end).
            run += (block or b"") + pieces.rest()
            yield bytes(run), None, None
            for chunk in pieces.chunks:
                yield chunk, None, None
            return
        run += block
        typeflag = block[156:157]
        size = 0
        if typeflag in _EXTENSIONS:
            size = size_of(block)
            if size > MAX_SPECIAL:
                # Go's reader refuses it (ErrFieldTooLong), so no daemon unpacked it;
                # gathering it would hold whatever size the evidence claims.
                raise MalformedError(source, f"an extended header of {size} bytes "
                                     f"(archive/tar reads at most {MAX_SPECIAL}): the tar "
                                     "stream cannot be cut")
            run += take(size, "an extended header")
            if typeflag != b"g":
                run += take(_pad(size), "an extended header's padding")
                continue
        try:
            header: TarHeader | str = headers.read(bytes(run))
            physical = 0 if header.typeflag in HEADER_ONLY or header.typeflag == "g" \
                else header.size
            name = header.name
        except ValueError as exc:
            header, name = str(exc), _decode(_cstr(block[:100]))
            physical = size_of(block)
        if physical < 0:
            raise MalformedError(source, f"{name!r} has size {physical}: the tar stream "
                                 "cannot be cut")
        crc = 0
        left = physical
        sink = content(name, physical) if content is not None and physical else None
        while left:
            piece = pieces.piece(left)
            if piece is None:
                raise MalformedError(source, f"the tar stream ends inside {name!r}")
            crc = crc64_iso(piece, crc)
            if sink is not None:
                sink(piece)
            left -= len(piece)
        yield bytes(run), FileEntry(name, physical, crc if physical else None, position), header
        position += 1
        # Go's reader skips this padding at the next header: it opens the next run (and
        # the header reader skips it there, also after a header it could not read).
        pad = _pad(size) if typeflag == b"g" else _pad(physical)
        run = bytearray(take(pad, "a member's padding"))
        headers.skip = pad
