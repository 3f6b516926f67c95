"""SHA-256 and CRC-64/GO-ISO for verify, from the backend ``analyzer.native`` chose.

``Sha256``, ``crc64_iso``, ``hash_fd`` and ``compare_fd`` (see ``_fastdigest.pyi``): the native core, or
its pure-Python twin ``_digest_py``. tar-split stores a file's checksum as
``crc.to_bytes(8, "big")`` (base64 in the JSON).
"""
from __future__ import annotations

from .native import impl

__all__ = ["Sha256", "compare_fd", "crc64_iso", "hash_fd"]

Sha256 = impl.Sha256
crc64_iso = impl.crc64_iso
hash_fd = impl.hash_fd
compare_fd = impl.compare_fd
