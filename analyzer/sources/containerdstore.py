"""The containerd image store under a data root: its metadata, each snapshotter's own
database, which blob files the content store holds, and what removing them frees.

Layout (dockerd-managed containerd, rooted at ``<data-root>/containerd/daemon``):
``io.containerd.metadata.v1.bolt/meta.db``, ``io.containerd.content.v1.content/blobs/
<alg>/<hex>``, ``io.containerd.snapshotter.v1.<name>/{metadata.db,snapshots/<id>}``.

References: containerd plugins/content/local/store.go (blobPath), plugins/snapshots/
overlay/overlay.go (upperPath: snapshots/<id>/fs), core/metadata/db.go.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

from ..containerdmodel import BackendSnapshot, Descriptor, ImageContent, MetaStore
from ..errors import EvidenceError, MalformedError
from ..ids import CacheID, ChainID, ContainerID, DiffID, ImageID, chain_id_from_parent, digest_of
from ..model import Container, Diagnostic, Layer
from . import layout
from .containerdcontent import read_image_content
from .imagearchive import file_bytes, read_chunks
from .ocispec import LAYER_COMPRESSION
from .ocispec import Descriptor as OciDescriptor
from .ocispec import parse_index, parse_manifest
from ..treeusage import freed_bytes
from .containerdmeta import parse_meta_db, parse_snapshotter_db
from .evidence import JSON_LIMIT, EvidenceRoot
from .graphdriver import read_containers
from .usage import damage

# A bbolt file is read whole; containerd's grows to tens of MB on busy hosts.
DB_LIMIT = 4 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class ContainerdStore:
    """One containerd root (``base``, relative to the evidence root) as read."""
    base: str
    meta: MetaStore
    backends: Mapping[str, Mapping[str, BackendSnapshot]]   # snapshotter -> key -> snapshot
    blobs: frozenset[str]                                    # digests with a blob file
    containers: Mapping[ContainerID, Container]              # Docker's, from containers/
    diagnostics: tuple[Diagnostic, ...] = field(default=())

    def blob_path(self, digest: str) -> str:
        return layout.ContainerdRoot(self.base).blob(digest)

    def snapshot_path(self, snapshotter: str, ident: int) -> str:
        return layout.ContainerdRoot(self.base).snapshot(snapshotter, ident)


def read_db(root: EvidenceRoot, rel: str) -> bytes | None:
    """A bbolt file's bytes (None when absent); EvidenceError when unreadable."""
    return root.read(rel, DB_LIMIT)


def _read_db(root: EvidenceRoot, rel: str, diags: list[Diagnostic]) -> bytes | None:
    try:
        return read_db(root, rel)
    except EvidenceError as exc:
        diags.append(Diagnostic(exc.path, exc.reason))
        return None


def read_containerd_store(root: EvidenceRoot, base: str = layout.CONTAINERD_DAEMON,
                          docker_root: EvidenceRoot | None = None,
                          containers: Mapping[ContainerID, Container] | None = None
                          ) -> ContainerdStore:
    """Read the store at ``base`` of ``root``; Docker's containers from ``docker_root``
    (the data root; by default the same root, as when dockerd runs its containerd),
    unless the caller read them already (``containers``: their damage told there).

    Raises:
        EvidenceError: meta.db is missing or unreadable as a whole (nothing can be
            answered without it). Damage inside it, in a snapshotter's database or in
            the content store is a diagnostic.
    """
    diags: list[Diagnostic] = []
    paths = layout.ContainerdRoot(base)
    rel = paths.meta_db
    data = _read_db(root, rel, diags)
    if data is None:
        raise EvidenceError(rel, diags[0].message if diags else "no containerd metadata")
    meta = parse_meta_db(data, rel)
    diags.extend(meta.diagnostics)
    backends: dict[str, dict[str, BackendSnapshot]] = {}
    for snapshotter in sorted({s.snapshotter for s in meta.snapshots}):
        db_rel = paths.snapshotter_db(snapshotter)
        db = _read_db(root, db_rel, diags)
        if db is None:
            diags.append(Diagnostic(db_rel, "missing: its snapshots cannot be sized"))
            continue
        try:
            backends[snapshotter], more = parse_snapshotter_db(db, db_rel)
        except MalformedError as exc:
            diags.append(Diagnostic(exc.path, exc.reason))
            continue
        diags.extend(more)
    blobs = set()
    for algorithm in root.listdir(paths.blobs) or ():
        for name in root.listdir(f"{paths.blobs}/{algorithm}") or ():
            blobs.add(f"{algorithm}:{name}")
    for digest in sorted({b.digest for b in meta.blobs} - blobs):
        diags.append(Diagnostic(paths.blob(digest), "missing: the metadata has a record of it"))
    if containers is None:
        containers, more = read_containers(docker_root or root)
        diags.extend(more)
    return ContainerdStore(base, meta, backends, frozenset(blobs), containers, tuple(diags))


