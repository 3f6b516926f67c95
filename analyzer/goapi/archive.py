"""moby pkg/archive's test of whether a file changed between two layers' copies.

References: moby pkg/archive/changes.go (sameFsTime), changes_unix.go (statDifferent).
"""
from __future__ import annotations

import stat as stat_mod
from typing import Protocol


class StatLike(Protocol):
    mode: int
    size: int
    uid: int
    gid: int
    rdev: int
    mtime_ns: int


def same_fs_time(a_ns: int, b_ns: int) -> bool:
    """sameFsTime: equal, or the same second with either nanosecond part zero (tar
    keeps whole seconds)."""
    return a_ns == b_ns or (a_ns // 10**9 == b_ns // 10**9
                            and (not a_ns % 10**9 or not b_ns % 10**9))


def stat_different(old: StatLike, new: StatLike) -> bool:
    """statDifferent: mode, owner or device differ, or, but for directories (whose
    size and mtime are no measure of change, moby#9874), size or mtime."""
    if (old.mode, old.uid, old.gid, old.rdev) != (new.mode, new.uid, new.gid, new.rdev):
        return True
    return not stat_mod.S_ISDIR(old.mode) and (
        old.size != new.size or not same_fs_time(old.mtime_ns, new.mtime_ns))
