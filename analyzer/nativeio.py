"""Bulk reading below a directory fd, from the backend ``analyzer.native`` chose (twin:
``_nativeio_py``): many small files in one call, and one file opened, hashed and closed in
one call. Both open as ``analyzer/safeopen.py`` says; only the evidence root calls them.
"""
from __future__ import annotations

from .native import features, impl

__all__ = ["HAVE_OPENAT2", "TarSplitScan", "hash_file_at", "read_files"]

read_files = impl.read_files
hash_file_at = impl.hash_file_at
TarSplitScan = impl.TarSplitScan
# Both need openat2 for paths of several names; without it the root reads one at a time.
HAVE_OPENAT2: bool = features()["openat2"]
