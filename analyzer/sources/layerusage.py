"""Sizes the engines need, measured through the opener: per layer, container, volume.

References: moby daemon/images/image_unix.go (GetContainerLayerSize: SizeRw is the
driver's DiffSize of the RW layer), volume/service (LocalVolumesSize).
"""
from __future__ import annotations

import posixpath
from typing import Iterable

from .. import treeusage
from ..ids import ChainID
from ..model import Container, Diagnostic, Mount, Store, Volume
from . import layout
from .drivers import layer_paths
from .evidence import EvidenceRoot
from .usage import damage, directory_sizes, naive_diff_size, overlay_diff_size


def container_sizes(root: EvidenceRoot, store: Store) -> dict[str, int | None]:
    """SizeRw of each container: the apparent size of its RW layer's diff (-1 unknown).

    None on devicemapper: the RW layer is a filesystem inside a thin device.
    """
    out: dict[str, int | None] = {}
    diffs: dict[str, str] = {}
    for ctr in store.containers.values():
        if store.driver == "devicemapper":
            out[ctr.id] = None
            continue
        mount = store.mounts.get(ctr.id)
        if mount is None:
            out[ctr.id] = -1
            continue
        if store.driver == "overlay":
            out[ctr.id] = _overlay_container_size(root, store, mount)
            continue
        rw = layout.diff_dir(store.driver, mount.mount_id)
        if store.driver == "vfs" and mount.init_id:
            # vfs keeps full copies: its DiffSize is the naive diff against the init layer.
            out[ctr.id] = naive_diff_size(root, rw, layout.diff_dir("vfs", mount.init_id))
        else:
            diffs[ctr.id] = rw
    sizes = directory_sizes(root, list(diffs.values()))
    out.update((ctr_id, sizes[rel]) for ctr_id, rel in diffs.items())
    return out


def _overlay_container_size(root: EvidenceRoot, store: Store, mount: Mount) -> int:
    """Legacy overlay's naive diff of the container's upper against its init layer's,
    both over the root of the image's top layer (-1 when a part is not known)."""
    image_top = store.layers.get(mount.parent) if mount.parent else None
    lowers = [layout.rw_dir("overlay", mount.init_id)] if mount.init_id else []
    if image_top is not None:
        lowers.append(layout.diff_dir("overlay", image_top.cache_id))
    return overlay_diff_size(root, layout.rw_dir("overlay", mount.mount_id), lowers)


def volume_sizes(root: EvidenceRoot, store: Store) -> dict[str, int]:
    rels = {v.name: layout.volume_data(v.name) for v in store.volumes}
    sizes = directory_sizes(root, list(rels.values()))
    return {name: sizes[rel] for name, rel in rels.items()}


class RemovalMeter:
    """Measures, through the opener, the files the daemon removes with layers and images.

    Each layer's trees are walked once, whether it is priced alone or with others, and
    all the layers asked for at once are walked in one batch.
    """

    def __init__(self, root: EvidenceRoot, store: Store):
        self.root = root
        self.store = store
        self._layers: dict[ChainID, "treeusage.TreeUsage"] = {}
        # What could not be measured, file by file; the rest still is.
        self.diagnostics: list[Diagnostic] = []

    def _measure(self, chain_ids: Iterable[ChainID]) -> None:
        todo = [c for c in dict.fromkeys(chain_ids) if c not in self._layers]
        if not todo:
            return
        layers = [self.store.layers[c] for c in todo]
        paths, unread = layer_paths(self.root, self.store.driver,
                                    [layer.cache_id for layer in layers])
        groups = [own + [layer.source] for own, layer in zip(paths, layers)]
        for chain_id, group in zip(todo, groups):
            self._linked_directories(chain_id, group)
        for chain_id, link_error, (usage, errors) in zip(todo, unread,
                                                          self.root.tree_usage(groups)):
            self._layers[chain_id] = usage
            self.diagnostics += damage([*link_error, *errors], "layer", chain_id)

    def _linked_directories(self, chain_id: ChainID, group: list[str]) -> None:
        """A layer's directory (the driver's, or its layer store entry) that is a symbolic
        link is counted as the link it is: where it points is not the layer's."""
        for path in group[:1] + group[-1:]:
            st = self.root.lstat(path)
            if st is not None and st.is_link:
                self.diagnostics.append(Diagnostic(
                    path, "is a symbolic link, where the layer's directory should be; "
                    "not followed", "layer", chain_id))

    def image_paths(self, image_id: str) -> list[str]:
        paths = layout.ImageRoot(self.store.driver)
        return [paths.image_config(image_id), paths.image_metadata(image_id)]

    def layer_bytes(self, chain_ids: Iterable[ChainID]) -> dict[ChainID, int]:
        """Allocated bytes of each layer's own files (each inode once)."""
        chain_ids = list(chain_ids)
        self._measure(chain_ids)
        return {c: self._layers[c].allocated_bytes() for c in chain_ids}

    def freed_bytes(self, chain_ids, image_ids, blobs=()) -> int:
        """Allocated bytes that go with these layers, images and containerd blobs together."""
        chain_ids = list(chain_ids)
        self._measure(chain_ids)
        paths = [p for i in image_ids for p in self.image_paths(i)]
        content = layout.ContainerdRoot()
        (usage, errors), = self.root.tree_usage([paths + [content.blob(d) for d in blobs]])
        self.diagnostics += damage(errors)
        return treeusage.freed_bytes([usage, *(self._layers[c] for c in chain_ids)])

    def removed_bytes(self, containers: Iterable[Container] = (),
                      volumes: Iterable[Volume] = (), chain_ids: Iterable[ChainID] = (),
                      graph_ids: Iterable[str] = ()) -> int:
        """Allocated bytes that go when these containers (their directory, their RW and
        init layers, their layer store entry), volumes, layers and graph-driver
        directories (BuildKit's snapshots) are removed together."""
        chain_ids = list(chain_ids)
        self._measure(chain_ids)
        paths = [layout.volume_dir(v.name) for v in volumes]
        ids = list(graph_ids)
        for ctr in containers:
            # The directory it was read from (its config's ID is not trusted as a path).
            paths.append(posixpath.dirname(ctr.source))
            mount = self.store.mounts.get(ctr.id)
            if mount is not None:
                paths.append(mount.source)
                ids += [mount.mount_id] + ([mount.init_id] if mount.init_id else [])
        own, unread = layer_paths(self.root, self.store.driver, ids)
        (usage, errors), = self.root.tree_usage([paths + [p for group in own for p in group]])
        self.diagnostics += damage([*(e for group in unread for e in group), *errors])
        return treeusage.freed_bytes([usage, *(self._layers[c] for c in chain_ids)])

    def repositories_delta(self, new_size: int) -> int:
        """Allocated bytes repositories.json loses when rewritten at new_size bytes."""
        st = self.root.lstat(layout.ImageRoot(self.store.driver).repositories_json)
        if st is None:
            return 0
        block = 4096
        return st.allocated - (new_size + block - 1) // block * block
