"""A data root that is a directory: a live ``/var/lib/docker`` or a mounted snapshot.

Safety does not cost a path walk per file: a directory is resolved once, component by
component with ``O_NOFOLLOW``, and its fd is kept; files are opened relative to it
(the policy is ``analyzer/safeopen.py``'s). Verify's per-file hashing and the loader's
bulk reads go to the native core in one call each where it can.
"""
from __future__ import annotations

import errno
import os
from collections import deque
from typing import Iterator

from ... import digest, nativeio, treeusage
from ...errors import EvidenceError, UnsafePathError
from ...goapi.runtime import num_cpu
from ...safeopen import HAVE_OPENAT2, O_DIR, O_READ, Opener, open_top, read_regular
from .root import SMALL_LIMIT, EvidenceRoot, Stat, split_rel


def _list_fd(fd: int) -> list[tuple[str, Stat]]:
    """Entries of a directory fd, with lstat results (no links followed, no path walks);
    the fd is closed if it cannot be read."""
    try:
        with os.scandir(fd) as it:
            return [(e.name, _stat_of(e.stat(follow_symlinks=False))) for e in it]
    except OSError:
        os.close(fd)
        raise


def _pieces(names: list[str]) -> Iterator[str]:
    """Names to open one after another: with openat2, as many at once as PATH_MAX allows
    (it refuses links on the way); without it, one at a time (O_NOFOLLOW guards one)."""
    if not HAVE_OPENAT2:
        yield from names
        return
    piece: list[str] = []
    size = 0
    for name in names:
        width = len(name.encode("utf-8", "surrogateescape")) + 1
        if piece and size + width > 3072:
            yield "/".join(piece)
            piece, size = [], 0
        piece.append(name)
        size += width
    if piece:
        yield "/".join(piece)


