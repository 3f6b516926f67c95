"""What a removal really frees: the rmi plan priced in bytes on disk.

The planner says which images go and which layers are released; this module
adds up the allocated bytes the daemon's removals would free — each layer's
driver directory, its ``l/`` link and its layer store entry, each image's
config and metadata — counting every inode once and a hard-linked file only
when all its links go, as ``du`` sees it. Pure: the measurements come in.

References: moby layer/layer_store.go (deleteLayer), daemon/graphdriver/overlay2
(Remove), image/store.go (Delete), reference/store.go (save).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from ..goapi.json import marshal
from ..ids import ChainID, ImageID
from ..model import Reference, Store
from .rmi import Holder, Plan


@dataclass(frozen=True, slots=True)
class LayerBytes:
    chain_id: ChainID
    diff_id: str
    cache_id: str
    bytes: int                    # allocated bytes of this layer's files alone


@dataclass(frozen=True, slots=True)
class HeldLayer:
    chain_id: ChainID
    bytes: int
    held_by: tuple[Holder, ...]


@dataclass(frozen=True, slots=True)
class Reclaim:
    untagged: tuple[str, ...]
    deleted_images: tuple[ImageID, ...]
    deleted_layers: tuple[LayerBytes, ...]
    held_layers: tuple[HeldLayer, ...]
    bytes_freed: int
    build_cache_bytes: int        # held by the build cache alone: `docker builder prune` frees them
    errors: tuple[str, ...]
    estimate: bool                # measured from an archive: sizes, not allocation


def repositories_json_size(references: Iterable[Reference]) -> int:
    """Bytes of repositories.json as refStore.save writes it (json.Marshal, keys sorted)."""
    repos: dict[str, dict[str, str]] = {}
    for ref in references:
        repos.setdefault(ref.name, {})[ref.familiar] = ref.image_id
    return len(marshal({"Repositories": repos}).encode())


def content_freed(leases: Mapping[str, Sequence[str]], deleted_images: Sequence[ImageID]
                  ) -> list[str]:
    """Blobs containerd's GC removes once the deleted images' ``moby-image-`` leases go:
    those no surviving lease holds (moby v20.10 image_delete.go releases the lease)."""
    gone = {f"moby/moby-image-{image_id}" for image_id in deleted_images}
    kept = {d for lease, digests in leases.items() if lease not in gone for d in digests}
    return sorted({d for lease in gone for d in leases.get(lease, ()) if d not in kept})


def price(store: Store, plan: Plan, *,
          layer_bytes: Callable[[Sequence[ChainID]], Mapping[ChainID, int]],
          freed_bytes: Callable[[Sequence[ChainID], Sequence[ImageID], Sequence[str]], int],
          leases: Mapping[str, Sequence[str]], repositories_delta: int,
          estimate: bool) -> Reclaim:
    """Put bytes on a plan.

    Args:
        layer_bytes: allocated bytes of each of these layers' own files (asked once,
            for every layer of the answer: they are measured together).
        freed_bytes: allocated bytes that go when these layers, images and
            containerd blobs go together (inodes counted once, hard links only
            with all their links).
        leases: containerd's leases and the blobs each holds.
        repositories_delta: bytes repositories.json loses when rewritten.
    """
    released = plan.released_layers
    sizes = layer_bytes([*released, *plan.held_layers])
    deleted = tuple(LayerBytes(c, store.layers[c].diff_id, store.layers[c].cache_id,
                               sizes[c]) for c in released)
    # Images and containers first: they say best why a layer stays.
    order = {"image": 0, "container": 1, "mount": 2, "layer": 3, "build-cache": 4}
    held = tuple(HeldLayer(c, sizes[c], tuple(sorted(holders, key=lambda h: order.get(h.kind, 9))))
                 for c, holders in plan.held_layers.items())
    blobs = content_freed(leases, plan.deleted_images)
    total = freed_bytes(released, plan.deleted_images, blobs) + repositories_delta
    return Reclaim(
        untagged=tuple(r.value for r in plan.records if r.kind == "Untagged"),
        deleted_images=plan.deleted_images, deleted_layers=deleted, held_layers=held,
        bytes_freed=max(total, 0),
        build_cache_bytes=sum(h.bytes for h in held
                              if all(k.kind == "build-cache" for k in h.held_by)),
        errors=tuple(o.message for o in plan.errors),
        estimate=estimate)
