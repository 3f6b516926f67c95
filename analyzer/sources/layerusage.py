"""Sizes the engines need, measured through the opener: per layer, container, volume.

References: moby daemon/images/image_unix.go (GetContainerLayerSize: SizeRw is the
driver's DiffSize of the RW layer), volume/service (LocalVolumesSize).
"""
from __future__ import annotations

from ..ids import ChainID
from ..model import Diagnostic, Store
from . import layout
from .drivers import layer_paths
from .evidence import EvidenceRoot
from .usage import InodeUsage, directory_size, inode_usage, naive_diff_size


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
        rw = layout.diff_dir(store.driver, mount.mount_id)
        if store.driver == "vfs" and mount.init_id:
            # vfs keeps full copies: its DiffSize is the naive diff against the init layer.
            out[ctr.id] = naive_diff_size(root, rw, layout.diff_dir("vfs", mount.init_id))
        else:
            out[ctr.id] = directory_size(root, rw)
    return out


def volume_sizes(root: EvidenceRoot, store: Store) -> dict[str, int]:
    return {v.name: directory_size(root, layout.volume_data(v.name)) for v in store.volumes}


class RemovalMeter:
    """Measures, through the opener, the files the daemon removes with layers and images."""

    def __init__(self, root: EvidenceRoot, store: Store):
        self.root = root
        self.store = store
        # Each layer's tree is walked once, whether it is priced alone or with others.
        self._layers: dict[ChainID, InodeUsage] = {}
        # What could not be measured, file by file; the rest still is.
        self.diagnostics: list[Diagnostic] = []

    def _layer(self, chain_id: ChainID) -> InodeUsage:
        usage = self._layers.get(chain_id)
        if usage is None:
            layer = self.store.layers[chain_id]
            paths = layer_paths(self.root, self.store.driver, layer.cache_id,
                                self.diagnostics) + [layer.source]
            for path in paths[:1] + paths[-1:]:
                st = self.root.lstat(path)
                if st is not None and st.is_link:
                    # Counted as the link it is; where it points is not the layer's.
                    self.diagnostics.append(Diagnostic(
                        path, "is a symbolic link, where the layer's directory should be; "
                        "not followed", "layer", chain_id))
            usage = self._layers[chain_id] = inode_usage(self.root, paths)
        return usage

    def image_paths(self, image_id: str) -> list[str]:
        paths = layout.ImageRoot(self.store.driver)
        return [paths.image_config(image_id), paths.image_metadata(image_id)]

    def layer_bytes(self, chain_id: ChainID) -> int:
        return self._layer(chain_id).total_bytes()

    def freed_bytes(self, chain_ids, image_ids, blobs=()) -> int:
        """Allocated bytes that go with these layers, images and containerd blobs together."""
        paths = [p for i in image_ids for p in self.image_paths(i)]
        content = layout.ContainerdRoot()
        usage = inode_usage(self.root, paths + [content.blob(d) for d in blobs])
        for chain_id in chain_ids:
            usage.merge(self._layer(chain_id))
        return usage.freed_bytes()

    def repositories_delta(self, new_size: int) -> int:
        """Allocated bytes repositories.json loses when rewritten at new_size bytes."""
        st = self.root.lstat(layout.ImageRoot(self.store.driver).repositories_json)
        if st is None:
            return 0
        block = 4096
        return st.allocated - (new_size + block - 1) // block * block
