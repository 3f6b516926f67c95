"""Pure-Python twin of ``_fastdigest``: hashlib's SHA-256 and a table CRC-64/GO-ISO.

Same API and behaviour as the native digests (``_native_py`` gathers the twins), so every
digest test runs on both. Slow at CRC-64 (tens of MB/s): it is the fallback when the extension is not
built, not a way to verify large roots.

References: Go hash/crc64 (ISO table, update with pre- and post-inversion); tar-split
tar/storage/getter.go.
"""
from __future__ import annotations

import hashlib
import os
import struct

__all__ = ["Sha256", "compare_fd", "crc64_iso", "hash_fd"]

# Go's crc64.ISO, reflected: x^64 + x^4 + x^3 + x + 1.
_ISO_REFLECTED = 0xD800000000000000
_MASK = 0xFFFFFFFFFFFFFFFF
_READ_SIZE = 256 * 1024


def slicing_tables(reflected_poly: int) -> tuple[tuple[int, ...], ...]:
    """tables[k][b]: raw CRC of byte b followed by k zero bytes (slicing-by-8),
    for a reflected CRC of any width (CRC-64/GO-ISO here, CRC-32C in _thin_py)."""
    first = []
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ reflected_poly if c & 1 else c >> 1
        first.append(c)
    tables = [tuple(first)]
    for _ in range(7):
        prev = tables[-1]
        tables.append(tuple((c >> 8) ^ first[c & 0xFF] for c in prev))
    return tuple(tables)


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = slicing_tables(_ISO_REFLECTED)


def _crc_raw(raw: int, view: memoryview) -> int:
    """The table loop on the raw (inverted) register, eight bytes a step."""
    whole = len(view) & ~7
    for (word,) in struct.iter_unpack("<Q", view[:whole]):
        raw ^= word
        raw = (_T7[raw & 0xFF] ^ _T6[(raw >> 8) & 0xFF] ^ _T5[(raw >> 16) & 0xFF]
               ^ _T4[(raw >> 24) & 0xFF] ^ _T3[(raw >> 32) & 0xFF] ^ _T2[(raw >> 40) & 0xFF]
               ^ _T1[(raw >> 48) & 0xFF] ^ _T0[raw >> 56])
    for b in view[whole:]:
        raw = _T0[(raw ^ b) & 0xFF] ^ (raw >> 8)
    return raw


def crc64_iso(data, crc: int = 0, /) -> int:
    """Go's crc64.Update(crc, crc64.MakeTable(crc64.ISO), data)."""
    if not isinstance(crc, int):
        raise TypeError(f"crc must be an int, not {type(crc).__name__}")
    if not 0 <= crc <= _MASK:
        raise OverflowError(f"crc out of range for 64 bits: {crc}")
    with memoryview(data) as view, view.cast("B") as octets:
        return _crc_raw(crc ^ _MASK, octets) ^ _MASK


class Sha256:
    """SHA-256 like hashlib's, reduced to what verify needs."""

    __slots__ = ("_hash",)

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def update(self, data, /) -> None:
        self._hash.update(data)

    def digest(self) -> bytes:
        return self._hash.digest()

    def copy(self) -> Sha256:
        other = Sha256.__new__(Sha256)
        other._hash = self._hash.copy()
        return other


def hash_fd(fd: int, offset: int, length: int, sha: Sha256 | None, /) -> tuple[int, int]:
    """Read fd from offset, feed sha (if not None) and return (crc64, bytes_read).

    length -1 reads to end of file; a short file shows as bytes_read < length.
    """
    if sha is not None and not isinstance(sha, Sha256):
        raise TypeError(f"sha must be Sha256 or None, not {type(sha).__name__}")
    if offset < 0:
        raise ValueError(f"negative offset: {offset}")
    if length < -1:
        raise ValueError(f"length must be -1 or more: {length}")
    raw, nread = _MASK, 0
    while length < 0 or nread < length:
        want = _READ_SIZE if length < 0 else min(_READ_SIZE, length - nread)
        chunk = os.pread(fd, want, offset + nread)   # retries EINTR itself (PEP 475)
        if not chunk:
            break
        if sha is not None:
            sha.update(chunk)
        raw = _crc_raw(raw, memoryview(chunk))
        nread += len(chunk)
    return raw ^ _MASK, nread


def compare_fd(fd: int, offset: int, data, crc: int = 0, /) -> tuple[int, int, int]:
    """Read len(data) bytes of fd from offset and compare them with data: (bytes_read,
    their CRC-64 chained from crc, the index of the first byte that differs or -1)."""
    if offset < 0:
        raise ValueError(f"negative offset: {offset}")
    want = memoryview(data).cast("B")
    nread, differs = 0, -1
    while nread < len(want):
        chunk = os.pread(fd, min(_READ_SIZE, len(want) - nread), offset + nread)
        if not chunk:
            break
        crc = crc64_iso(chunk, crc)
        if differs < 0 and chunk != want[nread:nread + len(chunk)].tobytes():
            differs = nread + next(i for i, (a, b) in enumerate(zip(chunk, want[nread:]))
                                   if a != b)
        nread += len(chunk)
    return nread, crc, differs
