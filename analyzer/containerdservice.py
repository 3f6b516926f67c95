"""The containerd image store answered as dockerd 28.5 answers it: one store opened once,
images, history, inspect, rm and reclaim asked of it.

The I/O is here and in sources/; every rule is in engines/ (containerd*.py).
"""
from __future__ import annotations

import dataclasses
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Collection, Iterable, Mapping, Sequence

from .containerdmodel import Image as Record
from .containerdmodel import ImageContent, Kind, MetaStore
from .engines.containerdhistory import image_history
from .engines.containerdinspect import Inspected, inspect
from .engines.containerddiskusage import container_layer_sizes, system_disk_usage
from .engines.containerdlisting import (Catalog, SnapshotUsage, list_images, snapshot_usage,
                                        unpacked_size)
from .engines.diskusage import DiskUsage
from .engines.containerdprune import PrunePlan, plan_prune
from .engines.containerdreclaim import Reclaim, price_deletions, price_prune, reclaim
from .engines.containerdremoval import build_cache_leases, collect_after
from .engines.containerdrmi import Plan, State, is_dangling, plan_rmi, resolve_all_references
from .engines.containerdverify import (UNCOMPRESSED_LABEL, content_bytes, verify_content,
                                      with_unverifiable)
from .engines.verify import Progress, VerifyReport
from .engines.history import HistoryItem
from .engines.listing import ImageSummary
from .errors import EvidenceError, InvalidReference
from .ids import ContainerID, ImageID
from .model import Container, Diagnostic, Image, Layer, Reference, Store
from .reference import parse_normalized_named
from .sources import layout
from .sources.buildkit import BuildCache, image_layer_keys, read_containerd_build_cache
from .sources.containerdstore import (ContainerdMeter, ContainerdStore, ContentFiles, read_db,
                                      read_containerd_store, read_contents)
from .sources.evidence import EvidenceRoot, open_root
from .sources.layerfiles import SnapshotFiles

NAMESPACE = "moby"
SNAPSHOTTER = "overlayfs"


