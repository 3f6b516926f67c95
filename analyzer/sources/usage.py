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
