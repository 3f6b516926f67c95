"""Compressed streams as containerd reads them: gzip members or zstd frames one after
another, or plain bytes, chosen by the stream's own magic bytes (containerd's
archive/compression.DecompressStream), never by a name or a media type.

Two shapes over the same choice: ``Decompressed`` is pushed chunks (verify hashes a
blob's bytes as they pass), ``open_stream`` is pulled in bounded reads (an archive read by
tarfile; its zstd is the pushed decoder, pulled). Every fault of the stream — a bad header, a checksum, a cut — is a
``StreamError``, whichever library found it.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from isal import igzip, isal_zlib

GZIP, ZSTD = b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd"
MAGIC_BYTES = len(ZSTD)


class StreamError(Exception):
    """The compressed stream is broken or cut short."""


def kind_of(head: bytes) -> str:
    """gzip, zstd or tar (no compression), from a stream's first bytes."""
    if head.startswith(GZIP):
        return "gzip"
    if head.startswith(ZSTD):
        return "zstd"
    return "tar"


# What a gzip member's inflater raises on damage.
GzipError = isal_zlib.error


def gzip_member():
    """An inflater of one gzip member, checked to its trailer (decompress, eof,
    unused_data, unconsumed_tail as zlib's). ISA-L's inflate: 567 MB/s of output per CPU
    second on real layers here, zlib-ng 509, the stdlib's zlib 250
    (benchmarks/bench_archive_verify.py); a tar-split, 16 MB of JSON lines, inflates in
    6 ms against zlib's 14. Like Go's gzip.Reader (and unlike zlib) it takes a header
    with reserved flag bits set."""
    return isal_zlib.decompressobj(wbits=31)


# The largest window a frame may ask for: containerd and moby decode zstd with
# klauspost/compress, whose decoder takes windows up to 512 MiB by default (zstd
# --long=29); libzstd's own default stops at 128 MiB and would call such a layer broken.
ZSTD_WINDOW_MAX = 1 << 29


def _zstd_frame():
    import zstandard
    return zstandard.ZstdDecompressor(max_window_size=ZSTD_WINDOW_MAX).decompressobj()


def _broken(exc: Exception) -> StreamError:
    return StreamError(str(exc) or type(exc).__name__)


# The most output one call returns: a chunk of a gzip bomb (ratio 1000:1) stays a
# megabyte, and so does one of a zstd bomb (32768:1: ZstdBlocks).
OUTPUT_LIMIT = 1 << 20

_ZSTD_SKIPPABLE, _ZSTD_SKIPPABLE_MASK = 0x184D2A50, 0xFFFFFFF0
ZSTD_BLOCK_MAX = 128 << 10
_FRAME, _BLOCK, _OPAQUE = range(3)


class ZstdBlocks:
    """Cuts a stream of zstd frames into pieces that end few blocks each.

    zstandard's decompressobj takes no output bound: whatever a pushed piece decodes to
    comes back from one call, and 4 bytes (an RLE block) decode to 128 KiB. But no block
    decodes to more than ZSTD_BLOCK_MAX (RFC 8878 3.1.1.2.3), and where each block ends
    is written in the frame and block headers, so a piece in which at most BLOCKS blocks
    end decodes to at most OUTPUT_LIMIT: one more may end in it unseen (its header came
    in the chunk before) and a raw block it only begins is passed on as far as it goes.
    A header the decoder will refuse (bytes that are no frame, a reserved block type)
    stops the cutting: the decoder's error ends the stream there."""

    BLOCKS = OUTPUT_LIMIT // ZSTD_BLOCK_MAX - 2

    def __init__(self) -> None:
        self.at = 0             # stream offset of the next header
        self.state = _FRAME     # what begins there
        self.head = b""         # its bytes seen so far (a header can straddle chunks)
        self.seen = 0           # stream offset of the chunk being cut
        self.checksum = False   # the current frame ends with a 4-byte checksum

    def pieces(self, data: bytes) -> Iterator[memoryview]:
        view, start, ends = memoryview(data), 0, 0
        for end in self._block_ends(data):
            ends += 1
            if ends == self.BLOCKS:
                yield view[start:end]
                start, ends = end, 0
        if start < len(data):
            yield view[start:]

    def _block_ends(self, data: bytes) -> Iterator[int]:
        """Offsets in ``data`` just past each block that ends in it."""
        base, self.seen = self.seen, self.seen + len(data)
        while self.state != _OPAQUE:
            i = self.at + len(self.head) - base     # the next byte not yet looked at
            if i >= len(data):
                return
            want = self._header_size()
            if want is None:
                self.state = _OPAQUE
                return
            if len(self.head) < want:
                self.head += data[i:i + want - len(self.head)]
                continue                            # a frame header says its size late
            header, self.head = self.head, b""
            if self._past(header) and self.at - base <= len(data):
                yield self.at - base

    def _header_size(self) -> int | None:
        """How long the header at ``at`` is, as far as its bytes so far tell."""
        if self.state == _BLOCK:
            return 3
        head = self.head
        if len(head) < 4:
            return 4
        magic = int.from_bytes(head[:4], "little")
        if magic & _ZSTD_SKIPPABLE_MASK == _ZSTD_SKIPPABLE:
            return 8                                # magic, then the length of its data
        if head[:4] != ZSTD:
            return None
        if len(head) < 5:
            return 5
        descriptor = head[4]
        single_segment = descriptor >> 5 & 1
        dictionary_id = (0, 1, 2, 4)[descriptor & 3]
        content_size = (single_segment, 2, 4, 8)[descriptor >> 6]
        return 5 + (1 - single_segment) + dictionary_id + content_size

    def _past(self, header: bytes) -> bool:
        """Step over what ``header`` heads; True when that was a block."""
        if self.state == _FRAME:
            if header[:4] == ZSTD:
                self.checksum = bool(header[4] >> 2 & 1)
                self.at += len(header)
                self.state = _BLOCK
            else:
                self.at += 8 + int.from_bytes(header[4:8], "little")
            return False
        word = int.from_bytes(header, "little")
        last, kind, size = word & 1, word >> 1 & 3, word >> 3
        if kind == 3:
            self.state = _OPAQUE
            return False
        self.at += 3 + (1 if kind == 1 else size)   # an RLE block is one byte, repeated
        if last:
            self.at += 4 * self.checksum
            self.state = _FRAME
        return True


