"""Pure-Python twin of ``_fastdigest.TreeUsage``, ``freed_bytes`` and ``walk_usage``

Same API and behaviour, a dict of inodes instead of a C table: a few hundred bytes an
inode, so the fallback when the extension is not built.
"""
from __future__ import annotations

import stat as stat_mod

from ._walk_py import walk

__all__ = ["TreeUsage", "attribute", "freed_bytes", "walk_usage"]

# Fields of an inode's entry, as treeusage.c's tu_inode.
_ALLOCATED, _SIZE, _NLINK, _LINKS, _IS_DIR = range(5)


class TreeUsage:
    """The inodes walks found, keyed by (dev, ino), each with how many of its links were
    found; what an inode is first seen with stays. See _fastdigest.pyi."""

    def __init__(self) -> None:
        self._inodes: dict[tuple[int, int], list[int]] = {}

    def __len__(self) -> int:
        return len(self._inodes)

    def add(self, dev: int, ino: int, nlink: int, allocated: int, size: int,
            is_dir: bool) -> None:
        entry = self._inodes.get((dev, ino))
        if entry is None:
            entry = self._inodes[(dev, ino)] = [allocated, size, nlink, 0, bool(is_dir)]
        entry[_LINKS] += 1

    def allocated_bytes(self) -> int:
        return sum(e[_ALLOCATED] for e in self._inodes.values())

    def apparent_bytes(self) -> int:
        return sum(e[_SIZE] for e in self._inodes.values() if not e[_IS_DIR])


def freed_bytes(usages: list[TreeUsage]) -> int:
    """What removing everything these found frees: each inode once (as the first of them
    to find it saw it), with the links all of them found."""
    links: dict[tuple[int, int], int] = {}
    for usage in usages:
        for key, entry in usage._inodes.items():
            links[key] = links.get(key, 0) + entry[_LINKS]
    total = 0
    for usage in usages:
        for key, entry in usage._inodes.items():
            found = links.pop(key, None)        # None: summed already
            if found is not None and (entry[_IS_DIR] or found >= entry[_NLINK]):
                total += entry[_ALLOCATED]
    return total


def attribute(usages: list[TreeUsage], dev: int
              ) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Each inode counted once, for the first usage that found it: (bytes, inodes) of
    each usage on device dev, and of all on other devices."""
    counted: set[tuple[int, int]] = set()
    shares, elsewhere = [], [0, 0]
    for usage in usages:
        share = [0, 0]
        for key, entry in usage._inodes.items():
            if key in counted:
                continue
            counted.add(key)
            to = share if key[0] == dev else elsewhere
            to[0] += entry[_ALLOCATED]
            to[1] += 1
        shares.append((share[0], share[1]))
    return shares, (elsewhere[0], elsewhere[1])


def walk_usage(dir_fd: int, groups: list[list[bytes]]
               ) -> list[tuple[TreeUsage, list[tuple[bytes, int]]]]:
    """For each group of paths (relative to dir_fd), a TreeUsage of everything at and
    below them and the (path, errno) of what could not be read."""
    out = []
    for tops in groups:
        usage, errors = TreeUsage(), []
        for top in tops:
            try:
                entries = list(walk(dir_fd, top, errors))
            except OSError as exc:          # "": dir_fd itself could not be read
                errors.append((top, exc.errno or 0))
                continue
            for _, st in entries:
                usage.add(st.st_dev, st.st_ino, st.st_nlink, st.st_blocks * 512, st.st_size,
                          stat_mod.S_ISDIR(st.st_mode))
        out.append((usage, errors))
    return out
