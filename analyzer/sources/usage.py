"""Disk usage of paths in the data root, measured the two ways Docker and du do.

- ``directory_size``: moby's directory.Size — apparent sizes of everything but
  directories, each inode once. What a layer's ``size`` file, a container's
  SizeRw and a volume's size are.
- ``inode_usage``: allocated bytes (st_blocks * 512) per inode, with how many of
  its links lie in the paths measured, so that the bytes a removal frees can be
  counted as ``du`` would see them go: directories always, a file only when
  every one of its links goes.

References: moby pkg/directory/directory_unix.go (calcSize); coreutils du.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .evidence import EvidenceRoot


def directory_size(root: EvidenceRoot, rel: str) -> int:
    """-1 when the directory is missing (the daemon's "unknown")."""
    if root.lstat(rel) is None:
        return -1
    seen: set[tuple[int, int]] = set()
    total = 0
    for _, st in root.walk(rel):
        if st.is_dir:
            continue
        key = (st.dev, st.ino)
        if key in seen:
            continue
        seen.add(key)
        total += st.size
    return total


def naive_diff_size(root: EvidenceRoot, rel: str, parent_rel: str) -> int:
    """What moby's NaiveDiffDriver reports as a layer's DiffSize (vfs): the sizes of the
    files (not directories) added or changed against the parent's copy, each inode once;
    -1 when the layer's directory is missing.

    References: moby pkg/archive/changes.go (ChangesDirs, addChanges, ChangesSize),
    changes_unix.go (statDifferent, sameFsTime).
    """
    if root.lstat(rel) is None:
        return -1
    old = {path[len(parent_rel):]: st for path, st in root.walk(parent_rel)}
    seen: set[tuple[int, int]] = set()
    total = 0
    for path, st in root.walk(rel):
        if st.is_dir:
            continue
        before = old.get(path[len(rel):])
        if before is not None and not _stat_different(before, st):
            continue
        if st.nlink > 1:
            if (st.dev, st.ino) in seen:
                continue
            seen.add((st.dev, st.ino))
        total += st.size
    return total


def _stat_different(old, new) -> bool:
    if (old.mode, old.uid, old.gid, old.rdev) != (new.mode, new.uid, new.gid, new.rdev):
        return True
    return old.size != new.size or not _same_fs_time(old.mtime_ns, new.mtime_ns)


def _same_fs_time(a: int, b: int) -> bool:
    # sameFsTime: equal seconds, and equal nanoseconds unless either is zero.
    return a // 10**9 == b // 10**9 and (a % 10**9 == b % 10**9 or not a % 10**9 or not b % 10**9)


@dataclass
class InodeUsage:
    """Allocated bytes by inode, and the links of each inode found so far."""
    allocated: dict[tuple[int, int], int] = field(default_factory=dict)
    links: dict[tuple[int, int], int] = field(default_factory=dict)
    nlink: dict[tuple[int, int], int] = field(default_factory=dict)
    is_dir: set[tuple[int, int]] = field(default_factory=set)

    def add(self, root: EvidenceRoot, paths: Iterable[str]) -> None:
        for path in paths:
            for _, st in root.walk(path):
                key = (st.dev, st.ino)
                self.allocated[key] = st.allocated
                self.links[key] = self.links.get(key, 0) + 1
                self.nlink[key] = st.nlink
                if st.is_dir:
                    self.is_dir.add(key)

    def merge(self, other: "InodeUsage") -> None:
        """Add another measurement: links found in both count for both."""
        self.allocated.update(other.allocated)
        self.nlink.update(other.nlink)
        self.is_dir |= other.is_dir
        for key, count in other.links.items():
            self.links[key] = self.links.get(key, 0) + count

    def freed_bytes(self) -> int:
        """Bytes that go when every path added goes: hard-linked files only with all links."""
        return sum(size for key, size in self.allocated.items()
                   if key in self.is_dir or self.links[key] >= self.nlink[key])

    def total_bytes(self) -> int:
        return sum(self.allocated.values())


def inode_usage(root: EvidenceRoot, paths: Iterable[str]) -> InodeUsage:
    usage = InodeUsage()
    usage.add(root, paths)
    return usage