class Frames:
    """Decompress pushed chunks: gzip members (or zstd frames) one after another, as
    Go's gzip reader does in its default multistream mode and zstd decoders do with
    frames. Each call returns at most OUTPUT_LIMIT: the decoder bounds its output
    (gzip), or the input is cut where few zstd blocks end."""

    def __init__(self, make, bounded: bool):
        self.make = make
        self.d = make()
        self.limit = (OUTPUT_LIMIT,) if bounded else ()
        self.blocks = None if bounded else ZstdBlocks()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            if self.blocks is None:
                yield from self._feed(data)
            else:
                for piece in self.blocks.pieces(data):
                    yield from self._feed(piece)
        except Exception as exc:   # isal_zlib.error, zstandard.ZstdError
            raise _broken(exc) from None

    def _feed(self, data) -> Iterator[bytes]:
        while True:
            if self.d.eof:
                self.d = self.make()        # the next member or frame
            out = self.d.decompress(data, *self.limit)
            if out:
                yield out
            if self.d.eof:
                data = self.d.unused_data
                if not data:
                    return
            elif self.limit and (self.d.unconsumed_tail or len(out) == self.limit[0]):
                data = self.d.unconsumed_tail   # b"": output the bound held back
            else:
                return

    def finish(self) -> None:
        if not self.d.eof:
            raise StreamError("truncated")


class Plain:
    def feed(self, data: bytes) -> Iterator[bytes]:
        yield data

    def finish(self) -> None:
        pass


def push_decoder(head: bytes) -> tuple[str, Frames | Plain]:
    """The kind of a stream that begins with ``head`` and a decoder to push it through."""
    kind = kind_of(head)
    if kind == "gzip":
        return kind, Frames(gzip_member, bounded=True)
    if kind == "zstd":
        return kind, Frames(_zstd_frame, bounded=False)
    return kind, Plain()


class Decoder:
    """A stream pushed a chunk at a time, decompressed in pieces of at most OUTPUT_LIMIT
    (a plain stream keeps its chunks), its kind read from its first bytes (set once
    they are in). ``feed`` and ``finish`` raise StreamError where the stream breaks or
    ends early."""

    def __init__(self) -> None:
        self.kind = "tar"
        self.head = b""
        self.stream: Frames | Plain | None = None

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        if self.stream is None:
            self.head += chunk
            if len(self.head) < MAGIC_BYTES:
                return
            chunk, (self.kind, self.stream) = self.head, push_decoder(self.head)
        yield from self.stream.feed(chunk)

    def finish(self) -> Iterator[bytes]:
        """What a stream shorter than its magic bytes was; then whether it ended whole."""
        if self.stream is None:
            self.kind, self.stream = push_decoder(self.head)
            if self.head:
                yield from self.stream.feed(self.head)
        self.stream.finish()


class Decompressed:
    """The decompressed bytes of ``chunks``, as a Decoder gives them; iterating raises
    StreamError where the stream breaks or ends early."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks = chunks
        self.decoder = Decoder()

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            yield from self.decoder.feed(chunk)
        yield from self.decoder.finish()


class _Pulled:
    """A decompressing reader whose every fault is a StreamError. Reads are bounded by
    the size asked, whatever the compression ratio (a bomb stays a stream)."""

    def __init__(self, reader):
        self.reader = reader

    def read(self, n: int) -> bytes:
        try:
            return self.reader.read(n)
        except StreamError:
            raise
        except Exception as exc:   # BadGzipFile, EOFError (cut)
            raise _broken(exc) from None


class _PulledPieces:
    """``read(n)`` over a Decompressed stream of ``raw``'s bytes: at most n bytes, and at
    most one bounded piece decoded ahead."""

    READ = 1 << 20

    def __init__(self, raw):
        self.pieces = iter(Decompressed(iter(lambda: raw.read(self.READ), b"")))
        self.piece = memoryview(b"")

    def read(self, n: int) -> bytes:
        while not self.piece:
            piece = next(self.pieces, None)
            if piece is None:
                return b""
            self.piece = memoryview(piece)
        out, self.piece = self.piece[:n], self.piece[n:]
        return bytes(out)


def open_stream(raw) -> _Pulled:
    """The decompressed bytes of ``raw`` (a buffered binary file, which can peek)."""
    kind = kind_of(raw.peek(MAGIC_BYTES)[:MAGIC_BYTES])
    if kind == "gzip":
        return _Pulled(igzip.IGzipFile(fileobj=raw, mode="rb"))
    if kind == "zstd":
        # The push decoder, pulled: zstandard's stream_reader ends a stream cut short
        # (even inside a frame's checksum) as if it were whole.
        return _Pulled(_PulledPieces(raw))
    return _Pulled(raw)
