"""Pure-Python twin of ``_fastdigest.PathIndex`` and ``walk_index``.

Same API and behaviour as the native version, keyed on the exact path bytes instead of a
keyed hash of them (the key is accepted and ignored). Costs a few hundred bytes a path,
so it is the fallback when the extension is not built, not a way to verify a layer of a
million files.
"""
from __future__ import annotations

from ._walk_py import walk

__all__ = ["PathIndex", "walk_index"]

KEY_SIZE = 16


class PathIndex:
    """Paths (bytes, relative, "" for the top) with what lstat said of each, and a mark
    for the ones the layer is expected to hold. See _fastdigest.pyi."""

    def __init__(self, key: bytes, stats: bool = True):
        if len(key) != KEY_SIZE:
            raise ValueError(f"key must be {KEY_SIZE} bytes")
        self._stats = stats
        self._entries: dict[bytes, tuple[int, ...] | None] = {}
        self._expected: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, path: bytes, st: tuple[int, ...] | None = None) -> bool:
        if self._stats != (st is not None):
            raise ValueError("stats are required by an index with stats, refused by one without")
        if st is not None and len(st) != 8:
            raise ValueError("st is (mode, uid, gid, size, dev, ino, nlink, rdev)")
        if path in self._entries:
            return False
        self._entries[path] = None if st is None else tuple(int(v) for v in st)
        return True

    def get(self, path: bytes) -> tuple[int, ...] | None:
        if not self._stats:
            raise ValueError("this index keeps no stats")
        return self._entries.get(path)

    def __contains__(self, path: bytes) -> bool:
        return path in self._entries

    def expect(self, path: bytes) -> None:
        while True:
            if path in self._entries:
                if path in self._expected:
                    return
                self._expected.add(path)
            if not path:
                return
            path = path.rpartition(b"/")[0]

    def expected(self, path: bytes) -> bool:
        return path in self._expected

    @property
    def unexpected(self) -> int:
        return len(self._entries) - len(self._expected)


def walk_index(index: PathIndex, dir_fd: int, helper: int = -1) -> list[tuple[bytes, int]]:
    """Add dir_fd's directory ("") and everything below it (_walk_py.walk); returns
    (path, errno) of the directories that could not be opened or read. helper (the native
    walk's second thread) changes nothing here."""
    errors: list[tuple[bytes, int]] = []
    for path, st in walk(dir_fd, b"", errors):
        index.add(path, (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_dev, st.st_ino,
                         st.st_nlink, st.st_rdev))
    return errors
