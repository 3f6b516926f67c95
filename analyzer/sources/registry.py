"""The sources analyzer knows, in the order they are tried: one line each.

Each is detected by what the roots hold, never by a file name; the first that
recognises them reads them. A format recognised but not read gets a line too, so
that its answer is "not read yet", not "nothing here".
"""
from __future__ import annotations

import importlib
from typing import Iterator, NamedTuple

from ..errors import UnsupportedLayoutError
from ..model import Store
from . import Detected, Roots, Source, layout
from .evidence import EvidenceRoot

# Modules of this package. A source is imported when its turn to detect comes: a data
# root's command does not pay for the archive and containerd readers at start-up.
SOURCES: tuple[str, ...] = (
    "graphdriver",      # image/<driver>/ of a data root: overlay2, devicemapper, aufs, ...
    "graphv1",          # graph/ and repositories-<driver>: before Docker 1.10
    "containerd",       # the containerd image store (Docker 29's default): recognised
    "dockersave",       # a `docker save` archive: manifest.json (legacy, or beside a layout)
    "ocilayout",        # an OCI image layout: oci-layout, index.json, blobs/
)


def sources() -> Iterator[Source]:
    """The sources in SOURCES's order, each imported when reached."""
    for name in SOURCES:
        yield importlib.import_module(f"{__package__}.{name}")


def detect(roots: Roots) -> tuple[Source, Detected]:
    """The first source that recognises the roots, and what it found.

    Raises:
        UnsupportedLayoutError: no source recognises them.
    """
    for source in sources():
        found = source.detect(roots)
        if found is not None:
            return source, found
    raise UnsupportedLayoutError(
        roots[layout.DATA_ROOT].path,
        "no image store found (expected image/<driver>/ of a Docker data root, an OCI "
        "image layout or a docker save archive)")


def under_top_folders(root: EvidenceRoot) -> EvidenceRoot:
    """The data root an archive holds under a chain of single top folders, as
    ``tar czf x.tgz /var/lib/docker`` makes it (``var/lib/docker/``) or ``tar -C
    /var/lib docker`` (``docker/``): the first directory down the chain that a source
    recognises; the archive's top when none does (its answer says what is missing).

    Directories are taken as named: their path is the analyst's to give."""
    if root.kind != "archive":          # a directory is taken as named
        return root
    level = root
    while not _recognised(level) and len(names := level.listdir("") or ()) == 1:
        below = level.data_root_at(names[0])
        if below is None:                   # a file alone, not a folder
            break
        level = below
    return level if _recognised(level) else root


class RemappedRoots(NamedTuple):
    """The roots a daemon run with ``--userns-remap`` keeps in a data root's folders."""
    read: EvidenceRoot                  # the one read (maybe the data root itself)
    others: tuple[str, ...]             # the remapped roots not read, named as the analyst would


def under_remapped_roots(root: EvidenceRoot) -> RemappedRoots:
    """dockerd ``--userns-remap`` keeps its whole root in ``<data-root>/<uid>.<gid>/``;
    one data root can hold several (one per remapping it ran with) beside the plain
    one. The plain root is read when a source recognises it, else the first remapped
    root in numeric order; the others are named for the caller to tell."""
    names = sorted((n for n in root.listdir("") or () if layout.remapped_root_ids(n)),
                   key=layout.remapped_root_ids)
    found: list[EvidenceRoot] = []
    for name in names:
        sub = root.data_root_at(name)
        if sub is not None and _recognised(sub):
            found.append(sub)
        elif sub is not None:
            sub.close()
    read = root if _recognised(root) or not found else found.pop(0)
    for sub in found:
        sub.close()
    return RemappedRoots(read, tuple(sub.path for sub in found))


def _recognised(root: EvidenceRoot) -> bool:
    return any(source.detect({layout.DATA_ROOT: root}) is not None for source in sources())


def read(roots: Roots) -> tuple[Detected, Store]:
    """Detect, then read: the model of whatever the roots hold."""
    source, found = detect(roots)
    return found, source.read(roots, found)
