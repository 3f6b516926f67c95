"""What a path or an ID in the evidence belongs to: the layers, images (with their
tags) and containers, for ``analyze owner``.

An ID is looked for among every kind the store knows — image ID, chain ID, diff ID,
cache ID, a container's ID, mount ID and init layer's ID, a volume's name — in full,
with or without ``sha256:``, or as a unique prefix of 12 characters or more. A
devicemapper thin device's ID (a decimal number: never 12 characters, the kernel's
are 24-bit) is looked up in Docker's device metadata, whose hash is a cache, mount or
init ID; a device only the pool's metadata holds is an orphan. What is
found is then widened the way ownership runs: a layer belongs to every image whose
chain holds it and to every container built on those; a container's RW layer to the
container alone; an image to its containers; a volume to the containers mounting it.

References: moby layer/layer_store.go (chains, mounts), daemon/images (references),
daemon/graphdriver/devmapper/deviceset.go (devInfo, loadMetadata).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from typing import Collection

from ..ids import ChainID, ImageID
from ..model import DeviceSet, Store

MIN_PREFIX = 12
# A graph-driver directory is named by a layer's cache ID or a container's mount IDs.
_ALSO = {"cache_id": {"cache_id", "mount_id", "init_id"}}


@dataclass
class Owners:
    """What an ID or a path belongs to, each with how it was matched."""
    matched: list[tuple[str, str]] = field(default_factory=list)   # (kind, full ID)
    layers: set[ChainID] = field(default_factory=set)
    images: set[ImageID] = field(default_factory=set)
    containers: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.matched)


def _same(value: str, full: str, prefix: bool) -> bool:
    bare = full.removeprefix("sha256:")
    return value in (full, bare) or (prefix and len(value) >= MIN_PREFIX
                                     and bare.startswith(value))


def find_owners(store: Store, kind: str | None, ident: str) -> Owners:
    """Owners of an ID of the given kind (``chain_id``, ``cache_id``, ``image_id``,
    ``container_id``, ``volume``: read from a path, matched whole), or of any kind
    (None: as the analyst typed it, a unique-enough prefix too)."""
    value = ident.removeprefix("sha256:")
    prefix = kind is None
    found = Owners()

    def want(k: str) -> bool:
        return kind is None or k in _ALSO.get(kind, {kind})

    for layer in store.layers.values():
        for k, full in (("chain_id", layer.chain_id), ("diff_id", layer.diff_id),
                        ("cache_id", layer.cache_id)):
            if want(k) and full and _same(value, full, prefix):
                found.matched.append((k, full))
                found.layers.add(layer.chain_id)
    for image in store.images.values():
        if want("image_id") and _same(value, image.id, prefix):
            found.matched.append(("image_id", image.id))
            found.images.add(image.id)
    for ctr_id, mount in store.mounts.items():
        for k, full in (("container_id", ctr_id), ("mount_id", mount.mount_id),
                        ("init_id", mount.init_id or "")):
            if want(k) and full and _same(value, full, prefix):
                found.matched.append((k, full))
                found.containers.add(ctr_id)
    for ctr_id in store.containers:
        if want("container_id") and ctr_id not in found.containers \
                and _same(value, ctr_id, prefix):
            found.matched.append(("container_id", ctr_id))
            found.containers.add(ctr_id)
    for volume in store.volumes:
        if want("volume") and value == volume.name:
            found.matched.append(("volume", volume.name))
            found.volumes.add(volume.name)
    _widen(store, found)
    return found


def find_device_owners(store: Store, device_set: DeviceSet, pool_devices: Collection[int],
                       device_id: int) -> Owners:
    """Owners of a devicemapper thin device: through the hash Docker's metadata gives
    it (the base device's, "", is no layer's); a device of the pool that no metadata
    names is an orphan, and belongs to nothing."""
    info = next((d for d in device_set.devices.values() if d.device_id == device_id), None)
    if info is None:
        found = Owners()
        if device_id in pool_devices:
            found.matched.append(("orphan_device_id", str(device_id)))
        return found
    found = find_owners(store, "cache_id", info.hash) if info.hash else Owners()
    kind = "deleted_device_id" if info.deleted else "device_id"
    found.matched[:0] = [(kind, str(device_id)), ("device_hash", info.hash or "base")]
    return found


def _widen(store: Store, found: Owners) -> None:
    for image in store.images.values():
        if any(layer.chain_id in found.layers for layer in store.chain(image.top_layer)):
            found.images.add(image.id)
    for ctr in store.containers.values():
        if ctr.image_id in found.images:
            found.containers.add(ctr.id)
        if any(m.get("Name") in found.volumes for m in ctr.mounts):
            found.containers.add(ctr.id)
