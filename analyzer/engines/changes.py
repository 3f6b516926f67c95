"""A container's changes against its image: what ``docker diff`` lists.

The daemon asks the graph driver for the changes of the container's RW layer against
its init layer (``mountedLayer.Changes`` → ``Driver.Changes(mountID, initID)``). vfs,
and overlay2 wherever the kernel could rename directories behind its back (the
daemon's ``useNaiveDiff``: what dockerd chose on every judge recorded), answer through
moby's NaiveDiffDriver: both layers mounted, the two full trees compared by
``ChangesDirs`` — here the two union views of rootfs.py. Go walks maps there, so the
daemon's order is left to chance; it is given here sorted by path.

References: moby pkg/archive/changes.go (ChangesDirs, addChanges, sameFsTime),
changes_unix.go (statDifferent), daemon/graphdriver/fsdiff.go (NaiveDiffDriver.Changes),
overlay2/overlay.go (Changes, useNaiveDiff), daemon/changes.go (ContainerChanges).
"""
from __future__ import annotations

import stat as stat_mod
from typing import Callable, Mapping, NamedTuple

from ..goapi.archive import StatLike, stat_different


class Change(NamedTuple):
    kind: str           # "C", "A" or "D": archive.ChangeType's String()
    path: str           # absolute inside the container, "/etc/hosts"


def walk_order(path: str) -> tuple[bytes, ...]:
    """Sort key of Go's filepath.Walk: depth first, names in byte order."""
    return tuple(p.encode("utf-8", "surrogateescape") for p in path.split("/"))


def parent_path(path: str) -> str:
    """filepath.Dir of an absolute path."""
    return path.rpartition("/")[0] or "/"


def tree_changes(new: Mapping[str, StatLike], old: Mapping[str, StatLike],
                 same_capability: Callable[[str], bool]) -> list[Change]:
    """``ChangesDirs(new, old)``: the changes of one full tree against another, sorted.

    Args:
        new, old: every entry of each tree below its root, by absolute path ("/a/b").
        same_capability: whether the ``security.capability`` attribute of a path is the
            same in both trees (asked only of paths in both with equal stat).
    """
    kinds: dict[str, str] = {}
    for path, st in new.items():
        before = old.get(path)
        if before is None or not _in_old_dir(path, new, old):
            kinds[path] = "A"
        elif stat_different(before, st) or not same_capability(path):
            kinds[path] = "C"
    for path in old:
        # A deletion is seen only below a directory that is one in both trees.
        if path not in new:
            parent = parent_path(path)
            if parent == "/" or (parent in new and stat_mod.S_ISDIR(new[parent].mode)
                                 and _in_old_dir(parent, new, old) and parent in old):
                kinds[path] = "D"
    # A directory with a change inside is listed as changed itself (addChanges).
    for path in list(kinds):
        parent = parent_path(path)
        while parent != "/" and parent not in kinds:
            kinds[parent] = "C"
            parent = parent_path(parent)
    return [Change(kinds[p], p) for p in sorted(kinds, key=walk_order)]


def _in_old_dir(path: str, new: Mapping[str, StatLike], old: Mapping[str, StatLike]) -> bool:
    """Whether addChanges reaches path with its old entry: every ancestor is a directory
    in the new tree and present in the old one (an added or replaced-by-a-file ancestor
    hides what the old tree had below it)."""
    parent = parent_path(path)
    while parent != "/":
        if parent not in old or not stat_mod.S_ISDIR(new[parent].mode):
            return False
        parent = parent_path(parent)
    return True
