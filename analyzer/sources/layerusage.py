"""Sizes the engines need, measured through the opener: per layer, container, volume.

References: moby daemon/images/image_unix.go (GetContainerLayerSize: SizeRw is the
driver's DiffSize of the RW layer), volume/service (LocalVolumesSize).
"""
from __future__ import annotations

from ..ids import ChainID, hex_part
from ..model import Image, Store
from ._root import EvidenceRoot
from .containerd import blob_path
from .overlay2 import diff_dir, layer_paths
from .usage import directory_size, inode_usage


def layer_allocated(root: EvidenceRoot, store: Store, image: Image) -> dict[ChainID, int]:
    """Allocated bytes of each layer of an image: its driver directory and layer store entry."""
    out: dict[ChainID, int] = {}
    for layer in store.chain(image.top_layer):
        paths = layer_paths(root, store.driver, layer.cache_id) + [layer.source]
        out[layer.chain_id] = inode_usage(root, paths).total_bytes()
    return out


def container_sizes(root: EvidenceRoot, store: Store) -> dict[str, int | None]:
    """SizeRw of each container: the apparent size of its RW layer's diff (-1 unknown).

    None on devicemapper: the RW layer is a filesystem inside a thin device.
    """
    out: dict[str, int | None] = {}
    for ctr in store.containers.values():
        if store.driver == "devicemapper":
            out[ctr.id] = None
            continue
        mount = store.mounts.get(ctr.id)
        if mount is None:
            out[ctr.id] = -1
            continue
        out[ctr.id] = directory_size(root, diff_dir(store.driver, mount.mount_id))
    return out


def volume_sizes(root: EvidenceRoot, store: Store) -> dict[str, int]:
    return {v.name: directory_size(root, f"volumes/{v.name}/_data") for v in store.volumes}


class RemovalMeter:
    """Measures, through the opener, the files the daemon removes with layers and images."""

    def __init__(self, root: EvidenceRoot, store: Store):
        self.root = root
        self.store = store
        self._paths: dict[ChainID, list[str]] = {}

    def layer_paths(self, chain_id: ChainID) -> list[str]:
        paths = self._paths.get(chain_id)
        if paths is None:
            layer = self.store.layers[chain_id]
            paths = self._paths[chain_id] = \
                layer_paths(self.root, self.store.driver, layer.cache_id) + [layer.source]
        return paths

    def image_paths(self, image_id: str) -> list[str]:
        hexid = hex_part(image_id)
        base = f"image/{self.store.driver}/imagedb"
        return [f"{base}/content/sha256/{hexid}", f"{base}/metadata/sha256/{hexid}"]

    def layer_bytes(self, chain_id: ChainID) -> int:
        return inode_usage(self.root, self.layer_paths(chain_id)).total_bytes()

    def freed_bytes(self, chain_ids, image_ids, blobs=()) -> int:
        """Allocated bytes that go with these layers, images and containerd blobs together."""
        paths = [p for c in chain_ids for p in self.layer_paths(c)]
        paths += [p for i in image_ids for p in self.image_paths(i)]
        paths += [blob_path(d) for d in blobs]
        return inode_usage(self.root, paths).freed_bytes()

    def repositories_delta(self, new_size: int) -> int:
        """Allocated bytes repositories.json loses when rewritten at new_size bytes."""
        st = self.root.lstat(f"image/{self.store.driver}/repositories.json")
        if st is None:
            return 0
        block = 4096
        return st.allocated - (new_size + block - 1) // block * block