def read_contents(root: EvidenceRoot, store: ContainerdStore,
                  namespace: str = "moby") -> tuple[dict[str, ImageContent], list[Diagnostic]]:
    """Each image target of ``namespace`` walked through the content store."""
    diags: list[Diagnostic] = []

    def read_blob(digest: str) -> bytes | None:
        try:
            return root.read(store.blob_path(digest), JSON_LIMIT)
        except EvidenceError as exc:
            diags.append(Diagnostic(exc.path, exc.reason))
            return None

    out: dict[str, ImageContent] = {}
    for image in store.meta.images_of(namespace):
        target = image.target
        if target.digest not in out:
            desc = {"mediaType": target.media_type, "digest": target.digest, "size": target.size}
            out[target.digest] = read_image_content(desc, store.blobs, read_blob, diags,
                                                    store.blob_path(target.digest))
    return out, diags


class ContainerdMeter:
    """Allocated bytes of blob files and snapshot directories, as ``du`` sees them go."""

    def __init__(self, root: EvidenceRoot, store: ContainerdStore):
        self.root = root
        self.store = store
        # What could not be read; a caller says so, since the bytes may then be short.
        self.diagnostics: list[Diagnostic] = []

    def _usage(self, paths: list[str]):
        (usage, errors), = self.root.tree_usage([paths])
        self.diagnostics += damage(errors)
        return usage

    def blob_bytes(self, digest: str) -> int:
        return self._usage([self.store.blob_path(digest)]).allocated_bytes()

    def snapshot_bytes(self, snapshotter: str, ident: int) -> int:
        return self._usage([self.store.snapshot_path(snapshotter, ident)]).allocated_bytes()

    def upper_bytes(self, snapshotter: str, ident: int) -> int:
        """What the overlay snapshotter's Usage says of an active snapshot: its upper
        directory's allocated bytes, each inode once (continuity fs.DiskUsage)."""
        path = layout.ContainerdRoot(self.store.base).snapshot_upper(snapshotter, ident)
        return self._usage([path]).allocated_bytes()

    def freed_bytes(self, blobs: Sequence[str], snapshots: Sequence[tuple[str, int]]) -> int:
        paths = [self.store.blob_path(d) for d in blobs]
        paths += [self.store.snapshot_path(s, i) for s, i in snapshots]
        return freed_bytes([self._usage(paths)])


