"""The content store of the containerd that dockerd runs: which blobs each image leases.

Since 20.10, a pull stores the image's manifest (and index) in containerd's content
store under a lease named ``moby-image-<image ID>``; when the image is deleted the
lease goes and containerd's garbage collector removes every blob no other lease
holds. Those blobs are part of what ``docker image rm`` frees on disk.

As a source (``KIND``, ``detect``, ``read``): a data root whose images are in the
containerd image store (Docker 29's default for new installs) is recognised, and not
read yet.

References: moby v20.10 daemon/images/image_pull.go and image_delete.go (the
``moby-image-`` leases), containerd metadata/leases.go and buckets.go (v1/<namespace>/
leases/<id>/content/<digest>), content/local/store.go (blobs/<alg>/<hex>).
"""
from __future__ import annotations

from typing import Mapping

from ..errors import EvidenceError, MalformedError
from ..model import Diagnostic, Store
from . import Detected, Roots, layout
from .evidence import JSON_LIMIT, EvidenceRoot
from .bbolt import BoltDB

KIND = "containerd"
META_DB = layout.ContainerdRoot().meta_db
IMAGE_LEASE_PREFIX = "moby-image-"


def detect(roots: Roots) -> Detected | None:
    """The image store of the containerd that dockerd runs, by its metadata or snapshots;
    else that of a system containerd given as an evidence root of its own (``format``
    is where the store lies in its root: ``containerd/daemon``, or "")."""
    root, paths = roots[layout.DATA_ROOT], layout.ContainerdRoot()
    if any(root.lstat(p) is not None for p in (paths.meta_db, paths.snapshotter("overlayfs"))):
        return Detected(KIND, paths.base)
    system = roots.get(layout.CONTAINERD_ROOT)
    if system is not None and system.lstat(layout.ContainerdRoot("").meta_db) is not None:
        return Detected(KIND, "")
    return None


def read(roots: Roots, found: Detected) -> Store:
    """Docker's side of the data root (containers, volumes); its images are answered from
    the containerd store itself (analyzer/containerdservice.py)."""
    from .graphdriver import read_docker_side
    containers, volumes, diagnostics = read_docker_side(roots[layout.DATA_ROOT])
    return Store(driver="overlayfs", images={}, layers={}, references=(),
                 containers=containers, volumes=volumes, diagnostics=tuple(diagnostics))


def read_leases(root: EvidenceRoot) -> tuple[Mapping[str, tuple[str, ...]], list[Diagnostic]]:
    """Every lease of every namespace (``namespace/lease``) with the content digests it holds."""
    try:
        data = root.read(META_DB, JSON_LIMIT)
    except EvidenceError as exc:
        return {}, [Diagnostic(exc.path, exc.reason)]
    if data is None:
        return {}, []
    try:
        v1 = BoltDB(data, META_DB).bucket(b"v1")
        leases: dict[str, tuple[str, ...]] = {}
        for namespace, ns_bucket in (v1.buckets() if v1 is not None else ()):
            lease_bucket = ns_bucket.bucket(b"leases")
            for lease, bucket in (lease_bucket.buckets() if lease_bucket is not None else ()):
                content = bucket.bucket(b"content")
                digests = tuple(k.decode() for k in content) if content is not None else ()
                leases[f"{namespace.decode()}/{lease.decode()}"] = digests
    except MalformedError as exc:
        return {}, [Diagnostic(exc.path, exc.reason)]
    return leases, []
