"""Compressed streams as containerd reads them: gzip members or zstd frames one after
another, or plain bytes, chosen by the stream's own magic bytes (containerd's
archive/compression.DecompressStream), never by a name or a media type.

Two shapes over the same choice: ``Frames`` is pushed chunks (verify hashes a blob's
bytes as they pass), ``open_stream`` is pulled in bounded reads (an archive read by
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


class Frames:
    """Decompress pushed chunks: gzip members (or zstd frames) one after another, as
    Go's gzip reader does in its default multistream mode and zstd decoders do with
    frames."""

    def __init__(self, make):
        self.make = make
        self.d = make()

    def feed(self, data: bytes) -> bytes:
        try:
            out = [self.d.decompress(data)]
            while self.d.eof and self.d.unused_data:
                rest = self.d.unused_data
                self.d = self.make()
                out.append(self.d.decompress(rest))
        except Exception as exc:   # isal_zlib.error, zstandard.ZstdError
            raise _broken(exc) from None
        return b"".join(out)

    def finish(self) -> None:
        if not self.d.eof:
            raise StreamError("truncated")


class Plain:
    def feed(self, data: bytes) -> bytes:
        return data

    def finish(self) -> None:
        pass


def push_decoder(head: bytes) -> tuple[str, Frames | Plain]:
    """The kind of a stream that begins with ``head`` and a decoder to push it through."""
    kind = kind_of(head)
    if kind == "gzip":
        return kind, Frames(_gzip_member)
    if kind == "zstd":
        return kind, Frames(_zstd_frame)
    return kind, Plain()


def decompress(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of a stream pushed in chunks, its kind read from its
    first bytes. Raises StreamError where it breaks or ends early."""
    head = b""
    stream: Frames | Plain | None = None
    for chunk in chunks:
        if stream is None:
            head += chunk
            if len(head) < MAGIC_BYTES:
                continue
            chunk, (_, stream) = head, push_decoder(head)
        out = stream.feed(chunk)
        if out:
            yield out
    if stream is None:
        _, stream = push_decoder(head)
        out = stream.feed(head)
        if out:
            yield out
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
