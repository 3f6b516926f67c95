"""The one way evidence is read: a data root opened read-only, no way out of it.

Two backends with one interface: a directory (a live ``/var/lib/docker`` or a
mounted snapshot) and a tar archive of one (``.tar``, ``.tar.gz``, ``.tar.zst``),
indexed in one streaming pass without extracting.

Directory safety does not cost a path walk per file: a directory is resolved
once, component by component with ``O_NOFOLLOW``, and its fd is kept; files are
opened relative to it, again with ``O_NOFOLLOW``. Nothing is ever opened for
writing, and ``O_NOATIME`` keeps even the access times of the evidence as they
were where the kernel allows it. A symbolic link is never followed: readers
that care about one (``overlay2/l/*``) read its target with ``readlink`` and
check it themselves.
"""
from __future__ import annotations

import errno
import os
import stat as stat_mod
import tarfile
from dataclasses import dataclass
from typing import Iterator, NamedTuple

from .. import digest
from ..errors import EvidenceError, UnsafePathError

# Metadata files are small; a size read from the evidence is never trusted
# beyond these.
SMALL_LIMIT = 64 * 1024
JSON_LIMIT = 64 * 1024 * 1024

# O_NONBLOCK: a fifo where a file was expected must not hang the open (no effect on files).
_O_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_O_DIR = _O_READ | os.O_DIRECTORY


def _noatime_flag() -> int:
    return getattr(os, "O_NOATIME", 0)


_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}.get(os.uname().machine)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08


