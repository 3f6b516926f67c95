from typing_extensions import Buffer

class Sha256:
    """SHA-256 like hashlib's. One thread at a time; updates of 2 KiB or more release the GIL."""

    def update(self, data: Buffer, /) -> None: ...
    def digest(self) -> bytes:
        """32 raw bytes of what was fed so far; the object can go on."""
    def copy(self) -> Sha256: ...

def crc64_iso(data: Buffer, crc: int = 0, /) -> int:
    """Go's crc64.Update with the ISO table (CRC-64/GO-ISO), chainable; tar-split's payload
    is ``crc.to_bytes(8, "big")``."""

def hash_fd(fd: int, offset: int, length: int, sha: Sha256 | None, /) -> tuple[int, int]:
    """Read fd from offset, length bytes (-1: to end of file), without the GIL, feeding sha
    and the CRC-64 in one pass (pread, or a mapping from 1 MiB on). Returns (crc64,
    bytes_read); a short file shows as bytes_read < length. Raises OSError for a failed
    read, ValueError for a bad offset or length."""

def features() -> dict[str, bool]:
    """{"sha_ni": ..., "pclmul": ...}: the accelerated paths in use."""

def set_portable(portable: bool, /) -> None:
    """Native backend only: force the portable C paths (tests, benchmarks)."""

# Thin-pool metadata (twin: analyzer._thin_py). Values are le64 dm-thin block_time words.

def crc32c(data: Buffer, crc: int = 0, /) -> int:
    """CRC-32C (Castagnoli), chainable; crc32c(b"123456789") == 0xE3069283."""

def thin_keys_ok(keys: Buffer, lo: int, hi: int, /) -> bool:
    """True if the le64 keys ascend strictly and lie in [lo, hi]."""

def thin_tally(counts: bytearray, values: Buffer, add: int, /) -> int:
    """counts[data_block] += add, saturating at 255; returns how many blocks fell past counts."""

def thin_count_eq(counts: Buffer, values: Buffer, want: int, /) -> int:
    """How many values name a data block b with counts[b] == want."""

def thin_mark(flags: bytearray, values: Buffer, bit: int, /) -> int:
    """flags[data_block] |= bit; returns how many blocks fell past flags."""

def thin_features() -> dict[str, bool]:
    """{"sse42": ...}: whether CRC-32C uses the SSE4.2 instruction."""

def thin_set_portable(portable: bool, /) -> None:
    """Force the table CRC-32C (tests, benchmarks)."""
