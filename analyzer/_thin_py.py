"""Pure-Python twin of the thin-pool loops in ``_fastdigest``: CRC-32C and bulk leaf accounting.

Same API and results as the native functions (see ``_fastdigest.pyi``), so every test runs
on both. CRC-32C here costs about 0.3 ms per 4 KiB metadata block: enough for tests and
small pools, not for a pool of millions of blocks.

Leaf values are dm-thin's ``block_time``: little-endian u64 ``data_block << 24 | time``
(linux drivers/md/dm-thin-metadata.c pack_block_time).

References: RFC 3720 B.4 (CRC-32C, Castagnoli); linux lib/crc32.c (crc32c).
"""
from __future__ import annotations

import struct
import sys
from array import array

from ._digest_py import slicing_tables

__all__ = ["crc32c", "thin_count_eq", "thin_keys_ok", "thin_mark", "thin_tally"]

# CRC-32C (Castagnoli), reflected: 0x1EDC6F41 bit-reversed.
_CASTAGNOLI_REFLECTED = 0x82F63B78
_MASK32 = 0xFFFFFFFF
_TIME_BITS = 24


_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7 = slicing_tables(_CASTAGNOLI_REFLECTED)


def crc32c(data, crc: int = 0, /) -> int:
    """CRC-32C of data, chainable: ``crc32c(b, crc32c(a)) == crc32c(a + b)``.

    The standard check value: ``crc32c(b"123456789") == 0xE3069283``.
    """
    if not isinstance(crc, int):
        raise TypeError(f"crc must be an int, not {type(crc).__name__}")
    if not 0 <= crc <= _MASK32:
        raise OverflowError(f"crc out of range for 32 bits: {crc}")
    with memoryview(data) as view, view.cast("B") as octets:
        raw = crc ^ _MASK32
        whole = len(octets) & ~7
        for low, high in struct.iter_unpack("<II", octets[:whole]):
            raw ^= low
            raw = (_T7[raw & 0xFF] ^ _T6[(raw >> 8) & 0xFF] ^ _T5[(raw >> 16) & 0xFF]
                   ^ _T4[raw >> 24] ^ _T3[high & 0xFF] ^ _T2[(high >> 8) & 0xFF]
                   ^ _T1[(high >> 16) & 0xFF] ^ _T0[high >> 24])
        for b in octets[whole:]:
            raw = _T0[(raw ^ b) & 0xFF] ^ (raw >> 8)
        return raw ^ _MASK32


def _words(buf) -> array:
    """A buffer of little-endian u64 as an array."""
    with memoryview(buf) as view, view.cast("B") as octets:
        if len(octets) % 8:
            raise ValueError(f"expected whole le64 words, got {len(octets)} bytes")
        words = array("Q")
        words.frombytes(octets)
    if sys.byteorder == "big":
        words.byteswap()
    return words


def thin_keys_ok(keys, lo: int, hi: int, /) -> bool:
    """True if the le64 keys ascend strictly and lie in [lo, hi] (a btree node's keys)."""
    words = _words(keys)
    if not words:
        return True
    if words[0] < lo or words[-1] > hi:
        return False
    return all(a < b for a, b in zip(words, words[1:]))


def _data_blocks(values) -> array:
    """The data blocks of a buffer of le64 block_time values."""
    return array("Q", (w >> _TIME_BITS for w in _words(values)))


def thin_tally(counts: bytearray, values, add: int, /) -> int:
    """counts[b] += add, saturating at 255, for the data block b of every value.

    Returns how many values name a block at or past ``len(counts)`` (left uncounted).
    """
    if not 0 <= add <= 255:
        raise ValueError(f"add must be 0..255: {add}")
    n, outside = len(counts), 0
    for b in _data_blocks(values):
        if b < n:
            c = counts[b] + add
            counts[b] = c if c < 255 else 255
        else:
            outside += 1
    return outside


def thin_count_eq(counts, values, want: int, /) -> int:
    """How many values name a data block b with ``counts[b] == want`` (b in range)."""
    n = len(counts)
    return sum(1 for b in _data_blocks(values) if b < n and counts[b] == want)


def thin_mark(flags: bytearray, values, bit: int, /) -> int:
    """flags[b] |= bit for the data block b of every value; returns how many fell outside."""
    if not 0 <= bit <= 255:
        raise ValueError(f"bit must be 0..255: {bit}")
    n, outside = len(flags), 0
    for b in _data_blocks(values):
        if b < n:
            flags[b] |= bit
        else:
            outside += 1
    return outside
