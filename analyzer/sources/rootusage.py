"""The one walk ``analyze du`` makes: every claim of engines/rootusage.py (its paths,
walked whole, and its directories, counted alone) measured, each inode once, for the
first claim (lowest layer first) that reaches it.

Each claim's paths are walked with the native walker (EvidenceRoot.tree_usage: links
never followed, only directories opened); the directories a claim counts alone are
lstat'ed. What lies on another filesystem than the root (a live host's ``merged`` and
``shm`` mounts) is what ``du -x`` leaves out: it is summed apart.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import EvidenceError
from ..treeusage import TreeUsage, attribute
from .evidence import EvidenceRoot


def measure(root: EvidenceRoot, claims: Sequence[tuple[Sequence[str], Sequence[str]]]
            ) -> tuple[list[tuple[int, int]], int, list[EvidenceError]]:
    """Each claim's (bytes, inodes), given as (paths, dirs); the bytes on other
    filesystems; what could not be read (its bytes are left out)."""
    problems: list[EvidenceError] = []
    walked = root.tree_usage([list(paths) for paths, _ in claims])
    tables: list[TreeUsage] = []
    for (_, dirs), (usage, errors) in zip(claims, walked):
        problems.extend(errors)
        alone = TreeUsage()
        for rel in dirs:
            st = root.lstat(rel)
            if st is not None:
                alone.add(st.dev, st.ino, st.nlink, st.allocated, st.size, st.is_dir)
        tables += [alone, usage]          # the directory is met before what is in it
    top = root.lstat("")
    shares, (elsewhere, _) = attribute(tables, top.dev if top is not None else 0)
    measured = [(shares[2 * k][0] + shares[2 * k + 1][0], shares[2 * k][1] + shares[2 * k + 1][1])
                for k in range(len(claims))]
    return measured, elsewhere, problems
