"""The image service: the evidence opened once, and the answers the commands ask for.

dockerd's ``daemon/images.ImageService`` owns the image, layer and reference stores
and answers the API's image calls; the CLI only sends flags and prints. This is its
offline twin: it opens the evidence roots once (the data root; a containerd root
will come beside it, each its own boundary), finds their format through the source
registry, and reads each part only when a command first needs it — the store, the
build cache, containerd's leases, the removal meter, the thin pool. Damage is
reported through ``warn`` as it is read, once.

References: moby daemon/images/service.go (ImageService), image_delete.go,
image_prune.go, image_history.go, daemon/disk_usage.go (SystemDiskUsage).
"""
from __future__ import annotations

import dataclasses
import os
from functools import cached_property
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, NamedTuple, Sequence

from .errors import DaemonError, EvidenceError, UnsupportedLayoutError
from .goapi.runtime import num_cpu
from .model import Diagnostic, Image, Store
from .sources import Detected, layout, registry
from .sources.evidence import EvidenceRoot, open_root

if TYPE_CHECKING:
    from .engines.archivereclaim import BlobReclaim
    from .engines.changes import Change
    from .engines.lastused import LastUse
    from .engines.owner import Owners
    from .engines.timeline import Event
    from .containerdservice import ContainerdImages
    from .engines.builderprune import BuilderPrune, SpaceCaps
    from .engines.containerprune import ContainerPrune
    from .engines.containerdprune import PrunePlan
    from .engines.containerdreclaim import Reclaim as ContainerdReclaim
    from .engines.systemprune import ImagePruner, SystemPrune
    from .engines.volumeprune import VolumePrune
    from .engines.diskusage import DiskUsage
    from .engines.history import HistoryItem
    from .engines.listing import ImageSummary
    from .engines.reclaim import Reclaim
    from .engines.rmi import Plan, Record
    from .engines.rootusage import ContainerdState, RootUsage
    from .engines.slack import SlackReport
    from .engines.verify import Progress, VerifyReport
    from .ids import ChainID, ImageID
    from .model import BuildCacheRecord, Container, Network, Volume
    from .sources.containerfs import Stack
    from .sources.imagearchive import ArchiveFiles
    from .sources.layerusage import RemovalMeter

# Each command imports only what it uses (start-up time is part of being fast).

# Source kinds that are image archives (sources/ocilayout.py, sources/dockersave.py).
_IMAGE_ARCHIVES = frozenset({"oci-layout", "docker-save"})



class AnalystFile(NamedTuple):
    """A file the analyst named on the command line, not evidence under a root: the CLI
    opens it (``content`` is its bytes, or an fd its reader closes)."""
    name: str
    content: bytes | int


