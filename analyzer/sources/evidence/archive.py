"""A data root that is a tar archive of one (``.tar``, ``.tar.gz``, ``.tar.zst``).

Indexed in one streaming pass without extracting. Contents are kept for the files the
model is built from (metadata, configs, small files) and only headers for layer
contents. An uncompressed archive's are then read where they lie (by offset, the
archive kept open); a compressed archive cannot seek, so ``spool`` copies them out in
one more pass when verify needs them. Disk usage is estimated from member sizes rounded to
4 KiB blocks (tar keeps no allocation), and every figure built on it says so.
"""
from __future__ import annotations

import os
import stat as stat_mod
import tarfile
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ... import compression, digest, safeopen
from ...errors import EvidenceError, UnsafePathError
from ...model import Diagnostic
from .. import layout
from .root import JSON_LIMIT, SMALL_LIMIT, EvidenceRoot, Stat, split_rel

_PAX_XATTR = "SCHILY.xattr."


@dataclass(slots=True)
class _Member:
    stat: Stat
    linkname: str
    data: bytes | None
    xattrs: dict[str, bytes] | None = None
    hardlink: str | None = None       # the member a tar hard link names
    offset: int | None = None         # where its bytes are in an uncompressed archive


class ArchiveIndex:
    """Every member of an archive by its normalized path, from one streaming pass.

    Layer, volume and blob contents and container logs are not needed to build the
    model; keeping them would put a host's worth of logs in memory.
    """

    _BLOBS = f"/{layout.OCI_BLOBS}/"              # an OCI layout's, containerd's content store
    _CONTENT_DIRS = tuple(f"/{d}/" for d in layout.CONTENT_DIRS) + (_BLOBS,)
    _CONTAINER_FILES = (layout.CONTAINER_CONFIG, layout.CONTAINER_HOSTCONFIG)

    # Blobs this small can be an index, manifest or config, which image archives and
    # the containerd content store are read by; layer blobs and layer.tar are not kept.
    _SMALL_BLOB = 4 << 20

    @classmethod
    def _keeps(cls, rel: str, size: int) -> bool:
        if f"/{rel}".startswith(cls._BLOBS) or f"{cls._BLOBS}sha256/" in rel:
            return size <= cls._SMALL_BLOB
        if (any(d in f"/{rel}" for d in cls._CONTENT_DIRS)
                or rel.endswith(f"/{layout.DOCKER_SAVE_LAYER}")):
            return False
        if rel.startswith(f"{layout.CONTAINERS}/"):
            return rel.rpartition("/")[2] in cls._CONTAINER_FILES
        return True

    def __init__(self, path: str, keep_limit: int = JSON_LIMIT):
        self.path = path
        # Whether the archive records extended attributes at all (tar --xattrs, PAX
        # SCHILY.xattr.*): without them, none can be compared.
        self.has_xattrs = False
        self.spool: _Spool | None = None
        self.members: dict[str, _Member] = {"": _Member(_dir_stat(0), "", None)}
        # Each directory's names in the archive's order (a dict, not a set: a set's order
        # changes with every process's string hashing, and so would the warnings').
        self.children: dict[str, dict[str, None]] = {"": {}}
        # Members not taken into the tree, each named: the rest of the archive answers.
        self.skipped: list[Diagnostic] = []
        # An uncompressed archive, kept open: contents are read where they lie, by offset.
        self.file: BinaryIO | None = None
        with _TarStream(path) as stream:
            ino = 1
            for info in stream.members():
                rel = self._admitted(info)
                if rel is None:
                    continue
                ino += 1
                keep = (info.isreg() and info.size <= keep_limit
                        and self._keeps(rel, info.size))
                data = None
                if keep:
                    fobj = stream.tar.extractfile(info)
                    data = fobj.read() if fobj is not None else b""
                self._add(rel, info, ino, data)
                if stream.in_place and info.isreg() and not info.islnk():
                    self.members[rel].offset = info.offset_data
            if stream.in_place:
                self.file = os.fdopen(os.dup(stream.raw.fileno()), "rb", buffering=0)

    def _admitted(self, info: tarfile.TarInfo) -> str | None:
        """A member's normalized path, or None (and a diagnostic naming it) when it has
        no place in the tree: a path or a hard link out of the archive, a hard link to
        nothing before it (GNU tar cannot extract it either) or to a directory.

        A leading '/' is dropped, as tar does on extraction."""
        try:
            rel = "/".join(split_rel(info.name))
        except UnsafePathError:
            self._skip(info, "its path leads out of the archive")
            return None
        if not info.islnk():
            return rel
        try:
            target = self.members.get("/".join(split_rel(info.linkname)))
        except UnsafePathError:
            self._skip(info, f"a hard link out of the archive (to {info.linkname!r})")
            return None
        if target is None or target.stat.is_dir:
            self._skip(info, f"a hard link to {info.linkname!r}, which is no file before it "
                             "in the archive")
            return None
        return rel

    def _skip(self, info: tarfile.TarInfo, why: str) -> None:
        self.skipped.append(Diagnostic(info.name, f"archive member not read: {why}"))

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
        if info.islnk():                  # to a file before it (_admitted)
            target = "/".join(split_rel(info.linkname))
            other = self.members[target]
            st = other.stat
            other.stat = st._replace(nlink=st.nlink + 1)
            self.members[rel] = _Member(other.stat, "", other.data, other.xattrs,
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
        self.members[rel] = _Member(st, info.linkname if info.issym() else "", data, xattrs)
        self._link_child(rel)

    def _link_child(self, rel: str) -> None:
        if not rel:
            return                        # the top itself ("./"): no one's child
        parent, _, name = rel.rpartition("/")
        # Archives may omit directory entries; make the parents exist.
        while True:
            self.children.setdefault(parent, {})[name] = None
            if parent in self.members:
                break
            self.members[parent] = _Member(_dir_stat(0), "", None)
            parent, _, name = parent.rpartition("/")

    def walk(self, rel: str) -> Iterator[tuple[str, Stat]]:
        key = "/".join(split_rel(rel))
        m = self.members.get(key)
        if m is None:
            return
        yield rel, m.stat
        # Without recursion: the archive decides how deep its tree is.
        pending = [key]
        while pending:
            parent = pending.pop()
            for name in self.children.get(parent, ()):
                path = f"{parent}/{name}" if parent else name
                st = self.members[path].stat
                yield path, st
                if st.is_dir:
                    pending.append(path)


class ArchiveRoot(EvidenceRoot):
    """A tar of a data root, or (``subroot``) one directory of one."""

    kind = "archive"
    usage_is_estimate = True
    has_fd = False

    def __init__(self, path: str, keep_limit: int = JSON_LIMIT, *,
                 index: ArchiveIndex | None = None, prefix: str = "", name: str | None = None):
        """Index the archive at path; or, for a subroot, view the directory prefix
        (normalized, '' for the top) of an index already made, called name."""
        self._index = index or ArchiveIndex(path, keep_limit)
        self._prefix = prefix
        self.path = name or (f"{self._index.path}/{prefix}" if prefix else path)

    @property
    def prefix(self) -> str:
        """Where in the archive this root's top is ('' at the archive's own top)."""
        return self._prefix

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return self._index.skipped

    @property
    def has_xattrs(self) -> bool:
        return self._index.has_xattrs

    def _full(self, rel: str) -> str:
        """rel as a path from the top of the archive."""
        if not self._prefix:
            return rel
        return f"{self._prefix}/{rel}" if rel else self._prefix

    def _key(self, rel: str) -> str:
        return "/".join(split_rel(self._full(rel)))

    def _get(self, rel: str) -> _Member | None:
        return self._index.members.get(self._key(rel))

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
        key = self._key(rel)
        m = self._index.members.get(key)
        if m is None or not m.stat.is_dir:
            return None
        return list(self._index.children.get(key, ()))

    def lstat(self, rel: str) -> Stat | None:
        m = self._get(rel)
        return None if m is None else m.stat

    def readlink(self, rel: str) -> str | None:
        m = self._get(rel)
        return m.linkname if m is not None and m.stat.is_link else None

    def walk(self, rel: str) -> Iterator[tuple[str, Stat]]:
        cut = len(self._prefix)
        for path, st in self._index.walk(self._full(rel)):
            yield path[cut:], st

    def xattrs(self, rel: str) -> dict[str, bytes] | None:
        m = self._get(rel)
        return None if m is None else dict(m.xattrs or {})

    def content(self, rel: str) -> tuple[int, int, int]:
        key = self._key(rel)
        m = self._index.members.get(key)
        if m is None or not m.stat.is_reg:
            raise EvidenceError(rel, "not a regular file")
        if m.data is not None:
            # Kept from the first pass: hand it over through an anonymous file.
            fd = os.memfd_create("analyze-member", os.MFD_CLOEXEC)
            os.write(fd, m.data)
            return fd, 0, len(m.data)
        key = m.hardlink or key          # a hard link's bytes are its target's
        offset = self._index.members[key].offset
        if offset is not None and self._index.file is not None:
            return os.dup(self._index.file.fileno()), offset, m.stat.size
        spool = self._index.spool
        if spool is None or key not in spool.ranges:
            raise EvidenceError(rel, "content not read from the archive")
        offset, length = spool.ranges[key]
        return os.dup(spool.file.fileno()), offset, length

    def hash_file(self, rel: str, sha: digest.Sha256) -> tuple[int, int, dict[str, bytes]]:
        fd, offset, length = self.content(rel)
        try:
            crc, nread = digest.hash_fd(fd, offset, length, sha)
        except OSError as exc:
            raise EvidenceError(rel, exc.strerror or str(exc)) from None
        finally:
            os.close(fd)
        return crc, nread, self.xattrs(rel) or {}

    def open_fd(self, rel: str) -> int:
        raise EvidenceError(self._full(rel), "an archive member has no file descriptor of its "
                                             "own; read it with content()")

    def fileno(self) -> int:
        raise EvidenceError(self.path, "an archive has no directory descriptor; walk it")

    def subroot(self, rel: str) -> ArchiveRoot | None:
        m = self._get(rel)
        if m is None or not m.stat.is_dir:
            return None
        return ArchiveRoot(self._index.path, index=self._index, prefix=self._key(rel))

    def data_root_at(self, rel: str) -> ArchiveRoot | None:
        """The subroot at directory rel as a data root of its own, named as the user
        would name it: ``ARCHIVE:PREFIX``."""
        sub = self.subroot(rel)
        if sub is None or not sub.prefix:
            return sub
        return ArchiveRoot(self._index.path, index=self._index, prefix=sub.prefix,
                           name=f"{self._index.path}:{sub.prefix}")

    def spool(self, under: tuple[str, ...]) -> None:
        if self._index.file is not None:
            return                       # uncompressed: every content is read in place
        prefixes = tuple(self._key(u) + "/" for u in under)
        self._index.spool = _Spool(self._index.path, prefixes)


class _Spool:
    """Layer contents copied out of the archive in one more streaming pass.

    A compressed archive cannot seek, and tar-split wants files in its own order:
    the contents go to an unnamed temporary file (never near the evidence), and
    each is then read back by (offset, length).
    """

    def __init__(self, path: str, under: tuple[str, ...]):
        import tempfile
        self.file = tempfile.TemporaryFile(prefix="analyze-spool-")
        self.ranges: dict[str, tuple[int, int]] = {}
        offset = 0
        with _TarStream(path) as stream:
            for info in stream.members():
                rel = "/".join(split_rel(info.name))
                if not info.isreg() or not rel.startswith(under):
                    continue
                fobj = stream.tar.extractfile(info)
                if fobj is None:
                    continue
                start = offset
                while chunk := fobj.read(1 << 20):
                    self.file.write(chunk)
                    offset += len(chunk)
                self.ranges[rel] = (start, offset - start)
        self.file.flush()


def _dir_stat(ino: int) -> Stat:
    return Stat(stat_mod.S_IFDIR | 0o755, 0, 4096, ino, 0, 1, 0, 0, 0)


# What a damaged archive raises, from tarfile, the decompressors and the end checks.
_FAULTS = (tarfile.TarError, OSError, EOFError, ValueError, compression.StreamError)


class _TarStream:
    """One pass over an archive's members, in which every fault is an error naming
    where it sits.

    Python's tarfile ends an archive quietly at a header it cannot parse or at a cut
    between members, and never reads a gzip trailer it does not need: each would be a
    silently shorter data root. So the end is checked to be tar's end-of-archive
    block, and the compressed stream is read to its end, its checksums with it.
    """

    # How much of the tar stream is kept behind the reader: more than tarfile reads
    # ahead of the header it stops at (one 10 KiB record).
    _BEHIND = 1 << 16

    def __init__(self, path: str):
        self.path = path
        # The archive itself is the user's file, not a path under the data root.
        try:
            fd = safeopen.open_top(path, directory=False)
        except OSError as exc:
            raise EvidenceError(path, f"cannot read archive: {exc.strerror}") from None
        self.raw = os.fdopen(fd, "rb", buffering=1 << 20)
        self.stream = compression.open_stream(self.raw)
        # Uncompressed: the tar's offsets are the file's, and its contents can be read
        # in place later.
        self.in_place = compression.kind_of(
            self.raw.peek(compression.MAGIC_BYTES)[:compression.MAGIC_BYTES]) == "tar"
        self.position = 0                       # bytes of the tar stream handed out
        self.behind: list[tuple[int, bytes]] = []
        self.tar: tarfile.TarFile | None = None

    def __enter__(self) -> _TarStream:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        # Where the fault sits is asked of the file before it is closed.
        where = self._where() if isinstance(exc, _FAULTS) else None
        self.raw.close()
        if where is not None:
            raise EvidenceError(self.path, f"cannot read archive: {exc or type(exc).__name__} "
                                           f"({where})") from None

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n if n >= 0 else 1 << 20)
        if data:
            self.behind.append((self.position, data))
            self.position += len(data)
            while self.position - self.behind[0][0] - len(self.behind[0][1]) > self._BEHIND:
                self.behind.pop(0)
        return data

    def members(self) -> Iterator[tarfile.TarInfo]:
        """Each member's header; its content is read through ``tar.extractfile`` before
        the next. A fault anywhere leaves the ``with`` block as an EvidenceError."""
        self.tar = tarfile.open(fileobj=self, mode="r|")
        yield from self.tar
        self._check_end(self.tar.offset)
        while self.read(1 << 20):               # the compression's own end and checksums
            pass

    def _check_end(self, offset: int) -> None:
        block = self._block(offset)
        if len(block) < tarfile.BLOCKSIZE:
            raise EOFError(f"cut short: no end-of-archive block at byte {offset} of the tar")
        if block.count(0) != tarfile.BLOCKSIZE:
            raise tarfile.HeaderError(f"a damaged tar header at byte {offset} of the tar")

    def _block(self, offset: int) -> bytes:
        while len(held := self._held_from(offset)) < tarfile.BLOCKSIZE and self.read(1 << 16):
            pass
        return held[:tarfile.BLOCKSIZE]

    def _held_from(self, offset: int) -> bytes:
        return b"".join(data[max(0, offset - start):] for start, data in self.behind
                        if start + len(data) > offset)

    def _where(self) -> str:
        try:
            at = self.raw.tell()
        except (OSError, ValueError):
            return f"near byte {self.position} of the tar"
        return f"near byte {self.position} of the tar, byte {at} of the file"

