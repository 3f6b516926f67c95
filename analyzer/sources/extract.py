"""Files out of a root filesystem onto the analyst's disk, for ``cp``: read from the
layers through the evidence root, written only below the directory the analyst named.

The analyst's machine is in danger too: nothing is written but below that directory
(safeopen.Beneath: openat2 with RESOLVE_BENEATH, no link followed, nothing already
there written through), no device node or FIFO is made, and set-user-ID and
set-group-ID bits go unless the analyst asks to keep them (``--preserve``, which also
keeps owners, as ``docker cp -a``).

References: docker/cli cli/command/container/cp.go (copyFromContainer), moby
pkg/archive/archive.go (createTarFile: what extracting makes of each type).
"""
from __future__ import annotations

import os
import stat as stat_mod
from typing import Iterable

from ..errors import EvidenceError
from ..model import Diagnostic
from ..safeopen import Beneath
from .evidence import EvidenceRoot
from .layerfiles import chunks

SET_ID = stat_mod.S_ISUID | stat_mod.S_ISGID


def extract(root: EvidenceRoot, entries: Iterable[tuple[str, tuple]], dest: Beneath,
            preserve: bool) -> list[Diagnostic]:
    """Write entries (destination path relative to dest, then the entry as
    ``ImageService.root_filesystem`` gives it), parents before children.

    Returns what was not written, or written short, and why. Raises OSError when the
    analyst's side refuses a write (the destination then holds what came before).
    """
    problems: list[Diagnostic] = []
    dirs: list[tuple[str, int, tuple[int, int] | None, int]] = []
    for out, (st, rel, target) in entries:
        mode = stat_mod.S_IMODE(st.mode) & (~0 if preserve else ~SET_ID)
        owner = (st.uid, st.gid) if preserve else None
        where = rel or out
        if stat_mod.S_ISDIR(st.mode):
            dest.mkdir(out)
            dirs.append((out, mode, owner, st.mtime_ns))      # set once its files are in
        elif stat_mod.S_ISREG(st.mode):
            fd = dest.create(out)
            try:
                short = _copy(root, rel, st.size, fd) if rel is not None else 0
            except EvidenceError as exc:
                problems.append(Diagnostic(exc.path, f"{exc.reason}; {out} left empty"))
            else:
                if short:
                    problems.append(Diagnostic(where, f"{short} bytes short of its size"))
            finally:
                os.close(fd)
            dest.set_meta(out, mode, owner, st.mtime_ns)
        elif stat_mod.S_ISLNK(st.mode):
            link = target if rel is None else root.readlink(rel)
            if link is None:
                problems.append(Diagnostic(where, "a symbolic link whose target cannot be "
                                           "read; not made"))
                continue
            dest.symlink(out, link)
            dest.set_meta(out, None, owner, st.mtime_ns)
        else:
            problems.append(Diagnostic(where, "a device node, FIFO or socket; not made on "
                                       "the analyst's side"))
    for out, mode, owner, mtime_ns in reversed(dirs):
        dest.set_meta(out, mode, owner, mtime_ns)
    return problems


def _copy(root: EvidenceRoot, rel: str, size: int, out: int) -> int:
    """Copy at most size bytes of an evidence file; how many it lacked."""
    fd, offset, length = root.content(rel)
    try:
        left = size
        for piece in chunks(fd, offset, length):
            view = memoryview(piece)[:left]
            left -= len(view)
            while view:
                view = view[os.write(out, view):]
            if not left:
                break
        return left
    finally:
        os.close(fd)
