"""SHA-256 and CRC-64/GO-ISO for verify: the native core, or its pure-Python twin.

``ANALYZER_DIGEST`` picks the backend at import: ``auto`` (default: native if it is built,
else Python), ``native`` or ``python``; anything else raises ImportError. ``BACKEND`` says
which one was loaded. Both export the same functions (see ``_fastdigest.pyi``):
``Sha256``, ``crc64_iso``, ``hash_fd`` and ``features``.

tar-split stores a file's checksum as ``crc.to_bytes(8, "big")`` (base64 in the JSON).
"""
from __future__ import annotations

import os

__all__ = ["BACKEND", "Sha256", "crc64_iso", "features", "hash_fd"]

_POLICIES = ("auto", "native", "python")
_policy = os.environ.get("ANALYZER_DIGEST", "auto")

if _policy not in _POLICIES:
    raise ImportError(f"unknown ANALYZER_DIGEST {_policy!r}: use one of {', '.join(_POLICIES)}")

if _policy == "python":
    from analyzer._digest_py import Sha256, crc64_iso, features, hash_fd
    BACKEND = "python"
else:
    try:
        from analyzer._fastdigest import Sha256, crc64_iso, features, hash_fd
        BACKEND = "native"
    except ImportError:
        if _policy == "native":
            raise
        from analyzer._digest_py import Sha256, crc64_iso, features, hash_fd
        BACKEND = "python"

# The thin-pool loops (CRC-32C of metadata blocks, bulk leaf accounting) follow the same
# choice; their Python twin is _thin_py.
if BACKEND == "native":
    from analyzer._fastdigest import crc32c, thin_count_eq, thin_keys_ok, thin_mark, thin_tally
else:
    from analyzer._thin_py import crc32c, thin_count_eq, thin_keys_ok, thin_mark, thin_tally
__all__ += ["crc32c", "thin_count_eq", "thin_keys_ok", "thin_mark", "thin_tally"]

# The compact path index verify keeps a layer's directory in (twin: _pathindex_py).
if BACKEND == "native":
    from analyzer._fastdigest import PathIndex, walk_index
else:
    from analyzer._pathindex_py import PathIndex, walk_index
__all__ += ["PathIndex", "walk_index"]
