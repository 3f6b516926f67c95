"""The one interface evidence is read through: a data root, read-only, no way out of it.

Every backend (``directory.py``: a live ``/var/lib/docker`` or a mounted snapshot;
``archive.py``: a tar of one) implements all of :class:`EvidenceRoot`. What a backend
cannot do it says with a capability property (``has_fd``, ``has_xattrs``) and, if asked
anyway, with an :class:`EvidenceError` naming what it cannot do: callers test the
capability, never the class. Paths are relative to the root, '/'-separated; a symbolic
link is never followed: readers that care about one (``overlay2/l/*``) read its target
with ``readlink`` and check it themselves.
"""
from __future__ import annotations

import abc
import stat as stat_mod
from typing import TYPE_CHECKING, Iterator, NamedTuple, Sequence

from ...errors import EvidenceError, UnsafePathError

if TYPE_CHECKING:
    from ...digest import Sha256
    from ...model import Diagnostic
    from ...treeusage import TreeUsage

# Metadata files are small; a size read from the evidence is never trusted
# beyond these.
SMALL_LIMIT = 64 * 1024
JSON_LIMIT = 64 * 1024 * 1024


class Stat(NamedTuple):
    """What readers need of ``lstat``; archives fill it from tar headers.

    A NamedTuple: walks make one per file, and a tuple is the cheapest to build.
    """
    mode: int
    size: int
    allocated: int        # st_blocks * 512; for an archive, an estimate
    ino: int
    dev: int
    nlink: int
    uid: int
    gid: int
    mtime_ns: int
    rdev: int = 0         # device number of a block or character device

    @property
    def is_dir(self) -> bool:
        return stat_mod.S_ISDIR(self.mode)

    @property
    def is_reg(self) -> bool:
        return stat_mod.S_ISREG(self.mode)

    @property
    def is_link(self) -> bool:
        return stat_mod.S_ISLNK(self.mode)


def split_rel(rel: str) -> list[str]:
    """The names of a relative path; '..' anywhere is a way out and refused."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafePathError(rel, "path leads out of the data root")
    return parts


class EvidenceRoot(abc.ABC):
    """A data root (or a directory in one, see ``subroot``), whatever holds it."""

    kind: str               # "directory" or "archive"
    path: str               # what the user named (a subroot: that, '/', its path)
    usage_is_estimate: bool  # sizes come from headers, not from st_blocks

    # -- capabilities ---------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def has_fd(self) -> bool:
        """Whether the kernel holds the files: ``fileno`` and ``open_fd`` work."""

    @property
    @abc.abstractmethod
    def has_xattrs(self) -> bool:
        """Whether extended attributes were kept at all (an archive made without
        ``--xattrs`` has none to compare); when False, ``xattrs`` says {} of everything."""

    # Whether read_files may run in one thread while others read: the directory's native
    # batches share nothing; an archive's member stream, or a directory's cache of
    # directory fds (its reads without openat2), is one thread's at a time.
    reads_beside: bool = False

    # -- reading --------------------------------------------------------------------------

    @abc.abstractmethod
    def read(self, rel: str, limit: int = SMALL_LIMIT) -> bytes | None:
        """The bytes of a regular file, or None if absent. Larger than limit: EvidenceError."""

    def read_files(self, rels: list[str], limit: int = SMALL_LIMIT
                   ) -> list[bytes | None | EvidenceError]:
        """Many files at once: each one's bytes, None if absent, or the error reading it."""
        out: list[bytes | None | EvidenceError] = []
        for rel in rels:
            try:
                out.append(self.read(rel, limit))
            except EvidenceError as exc:
                out.append(exc)
        return out

    @abc.abstractmethod
    def listdir(self, rel: str) -> list[str] | None:
        """Names in a directory (unsorted), or None if absent."""

    @abc.abstractmethod
    def lstat(self, rel: str) -> Stat | None:
        """What lstat says of an entry (links not followed), or None if absent."""

    @abc.abstractmethod
    def readlink(self, rel: str) -> str | None:
        """A symbolic link's target, or None if rel is absent or not a link."""

    @abc.abstractmethod
    def walk(self, rel: str) -> Iterator[tuple[str, Stat]]:
        """Every entry below rel (rel itself first), paths relative to the root; no links followed."""

    def tree_usage(self, groups: list[list[str]]
                   ) -> list[tuple[TreeUsage, list[EvidenceError]]]:
        """For each group of paths, the inodes at and below them (each once, with how many
        of its links were found: the once-per-inode and hard-link rules of
        sources/usage.py) and what could not be read. Here from ``walk``; a backend with
        the kernel's files walks natively."""
        from ...treeusage import TreeUsage
        out = []
        for rels in groups:
            usage, problems = TreeUsage(), []
            for rel in rels:
                try:
                    for _, st in self.walk(rel):
                        usage.add(st.dev, st.ino, st.nlink, st.allocated, st.size, st.is_dir)
                except EvidenceError as exc:
                    problems.append(exc)
            out.append((usage, problems))
        return out

    @abc.abstractmethod
    def xattrs(self, rel: str) -> dict[str, bytes] | None:
        """Extended attributes of an entry of any type (links not followed), None if absent."""

    @abc.abstractmethod
    def content(self, rel: str) -> tuple[int, int, int]:
        """(fd, offset, length) of a regular file's bytes (length -1: to its end); the
        caller closes the fd. EvidenceError when there are none to give."""

    @abc.abstractmethod
    def hash_file(self, rel: str, sha: Sha256) -> tuple[int, int, dict[str, bytes]]:
        """Feed a regular file's whole content to sha: (CRC-64/GO-ISO, bytes read, xattrs).
        Raises EvidenceError when it cannot be read as a regular file."""

    @abc.abstractmethod
    def open_fd(self, rel: str) -> int:
        """A read-only fd of a regular file (the caller closes it). Needs ``has_fd``."""

    @abc.abstractmethod
    def fileno(self) -> int:
        """The fd of the root directory, for native walks below it (the root keeps it).
        Needs ``has_fd``."""

    # -- views and passes -----------------------------------------------------------------

    @abc.abstractmethod
    def subroot(self, rel: str) -> EvidenceRoot | None:
        """A root of its own at directory rel (None if absent), reached without links.

        It can be read from one thread while another reads another subroot.
        """

    def data_root_at(self, rel: str) -> EvidenceRoot | None:
        """The subroot at directory rel as a data root of its own, named as the analyst
        would name it with ``--data-root`` (None if absent)."""
        return self.subroot(rel)

    @abc.abstractmethod
    def spool(self, under: tuple[str, ...]) -> None:
        """Make the contents of every regular file below these directories readable
        with ``content`` (an archive streams once more; a directory has them already)."""

    @property
    def diagnostics(self) -> Sequence[Diagnostic]:
        """What the backend itself could not take in (an archive's members it skipped)."""
        return ()

    def close(self) -> None:
        pass

    def __enter__(self) -> EvidenceRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
