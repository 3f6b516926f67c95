"""Disk usage of paths in the data root, measured the two ways Docker and du do.

Both come from one walk of each tree (``EvidenceRoot.tree_usage``: native where it can,
``_csrc/walk.c``, links never followed), into a ``TreeUsage`` of the inodes found:

- ``directory_size``: moby's directory.Size — apparent sizes of everything but
  directories, each inode once. What a layer's ``size`` file, a container's
  SizeRw and a volume's size are.
- ``TreeUsage.allocated_bytes`` / ``treeusage.freed_bytes``: allocated bytes (st_blocks *
  512) per inode, with how many of its links lie in the paths measured, so that the bytes
  a removal frees can be counted as ``du`` would see them go: directories always, a file
  only when every one of its links goes.

References: moby pkg/directory/directory_unix.go (calcSize); coreutils du.
"""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

from ..errors import EvidenceError, UnsafePathError
from ..goapi.archive import stat_different
from ..model import Diagnostic
from .evidence import EvidenceRoot, Stat


def directory_size(root: EvidenceRoot, rel: str) -> int:
    """-1 when the directory is missing (the daemon's "unknown").

    Raises EvidenceError when part of it cannot be read: a smaller size would be wrong.
    """
    return directory_sizes(root, [rel])[rel]


def naive_diff_size(root: EvidenceRoot, rel: str, parent_rel: str) -> int:
    """What moby's NaiveDiffDriver reports as a layer's DiffSize (vfs): the sizes of the
    files (not directories) added or changed against the parent's copy, each inode once;
    -1 when the layer's directory is missing.

    References: moby pkg/archive/changes.go (ChangesDirs, addChanges, ChangesSize),
    changes_unix.go (statDifferent, sameFsTime).
    """
    old = {path[len(parent_rel):]: st for path, st in root.walk(parent_rel)}
    return _changes_size(root, rel, old.get)


def overlay_diff_size(root: EvidenceRoot, upper: str, lowers: Sequence[str]) -> int:
    """A legacy overlay container's DiffSize: the naive diff of its mount (``upper`` over
    its image's root) against its init layer's (the init ``upper`` over the same root).
    Only what ``upper`` holds can differ; each file there is compared with what the
    parent's mount shows at its path: the first of ``lowers`` (top first) that has it.
    (A whiteout, a deletion, is a character device of size 0: it adds nothing.) -1
    when ``upper`` is missing.

    References: moby daemon/graphdriver/overlay/overlay.go (Init: NaiveDiffDriverWithApply,
    Create: a container's upper is a copy of its init layer's), fsdiff.go (DiffSize).
    """
    def below(suffix: str) -> Stat | None:
        for lower in lowers:
            try:
                st = root.lstat(lower + suffix)
            except UnsafePathError:
                return None     # under a link in that layer: the mount shows no such path
            if st is not None:
                return st
        return None
    return _changes_size(root, upper, below)


def _changes_size(root: EvidenceRoot, rel: str, before: Callable[[str], Stat | None]) -> int:
    """ChangesSize of ChangesDirs(rel, parent): ``before`` gives the parent's entry at a
    path below rel (with its leading ``/``)."""
    if root.lstat(rel) is None:
        return -1
    seen: set[tuple[int, int]] = set()
    total = 0
    for path, st in root.walk(rel):
        if st.is_dir:
            continue
        old = before(path[len(rel):])
        if old is not None and not stat_different(old, st):
            continue
        if st.nlink > 1:
            if (st.dev, st.ino) in seen:
                continue
            seen.add((st.dev, st.ino))
        total += st.size
    return total


def directory_sizes(root: EvidenceRoot, rels: list[str]) -> dict[str, int]:
    """directory_size of each, in one batch of walks."""
    out: dict[str, int] = {}
    for rel, (usage, problems) in zip(rels, root.tree_usage([[rel] for rel in rels])):
        if problems:
            raise problems[0]
        out[rel] = usage.apparent_bytes() if len(usage) else -1
    return out


def damage(errors: Iterable[EvidenceError], kind: str | None = None,
           ident: str | None = None) -> list[Diagnostic]:
    """What a walk could not read, as diagnostics naming what it costs (when known)."""
    return [Diagnostic(e.path, e.reason, kind, ident) for e in errors]
