"""``docker system df``: what the daemon counts, from the model and measured sizes.

References: moby v20.10 daemon/disk_usage.go (SystemDiskUsage),
daemon/images/images.go (LayerDiskUsage, getLayerRefs, Images with extra attrs).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Mapping

from ..ids import ChainID
from ..model import BuildCacheRecord, Container, Store, Volume
from .listing import ImageSummary, list_images, shared_sizes


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    container: Container
    size_rw: int | None           # -1: the daemon could not measure it; None: not readable offline
    size_root_fs: int


@dataclass(frozen=True, slots=True)
class VolumeUsage:
    volume: Volume
    size: int
    ref_count: int


@dataclass(frozen=True, slots=True)
class DiskUsage:
    layers_size: int
    images: list[ImageSummary]
    containers: list[ContainerUsage]
    volumes: list[VolumeUsage]
    build_cache: tuple[BuildCacheRecord, ...]


def layer_refs(store: Store) -> dict[ChainID, int]:
    # moby: getLayerRefs — images that are untagged and have children are skipped.
    counts: dict[ChainID, int] = {}
    children = store.children
    for image in store.images.values():
        if not store.refs(image.id) and image.id in children:
            continue
        for layer in store.chain(image.top_layer):
            counts[layer.chain_id] = counts.get(layer.chain_id, 0) + 1
    return counts


def size_root_fs(store: Store, ctr: Container, size_rw: int | None) -> int:
    """moby GetContainerLayerSize: the image's layers plus the RW layer when measured."""
    image = store.images.get(ctr.image_id)
    return (store.image_size(image) if image else 0) + max(size_rw or 0, 0)


def system_disk_usage(store: Store, size_rw: Mapping[str, int | None],
                      volume_sizes: Mapping[str, int]) -> DiskUsage:
    """size_rw by container ID (-1 as the daemon's unknown, None where only a running
    daemon could measure it); volume_sizes by volume name (-1 unknown)."""
    refs = layer_refs(store)
    layers_size = sum(layer.diff_size for layer in store.layers.values() if layer.chain_id in refs)
    summaries = list_images(store, {}, False)
    shared = shared_sizes(store, [s.image for s in summaries])
    by_image = store.containers_by_image
    images = [dataclasses.replace(s, containers=len(by_image.get(s.id, ())),
                                  shared_size=shared[s.id]) for s in summaries]
    containers = container_usages(store, size_rw,
                                  lambda ctr, rw: size_root_fs(store, ctr, rw))
    return DiskUsage(layers_size, images, containers, volume_usages(store, volume_sizes),
                     store.build_cache)


def container_usages(store: Store, size_rw: Mapping[str, int | None],
                     root_fs: Callable[[Container, int | None], int]) -> list[ContainerUsage]:
    """Every container, newest first, with its SizeRw (-1 unknown) and SizeRootFs."""
    from ..goapi.time import parse_rfc3339_ns
    ctrs = sorted(store.containers.values(), key=lambda c: (-parse_rfc3339_ns(c.created), c.id))
    out = []
    for ctr in ctrs:
        rw = size_rw.get(ctr.id, -1)
        out.append(ContainerUsage(ctr, rw, root_fs(ctr, rw)))
    return out


def volume_usages(store: Store, volume_sizes: Mapping[str, int]) -> list[VolumeUsage]:
    """moby LocalVolumesSize: local volumes without options, each with the number of
    containers that mount it."""
    volumes = []
    for vol in store.volumes:
        if vol.driver != "local" or vol.options:
            continue                    # moby: LocalVolumesSize skips volumes with options
        refcount = sum(1 for c in store.containers.values()
                       for m in c.mounts if m.get("Name") == vol.name)
        volumes.append(VolumeUsage(vol, volume_sizes.get(vol.name, -1), refcount))
    return volumes
