"""What ``docker image rm`` frees on the containerd image store, and what keeps the rest.

The rm plan removes image records (and may add ``moby-dangling@`` ones); dockerd
deletes synchronously, so containerd collects at once: the blobs and snapshots the
collection deletes (engines/containerdgc.py) are what the command frees, priced as
``du`` sees them go (each blob file, each snapshot's whole directory). The blobs and
snapshots of the deleted images that stay are listed with the root that keeps them.
Pure: measurements come in as functions.

References: moby v28.5.2 daemon/containerd/image_delete.go (images.Delete with
SynchronousDelete), containerd core/metadata/db.go GarbageCollect.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from ..containerdmodel import BackendSnapshot, MetaStore
from .containerdgc import Collection, Holder, Node, Resource, collect, label_refs
from .containerdprune import PrunePlan
from .containerdrmi import Plan

NAMESPACE = "moby"


@dataclass(frozen=True, slots=True)
class Held:
    """A blob (digest) or snapshot (key) of a deleted image that stays."""
    id: str
    bytes: int
    held_by: tuple[Holder, ...]


@dataclass(frozen=True, slots=True)
class Reclaim:
    untagged: tuple[str, ...]
    deleted_images: tuple[str, ...]
    deleted_blobs: tuple[tuple[str, int], ...]          # (digest, bytes)
    deleted_snapshots: tuple[tuple[str, int], ...]      # (snapshotter/key, bytes)
    held_blobs: tuple[Held, ...]
    held_snapshots: tuple[Held, ...]
    bytes_freed: int
    errors: tuple[str, ...]


def after(meta: MetaStore, plan: Plan, namespace: str = NAMESPACE) -> MetaStore:
    """The metadata once the plan's record changes are made."""
    kept = [i for i in meta.images if i.namespace != namespace]
    return dataclasses.replace(meta, images=tuple(kept + plan.state.images))


def _reachable(meta: MetaStore, image_ids: Iterable[str], namespace: str) -> set[Node]:
    """Blobs and snapshots the given images' targets lead to (their labels followed)."""
    blobs = {b.digest: b for b in meta.blobs if b.namespace == namespace}
    snaps = {f"{s.snapshotter}/{s.key}": s for s in meta.snapshots if s.namespace == namespace}
    todo = [Node(Resource.CONTENT, namespace, d) for d in image_ids]
    seen: set[Node] = set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.type == Resource.CONTENT and node.key in blobs:
            todo.extend(label_refs(namespace, blobs[node.key].labels))
        elif node.type == Resource.SNAPSHOT and node.key in snaps:
            snap = snaps[node.key]
            if snap.parent:
                todo.append(Node(Resource.SNAPSHOT, namespace, f"{snap.snapshotter}/{snap.parent}"))
    return seen


def reclaim(meta: MetaStore, plan: Plan, now_ns: int, *, blobs_present: Iterable[str],
            backends: Mapping[str, Mapping[str, BackendSnapshot]],
            blob_bytes: Callable[[str], int], snapshot_bytes: Callable[[str, int], int],
            freed_bytes: Callable[[Sequence[str], Sequence[tuple[str, int]]], int],
            namespace: str = NAMESPACE) -> Reclaim:
    """Price a plan.

    Args:
        blob_bytes: allocated bytes of one blob file (by digest).
        snapshot_bytes: allocated bytes of one snapshot's directory (snapshotter, id).
        freed_bytes: allocated bytes that go when these blobs and snapshots (snapshotter,
            id) go together, each inode once.
    """
    present = set(blobs_present)
    result: Collection = collect(after(meta, plan, namespace), now_ns, blobs_present=present,
                                 backends=backends)
    deleted_blobs = tuple((d, blob_bytes(d)) for d in result.deleted_blobs)
    gone_snapshots: list[tuple[str, int]] = []
    deleted_snapshots = []
    for snapshotter, keys in result.deleted_snapshots.items():
        for key in keys:
            ident = backends[snapshotter][key].id
            gone_snapshots.append((snapshotter, ident))
            deleted_snapshots.append((f"{snapshotter}/{key}", snapshot_bytes(snapshotter, ident)))
    touched = _reachable(meta, plan.state.deleted_images, namespace)
    held_blobs = tuple(Held(n.key, blob_bytes(n.key), (result.marked[n],))
                       for n in sorted(touched, key=lambda n: n.key)
                       if n.type == Resource.CONTENT and n in result.marked and n.key in present)
    by_key = {(s.namespace, f"{s.snapshotter}/{s.key}"): s for s in meta.snapshots}
    held_snapshots = []
    for n in sorted(touched, key=lambda n: n.key):
        snap = by_key.get((n.namespace, n.key))
        if n.type != Resource.SNAPSHOT or n not in result.marked or snap is None:
            continue
        backend = backends.get(snap.snapshotter, {}).get(snap.name)
        size = snapshot_bytes(snap.snapshotter, backend.id) if backend is not None else 0
        held_snapshots.append(Held(n.key, size, (result.marked[n],)))
    return Reclaim(
        untagged=tuple(r.value for r in plan.records if r.kind == "Untagged"),
        deleted_images=tuple(plan.state.deleted_images),
        deleted_blobs=deleted_blobs, deleted_snapshots=tuple(deleted_snapshots),
        held_blobs=held_blobs, held_snapshots=tuple(held_snapshots),
        bytes_freed=freed_bytes(result.deleted_blobs, gone_snapshots),
        errors=tuple(o.message for o in plan.errors))


def price_prune(plan: PrunePlan, backends: Mapping[str, Mapping[str, BackendSnapshot]], *,
                blob_bytes: Callable[[str], int], snapshot_bytes: Callable[[str, int], int],
                freed_bytes: Callable[[Sequence[str], Sequence[tuple[str, int]]], int]
                ) -> Reclaim:
    """A prune's collections priced: what every deletion it makes frees, together."""
    return price_deletions(
        tuple(line.value for line in plan.lines if line.kind == "Untagged"),
        plan.deleted_images, plan.deleted_blobs, plan.deleted_snapshots, backends,
        blob_bytes=blob_bytes, snapshot_bytes=snapshot_bytes, freed_bytes=freed_bytes)


def price_deletions(untagged: tuple[str, ...], deleted_images: tuple[str, ...],
                    blobs: Sequence[str], snapshots: Mapping[str, Sequence[str]],
                    backends: Mapping[str, Mapping[str, BackendSnapshot]], *,
                    blob_bytes: Callable[[str], int], snapshot_bytes: Callable[[str, int], int],
                    freed_bytes: Callable[[Sequence[str], Sequence[tuple[str, int]]], int]
                    ) -> Reclaim:
    """Collections priced: the blobs and (snapshotter -> keys) snapshots they delete."""
    found = [(snapshotter, key, backends[snapshotter][key].id)
             for snapshotter, keys in snapshots.items() for key in keys]
    return Reclaim(
        untagged=untagged, deleted_images=deleted_images,
        deleted_blobs=tuple((d, blob_bytes(d)) for d in blobs),
        deleted_snapshots=tuple((f"{s}/{k}", snapshot_bytes(s, i)) for s, k, i in found),
        held_blobs=(), held_snapshots=(),
        bytes_freed=freed_bytes(blobs, [(s, i) for s, _, i in found]),
        errors=())
