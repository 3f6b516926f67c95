"""``docker system df`` on the containerd image store, as dockerd 28.5 computes it.

Images are those ``image ls`` lists with no filters. Each counts its containers (those
whose ImageManifest is one of the image's platform manifests) and a SharedSize: the
usage of each of its layer snapshots (by chain ID) that another listed image also
has. The Images total is the usage of every snapshot of the namespace — image layers,
containers' init and read-write snapshots, BuildKit's — plus every present blob that
any image record reaches, each once. A layer is there twice, as its blob and as the
snapshot unpacked from it, in the total and in each image's Size; SharedSize counts
the snapshots only. So the CLI's RECLAIMABLE (the total less the unique size of each
image in use) is often negative, and Docker 28 prints it negative.

A container's SizeRw is the usage of the snapshot keyed by its ID (its read-write
layer, measured as the overlay snapshotter measures an active snapshot); SizeRootFs
adds the usage of the snapshots below it.

References: moby v28.5.2 daemon/disk_usage.go (SystemDiskUsage),
daemon/containerd/service.go (ImageDiskUsage, layerDiskUsage, GetContainerLayerSize),
image_list.go (Images with SharedSize, multiPlatformSummary, computeSharedSize),
image_snapshot.go (calculateSnapshotParentUsage); containerd plugins/snapshots/overlay
(Usage).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping

from ..ids import DiffID, chain_ids
from ..model import Store
from .containerdlisting import Catalog, SnapshotUsage, list_images, total_usage
from .diskusage import DiskUsage, container_usages, volume_usages
from .listing import ImageSummary


def image_disk_usage(catalog: Catalog, usage: SnapshotUsage) -> int:
    """ImageDiskUsage: every snapshot's usage, and every present blob reachable from an
    image record once (its descriptor size)."""
    blobs: dict[str, int] = {}
    for record in catalog.records:
        content = catalog.contents.get(record.target.digest)
        for digest, _, size in (content.present if content else ()):
            blobs.setdefault(digest, size)
    return sum(size or 0 for _, size in usage.values()) + sum(blobs.values())


def _with_users(catalog: Catalog, store: Store, usage: SnapshotUsage,
                summaries: list[ImageSummary]) -> list[ImageSummary]:
    """Containers and SharedSize of each listed image (Images with SharedSize)."""
    manifests = {s.id: catalog.contents[s.id].manifests if s.id in catalog.contents else ()
                 for s in summaries}
    chains = {image_id: [str(c) for _, diff_ids in found
                         for c in chain_ids(DiffID(d) for d in diff_ids)]
              for image_id, found in manifests.items()}
    users: dict[str, int] = {}
    for found in chains.values():
        for chain in found:
            users[chain] = users.get(chain, 0) + 1
    out = []
    for s in summaries:
        # computeSharedSize: a layer no snapshot was unpacked for counts nothing.
        shared = sum(usage[c][1] or 0 for c in chains[s.id] if users[c] > 1 and c in usage)
        containers = -1
        content = catalog.contents.get(s.id)
        if content is not None and content.config is not None:
            digests = {digest for digest, _ in manifests[s.id]}
            containers = sum(1 for c in store.containers.values()
                             if c.image_manifest in digests)
        out.append(dataclasses.replace(s, containers=containers, shared_size=shared))
    return out


def system_disk_usage(catalog: Catalog, store: Store, usage: SnapshotUsage,
                      volume_sizes: Mapping[str, int], now_ns: int) -> DiskUsage:
    """SystemDiskUsage of a containerd-store daemon.

    Args:
        catalog: the namespace's images and their content.
        store: Docker's side (containers, volumes, build cache).
        usage: every snapshot of the namespace, active ones measured (snapshot_usage
            with ``upper_bytes``).
        volume_sizes: by volume name (-1 unknown).
        now_ns: the daemon's now (unused by an unfiltered listing, but list_images takes it).
    """
    images = _with_users(catalog, store, usage, list_images(catalog, {}, False, now_ns))
    sizes = container_layer_sizes(store.containers, usage)
    containers = container_usages(store, {c: rw for c, (rw, _) in sizes.items()},
                                  lambda ctr, rw: sizes[ctr.id][1])
    return DiskUsage(image_disk_usage(catalog, usage), images, containers,
                     volume_usages(store, volume_sizes), store.build_cache)


def container_layer_sizes(container_ids: Iterable[str], usage: SnapshotUsage
                          ) -> dict[str, tuple[int, int]]:
    """GetContainerLayerSize of each container: (SizeRw, SizeRootFs). SizeRw is the
    usage of the snapshot keyed by the container's ID (-1: it has none, where dockerd
    fails the whole listing); SizeRootFs adds that of every snapshot below it."""
    out = {}
    for ctr_id in container_ids:
        found = usage.get(ctr_id)
        if found is None:
            out[ctr_id] = (-1, 0)
            continue
        parent, rw = found[0], found[1] or 0
        out[ctr_id] = (rw, rw + (total_usage(usage, parent)[0] if parent else 0))
    return out