def _make_openat2():
    """openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or None where the kernel lacks it.

    The kernel then refuses, in one syscall, any path that would leave the
    directory or pass through a link: safety without a walk per component.
    """
    if _SYS_OPENAT2 is None:
        return None
    import ctypes
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                    ("resolve", ctypes.c_uint64)]

    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    syscall.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                        ctypes.c_size_t]
    hows = {}

    def openat2(dir_fd: int, path: str, flags: int) -> int:
        how = hows.get(flags)
        if how is None:
            how = hows[flags] = ctypes.byref(OpenHow(flags, 0, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS
                                                     | _RESOLVE_NO_MAGICLINKS))
        fd = syscall(_SYS_OPENAT2, dir_fd, path.encode("utf-8", "surrogateescape"), how, 24)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return fd

    top = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(openat2(top, ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    except OSError:
        return None           # ENOSYS on kernels before 5.6, EPERM under some seccomp
    finally:
        os.close(top)
    return openat2


_openat2 = _make_openat2()


def _parallel(read, root_fd: int, paths: list[bytes], limit: int, flags: int) -> list:
    """Split a big batch over the CPUs: the native reader runs without the GIL."""
    workers = min(os.cpu_count() or 1, len(paths) // 2048)
    if workers < 2:
        return read(root_fd, paths, limit, flags)
    from concurrent.futures import ThreadPoolExecutor
    step = -(-len(paths) // workers)
    chunks = [paths[i:i + step] for i in range(0, len(paths), step)]
    with ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda chunk: read(root_fd, chunk, limit, flags), chunks))
    return [item for part in parts for item in part]


def _native_hasher():
    """_fastdigest.hash_file_at when verify hashes natively and openat2 is here."""
    if digest.BACKEND != "native":
        return None                    # the Sha256 objects are the twin's
    from .. import _fastdigest
    return _fastdigest.hash_file_at if _fastdigest.have_openat2() else None


_hash_file_at = _native_hasher()


def _native_reader():
    """_fastdigest.read_files when the native module and openat2 are both here."""
    try:
        from .. import _fastdigest
    except ImportError:
        return None
    return _fastdigest.read_files if _fastdigest.have_openat2() else None


class Stat(NamedTuple):
    """What readers need of ``lstat``; archives fill it from tar headers.

    A NamedTuple: walks make one per file, and a tuple is the cheapest to build.
    """
    mode: int
    size: int
    allocated: int        # st_blocks * 512; for an archive, an estimate
    ino: int
    dev: int
    nlink: int
    uid: int
    gid: int
    mtime_ns: int
    rdev: int = 0         # device number of a block or character device

    @property
    def is_dir(self) -> bool:
        return stat_mod.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        return stat_mod.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return stat_mod.S_ISLNK(self.mode)


def _split(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafePathError(rel, "path leads out of the data root")
    return parts


def _stat_of(st: os.stat_result) -> Stat:
    return Stat(st.st_mode, st.st_size, st.st_blocks * 512, st.st_ino, st.st_dev,
                st.st_nlink, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_rdev)


class EvidenceRoot:
    """Interface of both backends. Paths are relative to the data root, '/'-separated."""

    kind: str              # "directory" or "archive"
    path: str              # what the user named
    usage_is_estimate: bool

    def read(self, rel: str, limit: int = SMALL_LIMIT) -> bytes | None:
        """The bytes of a regular file, or None if absent. Larger than limit: EvidenceError."""
        raise NotImplementedError

    def listdir(self, rel: str) -> list[str] | None:
        """Names in a directory (unsorted), or None if absent."""
        raise NotImplementedError

    def read_files(self, rels: list[str], limit: int = SMALL_LIMIT
                   ) -> list[bytes | None | EvidenceError]:
        """Many files at once: each one's bytes, None if absent, or the error reading it."""
        out: list[bytes | None | EvidenceError] = []
        for rel in rels:
            try:
                out.append(self.read(rel, limit))
            except EvidenceError as exc:
                out.append(exc)
        return out

    def lstat(self, rel: str) -> Stat | None:
        raise NotImplementedError

    def readlink(self, rel: str) -> str | None:
        raise NotImplementedError

    def walk(self, rel: str) -> Iterator[tuple[str, Stat]]:
        """Every entry below rel (rel itself first), paths relative to the root; no links followed."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "EvidenceRoot":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DirectoryRoot(EvidenceRoot):
    kind = "directory"
    usage_is_estimate = False

    def __init__(self, path: str):
        self.path = path
        try:
            self._root_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY
                                    | _noatime_flag())
        except PermissionError:
            self._root_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_DIRECTORY)
        except OSError as exc:
            raise EvidenceError(path, f"cannot open data root: {exc.strerror}") from None
        self._dirs: dict[str, int] = {"": self._root_fd}
        self._extra: list[int] = []
        self._file_flags = _O_READ | _noatime_flag()

    # -- directory fds, resolved once -------------------------------------------------
    MAX_CACHED_DIRS = 512

    def _dir_fd(self, parts: list[str]) -> int | None:
        """A cached fd of a directory that holds what is read.

        Parents are resolved through the cache, so each is opened once; the
        cache is bounded, since a big layer store has a directory per layer
        and each is visited once (those go through _open_dir and are closed).
        """
        key = "/".join(parts)
        fd = self._dirs.get(key)
        if fd is not None:
            return fd
        fd = self._open_dir(parts)
        if fd is None:
            return None
        if len(self._dirs) < self.MAX_CACHED_DIRS:
            self._dirs[key] = fd
        else:
            self._extra.append(fd)
            if len(self._extra) > self.MAX_CACHED_DIRS:
                os.close(self._extra.pop(0))
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
            return self._open_file(parts[-1], parent, _O_DIR)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            if exc.errno == errno.ELOOP:
                raise self._link_error(key) from None
            raise EvidenceError(key, exc.strerror or str(exc)) from None

    def _link_error(self, rel: str) -> EvidenceError:
        target = self.readlink(rel)
        return UnsafePathError(rel, f"is a symbolic link to {target!r}; not followed")

    def _locate(self, rel: str) -> tuple[int | None, str]:
        parts = _split(rel)
        if not parts:
            raise EvidenceError(rel, "not a file")
        return self._dir_fd(parts[:-1]), parts[-1]

    def open_fd(self, rel: str) -> int:
        """A read-only fd of a regular file (the caller closes it). For hashing content."""
        dir_fd, name = self._locate(rel)
        if dir_fd is None:
            raise EvidenceError(rel, "no such file")
        try:
            fd = self._open_file(name, dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise self._link_error(rel) from None
            raise EvidenceError(rel, exc.strerror or str(exc)) from None
        if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise EvidenceError(rel, "not a regular file")
        return fd

    def hash_file(self, rel: str, sha: "digest.Sha256") -> tuple[int, int, dict[str, bytes]]:
        """Feed a regular file's whole content to sha: (CRC-64/GO-ISO, bytes read, xattrs).

        Verify does this to every file of a layer: where it can, one native call opens
        (openat2, no links), hashes and closes, and xattrs are read only when there are
        some. Raises EvidenceError when the file cannot be opened as a regular file.
        """
        if _hash_file_at is not None:
            try:
                crc, nread, has_xattrs = _hash_file_at(
                    self._root_fd, rel.encode("utf-8", "surrogateescape"), sha)
            except OSError as exc:
                raise self._errno_error(rel, exc.errno) from None
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

    def _open_file(self, name: str, dir_fd: int, flags: int = _O_READ) -> int:
        """Open below dir_fd (a path through openat2, else one name), without touching atime."""
        # One name needs no openat2: O_NOFOLLOW already refuses a link, and os.open
        # costs a fifth of the ctypes call (verify opens every file of a layer).
        opener = _openat2 if _openat2 is not None and "/" in name else (
            lambda d, n, f: os.open(n, f, dir_fd=d))
        try:
            return opener(dir_fd, name, flags | (self._file_flags & _noatime_flag()))
        except PermissionError:
            # O_NOATIME needs ownership or CAP_FOWNER; without it, read normally.
            if not self._file_flags & _noatime_flag():
                raise
            self._file_flags &= ~_noatime_flag()
            return opener(dir_fd, name, flags)

    def read(self, rel: str, limit: int = SMALL_LIMIT) -> bytes | None:
        if _openat2 is not None:
            return self._read_at(self._root_fd, "/".join(_split(rel)), rel, limit)
        dir_fd, name = self._locate(rel)
        if dir_fd is None:
            return None
        return self._read_at(dir_fd, name, rel, limit)

    def _read_at(self, dir_fd: int, name: str, rel: str, limit: int) -> bytes | None:
        try:
            fd = self._open_file(name, dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return None
            if exc.errno == errno.ELOOP:
                raise self._link_error(rel) from None
            if exc.errno == errno.EXDEV:
                raise UnsafePathError(rel, "path leads out of the data root") from None
            raise EvidenceError(rel, exc.strerror or str(exc)) from None
        try:
            # One read: a regular file gives all it has up to the count asked
            # for, so a short read is its end.
            data = os.read(fd, limit + 1)
            if len(data) > limit:
                raise EvidenceError(rel, f"larger than {limit} bytes; not read")
            if not data and not stat_mod.S_ISREG(os.fstat(fd).st_mode):
                raise EvidenceError(rel, "not a regular file")
            return data
        except IsADirectoryError:
            raise EvidenceError(rel, "is a directory, not a file") from None
        finally:
            os.close(fd)

    def read_files(self, rels: list[str], limit: int = SMALL_LIMIT
                   ) -> list[bytes | None | EvidenceError]:
        """One native call for all (openat2 beneath the root, GIL released) where it can."""
        native = _native_reader()
        if native is None:
            return super().read_files(rels, limit)
        # openat2 keeps every path beneath the root, ".." and links included.
        paths = [rel.encode("utf-8", "surrogateescape") for rel in rels]
        results = _parallel(native, self._root_fd, paths, limit, self._file_flags)
        out: list[bytes | None | EvidenceError] = []
        for rel, got in zip(rels, results):
            if type(got) is bytes:
                out.append(got)
            elif got in (errno.ENOENT, errno.ENOTDIR):
                out.append(None)
            else:
                out.append(self._errno_error(rel, got))
        return out

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

    def listdir(self, rel: str) -> list[str] | None:
        fd = self._open_dir(_split(rel))
        if fd is None:
            return None
        try:
            return os.listdir(fd)
        finally:
            os.close(fd)

    def lstat(self, rel: str) -> Stat | None:
        parts = _split(rel)
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
        parts = _split(rel)
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
            fd = self._open_dir(_split(rel))
            if fd is not None:
                yield from self._walk_fd(fd, rel)

    def _walk_fd(self, fd: int, rel: str) -> Iterator[tuple[str, Stat]]:
        # scandir over an fd gives lstat results relative to it: no path walks,
        # and links are never followed.
        try:
            with os.scandir(fd) as it:
                entries = [(e.name, _stat_of(e.stat(follow_symlinks=False))) for e in it]
        except OSError:
            os.close(fd)
            raise
        try:
            for name, st in entries:
                path = f"{rel}/{name}"
                yield path, st
                if st.is_dir:
                    try:
                        sub = self._open_file(name, fd, _O_DIR)
                    except OSError:
                        continue
                    yield from self._walk_fd(sub, path)
        finally:
            os.close(fd)

    def content(self, rel: str) -> tuple[int, int, int]:
        """(fd, offset, length) of a regular file's bytes (length -1: to its end)."""
        return self.open_fd(rel), 0, -1

    def subroot(self, rel: str) -> "DirectoryRoot | None":
        """A root of its own at directory rel (None if absent), reached without links.

        It keeps its own directory cache, so a thread can read one layer's files
        while another thread reads another's.
        """
        fd = self._open_dir(_split(rel))
        if fd is None:
            return None
        sub = DirectoryRoot.__new__(DirectoryRoot)
        sub.path = f"{self.path}/{rel}"
        sub._root_fd = fd
        sub._dirs = {"": fd}
        sub._extra = []
        sub._file_flags = self._file_flags
        return sub

    def fileno(self) -> int:
        """The fd of the root directory, for native walks below it (the root keeps it)."""
        return self._root_fd

    def xattrs(self, rel: str) -> dict[str, bytes] | None:
        """Extended attributes of an entry (of any type, links not followed), None if absent.

        There is no l*xattr relative to a directory fd, so the name is looked up below
        /proc/self/fd/<dir fd>: the directory was reached without links, and the last
        component is not followed either.
        """
        parts = _split(rel)
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

    def close(self) -> None:
        for fd in set(self._dirs.values()) | set(self._extra):
            try:
                os.close(fd)
            except OSError:
                pass
        self._dirs.clear()


# -- archives ----------------------------------------------------------------------------

@dataclass(slots=True)
class _Member:
    stat: Stat
    linkname: str
    data: bytes | None
    xattrs: dict[str, bytes] | None = None
    hardlink: str | None = None       # the member a tar hard link names


class ArchiveRoot(EvidenceRoot):
    """A tar of a data root, indexed in one streaming pass.

    Compressed archives cannot seek, so contents are kept for the files the
    model is built from (metadata, configs, small files) and only headers for
    layer contents. Disk usage is estimated from member sizes rounded to 4 KiB
    blocks (tar keeps no allocation), and every figure built on it says so.
    """
    kind = "archive"
    usage_is_estimate = True

    # Layer, volume and blob contents and container logs are not needed to build the
    # model; keeping them would put a host's worth of logs in memory.
    _CONTENT_DIRS = ("/diff/", "/_data/", "/rootfs/", "/merged/", "/work/", "/blobs/")
    _CONTAINER_FILES = ("config.v2.json", "hostconfig.json")

    # Blobs this small can be an index, manifest or config, which image archives and
    # the containerd content store are read by; layer blobs and layer.tar are not kept.
    _SMALL_BLOB = 4 << 20

    @classmethod
    def _keeps(cls, rel: str, size: int) -> bool:
        if f"/{rel}".startswith("/blobs/") or "/blobs/sha256/" in rel:
            return size <= cls._SMALL_BLOB
        if any(d in f"/{rel}" for d in cls._CONTENT_DIRS) or rel.endswith("/layer.tar"):
            return False
        if rel.startswith("containers/"):
            return rel.rpartition("/")[2] in cls._CONTAINER_FILES
        return True

    def __init__(self, path: str, keep_limit: int = JSON_LIMIT):
        self.path = path
        # Whether the archive records extended attributes at all (tar --xattrs, PAX
        # SCHILY.xattr.*): without them, none can be compared.
        self.has_xattrs = False
        self._spool: _Spool | None = None
        self._members: dict[str, _Member] = {"": _Member(_dir_stat(0), "", None)}
        self._children: dict[str, set[str]] = {"": set()}
        try:
            with _open_tar_stream(path) as tf:
                ino = 1
                for info in tf:
                    rel = "/".join(_split(info.name))
                    ino += 1
                    keep = (info.isreg() and info.size <= keep_limit
                            and self._keeps(rel, info.size))
                    data = None
                    if keep:
                        fobj = tf.extractfile(info)
                        data = fobj.read() if fobj is not None else b""
                    self._add(rel, info, ino, data)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise EvidenceError(path, f"cannot read archive: {exc}") from None

    def _add(self, rel: str, info: tarfile.TarInfo, ino: int, data: bytes | None) -> None:
        mode = info.mode & 0o7777
        if info.isdir():
            mode |= stat_mod.S_IFDIR
        elif info.issym():
            mode |= stat_mod.S_IFLNK
        elif info.ischr():
            mode |= stat_mod.S_IFCHR
        elif info.isblk():
            mode |= stat_mod.S_IFBLK
        elif info.isfifo():
            mode |= stat_mod.S_IFIFO
        else:
            mode |= stat_mod.S_IFREG
        size = info.size if info.isreg() else 0
        xattrs = {k[len(_PAX_XATTR):]: v.encode("utf-8", "surrogateescape")
                  for k, v in info.pax_headers.items() if k.startswith(_PAX_XATTR)}
        self.has_xattrs = self.has_xattrs or bool(xattrs)
        if info.islnk():
            target = "/".join(_split(info.linkname))
            other = self._members.get(target)
            if other is not None:
                st = other.stat
                other.stat = st._replace(nlink=st.nlink + 1)
                self._members[rel] = _Member(other.stat, "", other.data, other.xattrs,
                                             other.hardlink or target)
                self._link_child(rel)
                return
        allocated = (size + 4095) // 4096 * 4096
        if info.isdir():
            allocated = 4096
        elif info.issym() and len(info.linkname.encode()) >= 60:
            allocated = 4096          # ext4 keeps targets under 60 bytes in the inode
        rdev = os.makedev(info.devmajor, info.devminor) if info.ischr() or info.isblk() else 0
        st = Stat(mode, size, allocated, ino, 0, 1, info.uid, info.gid,
                  int(info.mtime) * 1_000_000_000, rdev)
        self._members[rel] = _Member(st, info.linkname if info.issym() else "", data, xattrs)
        self._link_child(rel)

    def _link_child(self, rel: str) -> None:
        parent, _, name = rel.rpartition("/")
        # Archives may omit directory entries; make the parents exist.
        while True:
            self._children.setdefault(parent, set()).add(name)
            if parent in self._members:
                break
            self._members[parent] = _Member(_dir_stat(0), "", None)
            parent, _, name = parent.rpartition("/")

    def _get(self, rel: str) -> _Member | None:
        return self._members.get("/".join(_split(rel)))

    def read(self, rel: str, limit: int = SMALL_LIMIT) -> bytes | None:
        m = self._get(rel)
        if m is None:
            return None
        if m.stat.is_link:
            raise UnsafePathError(rel, f"is a symbolic link to {m.linkname!r}; not followed")
        if m.stat.is_dir:
            raise EvidenceError(rel, "is a directory, not a file")
        if m.data is None:
            raise EvidenceError(rel, "content not kept from the archive")
        if len(m.data) > limit:
            raise EvidenceError(rel, f"larger than {limit} bytes; not read")
        return m.data

    def listdir(self, rel: str) -> list[str] | None:
        key = "/".join(_split(rel))
        m = self._members.get(key)
        if m is None or not m.stat.is_dir:
            return None
        return list(self._children.get(key, ()))

    def lstat(self, rel: str) -> Stat | None:
        m = self._get(rel)
        return None if m is None else m.stat

    def readlink(self, rel: str) -> str | None:
        m = self._get(rel)
        return m.linkname if m is not None and m.stat.is_link else None

    def xattrs(self, rel: str) -> dict[str, bytes] | None:
        m = self._get(rel)
        return None if m is None else dict(m.xattrs or {})

    def subroot(self, rel: str) -> _ArchiveDir | None:
        m = self._get(rel)
        if m is None or not m.stat.is_dir:
            return None
        return _ArchiveDir(self, "/".join(_split(rel)))

    def spool(self, under: tuple[str, ...]) -> None:
        """Copy the contents of every regular file below these directories, in one pass."""
        prefixes = tuple("/".join(_split(u)) + "/" for u in under)
        self._spool = _Spool(self, prefixes)

    def content(self, rel: str) -> tuple[int, int, int]:
        key = "/".join(_split(rel))
        m = self._members.get(key)
        if m is None or not m.stat.is_reg:
            raise EvidenceError(rel, "not a regular file")
        if m.data is not None:
            # Kept from the first pass: hand it over through an anonymous file.
            fd = os.memfd_create("analyze-member", os.MFD_CLOEXEC)
            os.write(fd, m.data)
            return fd, 0, len(m.data)
        key = m.hardlink or key          # a hard link's bytes are spooled under its target
        spool = self._spool
        if spool is None or key not in spool.ranges:
            raise EvidenceError(rel, "content not read from the archive")
        offset, length = spool.ranges[key]
        return os.dup(spool.file.fileno()), offset, length

    def walk(self, rel: str) -> Iterator[tuple[str, Stat]]:
        key = "/".join(_split(rel))
        m = self._members.get(key)
        if m is None:
            return
        yield rel, m.stat
        for name in self._children.get(key, ()):
            yield from self.walk(f"{key}/{name}" if key else name)


_PAX_XATTR = "SCHILY.xattr."


class _Spool:
    """Layer contents copied out of the archive in one more streaming pass.

    A compressed archive cannot seek, and tar-split wants files in its own order:
    the contents go to an unnamed temporary file (never near the evidence), and
    each is then read back by (offset, length).
    """

    def __init__(self, root: "ArchiveRoot", under: tuple[str, ...]):
        import tempfile
        self.file = tempfile.TemporaryFile(prefix="analyze-spool-")
        self.ranges: dict[str, tuple[int, int]] = {}
        offset = 0
        try:
            with _open_tar_stream(root.path) as tf:
                for info in tf:
                    rel = "/".join(_split(info.name))
                    if not info.isreg() or not rel.startswith(under):
                        continue
                    fobj = tf.extractfile(info)
                    if fobj is None:
                        continue
                    start = offset
                    while chunk := fobj.read(1 << 20):
                        self.file.write(chunk)
                        offset += len(chunk)
                    self.ranges[rel] = (start, offset - start)
            self.file.flush()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise EvidenceError(root.path, f"cannot read archive: {exc}") from None


class _ArchiveDir:
    """One directory of an archive root, with the interface verify reads a layer by."""

    def __init__(self, root: "ArchiveRoot", prefix: str):
        self._root = root
        self._prefix = prefix

    def _rel(self, path: str) -> str:
        return f"{self._prefix}/{path}" if path else self._prefix

    def walk(self, rel: str) -> Iterator[tuple[str, Stat]]:
        cut = len(self._prefix)
        for path, st in self._root.walk(self._rel(rel)):
            yield path[cut:], st

    def lstat(self, path: str) -> Stat | None:
        return self._root.lstat(self._rel(path))

    def readlink(self, path: str) -> str | None:
        return self._root.readlink(self._rel(path))

    def xattrs(self, path: str) -> dict[str, bytes] | None:
        return self._root.xattrs(self._rel(path))

    def content(self, path: str) -> tuple[int, int, int]:
        """(fd, offset, length) of a regular file's bytes; the caller closes the fd."""
        return self._root.content(self._rel(path))

    def close(self) -> None:
        pass


def _dir_stat(ino: int) -> Stat:
    return Stat(stat_mod.S_IFDIR | 0o755, 0, 4096, ino, 0, 1, 0, 0, 0)


def _open_tar_stream(path: str) -> tarfile.TarFile:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    raw = os.fdopen(fd, "rb", buffering=1 << 20)
    head = raw.peek(4)[:4]
    if head == b"\x28\xb5\x2f\xfd":
        import zstandard
        stream = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return tarfile.open(fileobj=stream, mode="r|")
    if head[:2] == b"\x1f\x8b":
        return tarfile.open(fileobj=raw, mode="r|gz")
    return tarfile.open(fileobj=raw, mode="r|")


def open_root(path: str) -> EvidenceRoot:
    """Open a data root: a directory, or a tar archive of one."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise EvidenceError(path, f"cannot open data root: {exc.strerror}") from None
    if stat_mod.S_ISDIR(st.st_mode):
        return DirectoryRoot(path)
    return ArchiveRoot(path)
