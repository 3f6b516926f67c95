"""The one safe-open policy of the Python side: below a directory fd, read-only, no links.

Whatever Python opens under the data root opens here (the C side has its twin,
``_csrc/safeopen.c``). A path with several names goes through ``openat2(2)`` with
``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`` where the kernel has
it, so no path can leave the directory or pass through a link, in one syscall. Without
openat2 callers open one name at a time, each with ``O_NOFOLLOW``, from a directory fd
they reached the same way. Nothing but a regular file is opened for reading (``open_file``):
a device's open runs its driver and a fifo's can block. ``O_NOATIME`` keeps even the access times of the evidence as
they were, while the kernel allows it (it needs ownership or ``CAP_FOWNER``); the first
``EPERM`` turns it off for the opener that met it. Nothing under the data root is ever
opened for writing; what is written goes below a directory the analyst named
(:class:`Beneath`), by the same rules: no way out of it, no link followed.
"""
from __future__ import annotations

import errno
import os
import stat

__all__ = ["HAVE_OPENAT2", "NOATIME", "O_DIR", "O_READ", "Beneath", "Opener", "open_top",
           "read_regular"]

# O_NONBLOCK: a fifo where a file was expected must not hang the open (no effect on files).
O_READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
O_DIR = O_READ | os.O_DIRECTORY
NOATIME = getattr(os, "O_NOATIME", 0)

_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}.get(os.uname().machine)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08