def _parallel(work, items: list) -> list:
    """Split a big batch over the CPUs: the native calls run without the GIL."""
    workers = min(num_cpu(), len(items) // 2048)
    if workers < 2:
        return work(items)
    from concurrent.futures import ThreadPoolExecutor
    step = -(-len(items) // workers)
    chunks = [items[i:i + step] for i in range(0, len(items), step)]
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(work, chunks))
    return [item for part in parts for item in part]


# Where openat2 keeps every path beneath the root, ".." and links included, a file is
# opened, hashed and closed in one call, and a batch of files read in one call; without
# it, the root resolves each directory itself and opens one name at a time.
_hash_file_at = nativeio.hash_file_at if nativeio.HAVE_OPENAT2 else None
_read_files = nativeio.read_files if nativeio.HAVE_OPENAT2 else None


def _stat_of(st: os.stat_result) -> Stat:
    return Stat(st.st_mode, st.st_size, st.st_blocks * 512, st.st_ino, st.st_dev,
                st.st_nlink, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_rdev)


class DirectoryRoot(EvidenceRoot):
    kind = "directory"
    usage_is_estimate = False
    has_fd = True
    has_xattrs = True
    reads_beside = _read_files is not None

    MAX_CACHED_DIRS = 512

    def __init__(self, path: str, *, dir_fd: int | None = None, opener: Opener | None = None):
        """Open the directory at path; or, for a subroot, take over dir_fd (an fd of it
        reached without links, which the root then owns) and share its parent's opener."""
        self.path = path
        self._opener = opener or Opener()
        if dir_fd is None:
            try:
                dir_fd = open_top(path)
            except OSError as exc:
                raise EvidenceError(path, f"cannot open data root: {exc.strerror}") from None
        self._root_fd = dir_fd
        self._dirs: dict[str, int] = {"": dir_fd}
        self._extra: deque[int] = deque()

    # -- directory fds, resolved once -------------------------------------------------

    def _dir_fd(self, parts: list[str]) -> int | None:
        """A cached fd of a directory that holds what is read.

        Parents are resolved through the cache, so each is opened once while it is
        in use. The cache is bounded (a big layer store has a directory per layer, a
        layer may have tens of thousands): when full, the directory cached first
        leaves it. Files come directory by directory (a tar stream, a walk), so the
        ones in use are the newest; a cache that took no more once full had each file
        of a big layer open its whole path again, name by name.
        """
        key = "/".join(parts)
        fd = self._dirs.get(key)
        if fd is not None:
            return fd
        fd = self._open_dir(parts)
        if fd is None:
            return None
        if len(self._dirs) >= self.MAX_CACHED_DIRS:
            # The root ("") stays: it is this root's own fd. A retired fd is closed
            # later, not at once, as before: a caller may still hold it.
            oldest = next(k for k in self._dirs if k)
            self._extra.append(self._dirs.pop(oldest))
            if len(self._extra) > self.MAX_CACHED_DIRS:
                os.close(self._extra.popleft())
        self._dirs[key] = fd
        return fd

    def _open_dir(self, parts: list[str]) -> int | None:
        """A new fd of a directory (the caller closes it), or None if absent."""
        if not parts:
            return os.dup(self._root_fd)
        parent = self._dir_fd(parts[:-1])
        if parent is None:
            return None
        key = "/".join(parts)
        try:
            return self._opener.open(parent, parts[-1], O_DIR)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            if exc.errno == errno.ELOOP:
                raise self._link_error(key) from None
            raise EvidenceError(key, exc.strerror or str(exc)) from None

    def _link_error(self, rel: str) -> EvidenceError:
        target = self.readlink(rel)
        return UnsafePathError(rel, f"is a symbolic link to {target!r}; not followed")

    def _errno_error(self, rel: str, err: int) -> EvidenceError:
        if err == errno.ELOOP:
            return self._link_error(rel)
        if err == errno.EXDEV:
            return UnsafePathError(rel, "path leads out of the data root")
        if err == errno.EFBIG:
            return EvidenceError(rel, "too large; not read")
        if err == errno.EISDIR:
            return EvidenceError(rel, "is a directory, not a file")
        if err == errno.EINVAL:
            return EvidenceError(rel, "not a regular file")
        return EvidenceError(rel, os.strerror(err))

    def _locate(self, rel: str) -> tuple[int | None, str]:
        parts = split_rel(rel)
        if not parts:
            raise EvidenceError(rel, "not a file")
        return self._dir_fd(parts[:-1]), parts[-1]

    # -- files --------------------------------------------------------------------------

    def open_fd(self, rel: str) -> int:
        dir_fd, name = self._locate(rel)
        if dir_fd is None:
            raise EvidenceError(rel, "no such file")
        try:
            return self._opener.open_file(dir_fd, name)[0]
        except OSError as exc:
            raise self._errno_error(rel, exc.errno or errno.EIO) from None

    def content(self, rel: str) -> tuple[int, int, int]:
        return self.open_fd(rel), 0, -1

    def hash_file(self, rel: str, sha: digest.Sha256) -> tuple[int, int, dict[str, bytes]]:
        """Where it can, one call opens (openat2, no links), hashes and closes, and xattrs
        are read only when there are some."""
        if _hash_file_at is not None:
            try:
                crc, nread, has_xattrs = _hash_file_at(
                    self._root_fd, rel.encode("utf-8", "surrogateescape"), sha)
            except OSError as exc:
                raise self._errno_error(rel, exc.errno or errno.EIO) from None
            return crc, nread, (self.xattrs(rel) or {}) if has_xattrs else {}
        fd = self.open_fd(rel)
        try:
            crc, nread = digest.hash_fd(fd, 0, -1, sha)
            names = os.listxattr(fd)
            return crc, nread, {n: os.getxattr(fd, n) for n in names} if names else {}
        except OSError as exc:
            raise EvidenceError(rel, exc.strerror or str(exc)) from None
        finally:
            os.close(fd)

    def read(self, rel: str, limit: int = SMALL_LIMIT) -> bytes | None:
        if HAVE_OPENAT2:
            return self._read_at(self._root_fd, "/".join(split_rel(rel)), rel, limit)
        dir_fd, name = self._locate(rel)
        if dir_fd is None:
            return None
        return self._read_at(dir_fd, name, rel, limit)

    def _read_at(self, dir_fd: int, name: str, rel: str, limit: int) -> bytes | None:
        try:
            fd, st = self._opener.open_file(dir_fd, name)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            raise self._errno_error(rel, exc.errno or errno.EIO) from None
        try:
            return read_regular(fd, st.st_size, limit)
        except OSError as exc:
            if exc.errno == errno.EFBIG:
                raise EvidenceError(rel, f"larger than {limit} bytes; not read") from None
            raise self._errno_error(rel, exc.errno or errno.EIO) from None
        finally:
            os.close(fd)

    def read_files(self, rels: list[str], limit: int = SMALL_LIMIT
                   ) -> list[bytes | None | EvidenceError]:
        """One call for all (openat2 beneath the root; natively, without the GIL) where it can."""
        if _read_files is None:
            return super().read_files(rels, limit)
        paths = [rel.encode("utf-8", "surrogateescape") for rel in rels]
        flags = O_READ | self._opener.noatime
        results = _parallel(lambda chunk: _read_files(self._root_fd, chunk, limit, flags), paths)
        out: list[bytes | None | EvidenceError] = []
        for rel, got in zip(rels, results):
            if type(got) is bytes:
                out.append(got)
            elif got in (errno.ENOENT, errno.ENOTDIR):
                out.append(None)
            else:
                out.append(self._errno_error(rel, got))
        return out

    # -- directories ------------------------------------------------------------------

    def listdir(self, rel: str) -> list[str] | None:
        fd = self._open_dir(split_rel(rel))
        if fd is None:
            return None
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def lstat(self, rel: str) -> Stat | None:
        parts = split_rel(rel)
        if not parts:
            return _stat_of(os.fstat(self._root_fd))
        dir_fd = self._dir_fd(parts[:-1])
        if dir_fd is None:
            return None
        try:
            return _stat_of(os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False))
        except FileNotFoundError:
            return None

    def readlink(self, rel: str) -> str | None:
        parts = split_rel(rel)
        dir_fd = self._dir_fd(parts[:-1])
        if dir_fd is None:
            return None
        try:
            return os.readlink(parts[-1], dir_fd=dir_fd)
        except OSError:
            return None

    def walk(self, rel: str) -> Iterator[tuple[str, Stat]]:
        top = self.lstat(rel)
        if top is None:
            return
        yield rel, top
        if top.is_dir:
            fd = self._open_dir(split_rel(rel))
            if fd is not None:
                yield from self._walk_fd(fd, rel)

    # How many directories of the path being walked keep their fd: the evidence decides
    # how deep a tree is, and neither the stack nor the fd table may follow it down.
    WALK_OPEN_DIRS = 64

    def _walk_fd(self, fd: int, rel: str) -> Iterator[tuple[str, Stat]]:
        """Depth first, without recursion: each directory's entries, then its subdirectories.

        A frame per directory on the path: [path, fd or None, subdirectories left]. Only
        the root's fd and the deepest WALK_OPEN_DIRS stay open; an ancestor whose fd was
        closed is reopened from the nearest open one when its next subdirectory is due.
        """
        stack: list[list] = []
        try:
            entries = _list_fd(fd)
            stack.append([rel, fd, []])
            while True:
                frame = stack[-1]
                for name, st in entries:
                    yield f"{frame[0]}/{name}", st
                    if st.is_dir:
                        frame[2].append(name)
                frame[2].reverse()              # popped from the end: listing order
                entries = []
                while stack and not stack[-1][2]:
                    done = stack.pop()
                    if done[1] is not None:
                        os.close(done[1])
                if not stack:
                    return
                frame = stack[-1]
                name = frame[2].pop()
                path = f"{frame[0]}/{name}"
                try:
                    sub = self._opener.open(self._frame_fd(stack), name, O_DIR)
                except OSError:
                    stack.append([path, None, []])     # gone since listed, or unreadable
                    continue
                entries = _list_fd(sub)
                stack.append([path, sub, []])
                if len(stack) > self.WALK_OPEN_DIRS + 1:
                    far = stack[-self.WALK_OPEN_DIRS - 1]
                    if far[1] is not None:
                        os.close(far[1])
                        far[1] = None
        finally:
            for frame in stack:
                if frame[1] is not None:
                    os.close(frame[1])

    def _frame_fd(self, stack: list[list]) -> int:
        """The fd of the deepest frame, reopened below its nearest open ancestor if closed."""
        top = stack[-1]
        if top[1] is not None:
            return top[1]
        base = len(stack) - 1
        while stack[base][1] is None:
            base -= 1
        names = [frame[0].rpartition("/")[2] for frame in stack[base + 1:]]
        fd = stack[base][1]
        opened: int | None = None
        try:
            for piece in _pieces(names):
                nxt = self._opener.open(fd, piece, O_DIR)
                if opened is not None:
                    os.close(opened)
                fd = opened = nxt
        except OSError:
            if opened is not None:
                os.close(opened)
            raise
        top[1] = fd
        return fd

    def tree_usage(self, groups: list[list[str]]
                   ) -> list[tuple[treeusage.TreeUsage, list[EvidenceError]]]:
        """One walk of each tree below the root fd (_csrc/walk.c, or its twin): links never
        followed, only directories opened; natively without the GIL, big batches on every
        CPU."""
        # Empty and "." names dropped as split_rel does; a ".." is the walker's to refuse.
        encoded = [["/".join(p for p in rel.split("/") if p not in ("", "."))
                    .encode("utf-8", "surrogateescape") for rel in rels] for rels in groups]
        results = _parallel(lambda chunk: treeusage.walk_usage(self._root_fd, chunk), encoded)
        return [(usage, [self._walk_error(os.fsdecode(path), err) for path, err in errors])
                for usage, errors in results]

    def _walk_error(self, rel: str, err: int) -> EvidenceError:
        if err == errno.ELOOP:         # the walk lstats a link it meets: this one was on the way
            return UnsafePathError(rel, "a symbolic link on the way; not followed")
        return self._errno_error(rel, err)

    def xattrs(self, rel: str) -> dict[str, bytes] | None:
        """There is no l*xattr relative to a directory fd, so the name is looked up below
        /proc/self/fd/<dir fd>: the directory was reached without links, and the last
        component is not followed either."""
        parts = split_rel(rel)
        if not parts:
            target: int | str = self._root_fd
        else:
            dir_fd = self._dir_fd(parts[:-1])
            if dir_fd is None:
                return None
            target = f"/proc/self/fd/{dir_fd}/{parts[-1]}"
        follow = isinstance(target, int)       # an fd: nothing left to follow
        try:
            names = os.listxattr(target, follow_symlinks=follow)
            return {n: os.getxattr(target, n, follow_symlinks=follow) for n in names}
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.ENODATA):
                return {}
            raise EvidenceError(rel, exc.strerror or str(exc)) from None

    # -- views --------------------------------------------------------------------------

    def subroot(self, rel: str) -> DirectoryRoot | None:
        """With a directory cache of its own: a thread can read one layer's files while
        another thread reads another's."""
        fd = self._open_dir(split_rel(rel))
        if fd is None:
            return None
        return DirectoryRoot(f"{self.path}/{rel}", dir_fd=fd, opener=self._opener)

    def spool(self, under: tuple[str, ...]) -> None:
        """Nothing to do: the kernel reads any file when asked."""

    def fileno(self) -> int:
        return self._root_fd

    def close(self) -> None:
        for fd in set(self._dirs.values()) | set(self._extra):
            try:
                os.close(fd)
            except OSError:
                pass
        self._dirs.clear()
