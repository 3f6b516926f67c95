"""The containerd image store under a data root: its metadata, each snapshotter's own
database, which blob files the content store holds, and what removing them frees.

Layout (dockerd-managed containerd, rooted at ``<data-root>/containerd/daemon``):
``io.containerd.metadata.v1.bolt/meta.db``, ``io.containerd.content.v1.content/blobs/
<alg>/<hex>``, ``io.containerd.snapshotter.v1.<name>/{metadata.db,snapshots/<id>}``.

References: containerd plugins/content/local/store.go (blobPath), plugins/snapshots/
overlay/overlay.go (upperPath: snapshots/<id>/fs), core/metadata/db.go.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..containerdmodel import BackendSnapshot, ImageContent, MetaStore
from ..errors import EvidenceError, MalformedError
from ..ids import ContainerID
from ..model import Container, Diagnostic
from . import layout
from .containerdcontent import read_image_content
from ..treeusage import freed_bytes
from .containerdmeta import parse_meta_db, parse_snapshotter_db
from .evidence import JSON_LIMIT, EvidenceRoot
from .graphdriver import read_containers
from .usage import damage

# A bbolt file is read whole; containerd's grows to tens of MB on busy hosts.
DB_LIMIT = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class ContainerdStore:
    """One containerd root (``base``, relative to the evidence root) as read."""
    base: str
    meta: MetaStore
    backends: Mapping[str, Mapping[str, BackendSnapshot]]   # snapshotter -> key -> snapshot
    blobs: frozenset[str]                                    # digests with a blob file
    containers: Mapping[ContainerID, Container]              # Docker's, from containers/
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    def blob_path(self, digest: str) -> str:
        return layout.ContainerdRoot(self.base).blob(digest)

    def snapshot_path(self, snapshotter: str, ident: int) -> str:
        return layout.ContainerdRoot(self.base).snapshot(snapshotter, ident)


def has_store(root: EvidenceRoot, base: str = layout.CONTAINERD_DAEMON) -> bool:
    return root.lstat(layout.ContainerdRoot(base).meta_db) is not None


def sibling_root(data_root: str) -> str:
    """Where a host keeps the system containerd's root beside Docker's data root
    (``/var/lib/docker`` → ``/var/lib/containerd``)."""
    return os.path.join(os.path.dirname(os.path.abspath(data_root.rstrip("/"))), "containerd")


def read_db(root: EvidenceRoot, rel: str) -> bytes | None:
    """A bbolt file's bytes (None when absent); EvidenceError when unreadable."""
    return root.read(rel, DB_LIMIT)


def _read_db(root: EvidenceRoot, rel: str, diags: list[Diagnostic]) -> bytes | None:
    try:
        return read_db(root, rel)
    except EvidenceError as exc:
        diags.append(Diagnostic(exc.path, exc.reason))
        return None


def read_containerd_store(root: EvidenceRoot, base: str = layout.CONTAINERD_DAEMON,
                          docker_root: EvidenceRoot | None = None) -> ContainerdStore:
    """Read the store at ``base`` of ``root``; Docker's containers from ``docker_root``
    (the data root; by default the same root, as when dockerd runs its containerd).

    Raises:
        EvidenceError: meta.db is missing or unreadable as a whole (nothing can be
            answered without it). Damage inside it, in a snapshotter's database or in
            the content store is a diagnostic.
    """
    diags: list[Diagnostic] = []
    paths = layout.ContainerdRoot(base)
    rel = paths.meta_db
    data = _read_db(root, rel, diags)
    if data is None:
        raise EvidenceError(rel, diags[0].message if diags else "no containerd metadata")
    meta = parse_meta_db(data, rel)
    diags.extend(meta.diagnostics)
    backends: dict[str, dict[str, BackendSnapshot]] = {}
    for snapshotter in sorted({s.snapshotter for s in meta.snapshots}):
        db_rel = paths.snapshotter_db(snapshotter)
        db = _read_db(root, db_rel, diags)
        if db is None:
            diags.append(Diagnostic(db_rel, "missing: its snapshots cannot be sized"))
            continue
        try:
            backends[snapshotter], more = parse_snapshotter_db(db, db_rel)
        except MalformedError as exc:
            diags.append(Diagnostic(exc.path, exc.reason))
            continue
        diags.extend(more)
    blobs = set()
    for algorithm in root.listdir(paths.blobs) or ():
        for name in root.listdir(f"{paths.blobs}/{algorithm}") or ():
            blobs.add(f"{algorithm}:{name}")
    for digest in sorted({b.digest for b in meta.blobs} - blobs):
        diags.append(Diagnostic(paths.blob(digest), "missing: the metadata has a record of it"))
    containers, more = read_containers(docker_root or root)
    diags.extend(more)
    return ContainerdStore(base, meta, backends, frozenset(blobs), containers, tuple(diags))


def read_contents(root: EvidenceRoot, store: ContainerdStore,
                  namespace: str = "moby") -> tuple[dict[str, ImageContent], list[Diagnostic]]:
    """Each image target of ``namespace`` walked through the content store."""
    diags: list[Diagnostic] = []

    def read_blob(digest: str) -> bytes | None:
        try:
            return root.read(store.blob_path(digest), JSON_LIMIT)
        except EvidenceError as exc:
            diags.append(Diagnostic(exc.path, exc.reason))
            return None

    out: dict[str, ImageContent] = {}
    for image in store.meta.images_of(namespace):
        target = image.target
        if target.digest not in out:
            desc = {"mediaType": target.media_type, "digest": target.digest, "size": target.size}
            out[target.digest] = read_image_content(desc, store.blobs, read_blob, diags,
                                                    store.blob_path(target.digest))
    return out, diags


class ContainerdMeter:
    """Allocated bytes of blob files and snapshot directories, as ``du`` sees them go."""

    def __init__(self, root: EvidenceRoot, store: ContainerdStore):
        self.root = root
        self.store = store
        # What could not be read; a caller says so, since the bytes may then be short.
        self.diagnostics: list[Diagnostic] = []

    def _usage(self, paths: list[str]):
        (usage, errors), = self.root.tree_usage([paths])
        self.diagnostics += damage(errors)
        return usage

    def blob_bytes(self, digest: str) -> int:
        return self._usage([self.store.blob_path(digest)]).allocated_bytes()

    def snapshot_bytes(self, snapshotter: str, ident: int) -> int:
        return self._usage([self.store.snapshot_path(snapshotter, ident)]).allocated_bytes()

    def upper_bytes(self, snapshotter: str, ident: int) -> int:
        """What the overlay snapshotter's Usage says of an active snapshot: its upper
        directory's allocated bytes, each inode once (continuity fs.DiskUsage)."""
        path = layout.ContainerdRoot(self.store.base).snapshot_upper(snapshotter, ident)
        return self._usage([path]).allocated_bytes()

    def freed_bytes(self, blobs: Sequence[str], snapshots: Sequence[tuple[str, int]]) -> int:
        paths = [self.store.blob_path(d) for d in blobs]
        paths += [self.store.snapshot_path(s, i) for s, i in snapshots]
        return freed_bytes([self._usage(paths)])
