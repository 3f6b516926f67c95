"""containerd's garbage collector, replayed on a MetaStore: what a collection would delete.

containerd 2.1 collects in two steps. First a tri-colour mark over the metadata of
every namespace (core/metadata/gc.go): the roots are unexpired leases (and all they
hold), images without an expired ``containerd.io/gc.expire``, ingests not yet expired,
blobs and snapshots labelled ``containerd.io/gc.root``, containers (their snapshot and
labels) and sandboxes (their labels). References are followed from

- a blob's labels: ``containerd.io/gc.ref.content[.name|/name]``,
  ``containerd.io/gc.ref.snapshot.<snapshotter>[/name]``, ``containerd.io/gc.ref.image``;
- a snapshot's parent, and its labels (not for a ``gc.flat`` lease's snapshots);
- an image's target blob, and its labels (a flat lease keeps only the target);
- an ingest's expected blob.

Every metadata record the mark did not reach is deleted (leases, snapshots, ingests,
blobs, images). Then each store cleans its backend (db.go GarbageCollect): the content
store deletes every blob file no namespace has a record of any more (content is shared
between namespaces), and the snapshotter removes each snapshot no namespace's record
names, children first, keeping any that still has a child (metadata/snapshot.go
garbageCollect, pruneBranch). Each cleanup runs only when its kind lost a record.

Pure: the model and the time come in; nothing is opened.

References: containerd v2.1.9 core/metadata/gc.go (scanRoots, references, scanAll,
sendLabelRefs, isRootRef, isExpiredImage), pkg/gc/gc.go (Tricolor), core/metadata/db.go
(GarbageCollect), content.go and snapshot.go (garbageCollect, walkTree, pruneBranch).
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping, NamedTuple

from ..containerdmodel import BackendSnapshot, Labels, MetaStore
from ..goapi.time import ParseError, parse


class Resource(enum.IntEnum):
    """gc.go ResourceType; a flat reference sets bit 0x20 (``resource*Flat``)."""
    CONTENT = 1
    SNAPSHOT = 2
    CONTAINER = 3
    TASK = 4
    IMAGE = 5
    LEASE = 6
    INGEST = 7


FLAT = 0x20
RESOURCE_MAX = 0x1F            # pkg/gc ResourceMax: the bits above are stripped on marking

GC_ROOT = "containerd.io/gc.root"
GC_EXPIRE = "containerd.io/gc.expire"
GC_FLAT = "containerd.io/gc.flat"
REF_CONTENT = "containerd.io/gc.ref.content"
REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."
REF_IMAGE = "containerd.io/gc.ref.image"
RFC3339 = "2006-01-02T15:04:05Z07:00"


_HOLDER_ORDER = {"image": 0, "container": 1, "lease": 2, "namespace": 3, "sandbox": 4,
                 "ingest": 5}


class Node(NamedTuple):
    """gc.Node: a resource of one namespace. Snapshot keys are ``<snapshotter>/<key>``."""
    type: int
    namespace: str
    key: str


@dataclass(frozen=True, slots=True)
class Holder:
    """What keeps an object alive: the root the mark reached it from (DESIGN's kinds:
    image, lease, container, namespace — a gc.root label or a sandbox —, ingest)."""
    kind: str
    id: str
    namespace: str


@dataclass(frozen=True, slots=True)
class Collection:
    """The outcome of one collection."""
    marked: Mapping[Node, Holder]               # live resources, each with one holder
    removed: frozenset[Node]                    # metadata records deleted
    deleted_blobs: tuple[str, ...]              # content store files deleted (digests)
    deleted_snapshots: dict[str, tuple[str, ...]]   # snapshotter -> backend keys deleted
    blob_holders: Mapping[str, tuple[Holder, ...]]  # digest -> who keeps the file


def parse_rfc3339(value: str) -> int | None:
    """Unix nanoseconds of Go's time.Parse(time.RFC3339, v); None when it fails (gc.go then
    ignores the label)."""
    try:
        return parse(RFC3339, value, 0)
    except ParseError:
        return None


def _expired(labels: Labels, now_ns: int) -> bool:
    """A parseable gc.expire earlier than now (an unparseable one is ignored, as gc.go logs)."""
    value = labels.get(GC_EXPIRE)
    if value is None:
        return False
    when = parse_rfc3339(value)
    return when is not None and now_ns > when


def label_refs(namespace: str, labels: Labels) -> Iterator[Node]:
    """sendLabelRefs: the references a labels bucket makes, in key order."""
    for key in sorted(labels):
        value = labels[key]
        if key.startswith(REF_SNAPSHOT):
            snapshotter = key[len(REF_SNAPSHOT):].split("/", 1)[0]
            yield Node(Resource.SNAPSHOT, namespace, f"{snapshotter}/{value}")
            continue
        for prefix, kind in ((REF_CONTENT, Resource.CONTENT), (REF_IMAGE, Resource.IMAGE)):
            if key == prefix or (key.startswith(prefix) and key[len(prefix)] in "./"):
                yield Node(kind, namespace, value)


class _Index:
    def __init__(self, meta: MetaStore):
        self.meta = meta
        self.images = {(i.namespace, i.name): i for i in meta.images}
        self.blobs = {(b.namespace, b.digest): b for b in meta.blobs}
        self.snapshots = {(s.namespace, f"{s.snapshotter}/{s.key}"): s for s in meta.snapshots}
        self.ingests = {(i.namespace, i.ref): i for i in meta.ingests}


def roots(meta: MetaStore, now_ns: int) -> Iterator[tuple[Node, Holder]]:
    """scanRoots: every root node with what makes it one."""
    for ns in sorted({n.name for n in meta.namespaces}):
        for lease in sorted((l for l in meta.leases if l.namespace == ns), key=lambda l: l.id):
            if _expired(lease.labels, now_ns):
                continue
            flat = FLAT if GC_FLAT in lease.labels else 0
            holder = Holder("lease", lease.id, ns)
            yield Node(Resource.LEASE, ns, lease.id), holder
            for digest in lease.content:
                yield Node(Resource.CONTENT | flat, ns, digest), holder
            for snapshotter, key in lease.snapshots:
                yield Node(Resource.SNAPSHOT | flat, ns, f"{snapshotter}/{key}"), holder
            for ref in lease.ingests:
                yield Node(Resource.INGEST, ns, ref), holder
            for name in lease.images:
                yield Node(Resource.IMAGE | flat, ns, name), holder
        for image in meta.images:
            if image.namespace == ns and not _expired(image.labels, now_ns):
                yield Node(Resource.IMAGE, ns, image.name), Holder("image", image.name, ns)
        for ingest in meta.ingests:
            # An ingest is a root only while it has an expiry that has not passed.
            if ingest.namespace == ns and ingest.expire_ns is not None \
                    and not now_ns > ingest.expire_ns:
                yield Node(Resource.INGEST, ns, ingest.ref), Holder("ingest", ingest.ref, ns)
        for blob in meta.blobs:
            if blob.namespace == ns and GC_ROOT in blob.labels:
                yield Node(Resource.CONTENT, ns, blob.digest), Holder("namespace", ns, ns)
        for ctr in meta.containers:
            if ctr.namespace != ns:
                continue
            holder = Holder("container", ctr.id, ns)
            if ctr.snapshotter:
                yield Node(Resource.SNAPSHOT, ns, f"{ctr.snapshotter}/{ctr.snapshot_key}"), holder
            for node in label_refs(ns, ctr.labels):
                yield node, holder
        for snap in meta.snapshots:
            if snap.namespace == ns and GC_ROOT in snap.labels:
                yield (Node(Resource.SNAPSHOT, ns, f"{snap.snapshotter}/{snap.key}"),
                       Holder("namespace", ns, ns))
        for sandbox in meta.sandboxes:
            if sandbox.namespace == ns:
                for node in label_refs(ns, sandbox.labels):
                    yield node, Holder("sandbox", sandbox.id, ns)


def references(index: _Index, node: Node) -> Iterator[Node]:
    """gc.go references: the nodes one node keeps alive."""
    kind, flat = node.type & ~FLAT, node.type & FLAT
    ns = node.namespace
    if node.type == Resource.CONTENT:
        blob = index.blobs.get((ns, node.key))
        if blob is not None:
            yield from label_refs(ns, blob.labels)
    elif kind == Resource.SNAPSHOT:
        snap = index.snapshots.get((ns, node.key))
        if snap is None:
            return                       # a dead edge
        if snap.parent:
            yield Node(node.type, ns, f"{snap.snapshotter}/{snap.parent}")
        if not flat:
            yield from label_refs(ns, snap.labels)
    elif kind == Resource.IMAGE:
        image = index.images.get((ns, node.key))
        if image is None:
            return
        yield Node(Resource.CONTENT | flat, ns, image.target.digest)
        if not flat:
            yield from label_refs(ns, image.labels)
    elif node.type == Resource.INGEST:
        ingest = index.ingests.get((ns, node.key))
        if ingest is not None and ingest.expected:
            yield Node(Resource.CONTENT, ns, ingest.expected)


def mark(meta: MetaStore, now_ns: int) -> dict[Node, Holder]:
    """pkg/gc Tricolor from the roots: each reachable node (flat bit stripped) with the
    root it was first reached from."""
    index = _Index(meta)
    seen: set[Node] = set()
    reachable: dict[Node, Holder] = {}
    grays: list[tuple[Node, Holder]] = []
    # The order of the walk changes only who is named as holder, never what is
    # reachable: images and containers first, as they say best why something stays.
    for node, holder in sorted(roots(meta, now_ns), key=lambda r: _HOLDER_ORDER[r[1].kind]):
        if node not in seen:
            seen.add(node)
            grays.append((node, holder))
    grays.reverse()                      # the first root found is walked first
    while grays:
        node, holder = grays.pop()
        for target in references(index, node):
            if target not in seen:
                seen.add(target)
                grays.append((target, holder))
        stripped = Node(node.type & RESOURCE_MAX, node.namespace, node.key)
        reachable.setdefault(stripped, holder)
    return reachable


def _all_records(meta: MetaStore) -> Iterator[Node]:
    """scanAll: every record the collector may delete."""
    for lease in meta.leases:
        yield Node(Resource.LEASE, lease.namespace, lease.id)
    for snap in meta.snapshots:
        yield Node(Resource.SNAPSHOT, snap.namespace, f"{snap.snapshotter}/{snap.key}")
    for ingest in meta.ingests:
        yield Node(Resource.INGEST, ingest.namespace, ingest.ref)
    for blob in meta.blobs:
        yield Node(Resource.CONTENT, blob.namespace, blob.digest)
    for image in meta.images:
        yield Node(Resource.IMAGE, image.namespace, image.name)


def prune_snapshots(backend: Mapping[str, BackendSnapshot], seen: Iterable[str]) -> list[str]:
    """metadata/snapshot.go walkTree + pruneBranch: the backend snapshots removed, children
    first. One is removed when no namespace names it and it has no child left; a
    snapshot whose chain does not reach a root (a missing parent, a cycle) is not
    walked, so never removed."""
    keep = set(seen)
    children: dict[str | None, list[str]] = {}
    for key, snap in backend.items():
        parent = snap.parent if snap.parent else None
        children.setdefault(parent, []).append(key)
    removed: list[str] = []

    def prune(key: str) -> bool:
        # Iterative post-order: snapshot chains can be deep.
        stack: list[tuple[str, bool]] = [(key, False)]
        gone: dict[str, bool] = {}
        while stack:
            k, expanded = stack.pop()
            kids = children.get(k, [])
            if not expanded:
                stack.append((k, True))
                stack.extend((c, False) for c in kids if c not in gone)
                continue
            gone[k] = k not in keep and all(gone.get(c, False) for c in kids)
            if gone[k]:
                removed.append(k)
        return gone[key]

    for root_key in children.get(None, []):
        prune(root_key)
    return removed


def collect(meta: MetaStore, now_ns: int, *, blobs_present: Iterable[str],
            backends: Mapping[str, Mapping[str, BackendSnapshot]]) -> Collection:
    """One garbage collection of ``meta`` at ``now_ns``.

    Args:
        blobs_present: digests whose file is in the content store.
        backends: each snapshotter's own snapshots, by key.
    """
    marked = mark(meta, now_ns)
    removed = frozenset(n for n in _all_records(meta) if n not in marked)
    kept_blobs = {b.digest for b in meta.blobs if Node(Resource.CONTENT, b.namespace, b.digest)
                  not in removed}
    # An ingest's expected blob is kept for it even if its own namespace lost the record.
    kept_blobs |= {i.expected for i in meta.ingests if i.expected and
                   Node(Resource.INGEST, i.namespace, i.ref) not in removed}
    content_dirty = any(n.type in (Resource.CONTENT, Resource.INGEST) for n in removed)
    deleted_blobs = tuple(sorted(d for d in blobs_present if d not in kept_blobs)) \
        if content_dirty else ()
    deleted_snapshots: dict[str, tuple[str, ...]] = {}
    dirty = {n.key.split("/", 1)[0] for n in removed if n.type == Resource.SNAPSHOT}
    for snapshotter in sorted(dirty):
        seen = {s.name for s in meta.snapshots if s.snapshotter == snapshotter and s.name
                and Node(Resource.SNAPSHOT, s.namespace, f"{snapshotter}/{s.key}") not in removed}
        deleted_snapshots[snapshotter] = tuple(prune_snapshots(backends.get(snapshotter, {}),
                                                               seen))
    holders: dict[str, list[Holder]] = {}
    for node, holder in marked.items():
        if node.type == Resource.CONTENT and holder not in holders.get(node.key, []):
            holders.setdefault(node.key, []).append(holder)
    return Collection(marked, removed, deleted_blobs, deleted_snapshots,
                      {d: tuple(h) for d, h in holders.items()})


def without_removed(meta: MetaStore, result: Collection) -> MetaStore:
    """The metadata once a collection's record deletions are committed."""
    gone = result.removed

    def keep(kind: Resource, namespace: str, key: str) -> bool:
        return Node(kind, namespace, key) not in gone
    return dataclasses.replace(
        meta,
        images=tuple(i for i in meta.images if keep(Resource.IMAGE, i.namespace, i.name)),
        blobs=tuple(b for b in meta.blobs if keep(Resource.CONTENT, b.namespace, b.digest)),
        snapshots=tuple(s for s in meta.snapshots
                        if keep(Resource.SNAPSHOT, s.namespace, f"{s.snapshotter}/{s.key}")),
        leases=tuple(l for l in meta.leases if keep(Resource.LEASE, l.namespace, l.id)),
        ingests=tuple(i for i in meta.ingests if keep(Resource.INGEST, i.namespace, i.ref)))