class ImageService:
    """One analysis of one set of evidence roots. Close it when done."""

    def __init__(self, data_root: str, warn: Callable[[str], None],
                 containerd_root: str | None = None, containerd_namespace: str = "moby",
                 note: Callable[[str], None] | None = None):
        """``note`` tells the analyst what was chosen for them (default: ``warn``)."""
        self.data_root = data_root
        self._warn = warn
        self._note = note or warn
        self._pools: dict[str | None, tuple] = {}
        self.containerd_root = containerd_root
        self.containerd_namespace = containerd_namespace
        self._meter_warned = 0

    # -- the evidence, read once and only when first needed ----------------------------

    @cached_property
    def roots(self) -> Mapping[str, EvidenceRoot]:
        """Every evidence root, by name (layout.DATA_ROOT), each its own boundary.

        A system containerd's root is one (layout.CONTAINERD_ROOT) when given, or when
        the data root holds no image store of its own and its sibling ``../containerd``
        holds one (a host's disk: ``/var/lib/docker`` beside ``/var/lib/containerd``).
        """
        top = open_root(self.data_root)
        data = registry.under_top_folders(top)
        if data is not top:
            self._note(f"{top.path}: the data root is under the archive's top folders: "
                       f"read as {data.path}")
        data = self._remapped(data)
        roots = {layout.DATA_ROOT: data}
        path = self.containerd_root
        if path is None and data.lstat("image") is None and not layout.has_containerd_store(data) \
                and os.path.isdir(self.data_root):
            sibling = layout.containerd_sibling(self.data_root)
            if os.path.isfile(os.path.join(sibling, layout.ContainerdRoot("").meta_db)):
                path = sibling
        if path is not None:
            roots[layout.CONTAINERD_ROOT] = open_root(path)
        for root in roots.values():
            self._report(root.diagnostics)
        return roots

    def _remapped(self, data: EvidenceRoot) -> EvidenceRoot:
        """The root a ``--userns-remap`` daemon kept in a folder of the data root, when
        the data root itself holds no image store; the analyst is told which was read
        and which others there are."""
        read, others = registry.under_remapped_roots(data)
        if read is not data:
            self._note(f"{data.path}: a user-namespace-remapped root (dockerd --userns-remap):"
                       f" read {read.path}" + (f"; also remapped there: {', '.join(others)}"
                                                 if others else ""))
        elif others:
            self._note(f"{data.path}: read as a plain root; user-namespace-remapped roots "
                       f"(dockerd --userns-remap) there too: {', '.join(others)}")
        return read

    @property
    def source_name(self) -> str:
        """The evidence as read, absolute; ``ARCHIVE:PREFIX`` for a data root in an
        archive's folders, as the analyst could name it."""
        return os.path.abspath(self.root.path)

    @property
    def root(self) -> EvidenceRoot:
        return self.roots[layout.DATA_ROOT]

    @cached_property
    def _read(self) -> tuple[Detected, Store]:
        found, store = registry.read(self.roots)
        self._report(store.diagnostics)
        # What the evidence itself could not take in (warned as it was opened) makes
        # every answer built on it incomplete.
        skipped = tuple(d for root in self.roots.values() for d in root.diagnostics)
        if skipped:
            store = dataclasses.replace(store, diagnostics=skipped + store.diagnostics)
        return found, store

    @property
    def source(self) -> Detected:
        """Which source read the evidence, and what it found there."""
        return self._read[0]

    @property
    def store(self) -> Store:
        """Images, layers, references, containers and volumes."""
        if self.containerd is not None:
            return self._containerd_store
        if self.is_image_archive:
            return self._measured_archive
        return self._read[1]

    @property
    def read_store(self) -> Store:
        """The store as read: on an image archive, its layers not measured (each counts
        its blob's bytes) — enough to resolve names and check digests (verify, reclaim),
        which need not decompress every layer first."""
        if self.containerd is not None:
            return self._containerd_store
        return self._read[1]

    @cached_property
    def _measured_archive(self) -> Store:
        """An image archive's store with each layer's size once unpacked, as ls,
        history and inspect show it."""
        read = self._read[1]
        store = self.archive_files.measured(read)
        self._report(store.diagnostics[len(read.diagnostics):])
        return store

    @property
    def is_pre_1_10(self) -> bool:
        """A graph of Docker before 1.10: ``rm`` answers as moby v1.9.1 did."""
        from .sources import graphv1
        return self.source.kind == graphv1.KIND

    @property
    def is_image_archive(self) -> bool:
        """An OCI image layout or a ``docker save`` archive: images only, no data root."""
        return self.source.kind in _IMAGE_ARCHIVES

    def _needs_layer_files(self, what: str) -> None:
        """What reads the layers' files is refused on a driver whose image store only is
        read (sources/drivers.py METADATA_ONLY), never answered wrong.

        Raises:
            UnsupportedLayoutError: the driver's layers are not read.
        """
        from .sources.drivers import metadata_only
        refusal = metadata_only(self.root.path, self._read[1].driver, what)
        if refusal is not None:
            raise refusal

    def _needs_data_root(self, command: str) -> None:
        """rm, prune and df answer for a daemon's data root; an image archive has none.

        Raises:
            UnsupportedLayoutError: the evidence is an image archive.
        """
        if self.is_image_archive:
            raise UnsupportedLayoutError(self.root.path, (
                f"not a data root but an image archive ({self.source.kind}): {command} "
                "answers for a Docker data root; ls, inspect, history, verify and "
                "reclaim read archives"))

    @cached_property
    def archive_files(self) -> ArchiveFiles:
        """What verify and reclaim read of an image archive beyond the store."""
        from .sources import dockersave, ocilayout
        reader = (dockersave.read_save if self.source.kind == dockersave.KIND
                  else ocilayout.read_layout)
        return reader(self.root)[1]

    @cached_property
    def _containerd_store(self) -> Store:
        """Docker's side of a containerd-store root, with the store's images and names,
        so that what resolves names for containers (ps) finds them."""
        assert self.containerd is not None
        images, references = self.containerd.model()
        return dataclasses.replace(self._read[1], images=images, references=references)

    @cached_property
    def store_with_build_cache(self) -> Store:
        """The store with BuildKit's build cache, which holds layers back from rm.

        Read only by the commands that need it: ls does not.
        """
        from .sources.buildkit import load_build_cache
        store = self.store
        if self.containerd is not None:
            cache = self.containerd.build_cache(self.root)
        else:
            cache = load_build_cache(self.root, store.driver, store.layers, store.images.values())
        self._report(cache.diagnostics)
        return dataclasses.replace(store, build_cache=cache.records,
                                   build_cache_holds=cache.held_chain_ids,
                                   diagnostics=store.diagnostics + cache.diagnostics)

    @cached_property
    def leases(self) -> Mapping[str, tuple[str, ...]]:
        """containerd's leases (``namespace/lease``) and the blobs each holds."""
        from .sources.containerd import read_leases
        leases, problems = read_leases(self.root)
        self._report(problems)
        return leases

    @cached_property
    def meter(self) -> RemovalMeter:
        """Measures the files removals free; each layer's tree is walked once."""
        self._needs_layer_files("the bytes a removal frees")
        from .sources.layerusage import RemovalMeter
        return RemovalMeter(self.root, self.store)

    def thin_pool(self, store: Store | None, metadata_file: AnalystFile | None) -> SlackReport:
        """The devicemapper pool accounted: metadata, Docker's devices, the data file's
        extents; ``metadata_file`` is read instead of the loop file when given."""
        from .engines.slack import slack_report
        from .sources import devicemapper
        key = metadata_file and metadata_file.name
        if key not in self._pools:
            device_set = devicemapper.read_device_set(self.root)
            pool, meta = devicemapper.read_pool(self.root, metadata_file)
            self._pools[key] = (pool, device_set, devicemapper.data_file(self.root), meta)
        pool, device_set, data, meta = self._pools[key]
        return slack_report(pool, device_set, data, meta, store)

    def close(self) -> None:
        if "roots" in self.__dict__:
            for root in self.roots.values():
                root.close()

    def __enter__(self) -> "ImageService":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _report(self, diagnostics: Iterable[Diagnostic]) -> None:
        for diag in diagnostics:
            self._warn(str(diag))

    @cached_property
    def containerd(self) -> ContainerdImages | None:
        """The containerd image store Docker's images are in, when they are (namespace
        ``containerd_namespace``); None for a graph-driver root."""
        if self.source.kind != "containerd":
            return None
        from .containerdservice import ContainerdImages
        # Docker's containers are in the data root either way, read (and their damage
        # told) with Docker's side of it.
        containers = self._read[1].containers
        if self.source.format:
            images = ContainerdImages(self.root, self.source.format, self.containerd_namespace,
                                      containers=containers)
        else:
            images = ContainerdImages(self.roots[layout.CONTAINERD_ROOT], "",
                                      self.containerd_namespace, docker_root=self.root,
                                      containers=containers)
        images.contents        # read now, so that its damage is told once, up front
        self._report(images.diagnostics)
        return images

    def _report_meter(self) -> None:
        """Warn, once each, of what the meter could not measure (it measured the rest)."""
        found = self.meter.diagnostics
        self._report(found[self._meter_warned:])
        self._meter_warned = len(found)

    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]:
        """Everything found wrong so far: the store's, the build cache's, the meter's."""
        meter = self.__dict__.get("meter")
        return (*self.store_with_build_cache.diagnostics,
                *(meter.diagnostics if meter is not None else ()))

    # -- what the commands ask ----------------------------------------------------------

    def image(self, name: str) -> Image:
        """The image a name, reference or ID prefix means (DaemonError if none)."""
        if self.containerd is not None:
            return self.containerd.image(self.containerd.resolve(name))
        from .engines.resolve import get_image
        return get_image(self.read_store, name)

    def images(self, filters: Mapping[str, Sequence[str]], all_images: bool,
               now: float | None = None) -> list[ImageSummary]:
        """``now``: the daemon's time.Now() for ``until`` filters."""
        if self.containerd is not None:
            import time
            return self.containerd.images(filters, all_images,
                                          int((time.time() if now is None else now) * 1e9))
        from .engines.listing import list_images
        return list_images(self.store, filters, all_images, now, self.api_version)

    def containers(self, filters: Mapping[str, Sequence[str]], all_containers: bool,
                   limit: int = -1) -> list[Container]:
        """The containers ``docker ps`` lists for these filters, --all and --last."""
        from .engines.containers import list_containers
        return list_containers(self.store, filters, all_containers, limit, self.api_version)

    def container_sizes(self, ctrs: Sequence[Container]) -> dict[str, tuple[int | None, int]]:
        """(SizeRw, SizeRootFs) of each container, as the daemon measures them for ps -s."""
        if self.containerd is not None:
            sizes, unread = self.containerd.container_sizes([c.id for c in ctrs])
            self._report(unread)
            return dict(sizes)
        from .engines.diskusage import size_root_fs
        from .sources.layerusage import container_sizes
        self._needs_layer_files("ps --size")
        rw = container_sizes(self.root, self.store)
        return {c.id: (rw.get(c.id, -1), size_root_fs(self.store, c, rw.get(c.id, -1)))
                for c in ctrs}

    def _container_stacks(self, ctr: Container) -> tuple[EvidenceRoot, Stack, Stack]:
        """Where a container's layers are: the root they are read through, its root
        filesystem's stack and its parent's (the init layer over the image)."""
        from .sources import containerfs
        if self.containerd is None:
            new, old, problems = containerfs.container_stacks(self.store, ctr)
            self._report(problems)
            return self.root, new, old
        # moby daemon/containerd: the RW snapshot is keyed by the container's ID, over
        # "<ID>-init", over the image's chain ID; overlayfs's whiteouts are overlay2's.
        dirs, problems = self.containerd.snapshot_dirs(ctr.id)
        self._report(problems)
        if not dirs:
            raise DaemonError(f"RWLayer of container {ctr.name} is unexpectedly nil")
        return (self.containerd.root, containerfs.Stack("overlay2", tuple(dirs)),
                containerfs.Stack("overlay2", tuple(dirs[1:])))

    def _image_stack(self, image: Image) -> tuple[EvidenceRoot, Stack]:
        from .ids import chain_ids
        from .sources import containerfs
        if self.containerd is None:
            stack, problems = containerfs.image_stack(self.store, image)
            self._report(problems)
            return self.root, stack
        chain = chain_ids(image.diff_ids)
        dirs, problems = self.containerd.snapshot_dirs(chain[-1] if chain else "")
        self._report(problems)
        return self.containerd.root, containerfs.Stack("overlay2", tuple(dirs))

    @property
    def tar_type_bits(self) -> bool:
        """Whether the daemon's tars (export, cp) keep the file type bits in each mode:
        only the daemon the root is answered as before Docker 23 (moby#44083 dropped
        them), and no daemon that reads the containerd image store is that old."""
        from .engines.daemonapi import API_20_10
        return self.containerd is None and self.api_version == API_20_10

    def container_changes(self, name: str) -> list[Change]:
        """What ``docker diff`` lists for a container: its root filesystem against its
        parent's (the init layer over the image), as the naive diff compares them."""
        from .engines.changes import tree_changes
        from .engines.containers import get_container
        from .engines.rootfs import union
        from .sources import containerfs
        self._needs_layer_files("diff")
        root, new_stack, old_stack = self._container_stacks(get_container(self.store, name))
        read: dict[str, tuple] = {}
        new = union(containerfs.stack_entries(root, new_stack, read))
        old = union(containerfs.stack_entries(root, old_stack, read))

        def same_capability(path: str) -> bool:
            here, there = new_stack.dirs[new[path].layer], old_stack.dirs[old[path].layer]
            return here == there or (containerfs.capability(root, here, path)
                                     == containerfs.capability(root, there, path))
        return tree_changes({p: v.stat for p, v in new.items()},
                            {p: v.stat for p, v in old.items()}, same_capability)

    def root_filesystem(self, name: str) -> tuple[EvidenceRoot, dict[str, tuple]]:
        """What ``docker export`` archives of a container, or of a container created from
        an image (its init layer made as the daemon makes it): the root its files are
        read through, and each entry by absolute path, in the archive's order, as
        (stat, its path under that root or None for an entry the daemon makes, a link's
        target when known)."""
        from .engines.changes import walk_order
        from .engines.containers import get_container
        from .engines.rootfs import init_layer, union
        from .errors import NoSuchContainer, NotFound
        from .sources import containerfs
        self._needs_layer_files("export and cp")
        image = None
        try:
            root, stack, _ = self._container_stacks(get_container(self.store, name))
        except NoSuchContainer:
            try:
                image = self.image(name)
            except NotFound:
                raise NoSuchContainer(f"No such container or image: {name}") from None
            root, stack = self._image_stack(image)
        root.spool(stack.dirs)
        view = union(containerfs.stack_entries(root, stack))
        entries = {}
        for p, v in view.items():
            # moby pkg/archive: a file whose owner does not map into the container is
            # left out of the tar (addTarFile fails; the walk logs it and goes on).
            owner = self.store.container_owner(v.stat.uid, v.stat.gid)
            if owner is not None:
                entries[p] = (v.stat._replace(uid=owner[0], gid=owner[1]),
                              stack.dirs[v.layer] + p, None)
        if image is not None:
            workdir = (image.config.get("config") or {}).get("WorkingDir")
            entries.update((p, (st, None, target)) for p, (st, target)
                           in init_layer(view, workdir if isinstance(workdir, str)
                                         else None).items())
        return root, {p: entries[p] for p in sorted(entries, key=walk_order)}

    def copy_source(self, name: str, path: str, follow_link: bool
                    ) -> tuple[EvidenceRoot, str, list[tuple[str, tuple]]]:
        """What ``docker cp NAME:PATH`` copies: the root its files are read through, the
        entry PATH names (its links followed inside the container), and it and
        everything below it, each with its path relative to that entry ("" for the
        entry itself) and as root_filesystem gives it."""
        from .engines.rootfs import NotInScope, resolve_in_scope
        from .errors import EvidenceError, NotFound
        root, entries = self.root_filesystem(name)

        def readlink(path: str) -> str:
            _, rel, target = entries[path]
            link = target if rel is None else root.readlink(rel)
            if link is None:
                raise EvidenceError(rel, "a symbolic link whose target cannot be read")
            return link
        try:
            src = resolve_in_scope(path, {p: e[0] for p, e in entries.items()}, readlink,
                                   follow_link)
        except NotInScope:
            src = None
        if src is None or (src != "/" and src not in entries):
            raise NotFound(f"Could not find the file {path} in container {name}")
        prefix = src.rstrip("/")
        return root, src, [(p[len(prefix):], e) for p, e in entries.items()
                           if p == src or p.startswith(prefix + "/")]

    def owners(self, target: str) -> Owners:
        """What a path under the root (relative, or absolute below the data root) or an
        ID (any kind the store knows, or a registry blob's digest) belongs to."""
        from .engines.owner import Owners, find_owners
        store = self.store
        rel = self._rel_path(target)
        if rel is None and target.isdecimal() and store.driver == "devicemapper":
            return self._device_owners(int(target))
        if rel is None:
            found = find_owners(store, None, target)
            diff_id = self._blob_diff_id(target)
            if diff_id is not None:
                blob = find_owners(store, "diff_id", diff_id)
                found.matched += [("blob", target), *blob.matched]
                for name in ("layers", "images", "containers"):
                    getattr(found, name).update(getattr(blob, name))
            return found
        hit = layout.path_owner(store.driver, rel)
        if hit is None:
            return Owners()
        kind, ident = hit
        if kind == "link":
            # overlay2/l/<name> -> ../<cache-id>/diff: the target names the layer.
            target_dir = self.root.readlink(layout.overlay2_short_link(ident)) or ""
            parts = target_dir.split("/")
            if len(parts) != 3 or parts[0] != ".." or parts[2] != "diff":
                return Owners()
            kind, ident = "cache_id", parts[1]
        return find_owners(store, kind, ident)

    def _device_owners(self, device_id: int) -> Owners:
        """Owners of a thin device ID: Docker's device metadata, then the pool's own
        (an orphan is known by it only; a pool that cannot be read adds none)."""
        from .engines.owner import find_device_owners
        from .sources import devicemapper
        device_set = devicemapper.read_device_set(self.root)
        self._report(device_set.diagnostics)
        try:
            pool_devices = devicemapper.read_pool(self.root)[0].devices
        except EvidenceError as exc:
            self._warn(str(Diagnostic(exc.path, f"{exc.reason}; orphan devices not looked for")))
            pool_devices = {}
        return find_device_owners(self.store, device_set, pool_devices, device_id)

    def _rel_path(self, target: str) -> str | None:
        """target as a path relative to the data root, if it names one there (the root
        read: a remapped root's folder when the data root holds one)."""
        top = os.path.realpath(self.root.path)
        if target.startswith("/"):
            if not target.startswith(top.rstrip("/") + "/"):
                return None
            target = target[len(top.rstrip("/")) + 1:]
        try:
            return target if self.root.lstat(target) is not None else None
        except EvidenceError:
            return target           # a link on the way: where it is still says whose

    def _blob_diff_id(self, digest: str) -> str | None:
        """The diff ID a registry blob decompressed to (distribution's diffid-by-digest)."""
        if not digest.startswith("sha256:") or self.containerd is not None:
            return None
        try:
            data = self.root.read(layout.ImageRoot(self.store.driver).diffid_by_digest(digest))
        except EvidenceError:
            return None
        return data.decode("ascii", "replace").strip() if data else None

    def timeline(self) -> list[Event]:
        """Every dated event of the store and its build cache, oldest first."""
        from .engines.timeline import timeline
        from .sources.containerlogs import log_spans
        store = self.store_with_build_cache
        spans, unread = log_spans(self.root, store.containers)
        events, problems = timeline(store, spans, self.last_used)
        self._report([*unread, *problems])
        return events

    @cached_property
    def last_used(self) -> dict[str, LastUse | None]:
        """Each image's last use, by the evidence engines/lastused.py names; a tag's
        time is the image metadata's, or on the containerd store its records' latest
        UpdatedAt."""
        from .engines.lastused import last_used, tag_times
        store = self.store_with_build_cache
        if self.containerd is None:
            return last_used(store, tag_times(store))
        tagged: dict[str, int] = {}
        for record in self.containerd.records:
            if record.updated_ns:
                digest = record.target.digest
                tagged[digest] = max(tagged.get(digest, 0), record.updated_ns)
        return last_used(store, tagged)

    def inside_evidence(self, path: str) -> bool:
        """Whether writing path would write into the evidence (or over an archive of it)."""
        target = os.path.realpath(path)
        named = [self.data_root, self.data_root.rpartition(":")[0], self.containerd_root]
        for root in filter(None, named):
            top = os.path.realpath(root)
            if target == top or target.startswith(top.rstrip("/") + "/"):
                return True
        return False

    def history(self, name: str) -> list[HistoryItem]:
        if self.containerd is not None:
            return self.containerd.history(name)
        from .engines.history import image_history
        return image_history(self.store, self.image(name))

    def layer_allocated(self, image: Image) -> dict[ChainID, int] | None:
        """Allocated bytes of each layer of an image: its driver directory and store entry
        (None in an image archive: its layers are blobs, not directories; and on a driver
        whose layers' files are not read)."""
        from .sources import drivers
        if self.is_image_archive or self.store.driver in drivers.METADATA_ONLY:
            return None
        allocated = self.meter.layer_bytes([l.chain_id for l in self.store.chain(image.top_layer)])
        self._report_meter()
        return allocated

    def driver_metadata(self, image: Image) -> dict[str, str] | None:
        """GraphDriver.Data of an image, with the data root's absolute path as home.

        Raises:
            UnsupportedLayoutError: the driver's data needs more than the data root.
        """
        from .sources import drivers
        if self.store.driver in drivers.METADATA_UNKNOWN:
            raise drivers.metadata_only(self.root.path, self.store.driver, "GraphDriver.Data")
        return drivers.metadata(self.store.driver, self.source_name,
                                self.store.chain(image.top_layer))

    def disk_usage(self, now: float) -> DiskUsage:
        """What ``docker system df`` counts; ``now``: the daemon's (Unix seconds)."""
        self._needs_data_root("df")
        self._needs_layer_files("df")
        from .sources.layerusage import container_sizes, volume_sizes
        store = self.store_with_build_cache
        if self.containerd is not None:
            du, unread = self.containerd.disk_usage(store, volume_sizes(self.root, store),
                                                    int(now * 1e9))
            self._report(unread)
            return du
        from .engines.diskusage import system_disk_usage
        return system_disk_usage(store, container_sizes(self.root, store),
                                 volume_sizes(self.root, store), self.api_version)

    def root_usage(self, now: float) -> tuple[RootUsage, list[Diagnostic]]:
        """Every byte and inode of the data root (and of a containerd root beside it)
        with its owner (analyze du), and what could not be read (also warned); ``now``
        is when containerd's collector would run (leases expire)."""
        from .engines.rootusage import account, claims, containerd_claims
        from .sources.buildkit import snapshot_dirs
        from .sources.rootusage import measure
        self._needs_data_root("du")
        self._needs_layer_files("du")
        store = self.store_with_build_cache
        build_snapshots, found = snapshot_dirs(self.root)
        found = list(found)
        state = self._containerd_state(now)

        def listdir(root: EvidenceRoot) -> Callable[[str], list[str] | None]:
            def names(rel: str) -> list[str] | None:
                try:
                    return root.listdir(rel)
                except EvidenceError as exc:     # a link, or unreadable: walked as it is
                    found.append(Diagnostic(exc.path, exc.reason))
                    return None
            return names

        parts = [(self.root, claims(store, listdir(self.root), build_snapshots,
                                    state if state and state.root == layout.DATA_ROOT
                                    else None))]
        if state is not None and state.root != layout.DATA_ROOT:
            other = self.roots[state.root]
            parts.append((other, containerd_claims(store, listdir(other), state)))
        measured, elsewhere = [], 0
        for root, owned in parts:
            sizes, off_root, unread = measure(root, [(c.paths, c.dirs) for c in owned])
            measured += [(c, b, i) for c, (b, i) in zip(owned, sizes)]
            elsewhere += off_root
            found += [Diagnostic(exc.path, exc.reason) for exc in unread]
        self._report(found)
        usage = account(measured, elsewhere, self.root.usage_is_estimate)
        return usage, [*store.diagnostics, *found]

    def _containerd_state(self, now: float) -> ContainerdState | None:
        """What du needs of the containerd store Docker's images are in, if they are."""
        if self.containerd is None:
            return None
        from .engines.containerdgc import Node, Resource, mark, prune_snapshots
        from .engines.rootusage import ContainerdState
        cstore = self.containerd.store
        marked = mark(cstore.meta, int(now * 1e9))
        live = {(s.snapshotter, s.name): marked[node].kind for s in cstore.meta.snapshots
                if (node := Node(Resource.SNAPSHOT, s.namespace, f"{s.snapshotter}/{s.key}"))
                in marked}
        pruned = {(name, key) for name, backend in cstore.backends.items()
                  for key in prune_snapshots(backend, {k for (n, k) in live if n == name})}
        return ContainerdState(
            base=cstore.base, backends=cstore.backends,
            live_blobs=frozenset(n.key for n in marked if n.type == Resource.CONTENT),
            snapshots=live, pruned=frozenset(pruned), namespace=self.containerd_namespace,
            root=layout.DATA_ROOT if self.containerd.docker_root is None
            else layout.CONTAINERD_ROOT)

    def image_delete(self, names: Sequence[str], force: bool, prune: bool) -> Plan:
        """What ``docker image rm`` would do, as a plan; nothing is removed."""
        self._needs_data_root("rm")
        if self.containerd is not None:
            return self.containerd.plan_rmi(names, force, prune)
        if self.is_pre_1_10:
            from .engines import rmiv1
            return rmiv1.plan_rmi(self.store, names, force=force, prune=prune)
        from .engines.rmi import plan_rmi
        store = self.store_with_build_cache
        return plan_rmi(store, names, force=force, prune=prune,
                        build_cache_holds=store.build_cache_holds)

    def image_prune(self, all_images: bool, filters: Iterable[tuple[str, str]], now: float
                    ) -> tuple[Plan, list[Record], int]:
        """What ``docker image prune`` would do: the plan, its records, DiffSize reclaimed."""
        self._needs_data_root("prune")
        if self.containerd is not None:
            plan = self.containerd.plan_prune(_grouped(filters), all_images, int(now * 1e9))
            return plan, list(plan.lines), plan.space_reclaimed
        from .engines.prune import plan_prune
        store = self.store_with_build_cache
        return plan_prune(store, all_images, filters, now,
                          build_cache_holds=store.build_cache_holds, api=self.api_version)

    def container_prune(self, filters: Iterable[tuple[str, str]], now: float
                        ) -> ContainerPrune:
        """What ``docker container prune`` would remove; SizeRw it cannot measure is
        warned of (devicemapper: the RW layer is a filesystem in a thin device)."""
        self._needs_data_root("container prune")
        self._needs_layer_files("container prune")
        from .engines.containerprune import plan_container_prune
        store = self.store_with_build_cache
        result = plan_container_prune(store, filters, now, self._size_rw(store),
                                      store.build_cache_holds, api=self.api_version)
        self._warn_unmeasured(result)
        return result

    def _size_rw(self, store: Store) -> Mapping[str, int | None]:
        """Each container's SizeRw as the daemon measures it: its RW layer's directory,
        or on the containerd store its read-write snapshot."""
        if self.containerd is None:
            from .sources.layerusage import container_sizes
            return container_sizes(self.root, store)
        sizes, unread = self.containerd.container_sizes(list(store.containers))
        self._report(unread)
        return {ctr: rw for ctr, (rw, _) in sizes.items()}

    def _warn_unmeasured(self, result: ContainerPrune | None) -> None:
        for ctr in result.unmeasured if result else ():
            self._warn(f"{ctr.source}: SizeRw cannot be measured offline on "
                       f"{self.store.driver}; the reclaimed space leaves it out")

    @cached_property
    def api_version(self) -> str:
        """The API version of the daemon the root is answered as: dockerd 28.5's when
        Docker 23 or later has started on it (it wrote ``engine-id``), else 20.10's."""
        from .engines.daemonapi import API_20_10, API_28_5
        from .sources.daemoninfo import written_by_docker_23
        return API_28_5 if written_by_docker_23(self.root) else API_20_10

    def volume_prune(self, filters: Iterable[tuple[str, str]]) -> VolumePrune:
        """What ``docker volume prune`` would remove (dockerd 20.10: every unused one;
        Docker 23+: the anonymous ones, all with ``all=true``). On the containerd image
        store too: the volumes are the data root's either way."""
        self._needs_data_root("volume prune")
        from .engines.volumeprune import plan_volume_prune
        from .sources.layerusage import volume_sizes
        store = self.store
        return plan_volume_prune(store, filters, volume_sizes(self.root, store),
                                 self.api_version)

    def builder_prune(self, all_records: bool, filters: Iterable[tuple[str, str]],
                      now: float, caps: SpaceCaps | None = None) -> BuilderPrune:
        """What ``docker builder prune`` would remove of the BuildKit cache (its records'
        sizes are measured on their snapshots); ``caps``: the space it may keep."""
        self._needs_data_root("builder prune")
        self._needs_layer_files("builder prune")
        from .engines.builderprune import SpaceCaps, plan_builder_prune
        keys = self.containerd.image_layer_keys() if self.containerd is not None else ()
        return plan_builder_prune(self.store_with_build_cache, all_records, filters, now,
                                  self.api_version, image_layer_keys=keys,
                                  caps=caps or SpaceCaps())

    @cached_property
    def networks(self) -> tuple[Network, ...]:
        """The local networks libnetwork keeps, with their endpoint counts."""
        from .sources.networkstore import read_networks
        return read_networks(self.root, lambda rel, reason: self._warn(f"{rel}: {reason}"))

    def network_prune(self, filters: Iterable[tuple[str, str]], now: float
                      ) -> tuple[Network, ...]:
        """What ``docker network prune`` would remove."""
        self._needs_data_root("network prune")
        from .engines.networkprune import plan_network_prune
        return plan_network_prune(self.networks, filters, now, api=self.api_version)

    def system_prune(self, all_images: bool, volumes: bool,
                     filters: Iterable[tuple[str, str]], now: float) -> SystemPrune:
        """What ``docker system prune`` would remove, pruner by pruner.

        Raises:
            UnsupportedLayoutError: an image archive.
        """
        self._needs_data_root("system prune")
        self._needs_layer_files("system prune")
        store = self.store_with_build_cache
        from .engines.systemprune import plan_system_prune
        from .sources.layerusage import volume_sizes
        filters = list(filters)
        result = plan_system_prune(store, self.networks, all_images, volumes, filters, now,
                                   self._size_rw(store), volume_sizes(self.root, store),
                                   store.build_cache_holds, api=self.api_version,
                                   prune_images=self._containerd_image_pruner(
                                       all_images, filters, now))
        self._warn_unmeasured(result.containers)
        return result

    def _containerd_image_pruner(self, all_images: bool, filters: list[tuple[str, str]],
                                 now: float) -> ImagePruner | None:
        """system prune's image prune on the containerd store (None on a graph driver):
        the containers left, without the leases of those removed; the records it leaves
        decide which build cache records images use."""
        containerd = self.containerd
        if containerd is None:
            return None
        grouped = _grouped(filters)

        def prune(after: Store) -> tuple[tuple, Store, frozenset[str]]:
            removed = set(self.store.containers) - set(after.containers)
            plan = containerd.plan_prune(grouped, all_images, int(now * 1e9),
                                         list(after.containers.values()), removed)
            return ((plan, list(plan.lines), plan.space_reclaimed), after,
                    containerd.image_layer_keys(plan.meta_after))
        return prune

    def prune_freed(self, now: float, containers: Sequence[Container] = (),
                    volumes: Sequence[Volume] = (), chain_ids: Sequence[ChainID] = (),
                    graph_ids: Sequence[str] = (),
                    build_cache: Sequence[BuildCacheRecord] | None = None,
                    images: PrunePlan | None = None) -> tuple[int, ContainerdReclaim | None]:
        """Allocated bytes a run of prunes frees (removed_bytes); on the containerd
        store with what containerd collects once the containers' and the removed build
        cache records' leases are gone (``build_cache`` None: no build cache prune ran)
        and the image prune's records (``images``) deleted: that collection's blobs and
        snapshots are the second value (None: none ran)."""
        freed = self.removed_bytes(containers, volumes, chain_ids, graph_ids)
        containerd = self.containerd
        if containerd is None:
            return freed, None
        leases = {c.id for c in containers}
        if build_cache is not None:
            leases |= containerd.build_cache_leases(r.id for r in build_cache)
        records = None
        if images is not None:
            records = images.meta_after.images
            # The prune's own leases it dropped (moby/prune.images).
            leases |= {l.id for l in containerd.store.meta.leases
                       if l.namespace == containerd.namespace} \
                - {l.id for l in images.meta_after.leases}
        priced = containerd.price_removals(leases, records, int(now * 1e9))
        return freed + (priced.bytes_freed if priced is not None else 0), priced

    def removed_bytes(self, containers: Sequence[Container] = (),
                      volumes: Sequence[Volume] = (), chain_ids: Sequence[ChainID] = (),
                      graph_ids: Sequence[str] = ()) -> int:
        """Allocated bytes removing these containers, volumes, layers and BuildKit
        snapshot directories frees, measured."""
        freed = self.meter.removed_bytes(containers, volumes, chain_ids, graph_ids)
        self._report_meter()
        return freed

    def price(self, plan: Plan) -> Reclaim:
        """The plan's bytes, measured on the evidence."""
        from .engines.reclaim import price, repositories_json_size
        store = self.store_with_build_cache
        leases = self.leases
        untagged = {id(r) for r in plan.untagged}
        remaining = [r for r in store.references if id(r) not in untagged]
        meter = self.meter
        result = price(store, plan, layer_bytes=meter.layer_bytes, freed_bytes=meter.freed_bytes,
                       leases=leases,
                       repositories_delta=meter.repositories_delta(repositories_json_size(remaining)),
                       estimate=self.root.usage_is_estimate)
        self._report_meter()
        return result

    def archive_reclaim(self, names: Sequence[str]) -> tuple[BlobReclaim, list[str]]:
        """On an image archive: the blobs removing these references (or images) leaves
        unreferenced, and Docker's message for each name that matches nothing."""
        from .engines.archivereclaim import reclaim_images
        return reclaim_images(self.read_store, self.archive_files.entries(), names)

    def reclaim(self, plan: Plan, blkdiscard: bool | None, daemon_config: AnalystFile | None,
                metadata_file: AnalystFile | None, now: float | None = None
                ) -> tuple[Reclaim, dict | None]:
        """The plan priced; on devicemapper with what the pool and the host get back.

        Args:
            blkdiscard: the daemon's dm.blkdiscard; None: from daemon_config (the host's
                daemon.json), else moby's default (on).
        """
        if self.containerd is not None:
            import time
            # containerd's collector expires leases as of now: the analysis's --as-of.
            return self.containerd.reclaim(plan, int((time.time() if now is None else now)
                                                     * 1e9)), None
        from .engines.slack import dm_reclaim
        from .sources import devicemapper
        result = self.price(plan)
        if self.store_with_build_cache.driver != devicemapper.DRIVER:
            return result, None
        discard = _blkdiscard(blkdiscard, daemon_config)
        report = self.thin_pool(self.store_with_build_cache, metadata_file)
        pool = dm_reclaim(report, [layer.cache_id for layer in plan.state.released], discard)
        return dataclasses.replace(result, bytes_freed=result.bytes_freed
                                   + pool["host_bytes_freed"]), pool

    def slack(self, metadata_file: AnalystFile | None) -> tuple[SlackReport, list[Diagnostic]]:
        """The devicemapper pool's slack, and what was wrong reading it (also warned).

        Raises:
            UnsupportedLayoutError: the data root is not a devicemapper one.
        """
        from .sources import devicemapper
        root = self.root
        if not devicemapper.detect(root):
            raise UnsupportedLayoutError(root.path, "not a devicemapper data root; slack "
                                                    "measures a devicemapper thin pool")
        # The pool is read even when the image store is gone: only its own store counts.
        store = None
        if devicemapper.has_image_store(root):
            store = devicemapper.read_graphdriver_store(root, devicemapper.DRIVER)
        report = self.thin_pool(store, metadata_file)
        warnings = list(store.diagnostics if store else ()) + list(report.warnings)
        self._report(warnings)
        return report, warnings

    def verify_bytes(self, image_ids: Sequence[ImageID] | None) -> int:
        """What verify's progress counts to: the blob bytes it reads on an image archive
        or the containerd store, else the content bytes of these images' layers (or of
        every layer)."""
        if self.containerd is not None:
            return self.containerd.verify_bytes(image_ids)
        store = self.read_store
        if self.is_image_archive:
            from .engines.blobverify import blob_bytes
            return blob_bytes(self.archive_files, store, image_ids)
        if image_ids is None:
            chains: Iterable[ChainID] = store.layers
        else:
            chains = {layer.chain_id for i in image_ids
                      for layer in store.chain(store.images[i].top_layer)}
        return sum(store.layers[c].diff_size for c in chains)

    def verify(self, image_ids: Sequence[ImageID] | None, jobs: int | None,
               progress: Progress | None = None) -> VerifyReport:
        """Image IDs, diff IDs (via tar-split) and every layer file checked: of these
        images, or of everything in the image and layer stores."""
        self._needs_layer_files("verify")
        if self.containerd is not None:
            report = self.containerd.verify(image_ids, jobs or num_cpu(), progress)
            self._report(report.found)
            return report
        store = self.read_store
        if self.is_image_archive:
            from .engines.blobverify import verify_archive
            report = verify_archive(self.archive_files, store, image_ids,
                                    jobs=jobs or num_cpu(), progress=progress)
            self._report(report.found)
            return report
        from .engines.verify import verify_store
        from .sources import graphv1
        from .sources.layerfiles import StoreFiles
        files = (graphv1.GraphFiles(self.root, store) if self.source.kind == graphv1.KIND
                 else StoreFiles(self.root, store.driver, store.layers, store.root_ids))
        if not self.root.has_xattrs:
            self._warn(f"{self.root.path}: the archive records no extended attributes (made "
                       "without --xattrs): xattrs and overlay opaque flags are not compared")
        return verify_store(files, store, image_ids, jobs=jobs or num_cpu(),
                            progress=progress)


def _grouped(filters: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(key, value) filter pairs as the containerd store's engines take them."""
    grouped: dict[str, list[str]] = {}
    for key, value in filters:
        grouped.setdefault(key, []).append(value)
    return grouped


def _blkdiscard(option: bool | None, daemon_config: AnalystFile | None) -> bool:
    """dm.blkdiscard as the daemon had it: the flag, else daemon.json, else moby's default (on)."""
    if option is not None:
        return option
    if daemon_config is not None:
        from .sources.devicemapper import blkdiscard_from_daemon_config
        return blkdiscard_from_daemon_config(daemon_config.content, daemon_config.name)
    return True
