"""``docker system df``: what the daemon counts, from the model and measured sizes.

References: moby v20.10 daemon/disk_usage.go (SystemDiskUsage),
daemon/images/images.go (LayerDiskUsage, getLayerRefs, Images with extra attrs);
v28.5.2 daemon/images/image_list.go (Images: SharedSize over every image).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Mapping

from ..ids import ChainID
from ..model import BuildCacheRecord, Container, Store, Volume
from .containers import newest_first
from .daemonapi import API_20_10
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


def volume_ref_counts(store: Store) -> dict[str, int]:
    """The containers (in any state) that reference each volume by name: the volume
    store's references, taken by every container's mount points on restore."""
    counts: dict[str, int] = {}
    for ctr in store.containers.values():
        for mount in ctr.mounts:
            name = mount.get("Name")
            if name:
                counts[name] = counts.get(name, 0) + 1
    return counts


def is_plain_local(volume: Volume) -> bool:
    """A local volume created without options (not a tmpfs or NFS mount, say): what
    system df sizes and volume prune removes."""
    return volume.driver == "local" and not volume.options


def size_root_fs(store: Store, ctr: Container, size_rw: int | None) -> int:
    """moby GetContainerLayerSize: the image's layers plus the RW layer when measured."""
    image = store.images.get(ctr.image_id)
    return (store.image_size(image) if image else 0) + max(size_rw or 0, 0)


def system_disk_usage(store: Store, size_rw: Mapping[str, int | None],
                      volume_sizes: Mapping[str, int], api: str = API_20_10) -> DiskUsage:
    """size_rw by container ID (-1 as the daemon's unknown, None where only a running
    daemon could measure it); volume_sizes by volume name (-1 unknown); api: the
    daemon's API version (engines.daemonapi)."""
    refs = layer_refs(store)
    layers_size = sum(layer.diff_size for layer in store.layers.values() if layer.chain_id in refs)
    summaries = list_images(store, {}, False, api=api)
    shared = shared_sizes(store, [s.image for s in summaries], api)
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
    ctrs = newest_first(store.containers.values())
    out = []
    for ctr in ctrs:
        rw = size_rw.get(ctr.id, -1)
        out.append(ContainerUsage(ctr, rw, root_fs(ctr, rw)))
    return out


def volume_usages(store: Store, volume_sizes: Mapping[str, int]) -> list[VolumeUsage]:
    """moby LocalVolumesSize: local volumes without options, each with the number of
    containers that mount it."""
    volumes = []
    refs = volume_ref_counts(store)
    for vol in store.volumes:
        if not is_plain_local(vol):
            continue                    # moby: LocalVolumesSize skips volumes with options
        volumes.append(VolumeUsage(vol, volume_sizes.get(vol.name, -1), refs.get(vol.name, 0)))
    return volumes
