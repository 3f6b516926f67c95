"""Compressed streams as containerd reads them: gzip members or zstd frames one after
another, or plain bytes, chosen by the stream's own magic bytes (containerd's
archive/compression.DecompressStream), never by a name or a media type.

Two shapes over the same choice: ``Decompressed`` is pushed chunks (verify hashes a
blob's bytes as they pass), ``open_stream`` is pulled in bounded reads (an archive read by
tarfile). Every fault of the stream — a bad header, a checksum, a cut — is a
``StreamError``, whichever library found it.
"""
from __future__ import annotations

from typing import BinaryIO, Iterable, Iterator

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


def _gzip_member():
    # ISA-L's inflate: 567 MB/s of output per CPU second on real layers here, zlib-ng
    # 509, the stdlib's zlib 250 (benchmarks/bench_archive_verify.py).
    return isal_zlib.decompressobj(wbits=31)


def _zstd_frame():
    import zstandard
    return zstandard.ZstdDecompressor().decompressobj()


def _broken(exc: Exception) -> StreamError:
    return StreamError(str(exc) or type(exc).__name__)


# The most output one call returns: a chunk of a gzip bomb (ratio 1000:1) stays a
# megabyte. zstandard's decompressobj takes no such bound: a zstd frame's output comes
# as it is pushed (a hostile frame's ratio can reach 32768:1).
OUTPUT_LIMIT = 1 << 20


class Frames:
    """Decompress pushed chunks: gzip members (or zstd frames) one after another, as
    Go's gzip reader does in its default multistream mode and zstd decoders do with
    frames."""

    def __init__(self, make, bounded: bool):
        self.make = make
        self.d = make()
        self.limit = (OUTPUT_LIMIT,) if bounded else ()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
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
        except Exception as exc:   # isal_zlib.error, zstandard.ZstdError
            raise _broken(exc) from None

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
        return kind, Frames(_gzip_member, bounded=True)
    if kind == "zstd":
        return kind, Frames(_zstd_frame, bounded=False)
    return kind, Plain()


class Decompressed:
    """The decompressed bytes of a stream pushed in chunks, in pieces of at most
    OUTPUT_LIMIT (gzip; a plain stream keeps its chunks), its kind read from its first
    bytes (set once the first piece is out). Iterating raises StreamError where the
    stream breaks or ends early."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks = chunks
        self.kind = "tar"

    def __iter__(self) -> Iterator[bytes]:
        head = b""
        stream: Frames | Plain | None = None
        for chunk in self.chunks:
            if stream is None:
                head += chunk
                if len(head) < MAGIC_BYTES:
                    continue
                chunk, (self.kind, stream) = head, push_decoder(head)
            yield from stream.feed(chunk)
        if stream is None:
            self.kind, stream = push_decoder(head)
            if head:
                yield from stream.feed(head)
        stream.finish()


class _Pulled:
    """A decompressing reader whose every fault is a StreamError. Reads are bounded by
    the size asked, whatever the compression ratio (a bomb stays a stream)."""

    def __init__(self, reader: BinaryIO):
        self.reader = reader

    def read(self, n: int) -> bytes:
        try:
            return self.reader.read(n)
        except StreamError:
            raise
        except Exception as exc:   # BadGzipFile, EOFError (cut), zstandard.ZstdError
            raise _broken(exc) from None


def open_stream(raw) -> _Pulled:
    """The decompressed bytes of ``raw`` (a buffered binary file, which can peek)."""
    kind = kind_of(raw.peek(MAGIC_BYTES)[:MAGIC_BYTES])
    if kind == "gzip":
        return _Pulled(igzip.IGzipFile(fileobj=raw, mode="rb"))
    if kind == "zstd":
        import zstandard
        return _Pulled(zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True, closefd=False))
    return _Pulled(raw)
