"""What removing containers and build cache records leaves to containerd's collector on
the containerd image store, as dockerd 28.5 removes them.

Neither is deleted directly: each holds its snapshots (and blobs) through leases, and
removing it deletes the leases; containerd's garbage collection (engines/containerdgc.py)
then removes whatever nothing else keeps.

- A container: moby creates its read-write snapshot (and ``<id>-init`` below it) under
  a lease whose ID is the container's; ``docker rm`` deletes that lease synchronously.
- A build cache record: BuildKit's cache manager keeps the record's snapshot under the
  lease ``<record ID>``, its compression variants under ``<record ID>-variants`` and a
  mounted view under the temporary ``<record ID>-view``; removing the record deletes
  them. A prune also cancels the leases BuildKit's image resolver keeps on the
  configs it read (temporary, with an expiry).

Pure: the metadata and the time come in; nothing is opened.

References: moby v28.5.2 daemon/delete.go (cleanupContainer: leases Delete with
SynchronousDelete), daemon/containerd/image_snapshot.go (PrepareSnapshot:
leases.WithID(id)); moby/buildkit v0.25 cache/refs.go (remove,
compressionVariantsLeaseID, viewLeaseID), control/control.go (Prune:
imageutil.CancelCacheLeases), util/imageutil/config.go (leases of 5 minutes).
"""
from __future__ import annotations

import dataclasses
from typing import Collection, Iterable, Mapping, Sequence

from ..containerdmodel import BackendSnapshot
from ..containerdmodel import Image as ImageRecord
from ..containerdmodel import MetaStore
from .containerdgc import GC_EXPIRE, Collection as Collected, collect

TEMPORARY_LEASE_LABEL = "buildkit/lease.temporary"
# cacheRecord's other leases: its compression variants, its view while mounted.
RECORD_LEASE_SUFFIXES = ("", "-variants", "-view")


def build_cache_leases(meta: MetaStore, namespace: str, record_ids: Iterable[str]
                       ) -> set[str]:
    """The leases a build cache prune deletes: the removed records' own, and the image
    resolver's temporary ones (CancelCacheLeases), removed records or not."""
    leases = {record_id + suffix for record_id in record_ids
              for suffix in RECORD_LEASE_SUFFIXES}
    leases |= {lease.id for lease in meta.leases if lease.namespace == namespace
               and TEMPORARY_LEASE_LABEL in lease.labels and GC_EXPIRE in lease.labels}
    return leases


def collect_after(meta: MetaStore, namespace: str, leases: Collection[str],
                  images: Sequence[ImageRecord] | None, now_ns: int, *,
                  blobs_present: Iterable[str],
                  backends: Mapping[str, Mapping[str, BackendSnapshot]]) -> Collected | None:
    """The collection once these leases of ``namespace`` are deleted and (when not None)
    the image records are ``images``; None when nothing was deleted (no collection runs).

    One collection stands for the several a run of prunes triggers: the roots only
    shrink from one to the next, so what each removes is unreachable in the last."""
    kept = tuple(lease for lease in meta.leases
                 if not (lease.namespace == namespace and lease.id in leases))
    if len(kept) == len(meta.leases) and (images is None or len(images) == len(meta.images)):
        return None
    after = dataclasses.replace(meta, leases=kept,
                                images=meta.images if images is None else tuple(images))
    return collect(after, now_ns, blobs_present=blobs_present, backends=backends)
