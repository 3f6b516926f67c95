"""containerd's metadata as plain immutable data: what its meta.db and a snapshotter's
metadata.db say, in containerd's own words (namespace, image, content, lease,
snapshot, container, ingest, sandbox).

Docker 29 keeps its images here (namespace ``moby``): an image is a name pointing at
a target descriptor (a manifest or an index, whose digest is Docker's image ID); what
it needs is found by following garbage-collection labels from object to object.
Times are Unix nanoseconds (None when the record has none).

References: containerd core/metadata/buckets.go (the schema), core/images/image.go
(Image), core/content/content.go (Info), core/leases/lease.go (Lease),
core/snapshots/snapshotter.go (Info, Kind, Usage), core/containers/containers.go.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from .model import Diagnostic

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI descriptor: what an image name points at."""
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class Image:
    """One image record of a namespace: a name and its target."""
    namespace: str
    name: str
    target: Descriptor
    labels: Labels
    annotations: Labels
    created_ns: int | None
    updated_ns: int | None


@dataclass(frozen=True, slots=True)
class Blob:
    """A namespace's content record (content/blob/<digest>); the bytes are shared by
    every namespace that has a record of the same digest."""
    namespace: str
    digest: str
    size: int
    labels: Labels
    created_ns: int | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A namespace's snapshot record (snapshots/<snapshotter>/<key>). ``name`` is the
    key the snapshotter itself knows it by (``<namespace>/<n>/<key>``)."""
    namespace: str
    snapshotter: str
    key: str
    name: str
    parent: str | None
    labels: Labels
    created_ns: int | None


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease: the resources it keeps, and labels (``containerd.io/gc.expire``,
    ``containerd.io/gc.flat``) that say for how long and how deep."""
    namespace: str
    id: str
    labels: Labels
    created_ns: int | None
    content: tuple[str, ...]
    snapshots: tuple[tuple[str, str], ...]      # (snapshotter, key)
    ingests: tuple[str, ...]
    images: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Container:
    """A containerd container record (Docker creates one per running container)."""
    namespace: str
    id: str
    image: str
    snapshotter: str
    snapshot_key: str
    labels: Labels
    created_ns: int | None


@dataclass(frozen=True, slots=True)
class Ingest:
    """An unfinished write into the content store."""
    namespace: str
    ref: str
    expected: str
    expire_ns: int | None


@dataclass(frozen=True, slots=True)
class Sandbox:
    namespace: str
    id: str
    labels: Labels


@dataclass(frozen=True, slots=True)
class Namespace:
    name: str
    labels: Labels


@dataclass(frozen=True, slots=True)
class MetaStore:
    """Everything a meta.db holds, every namespace."""
    namespaces: tuple[Namespace, ...]
    images: tuple[Image, ...]
    blobs: tuple[Blob, ...]
    snapshots: tuple[Snapshot, ...]
    leases: tuple[Lease, ...]
    containers: tuple[Container, ...]
    ingests: tuple[Ingest, ...]
    sandboxes: tuple[Sandbox, ...]
    schema_version: int | None = None
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    def images_of(self, namespace: str) -> tuple[Image, ...]:
        return tuple(i for i in self.images if i.namespace == namespace)

    def blob(self, namespace: str, digest: str) -> Blob | None:
        return next((b for b in self.blobs if b.namespace == namespace and b.digest == digest),
                    None)


class Kind(enum.IntEnum):
    """core/snapshots/snapshotter.go Kind."""
    UNKNOWN = 0
    VIEW = 1
    ACTIVE = 2
    COMMITTED = 3


@dataclass(frozen=True, slots=True)
class BackendSnapshot:
    """A snapshot as the snapshotter stores it (core/snapshots/storage/bolt.go): its
    directory is ``snapshots/<id>``; ``size`` and ``inodes`` were measured at Commit."""
    key: str
    id: int
    kind: Kind
    parent: str | None
    labels: Labels
    size: int | None
    inodes: int | None
    created_ns: int | None


@dataclass(frozen=True, slots=True)
class ImageContent:
    """What the content store holds for one image target (a manifest or an index):
    the manifest chosen for this host's platform and its config, parsed.

    ``content_size`` is moby's PresentContentSize summed over every manifest the
    target reaches: the descriptor sizes of the present blobs (target included).
    ``manifests`` are the platform manifests' digests with their configs' diff IDs.
    ``descriptor_size`` is what inspect reports (image_inspect.go size): descriptor sizes
    of the target, the host manifest, its config and layers, present or not.
    """
    target: str
    manifest: str | None                 # the host platform's manifest digest
    config_digest: str | None
    config: Mapping | None               # parsed; None when absent or unreadable
    content_size: int
    manifests: tuple[tuple[str, tuple[str, ...]], ...] = ()
    descriptor_size: int = 0
    # walkPresentChildren from the target: (digest, media type, size) of each present blob.
    present: tuple[tuple[str, str, int], ...] = ()
    # The layer digests of each manifest read (BuildKit's imagerefchecker keys).
    layer_lists: tuple[tuple[str, ...], ...] = ()