class ContentFiles:
    """What verify reads of the content store (engines/blobverify.ArchiveFilesLike) for
    images of one namespace: each target's index and host manifest blob checked against
    its descriptor as it is read, the config's bytes, and the layer blobs streamed.

    ``layers`` is the layer model verify walks: one entry per chain ID of each host
    config's diff IDs, its "cache ID" the path of the blob the manifest names for it.
    """

    def __init__(self, root: EvidenceRoot, store: ContainerdStore,
                 targets: Mapping[str, Descriptor], contents: Mapping[str, ImageContent]):
        self._root = root
        self._store = store
        self.layers: dict[ChainID, Layer] = {}
        self._manifest_ok: dict[str, bool] = {}
        self._problems: dict[str, list[str]] = {}
        self._configs: dict[str, tuple[str, bytes | None]] = {}
        self._image_layers: dict[str, list[str]] = {}
        self._descriptors: dict[str, OciDescriptor] = {}
        for digest, target in targets.items():
            content = contents.get(digest)
            if content is not None:
                self._read_image(target, content)

    def _blob(self, desc: Descriptor | OciDescriptor, problems: list[str]) -> bytes | None:
        """A small blob's bytes, when they are what its descriptor says."""
        path = self._store.blob_path(desc.digest)
        try:
            data = self._root.read(path, JSON_LIMIT) if desc.digest in self._store.blobs \
                else None
        except EvidenceError as exc:
            problems.append(f"{desc.digest}: {exc.reason}")
            return None
        if data is None:
            problems.append(f"{desc.digest}: blob is missing")
            return None
        got = digest_of(data)
        if got != desc.digest:
            problems.append(f"blob digest want={desc.digest} got={got}")
        if len(data) != desc.size:
            problems.append(f"{desc.digest}: size want={desc.size} got={len(data)}")
        return data

    def _read_image(self, target: Descriptor, content: ImageContent) -> None:
        problems = self._problems.setdefault(target.digest, [])
        before = len(problems)
        data = self._blob(target, problems)
        manifest = target
        if data is not None and content.manifest not in (None, target.digest):
            try:
                index = parse_index(data, self._store.blob_path(target.digest))
                manifest = next(d for d in index.manifests if d.digest == content.manifest)
            except (MalformedError, StopIteration):
                problems.append(f"{target.digest}: not the index the store read")
                manifest = None
            data = self._blob(manifest, problems) if manifest is not None else None
        self._manifest_ok[target.digest] = len(problems) == before
        if data is None or content.config_digest is None:
            return
        try:
            parsed = parse_manifest(data, self._store.blob_path(manifest.digest))
        except MalformedError as exc:
            problems.append(exc.reason)
            self._manifest_ok[target.digest] = False
            return
        config = parsed.config
        try:
            config_bytes = self._root.read(self._store.blob_path(config.digest), JSON_LIMIT) \
                if config.digest in self._store.blobs else None
        except EvidenceError as exc:
            problems.append(f"{config.digest}: {exc.reason}")
            config_bytes = None
        self._configs[target.digest] = (config.digest, config_bytes)
        paths = []
        parent: ChainID | None = None
        diff_ids = ((content.config or {}).get("rootfs") or {}).get("diff_ids") or ()
        for diff_id, desc in zip(diff_ids, parsed.layers):
            path = self._store.blob_path(desc.digest)
            chain = chain_id_from_parent(parent, DiffID(diff_id))
            self.layers.setdefault(chain, Layer(chain, DiffID(diff_id), parent, CacheID(path),
                                                desc.size, path))
            self._descriptors[path] = desc
            paths.append(path)
            parent = chain
        self._image_layers[target.digest] = paths

    def problems(self, image_id: str) -> tuple[str, ...]:
        return tuple(self._problems.get(image_id, ()))

    def config_digest(self, image_id: str) -> str | None:
        return self._configs.get(image_id, (None, None))[0]

    def config(self, image_id: ImageID) -> bytes | None:
        return self._configs.get(image_id, (None, None))[1]

    def manifest_ok(self, image_id: ImageID) -> bool | None:
        return self._manifest_ok.get(image_id, False)

    def layer_blobs(self, image_id: ImageID) -> list[str]:
        return self._image_layers.get(image_id, [])

    def descriptor(self, layer: Layer) -> tuple[str | None, int | None, str | None, str | None]:
        desc = self._descriptors.get(layer.cache_id)
        if desc is None:
            return None, None, None, None
        return desc.digest, desc.size, desc.media_type, LAYER_COMPRESSION.get(desc.media_type)

    def chunks(self, path: str) -> Iterator[bytes]:
        return read_chunks(self._root, path)

    def blob_bytes(self, path: str) -> int:
        return file_bytes(self._root, path)
