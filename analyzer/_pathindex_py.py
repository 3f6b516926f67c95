"""Pure-Python twin of ``_fastdigest.PathIndex`` and ``walk_index``.

Same API and behaviour as the native version, keyed on the exact path bytes instead of a
keyed hash of them (the key is accepted and ignored). Costs a few hundred bytes a path,
so it is the fallback when the extension is not built, not a way to verify a layer of a
million files.
"""
from __future__ import annotations

import os
import stat as stat_mod

from .safeopen import O_DIR, Opener

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


def walk_index(index: PathIndex, dir_fd: int) -> list[tuple[bytes, int]]:
    """Add dir_fd's directory ("") and everything below it; returns (path, errno) of the
    directories that could not be opened or read. Links are never followed; directories
    are reopened from dir_fd one name at a time, so no more than two are open at once
    however deep the tree."""
    errors: list[tuple[bytes, int]] = []
    index.add(b"", _fields(os.fstat(dir_fd)))
    pending = [b""]
    opener = Opener()
    while pending:
        prefix = pending.pop()
        try:
            fd = _open_dir(opener, dir_fd, prefix)
            try:
                with os.scandir(fd) as it:
                    entries = [(os.fsencode(e.name), st) for e in it
                               if (st := _lstat(e)) is not None]
            finally:
                os.close(fd)
        except OSError as exc:
            errors.append((prefix, exc.errno or 0))
            continue
        for name, st in entries:
            path = prefix + b"/" + name if prefix else name
            index.add(path, _fields(st))
            if stat_mod.S_ISDIR(st.st_mode):
                pending.append(path)
    return errors


def _lstat(entry: os.DirEntry) -> os.stat_result | None:
    try:
        return entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None             # gone since readdir (a live host): as if listed a moment later


def _open_dir(opener: Opener, dir_fd: int, path: bytes) -> int:
    fd = os.dup(dir_fd)
    for name in path.split(b"/") if path else ():
        try:
            sub = opener.open(fd, name, O_DIR)
        finally:
            os.close(fd)
        fd = sub
    return fd


def _fields(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_dev, st.st_ino, st.st_nlink,
            st.st_rdev)