@dataclass
class ContainerdImages:
    """Docker's view of a containerd store: namespace ``moby``, snapshotter overlayfs.

    ``root`` holds the store at ``base``; ``docker_root`` is Docker's data root (its
    containers), the same root unless the store is a system containerd's.
    """
    root: EvidenceRoot
    base: str = layout.CONTAINERD_DAEMON
    namespace: str = NAMESPACE
    docker_root: EvidenceRoot | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Docker's containers when the caller has read them (ImageService: Docker's side of
    # the data root), so they are not read and warned of twice.
    containers: Mapping[ContainerID, Container] | None = None

    @cached_property
    def store(self) -> ContainerdStore:
        store = read_containerd_store(self.root, self.base, self.docker_root, self.containers)
        self.diagnostics.extend(store.diagnostics)
        return store

    @cached_property
    def records(self) -> tuple[Record, ...]:
        return tuple(sorted(self.store.meta.images_of(self.namespace),
                            key=lambda r: r.name.encode()))

    @cached_property
    def contents(self) -> Mapping[str, ImageContent]:
        contents, diags = read_contents(self.root, self.store, self.namespace)
        self.diagnostics.extend(diags)
        return contents

    @cached_property
    def _usage(self) -> SnapshotUsage:
        """Chain ID (the namespace's snapshot key) -> parent key and committed size."""
        return snapshot_usage(self.store.meta, self.store.backends, self.namespace, SNAPSHOTTER)

    @cached_property
    def _backend_keys(self) -> Mapping[str, str]:
        return {s.key: s.name for s in self.store.meta.snapshots
                if s.namespace == self.namespace and s.snapshotter == SNAPSHOTTER}

    def snapshot_dirs(self, key: str) -> tuple[list[str], list[Diagnostic]]:
        """The ``fs`` directories of a snapshot of the namespace and of its parents, top
        first (as the overlayfs snapshotter stacks them), and where the chain breaks."""
        metas = {s.key: s for s in self.store.meta.snapshots
                 if s.namespace == self.namespace and s.snapshotter == SNAPSHOTTER}
        backends = self.store.backends.get(SNAPSHOTTER, {})
        dirs: list[str] = []
        problems: list[Diagnostic] = []
        seen: set[str] = set()
        while key and key not in seen:
            seen.add(key)
            meta = metas.get(key)
            backend = backends.get(meta.name) if meta is not None else None
            if backend is None:
                problems.append(Diagnostic(layout.ContainerdRoot(self.base).snapshotter_db(
                    SNAPSHOTTER), f"snapshot {key} is not in the store; the files of the "
                    "snapshots found are shown", "snapshot", key))
                break
            dirs.append(f"{self.store.snapshot_path(SNAPSHOTTER, backend.id)}/fs")
            key = meta.parent
        return dirs, problems

    def resolve(self, name: str) -> Record:
        """The record ``name`` means (resolveImage's answer for history and inspect).

        Raises:
            DaemonError: ``No such image: …`` as dockerd words it.
        """
        image, all_ = resolve_all_references(State(list(self.records), ()), name)
        return image or all_[0]

    def image(self, record: Record) -> Image:
        return self.catalog.image(record)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.records, self.contents,
                       lambda diff_ids: unpacked_size(self._usage, diff_ids),
                       lambda name: self.image(self.resolve(name)))

    def images(self, filters: Mapping[str, Sequence[str]], all_images: bool,
               now_ns: int) -> list[ImageSummary]:
        return list_images(self.catalog, filters, all_images, now_ns)

    def model(self) -> tuple[dict[ImageID, Image], tuple[Reference, ...]]:
        """The images (by ID: the target digest) and their names as the graph-driver model
        has them, for what only resolves names (ps's Image column)."""
        images = {ImageID(r.target.digest): self.image(r) for r in self.records}
        references = []
        for record in self.records:
            if is_dangling(record):
                continue
            try:
                named = parse_normalized_named(record.name)
            except InvalidReference:
                continue
            references.append(Reference(
                name=named.familiar_name, familiar=named.familiar, normalized=str(named),
                image_id=ImageID(record.target.digest), is_digest=not named.tag,
                source=f"images/{record.name}"))
        return images, tuple(references)

    def history(self, name: str) -> list[HistoryItem]:
        record = self.resolve(name)
        return image_history(record, self.image(record), self.records,
                             lambda chain: (self._usage.get(chain) or (None, None))[1])

    def inspect(self, name: str) -> tuple[Inspected, list[str]]:
        """The image and the IDs of the containers that use it."""
        record = self.resolve(name)
        def snapshot(chain: str) -> tuple[str, int | None] | None:
            found = self._usage.get(chain)
            return None if found is None else (self._backend_keys[chain], found[1])
        item = inspect(record, self.records, self.contents.get(record.target.digest), snapshot,
                       SNAPSHOTTER)
        users = [c.id for c in self.store.containers.values() if c.image_id == item.id]
        return item, users

    def disk_usage(self, store: Store, volume_sizes: Mapping[str, int],
                   now_ns: int) -> tuple[DiskUsage, list[Diagnostic]]:
        """``docker system df``'s numbers, with what could not be measured. ``store``:
        Docker's side (containers, volumes, build cache)."""
        usage, unread = self._measured
        return system_disk_usage(self.catalog, store, usage, volume_sizes, now_ns), unread

    def container_sizes(self, container_ids: Sequence[str]
                        ) -> tuple[dict[str, tuple[int, int]], list[Diagnostic]]:
        """(SizeRw, SizeRootFs) of each container, as ``ps -s`` shows them."""
        usage, unread = self._measured
        return container_layer_sizes(container_ids, usage), unread

    @cached_property
    def _measured(self) -> tuple[SnapshotUsage, list[Diagnostic]]:
        """Every snapshot's usage as the snapshotter's Usage gives it now (active ones
        walked), and what could not be walked."""
        meter = ContainerdMeter(self.root, self.store)
        usage = snapshot_usage(self.store.meta, self.store.backends, self.namespace,
                               SNAPSHOTTER, upper_bytes=lambda ident: meter.upper_bytes(
                                   SNAPSHOTTER, ident))
        return usage, meter.diagnostics

    def build_cache(self, docker_root: EvidenceRoot) -> BuildCache:
        """BuildKit's cache records (its containerd worker's, in the data root), sized
        and marked shared as the daemon does on this store."""
        rel = layout.buildkit_worker_metadata_db(SNAPSHOTTER)
        try:
            data = read_db(docker_root, rel)
        except EvidenceError as exc:
            return BuildCache((), frozenset(), (Diagnostic(exc.path, exc.reason),))
        blobs = {b.digest: b.size for b in self.store.meta.blobs
                 if b.namespace == self.namespace and b.digest in self.store.blobs}
        usage = self._measured[0]
        return read_containerd_build_cache(
            data, rel, blobs.get, lambda key: (usage.get(key) or (None, None))[1],
            [layers for content in self.contents.values() for layers in content.layer_lists])

    @cached_property
    def _verified(self) -> tuple[ContentFiles, Store]:
        """What verify reads of the content store, and the layer model it walks."""
        targets = {r.target.digest: r.target for r in self.records}
        files = ContentFiles(self.root, self.store, targets, self.contents)
        store = Store(driver="containerd", images=self.model()[0], layers=files.layers,
                      references=(), diagnostics=tuple(self.diagnostics))
        return files, store

    def verify_bytes(self, image_ids: Sequence[ImageID] | None) -> int:
        """The blob bytes verify reads: what its progress ends at."""
        return content_bytes(*self._verified, image_ids)

    def verify(self, image_ids: Sequence[ImageID] | None, jobs: int,
               progress: Progress | None = None) -> VerifyReport:
        """The images' index, manifest and config blobs and their layer blobs checked,
        and each layer's unpacked snapshot file by file from the same read of its blob
        (all of the namespace's images, or those named)."""
        files, store = self._verified
        labels = {b.digest: b.labels[UNCOMPRESSED_LABEL] for b in self.store.meta.blobs
                  if b.namespace == self.namespace and UNCOMPRESSED_LABEL in b.labels}
        backend = self.store.backends.get(SNAPSHOTTER, {})
        lock = threading.Lock()
        paths = layout.ContainerdRoot(self.store.base)

        def snapshot_files(layer: Layer, stream: Iterable[bytes]) -> SnapshotFiles | None:
            # By key (the chain ID), the directory from the snapshotter's own database.
            found = backend.get(self._backend_keys.get(layer.chain_id, ""))
            if found is None or found.kind != Kind.COMMITTED:
                return None
            return SnapshotFiles(self.root, layer, lock,
                                 paths.snapshot_upper(SNAPSHOTTER, found.id), layer.cache_id,
                                 stream)
        report = verify_content(files, store, labels, snapshot_files, image_ids, jobs, progress)
        parent_of = {s.key: s.parent for s in self.store.meta.snapshots
                     if s.namespace == self.namespace and s.snapshotter == SNAPSHOTTER}
        return with_unverifiable(report, parent_of, self._snapshot_entries)

    def _snapshot_entries(self, key: str) -> tuple[str, tuple[str, ...], str | None]:
        """A snapshot's ``fs`` directory (found by key in the snapshotter's database),
        every entry below it, and why they could not be listed."""
        found = self.store.backends.get(SNAPSHOTTER, {}).get(self._backend_keys.get(key, ""))
        if found is None:
            return "", (), "the snapshotter's database does not hold it"
        upper = layout.ContainerdRoot(self.store.base).snapshot_upper(SNAPSHOTTER, found.id)
        try:
            files = self.root.subroot(upper)
            if files is None:
                return upper, (), "its directory is gone"
            try:
                return upper, tuple(sorted(path.strip("/") for path, _ in files.walk("")
                                           if path.strip("/"))), None
            finally:
                files.close()
        except EvidenceError as exc:
            return upper, (), str(exc)

    def plan_rmi(self, args: Sequence[str], force: bool, prune: bool) -> Plan:
        return plan_rmi(self.records, list(self.store.containers.values()), args, force, prune)

    def reclaim(self, plan: Plan, now_ns: int) -> Reclaim:
        meter = ContainerdMeter(self.root, self.store)
        return reclaim(self.store.meta, plan, now_ns, blobs_present=self.store.blobs,
                       backends=self.store.backends, blob_bytes=meter.blob_bytes,
                       snapshot_bytes=meter.snapshot_bytes, freed_bytes=meter.freed_bytes,
                       namespace=self.namespace)



    def plan_prune(self, filters: Mapping[str, Sequence[str]], all_images: bool,
                   now_ns: int, containers: Sequence[Container] | None = None,
                   removed_leases: Collection[str] = ()) -> PrunePlan:
        """``docker image prune``; after a container prune (system prune): with the
        containers left and without the leases of those removed."""
        meta = self.store.meta
        if removed_leases:
            meta = dataclasses.replace(meta, leases=tuple(
                l for l in meta.leases
                if not (l.namespace == self.namespace and l.id in removed_leases)))
        if containers is None:
            containers = list(self.store.containers.values())
        return plan_prune(meta, self.contents, containers, filters, all_images, now_ns,
                          blobs_present=self.store.blobs, backends=self.store.backends,
                          namespace=self.namespace)

    def image_layer_keys(self, meta: MetaStore | None = None) -> frozenset[str]:
        """The layerKey of every layer list of the namespace's images (of ``meta``'s,
        as a prune leaves them): what BuildKit's imagerefchecker matches records with."""
        records = (meta or self.store.meta).images_of(self.namespace)
        return image_layer_keys(
            layers for r in records if (content := self.contents.get(r.target.digest))
            for layers in content.layer_lists)

    def build_cache_leases(self, record_ids: Iterable[str]) -> set[str]:
        return build_cache_leases(self.store.meta, self.namespace, record_ids)

    def price_removals(self, leases: Collection[str], images: Sequence[Record] | None,
                       now_ns: int) -> Reclaim | None:
        """The blobs and snapshots containerd collects once these leases are deleted
        and the image records are ``images`` (None: unchanged); None when nothing
        was deleted."""
        result = collect_after(self.store.meta, self.namespace, leases, images, now_ns,
                               blobs_present=self.store.blobs, backends=self.store.backends)
        if result is None:
            return None
        meter = ContainerdMeter(self.root, self.store)
        priced = price_deletions((), (), result.deleted_blobs, result.deleted_snapshots,
                                 self.store.backends, blob_bytes=meter.blob_bytes,
                                 snapshot_bytes=meter.snapshot_bytes,
                                 freed_bytes=meter.freed_bytes)
        self.diagnostics.extend(meter.diagnostics)
        return priced

    def price_prune(self, plan: PrunePlan) -> Reclaim:
        """The blobs and snapshots the prune's collections delete, and the bytes ``du``
        sees go with them."""
        meter = ContainerdMeter(self.root, self.store)
        return price_prune(plan, self.store.backends, blob_bytes=meter.blob_bytes,
                           snapshot_bytes=meter.snapshot_bytes, freed_bytes=meter.freed_bytes)


def locate(data_root: str, root: EvidenceRoot, containerd_root: str | None = None,
           namespace: str = NAMESPACE) -> ContainerdImages | None:
    """The containerd store of a data root, where DESIGN.md says to look: the one given;
    else ``<data-root>/containerd/daemon`` (dockerd's own containerd); else the data
    root's sibling ``../containerd`` (a host's system containerd: ``/var/lib/docker``
    beside ``/var/lib/containerd``). None when there is none."""
    if containerd_root is not None:
        return ContainerdImages(open_root(containerd_root), "", namespace, docker_root=root)
    if layout.has_containerd_store(root, layout.CONTAINERD_DAEMON):
        return ContainerdImages(root, layout.CONTAINERD_DAEMON, namespace)
    sibling = layout.containerd_sibling(data_root)
    if os.path.isfile(os.path.join(sibling, layout.ContainerdRoot("").meta_db)):
        return ContainerdImages(open_root(sibling), "", namespace, docker_root=root)
    return None
