"""Pure-Python twin of the one tree walk (``_csrc/walk.c``): what verify's path index and
the byte meter see of a tree in the evidence.

Every entry at and below a path relative to a directory fd, with its lstat; links are
never followed and only directories are opened, one name at a time by the safe-open
policy (``analyzer/safeopen.py``), reopened from the top fd, so no more than two are open
at once however deep the tree. A directory is listed whole before any of
its entries is reported: one that cannot be read gives none.
"""
from __future__ import annotations

import errno
import os
import stat as stat_mod
from typing import Iterator

from .safeopen import O_DIR, Opener


def walk(dir_fd: int, top: bytes, errors: list[tuple[bytes, int]]
         ) -> Iterator[tuple[bytes, os.stat_result]]:
    """(path, lstat) of top and everything below it, as walk.c's wk_walk finds them.

    top b"" is dir_fd itself (fstat; OSError when that fails), listed whatever it is;
    any other top is looked up without following a link (EXDEV for a ".." or a leading
    "/"): absent, nothing; not lstat-able, (top, errno) goes to errors. Directories that
    cannot be opened or read go to errors as (path, errno).
    """
    opener = Opener()
    if top:
        st = _lstat_top(opener, dir_fd, top, errors)
        if st is None:
            return
    else:
        st = os.fstat(dir_fd)
    yield top, st
    pending = [top] if not top or stat_mod.S_ISDIR(st.st_mode) else []
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
            yield path, st
            if stat_mod.S_ISDIR(st.st_mode):
                pending.append(path)


def _lstat_top(opener: Opener, dir_fd: int, top: bytes, errors: list
               ) -> os.stat_result | None:
    if b"\0" in top:
        raise ValueError("embedded null byte")
    if top.startswith(b"/") or b".." in top.split(b"/"):
        errors.append((top, errno.EXDEV))
        return None
    parent, _, name = top.rpartition(b"/")
    try:
        fd = _open_dir(opener, dir_fd, parent)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            errors.append((top, exc.errno or 0))
        return None
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            errors.append((top, exc.errno or 0))
        return None
    finally:
        os.close(fd)


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
