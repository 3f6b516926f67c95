"""Sizes the engines need, measured through the opener: per layer, container, volume.

References: moby daemon/images/image_unix.go (GetContainerLayerSize: SizeRw is the
driver's DiffSize of the RW layer), volume/service (LocalVolumesSize).
"""
from __future__ import annotations

from ..ids import ChainID
from ..model import Image, Store
from ._root import EvidenceRoot
from .overlay2 import diff_dir, layer_paths
from .usage import directory_size, inode_usage


def layer_allocated(root: EvidenceRoot, store: Store, image: Image) -> dict[ChainID, int]:
    """Allocated bytes of each layer of an image: its driver directory and layer store entry."""
    out: dict[ChainID, int] = {}
    for layer in store.chain(image.top_layer):
        paths = layer_paths(root, store.driver, layer.cache_id) + [layer.source]
        out[layer.chain_id] = inode_usage(root, paths).total_bytes()
    return out


def container_sizes(root: EvidenceRoot, store: Store) -> dict[str, int]:
    """SizeRw of each container: the apparent size of its RW layer's diff (-1 unknown)."""
    out: dict[str, int] = {}
    for ctr in store.containers.values():
        mount = store.mounts.get(ctr.id)
        if mount is None:
            out[ctr.id] = -1
            continue
        out[ctr.id] = directory_size(root, diff_dir(store.driver, mount.mount_id))
    return out


def volume_sizes(root: EvidenceRoot, store: Store) -> dict[str, int]:
    return {v.name: directory_size(root, f"volumes/{v.name}/_data") for v in store.volumes}
