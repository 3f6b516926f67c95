"""``docker export``'s archive of a root filesystem, written from the layers' files.

The daemon mounts the container and archives the mount; here each entry of the union
view (engines/rootfs.py) is read from the layer it comes from, through the evidence
root: links are written as links, never followed; device nodes and FIFOs are headers
only, never opened; a file is read only up to the size its lstat gave.

References: moby daemon/export.go (containerExport: TarWithOptions of the mounted
rootfs), pkg/archive/archive.go (TarWithOptions, tarAppender.addTarFile: names relative,
directories with a trailing slash, a regular file already archived under another name
— same inode — as a hard link, sockets skipped, security.capability as a PAX record).
"""
from __future__ import annotations

import os
import stat as stat_mod
import tarfile
from typing import Generator, Mapping

from ..errors import EvidenceError
from ..model import Diagnostic
from .evidence import EvidenceRoot
from .layerfiles import chunks

_TYPES = ((stat_mod.S_ISDIR, tarfile.DIRTYPE), (stat_mod.S_ISREG, tarfile.REGTYPE),
          (stat_mod.S_ISLNK, tarfile.SYMTYPE), (stat_mod.S_ISCHR, tarfile.CHRTYPE),
          (stat_mod.S_ISBLK, tarfile.BLKTYPE), (stat_mod.S_ISFIFO, tarfile.FIFOTYPE))
CAPABILITY = "security.capability"


class _Content:
    """A file's bytes for tarfile, exactly ``size`` of them: what the file lacks (it
    shrank, or could not be read) is zeros, and the damage is told."""

    def __init__(self, pieces: Generator[bytes, None, None], size: int, rel: str,
                 problems: list):
        self._pieces, self._left, self._rel, self._problems = pieces, size, rel, problems
        self._buffer = b""

    def close(self) -> None:
        self._pieces.close()        # a file grown since its lstat: the rest stays unread

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n and self._left > len(self._buffer):
            piece = next(self._pieces, None)
            if piece is None:
                missing = self._left - len(self._buffer)
                self._problems.append(Diagnostic(self._rel, f"{missing} bytes short of its "
                                                 "size; written as zeros"))
                self._buffer += bytes(missing)
                break
            self._buffer += piece
        n = min(n, self._left)
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        self._left -= len(out)
        return out


class _GoHeader(tarfile.TarInfo):
    """A header whose mode keeps the file type bits, as Go's tar.FileInfoHeader writes
    it (c_ISDIR, c_ISREG, ...: 0o100644, not 0o644); tarfile keeps only 0o7777."""

    go_mode: int | None = None

    def get_info(self):
        info = super().get_info()
        if self.go_mode is not None:
            info["go_mode"] = self.go_mode
        return info

    @staticmethod
    def _create_header(info, format, encoding, errors):
        block = bytearray(tarfile.TarInfo._create_header(info, format, encoding, errors))
        if info.get("go_mode") is not None:
            block[100:108] = b"%07o\0" % info["go_mode"]
            block[148:156] = b" " * 8
            block[148:155] = b"%06o\0" % sum(block)
        return bytes(block)


def write_export(root: EvidenceRoot, entries: Mapping[str, tuple], tar: tarfile.TarFile,
                 type_bits: bool = True) -> list[Diagnostic]:
    """Archive a root filesystem into tar (a PAX stream the caller opened on the
    analyst's side).

    Args:
        type_bits: whether a header's mode keeps the file type bits, as dockerd 20.10
            writes them; Docker 28's headers hold the permission bits only.
        entries: by absolute path, in the order to write: (stat, where its bytes are —
            its path relative to the data root, or None for an entry the daemon makes —,
            a link's target when known).
    Returns:
        What could not be read as it should: each such entry is left out, or its
        missing bytes written as zeros, and named.
    """
    problems: list[Diagnostic] = []
    seen: dict[tuple[int, int], str] = {}
    for path, (st, rel, target) in entries.items():
        kind = next((t for test, t in _TYPES if test(st.mode)), None)
        if kind is None:
            continue            # a socket: archive/tar has no type for it
        info = _GoHeader(path[1:] + ("/" if kind == tarfile.DIRTYPE else ""))
        info.type, info.mode = kind, stat_mod.S_IMODE(st.mode)
        info.go_mode = st.mode if type_bits else None
        info.uid, info.gid, info.mtime = st.uid, st.gid, st.mtime_ns // 10**9
        try:
            content = _member(root, info, st, rel, target, seen, problems)
        except EvidenceError as exc:
            problems.append(Diagnostic(exc.path, f"{exc.reason}; left out of the export"))
            continue
        tar.addfile(info, content)
        if content is not None:
            content.close()
    return problems


def _member(root: EvidenceRoot, info: tarfile.TarInfo, st, rel: str | None,
            target: str | None, seen: dict, problems: list) -> _Content | None:
    if info.type == tarfile.SYMTYPE:
        info.linkname = target if rel is None else _readlink(root, rel)
    elif info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = os.major(st.rdev), os.minor(st.rdev)
    if rel is None or info.type != tarfile.REGTYPE:
        return None
    if st.nlink > 1:
        first = seen.setdefault((st.dev, st.ino), info.name)
        if first != info.name:
            info.type, info.linkname = tarfile.LNKTYPE, first
            return None
    cap = (root.xattrs(rel) or {}).get(CAPABILITY)
    if cap is not None:
        info.pax_headers = {f"SCHILY.xattr.{CAPABILITY}": cap.decode("utf-8",
                                                                      "surrogateescape")}
    info.size = st.size
    fd, offset, length = root.content(rel)
    return _Content(_closing(fd, offset, length), st.size, rel, problems)


def _readlink(root: EvidenceRoot, rel: str) -> str:
    target = root.readlink(rel)
    if target is None:
        raise EvidenceError(rel, "a symbolic link whose target cannot be read")
    return target


def _closing(fd: int, offset: int, length: int) -> Generator[bytes, None, None]:
    try:
        yield from chunks(fd, offset, length)
    finally:
        os.close(fd)
