"""A container's or image's root filesystem as the union mount shows it, from its
layers' own entries: what ``docker diff`` compares and ``docker export`` archives.

Each layer, bottom first, lays its entries over the ones below: a whiteout removes
what is below at its path, an opaque directory hides everything below inside it, and
an entry replacing a directory by a non-directory (or the reverse) hides the old one's
contents. A directory present in several layers shows the topmost one's attributes.
Which entries are whiteouts and opaque directories is the driver's on-disk format
(sources/containerfs.py reads it).

References: linux Documentation/filesystems/overlayfs.rst (whiteouts, opaque
directories), moby pkg/archive/whiteouts.go, daemon/graphdriver/overlay2/overlay.go.
"""
from __future__ import annotations

import stat as stat_mod
from typing import Callable, Mapping, NamedTuple, Sequence

from ..goapi.archive import StatLike
from .changes import parent_path, walk_order


class LayerEntries(NamedTuple):
    """One layer's own entries, by absolute path ("/etc/hosts"), whiteouts apart."""
    entries: Mapping[str, StatLike]
    whiteouts: Sequence[str]          # paths this layer deletes
    opaque: frozenset[str]            # directories that hide what is below them


class Visible(NamedTuple):
    stat: StatLike
    layer: int                        # index in the layers given, 0 = top


def union(layers: Sequence[LayerEntries]) -> dict[str, Visible]:
    """Every path the union of these layers (top first) shows, with the layer it is from."""
    view: dict[str, Visible] = {}
    kids: dict[str, set[str]] = {}

    def hide_below(path: str) -> None:
        todo = list(kids.pop(path, ()))
        while todo:
            child = todo.pop()
            view.pop(child, None)
            todo += kids.pop(child, ())

    def remove(path: str) -> None:
        hide_below(path)
        if view.pop(path, None) is not None:
            kids.get(parent_path(path), set()).discard(path)

    for index in range(len(layers) - 1, -1, -1):
        entries, whiteouts, opaque = layers[index]
        for path in whiteouts:
            remove(path)
        for path in opaque:
            hide_below(path)
        for path in sorted(entries, key=walk_order):
            st = entries[path]
            below = view.get(path)
            if below is not None and not (stat_mod.S_ISDIR(st.mode)
                                          and stat_mod.S_ISDIR(below.stat.mode)):
                hide_below(path)
            parent = parent_path(path)
            above = view.get(parent)
            if parent != "/" and (above is None or not stat_mod.S_ISDIR(above.stat.mode)):
                continue            # not below a directory: unreachable in the mount
            view[path] = Visible(st, index)
            kids.setdefault(parent, set()).add(path)
    return view



class Made(NamedTuple):
    """An entry the daemon makes rather than reads: the init layer's."""
    mode: int
    size: int = 0
    uid: int = 0
    gid: int = 0
    rdev: int = 0
    mtime_ns: int = 0


# moby daemon/initlayer/setup_unix.go: what every container's init layer holds, made
# only where the image has nothing (dirs and parents 0755, files empty and 0755).
INIT_LAYER = (("/dev/pts", "dir"), ("/dev/shm", "dir"), ("/proc", "dir"), ("/sys", "dir"),
              ("/.dockerenv", "file"), ("/etc/resolv.conf", "file"), ("/etc/hosts", "file"),
              ("/etc/hostname", "file"), ("/dev/console", "file"), ("/etc/mtab", "/proc/mounts"))
_DIR = Made(stat_mod.S_IFDIR | 0o755)


def init_layer(view: Mapping[str, Visible], workdir: str | None = None
               ) -> dict[str, tuple[Made, str | None]]:
    """The entries a container created from an image has that the image has not, with
    a link's target: ``setupInitLayer``'s, and the working directory the daemon makes
    at create (``SetupWorkingDirectory``: 0755, parents too)."""
    made: dict[str, tuple[Made, str | None]] = {}

    def parents(path: str) -> None:
        parent = parent_path(path)
        while parent != "/" and parent not in view and parent not in made:
            made[parent] = (_DIR, None)
            parent = parent_path(parent)

    for path, kind in INIT_LAYER:
        if path in view:
            continue
        parents(path)
        if kind == "dir":
            made[path] = (_DIR, None)
        elif kind == "file":
            made[path] = (Made(stat_mod.S_IFREG | 0o755), None)
        else:
            made[path] = (Made(stat_mod.S_IFLNK | 0o777, len(kind)), kind)
    work = "/" + "/".join(p for p in (workdir or "").split("/") if p not in ("", "."))
    if work != "/" and ".." not in work.split("/") and work not in view and work not in made:
        parents(work)
        made[work] = (_DIR, None)
    return made


# moby pkg/symlink: FollowSymlinkInScope gives up after this many links.
MAX_LINKS = 255


class NotInScope(Exception):
    """A path whose links go round without end."""


def resolve_in_scope(path: str, view: Mapping[str, StatLike],
                     readlink: Callable[[str], str], follow_last: bool) -> str:
    """The entry path names inside a root filesystem, its links followed as the kernel
    would inside the container — an absolute target from the container's root, ``..``
    never above it — and the last one only when asked (``docker cp -L``).

    References: moby pkg/symlink/fs.go (FollowSymlinkInScope, evalSymlinksInScope),
    daemon/archive.go (resolvePath).
    """
    todo = [p for p in path.split("/") if p]
    here, links = "/", 0
    while todo:
        name = todo.pop(0)
        if name == ".":
            continue
        if name == "..":
            here = parent_path(here)
            continue
        step = f"{here.rstrip('/')}/{name}"
        st = view.get(step)
        if st is not None and stat_mod.S_ISLNK(st.mode) and (todo or follow_last):
            links += 1
            if links > MAX_LINKS:
                raise NotInScope(path)
            target = readlink(step)
            if target.startswith("/"):
                here = "/"
            todo[:0] = [p for p in target.split("/") if p]
            continue
        here = step
    return here
