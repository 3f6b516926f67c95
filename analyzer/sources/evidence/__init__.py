"""Evidence: a data root opened read-only, with no way out of it.

``open_root(path)`` gives the backend for what path is (a directory, or a tar archive
of one); callers see only :class:`EvidenceRoot` (``root.py``).
"""
from __future__ import annotations

import os
import stat as stat_mod

from typing import TYPE_CHECKING, Any

from ...errors import EvidenceError
from .directory import DirectoryRoot
from .root import JSON_LIMIT, SMALL_LIMIT, EvidenceRoot, Stat

if TYPE_CHECKING:
    from .archive import ArchiveRoot

__all__ = ["JSON_LIMIT", "SMALL_LIMIT", "ArchiveRoot", "DirectoryRoot", "EvidenceRoot", "Stat",
           "open_root"]


def __getattr__(name: str) -> Any:
    # The archive reader (tarfile, the decompressors) is imported when an archive is
    # opened: a directory's command does not pay for it at start-up.
    if name == "ArchiveRoot":
        from .archive import ArchiveRoot
        return ArchiveRoot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_root(path: str) -> EvidenceRoot:
    """Open a data root: a directory, a tar archive of one, or ``ARCHIVE:SUBPATH``, the
    directory SUBPATH in a bigger archive (a whole disk's: ``disk.tar:var/lib/docker``).

    A path that exists is taken whole, colons and all."""
    try:
        st = os.stat(path)
    except OSError as exc:
        archive, colon, sub = path.rpartition(":")
        if colon and archive and os.path.isfile(archive):
            return _inside(archive, sub)
        raise EvidenceError(path, f"cannot open data root: {exc.strerror}") from None
    if stat_mod.S_ISDIR(st.st_mode):
        return DirectoryRoot(path)
    from .archive import ArchiveRoot
    return ArchiveRoot(path)


def _inside(archive: str, sub: str) -> ArchiveRoot:
    from .archive import ArchiveRoot
    root = ArchiveRoot(archive).data_root_at(sub)
    if root is None:
        raise EvidenceError(archive, f"no directory {sub!r} in the archive")
    return root