def _make_openat2():
    """openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, or None where the kernel lacks it."""
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

    def openat2(dir_fd: int, path: str | bytes, flags: int, mode: int = 0) -> int:
        how = hows.get((flags, mode))
        if how is None:
            how = hows[flags, mode] = ctypes.byref(OpenHow(
                flags, mode, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS))
        raw = path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")
        while True:
            fd = syscall(_SYS_OPENAT2, dir_fd, raw, how, 24)
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err != errno.EINTR:        # retried, as os.open does (PEP 475)
                raise OSError(err, os.strerror(err))

    top = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.close(openat2(top, ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    except OSError:
        return None           # ENOSYS on kernels before 5.6, EPERM under some seccomp
    finally:
        os.close(top)
    return openat2


_openat2 = _make_openat2()
HAVE_OPENAT2 = _openat2 is not None


class Opener:
    """Opens below directory fds, never through a link, without touching atime while allowed.

    One opener keeps one ``O_NOATIME`` state: once the kernel refuses it, every later
    open through this opener goes without it.
    """

    __slots__ = ("noatime",)

    def __init__(self, noatime: bool = True) -> None:
        self.noatime = NOATIME if noatime else 0

    def open(self, dir_fd: int, path: str | bytes, flags: int = O_READ,
             beneath: bool = False) -> int:
        """An fd of path below dir_fd: openat2 for a path of several names (or for any
        with ``beneath``), else the one name with ``flags`` (which carry ``O_NOFOLLOW``).
        Raises OSError: ELOOP for a link on the way, EXDEV for a way out (openat2), ENOSYS
        for openat2 where the kernel has none.
        """
        opener = _opener_for(path, beneath)
        try:
            return opener(dir_fd, path, flags | self.noatime)
        except PermissionError:
            if not self.noatime:
                raise
            self.noatime = 0
            return opener(dir_fd, path, flags)

    def open_file(self, dir_fd: int, path: str | bytes, flags: int = O_READ,
                  beneath: bool = False) -> tuple[int, os.stat_result]:
        """An fd of the regular file at path below dir_fd, opened as ``open`` does, and its
        fstat; nothing else is opened for reading. Raises OSError: EINVAL for a device,
        fifo or socket, EISDIR for a directory, else as ``open``.

        The entry is looked at first (lstat), so a special file is never opened; what is
        opened is confirmed by fstat, since the entry may have been replaced in between.
        lstat has no RESOLVE_BENEATH: on a path of several names it follows links on the
        way, so what it says of a special file is believed once an O_PATH open (which
        runs no driver and reads nothing) has reached the file the safe way.
        """
        try:
            st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            st = None                     # whatever hides it, the open says
        if st is not None and not stat.S_ISREG(st.st_mode) and not stat.S_ISLNK(st.st_mode):
            fd = _opener_for(path, beneath)(dir_fd, path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                st = os.fstat(fd)
            finally:
                os.close(fd)
            _check_regular(st)
        fd = self.open(dir_fd, path, flags, beneath)
        try:
            st = os.fstat(fd)
            _check_regular(st)
        except BaseException:
            os.close(fd)
            raise
        return fd, st


def read_regular(fd: int, size: int, limit: int) -> bytes:
    """The bytes of an open regular file whose fstat says size, at most limit of them.

    One read sized by the file, not by the limit (a limit may be GiBs): a regular file
    gives all it has up to the count asked for, so a short read is its end; one more
    read if it grew since the fstat (a live host). OSError EFBIG past limit bytes.
    """
    if size > limit:
        raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    data = os.read(fd, size + 1)
    if len(data) > size:
        data += os.read(fd, limit + 1 - len(data))
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes")
    return data


def _check_regular(st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory, not a file")
        raise OSError(errno.EINVAL, "not a regular file")


def _opener_for(path: str | bytes, beneath: bool):
    """openat2 for a path of several names (or any with ``beneath``), else os.open."""
    beneath = beneath or (("/" in path) if isinstance(path, str) else (b"/" in path))
    if beneath and _openat2 is None:
        raise OSError(errno.ENOSYS, "no openat2 here: open one name at a time")
    # One name needs no openat2: O_NOFOLLOW already refuses a link, and os.open
    # costs a fifth of the ctypes call (verify opens every file of a layer).
    return _openat2 if beneath else _open_name


def _open_name(dir_fd: int, name: str | bytes, flags: int) -> int:
    return os.open(name, flags, dir_fd=dir_fd)


def open_top(path: str, directory: bool = True) -> int:
    """An fd of the directory (or the archive file) the user named, read-only: a link to
    it is theirs to make. A file must be a regular one: a FIFO would block, a device
    would be read without end."""
    flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if directory else os.O_NONBLOCK)
    try:
        fd = os.open(path, flags | NOATIME)
    except PermissionError:
        fd = os.open(path, flags)
    if not directory and not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", path)
    return fd


class Beneath:
    """Writes below one directory of the analyst's, and nowhere else: each path is
    resolved by openat2 with ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`` (a ``..`` or a
    link on the way fails), and the last name is made with ``O_EXCL`` or its ``*at``
    call, so that nothing already there — a link planted by what was written before —
    is written through. Paths are relative to the directory, '/'-separated."""

    def __init__(self, dir_fd: int):
        if _openat2 is None:
            raise OSError(errno.ENOSYS, "writing beneath a directory needs openat2 (Linux 5.6)")
        self.fd = dir_fd

    def _parent(self, rel: str) -> tuple[int, str]:
        head, _, name = rel.rpartition("/")
        if not name or name in (".", ".."):
            raise OSError(errno.EINVAL, "not a name to create", rel)
        fd = _openat2(self.fd, head or ".", O_DIR)
        return fd, name

    def _at(self, rel: str, call) -> None:
        fd, name = self._parent(rel)
        try:
            call(name, fd)
        finally:
            os.close(fd)

    def mkdir(self, rel: str) -> None:
        self._at(rel, lambda name, fd: os.mkdir(name, 0o700, dir_fd=fd))

    def symlink(self, rel: str, target: str) -> None:
        self._at(rel, lambda name, fd: os.symlink(target, name, dir_fd=fd))

    def create(self, rel: str) -> int:
        """A new regular file's fd, write-only (mode 0600 until ``set_meta``)."""
        return _openat2(self.fd, rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                        0o600)

    def set_meta(self, rel: str, mode: int | None, owner: tuple[int, int] | None,
                 mtime_ns: int) -> None:
        """Owner (first: a chown clears set-id bits), mode, then mtime of what rel names;
        mode None: a symbolic link, whose own owner and mtime are set."""
        if mode is None:
            def link_meta(name: str, fd: int) -> None:
                if owner is not None:
                    os.chown(name, *owner, dir_fd=fd, follow_symlinks=False)
                os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=fd, follow_symlinks=False)
            self._at(rel, link_meta)
            return
        fd = _openat2(self.fd, rel, O_READ)
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
