"""The pure-Python backend: every twin of ``_fastdigest`` in one module, with its names.

"This should match what the C extension exports" (python-zstandard's backend_cffi):
``tests/test_native.py`` holds the two to the same ``__all__``. The twins are slow where
the extension is fast (CRC-64 at tens of MB/s, a few hundred bytes a path in the index):
they are the fallback when the extension is not built, and the spec its tests compare with.
"""
from __future__ import annotations

from ._digest_py import Sha256, compare_fd, crc64_iso, hash_fd
from ._layerrecords_py import plain_layers
from ._nativeio_py import TarSplitScan, hash_file_at, read_files
from ._pathindex_py import PathIndex, walk_index
from ._thin_py import crc32c, thin_count_eq, thin_keys_ok, thin_mark, thin_tally
from ._treeusage_py import TreeUsage, attribute, freed_bytes, walk_usage
from .safeopen import HAVE_OPENAT2

__all__ = ["PathIndex", "Sha256", "TarSplitScan", "TreeUsage", "attribute", "compare_fd", "crc32c", "crc64_iso", "features",
           "freed_bytes", "hash_fd", "hash_file_at", "plain_layers", "read_files", "thin_count_eq",
           "thin_keys_ok", "thin_mark", "thin_tally", "walk_index", "walk_usage"]


def features() -> dict[str, bool]:
    """No accelerated path in pure Python; openat2 as the kernel has it (through ctypes)."""
    return {"sha_ni": False, "pclmul": False, "sse42": False, "openat2": HAVE_OPENAT2}
