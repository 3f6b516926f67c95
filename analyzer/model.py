"""The in-memory model of a Docker data root: plain immutable data.

Readers in ``sources/`` build a :class:`Store`; engines read it and never touch
the disk. Every object carries ``source``, its path relative to the data root,
so that a diagnostic can name the file at fault.

References: moby image/store.go (images, parents, children), layer/layer_store.go
(reference counts), reference/store.go (references sorted by normalized string),
container/container.go and container/state.go.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Hashable, Iterator, Mapping, NamedTuple, TypeVar

from .ids import CacheID, ChainID, ContainerID, DiffID, ImageID, MountID


class SoundMembers(NamedTuple):
    """Members of a layer's tar-split that the source judged sound itself, as verify
    would (its native fast path: sources/layerfiles.py): their runs and contents are
    already fed to the layer's hash, and their paths marked expected."""
    hashed: int                # bytes fed to the hash
    content: int               # of them, file content
    files: int                 # members


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """Damage or oddity in the evidence: ``analyze: warning: SOURCE: MESSAGE``.

    ``kind`` and ``id`` name the object the damage costs (``image``, ``layer``,
    ``container``... and its ID) when the reader knows it.
    """
    source: str
    message: str
    kind: str | None = None
    id: str | None = None

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


@dataclass(frozen=True, slots=True)
class Reference:
    """One entry of repositories.json: a tag or a digest reference to an image.

    ``familiar`` is Docker's FamiliarString (``busybox:latest``,
    ``busybox@sha256:…``), ``name`` its FamiliarName, ``normalized`` the full
    form (``docker.io/library/busybox:latest``) that Docker sorts by.
    """
    name: str
    familiar: str
    normalized: str
    image_id: ImageID
    is_digest: bool
    source: str = "repositories.json"

    @property
    def tag(self) -> str | None:
        return None if self.is_digest else self.familiar[len(self.name) + 1:]

    @property
    def digest(self) -> str | None:
        return self.familiar[len(self.name) + 1:] if self.is_digest else None


@dataclass(frozen=True, slots=True)
class Image:
    """An image of the image store: its config, parsed, and its metadata."""
    id: ImageID
    config: Mapping[str, Any]
    diff_ids: tuple[DiffID, ...]
    top_layer: ChainID | None          # chain ID of all diff_ids; None for no layers
    parent: ImageID | None             # imagedb/metadata parent (legacy builds, commit)
    created: str | None                # the config's RFC 3339 "created", as written
    created_ns: int                    # Unix nanoseconds; Go's zero time when absent
    last_updated: str | None
    source: str

    @property
    def created_unix(self) -> int:
        """Seconds, as the daemon's image summary gives them (Go Time.Unix floors)."""
        return self.created_ns // 1_000_000_000

    @property
    def labels(self) -> Mapping[str, str]:
        cfg = self.config.get("config") or {}
        return cfg.get("Labels") or {}

    @property
    def has_config(self) -> bool:
        return self.config.get("config") is not None


@dataclass(frozen=True, slots=True)
class Layer:
    """A read-only layer of the layer store (``layerdb/sha256/<chain>``)."""
    chain_id: ChainID
    diff_id: DiffID
    parent: ChainID | None
    cache_id: CacheID
    diff_size: int                     # the layer's own ``size`` file (DiffSize)
    source: str


@dataclass(frozen=True, slots=True)
class Mount:
    """A container's read-write layer (``layerdb/mounts/<name>``)."""
    name: str                          # the container ID, or a builder's random ID
    mount_id: MountID
    init_id: MountID | None
    parent: ChainID | None             # the image's top layer
    source: str


@dataclass(frozen=True, slots=True)
class HealthResult:
    """One run of a container's health check (types.HealthcheckResult): the daemon
    keeps the last five in State.Health.Log."""
    start: str                         # RFC 3339, as the daemon wrote it
    end: str
    exit_code: int                     # 0 healthy, 1 unhealthy, -1 the probe failed to run
    output: str                        # its first 4 KiB of stdout and stderr


@dataclass(frozen=True, slots=True)
class Port:
    """One entry of a container's port list (types.Port): a binding, or an exposed port."""
    private_port: int
    type: str
    public_port: int = 0
    ip: str = ""


@dataclass(frozen=True, slots=True)
class Container:
    id: ContainerID
    name: str                          # without the leading "/"
    image_id: ImageID
    image: str                         # Config.Image: what the user typed
    created: str
    path: str
    args: tuple[str, ...]
    running: bool
    paused: bool
    restarting: bool
    dead: bool
    removal_in_progress: bool
    exit_code: int
    started_at: str
    finished_at: str
    health: str | None
    labels: Mapping[str, str]
    ports: tuple["Port", ...]          # NetworkSettings.Ports, as the daemon lists them
    mounts: tuple[Mapping[str, Any], ...]
    networks: tuple[str, ...]          # NetworkSettings.Networks names
    source: str
    # ImagePlatform, when the container records its image's manifest (the containerd
    # image store); the API then gives it with the summary's ImageManifestDescriptor.
    platform: Mapping[str, Any] | None = None
    # The digest of that manifest (ImageManifest.digest): which of an image's platform
    # manifests the container runs, as the containerd image service counts its users.
    image_manifest: str | None = None
    health_log: tuple[HealthResult, ...] = ()

    @property
    def state(self) -> str:
        # moby: container/state.go StateString
        if self.running:
            if self.paused:
                return "paused"
            if self.restarting:
                return "restarting"
            return "running"
        if self.removal_in_progress:
            return "removing"
        if self.dead:
            return "dead"
        if self.started_at.startswith("0001-01-01") or not self.started_at:
            return "created"
        return "exited"


@dataclass(frozen=True, slots=True)
class Volume:
    name: str
    driver: str
    options: Mapping[str, str]
    size: int                          # -1 when unknown
    source: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Network:
    """A local network as libnetwork stores it."""
    id: str
    name: str
    driver: str                        # networkType: bridge, host, null, macvlan, ...
    labels: Mapping[str, str]
    created: str | None                # RFC 3339; absent in stores older than 17.06
    config_only: bool
    endpoints: int                     # attachments in the store (running containers')
    source: str


@dataclass(frozen=True, slots=True)
class BuildCacheRecord:
    """A BuildKit cache record, as ``docker system df -v`` lists them."""
    id: str
    cache_type: str
    size: int
    created_at: str
    last_used_at: str | None
    usage_count: int
    in_use: bool
    shared: bool
    description: str
    layer_chain_ids: tuple[ChainID, ...]  # layer store entries this record holds
    source: str
    parent: str = ""                      # the listed record it holds (its parent), or ""
    chain_id: ChainID | None = None       # the layer its own snapshot is, if it is one
    snapshot_dirs: tuple[str, ...] = ()   # graph-driver IDs of its snapshots that are no layer
    last_used_ns: int | None = None       # cache.lastUsedAt, None when never used
    # The containerd store's: its chain's blob digests joined (BuildKit's layerKey).
    layer_key: str = ""


# How many IDs a remapped root's range holds. The range's size is in the host's
# /etc/subuid and /etc/subgid, not in the data root (whose <uid>.<gid> folder gives only
# its start): 65536 is what dockerd --userns-remap=default gives the dockremap user it
# creates (moby internal/usergroup/add_linux.go createSubordinateRanges: "usermod -v
# START-(START+65535)", defaultRangeLen) and what useradd gives a new user by default
# (login.defs SUB_UID_COUNT); a layer's tar names IDs below it.
REMAPPED_IDS = 65536


@dataclass(frozen=True)
class Store:
    """Everything read from one data root.

    Indexes are derived once, lazily, from the plain fields; nothing here reads
    the disk. ``without`` gives a new store for planners that remove things.
    """
    driver: str
    images: Mapping[ImageID, Image]
    layers: Mapping[ChainID, Layer]
    references: tuple[Reference, ...]
    containers: Mapping[ContainerID, Container] = field(default_factory=dict)
    mounts: Mapping[str, Mount] = field(default_factory=dict)
    volumes: tuple[Volume, ...] = ()
    build_cache: tuple[BuildCacheRecord, ...] = ()
    # Every layer the build cache's leases keep (a superset of the records' own).
    build_cache_holds: frozenset[ChainID] = frozenset()
    diagnostics: tuple[Diagnostic, ...] = ()
    # Allocated bytes per cache ID / mount ID, when the reader could measure them.
    driver_usage: Mapping[str, int] = field(default_factory=dict)
    # Image archives: manifests of platforms other than the one Docker would choose
    # here; `ls` lists them with -a only.
    other_platforms: frozenset[ImageID] = frozenset()
    # The host (uid, gid) of a user-namespace-remapped daemon's root user (dockerd
    # --userns-remap: its root is <data-root>/<uid>.<gid>); (0, 0) without remapping.
    # Extraction shifted every owner in the layers by them.
    root_ids: tuple[int, int] = (0, 0)

    def container_owner(self, uid: int, gid: int) -> tuple[int, int] | None:
        """A file's owner on disk as the container sees it, as dockerd's archive maps it
        (idtools ToContainer) for export and cp; None when the owner is outside the
        remapped range (dockremap's default 65536 IDs: its size is in /etc/subuid, not
        in the data root), as the init layer's etc/mtab link, which the daemon creates
        as the host's root."""
        if self.root_ids == (0, 0):
            return uid, gid
        ruid, rgid = self.root_ids
        if 0 <= uid - ruid < REMAPPED_IDS and 0 <= gid - rgid < REMAPPED_IDS:
            return uid - ruid, gid - rgid
        return None

    @cached_property
    def refs_by_image(self) -> Mapping[ImageID, tuple[Reference, ...]]:
        """References of each image, sorted by normalized string (moby References)."""
        grouped: dict[ImageID, list[Reference]] = {}
        for ref in self.references:
            grouped.setdefault(ref.image_id, []).append(ref)
        return {k: tuple(sorted(v, key=lambda r: r.normalized)) for k, v in grouped.items()}

    @cached_property
    def children(self) -> Mapping[ImageID, tuple[ImageID, ...]]:
        kids: dict[ImageID, list[ImageID]] = {}
        for img in self.images.values():
            if img.parent is not None and img.parent in self.images:
                kids.setdefault(img.parent, []).append(img.id)
        return {k: tuple(v) for k, v in kids.items()}

    @cached_property
    def containers_by_image(self) -> Mapping[ImageID, tuple[Container, ...]]:
        by: dict[ImageID, list[Container]] = {}
        for ctr in self.containers.values():
            by.setdefault(ctr.image_id, []).append(ctr)
        return {k: tuple(v) for k, v in by.items()}

    def refs(self, image_id: ImageID) -> tuple[Reference, ...]:
        return self.refs_by_image.get(image_id, ())

    def chain(self, top: ChainID | None) -> list[Layer]:
        """The layers of a chain, top first; stops at a missing layer, and where the
        chain would come back to a layer already in it (readers report such cycles)."""
        return list(self.walk_chain(top))

    def walk_chain(self, top: ChainID | None) -> Iterator[Layer]:
        """chain's layers one by one, for a walk that may stop early."""
        seen: set[ChainID] = set()
        while top is not None and top not in seen:
            layer = self.layers.get(top)
            if layer is None:
                break
            yield layer
            seen.add(top)
            top = layer.parent

    def ancestry(self, image: Image) -> list[Image]:
        """The image and its parents (imagedb metadata), child first; stops at a missing
        parent, and where the chain would come back to an image already in it."""
        out = [image]
        seen = {image.id}
        while (parent := self.images.get(out[-1].parent)) is not None \
                and parent.id not in seen:
            out.append(parent)
            seen.add(parent.id)
        return out

    @cached_property
    def _chain_sizes(self) -> dict[ChainID, int]:
        return {}

    def size(self, top: ChainID | None) -> int:
        """Cumulative size of a chain (moby roLayer.Size)."""
        if top is None:
            return 0
        memo = self._chain_sizes
        hit = memo.get(top)
        if hit is not None:
            return hit
        pending: list[Layer] = []
        total = 0
        for layer in self.walk_chain(top):    # up to the first layer already summed
            hit = memo.get(layer.chain_id)
            if hit is not None:
                total = hit
                break
            pending.append(layer)
        for layer in reversed(pending):
            total += layer.diff_size
            memo[layer.chain_id] = total
        return total

    def image_size(self, image: Image) -> int:
        return self.size(image.top_layer)

    @cached_property
    def layer_refcounts(self) -> Mapping[ChainID, int]:
        # moby: layer/layer_store.go — one count per image top, per child layer,
        # and per container mount whose parent it is.
        counts: dict[ChainID, int] = {}
        for layer in self.layers.values():
            if layer.parent is not None:
                counts[layer.parent] = counts.get(layer.parent, 0) + 1
        for mount in self.mounts.values():
            if mount.parent is not None:
                counts[mount.parent] = counts.get(mount.parent, 0) + 1
        for img in self.images.values():
            if img.top_layer is not None:
                counts[img.top_layer] = counts.get(img.top_layer, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """A top-level entry of an image archive (``index.json``'s manifests, a ``docker
    save``'s ``manifest.json`` images): its names (familiar references), the images it
    leads to, and every blob it holds: path in the archive -> (digest, bytes); the digest
    is None for a legacy save's files, which are not named by one."""
    names: tuple[str, ...]
    images: frozenset[ImageID]
    blobs: Mapping[str, tuple[str | None, int]]


K = TypeVar("K", bound=Hashable)


def parent_cycles(parents: Mapping[K, K | None]) -> list[tuple[K, ...]]:
    """The cycles of a parent relation (each node names at most one parent), each in
    chain order from its smallest member. Iterative and linear: the evidence decides
    how long chains are, so no walk here recurses or revisits.

    A well-formed layer store has none (a chain ID hashes its parent's), nor does an
    image store; a cycle means damaged metadata, and every walk up it would never end.
    """
    state: dict[K, int] = {}               # 1: on the path being walked, 2: done
    cycles: list[tuple[K, ...]] = []
    for start in parents:
        path: list[K] = []
        node: K | None = start
        while node is not None and node in parents and node not in state:
            state[node] = 1
            path.append(node)
            node = parents[node]
        if node is not None and state.get(node) == 1:
            loop = path[path.index(node):]
            first = loop.index(min(loop))
            cycles.append(tuple(loop[first:] + loop[:first]))
        for done in path:
            state[done] = 2
    return cycles


# -- devicemapper: the thin pool and Docker's devices in it ------------------------------

@dataclass(frozen=True, slots=True)
class ThinLeaf:
    """One leaf of a thin device's mapping tree, its entries kept as stored.

    ``keys`` are the virtual blocks, ``values`` ``data_block << 24 | time``
    (dm-thin-metadata.c pack_block_time); both little-endian u64 arrays. Kept raw
    so that bulk accounting runs over them without a Python object per mapping.
    """
    block: int                         # metadata block number
    keys: bytes
    values: bytes

    @property
    def nr_entries(self) -> int:
        return len(self.keys) // 8


@dataclass(frozen=True, slots=True)
class ThinDevice:
    """A thin device of the pool: its details and the leaves of its mapping tree."""
    device_id: int
    mapped_blocks: int                 # disk_device_details: what thin_ls prints
    transaction_id: int                # the pool's transaction ID when it was created
    creation_time: int
    snapshotted_time: int
    leaves: tuple[int, ...]            # leaf blocks in key order; snapshots share them
    complete: bool                     # False when part of its mapping tree is unreadable


@dataclass(frozen=True, slots=True)
class DataSpaceMap:
    """The pool's data space map: a reference count per data block.

    ``counts`` has one byte per block: 0, 1, 2, or 3 for "three or more", whose
    count is in the ref-count tree (``overflow``, leaves of le32 counts).
    """
    nr_blocks: int
    nr_allocated: int
    counts: bytes
    overflow: tuple[ThinLeaf, ...]


@dataclass(frozen=True)
class ThinPool:
    """A dm-thin pool as its metadata describes it (no kernel needed)."""
    source: str
    transaction_id: int                # superblock trans_id (set_transaction_id)
    time: int                          # snapshot counter
    data_block_size: int               # in 512-byte sectors
    nr_data_blocks: int
    metadata_nr_blocks: int
    metadata_nr_allocated: int
    held_root: int                     # a metadata snapshot's superblock, 0 if none
    needs_check: bool
    devices: Mapping[int, ThinDevice]
    leaves: Mapping[int, ThinLeaf]
    data_space_map: DataSpaceMap | None
    diagnostics: tuple[Diagnostic, ...] = ()

    @property
    def data_block_bytes(self) -> int:
        return self.data_block_size * 512


@dataclass(frozen=True, slots=True)
class DevInfo:
    """``devicemapper/metadata/<hash>``: a thin device Docker made (moby devmapper devInfo).

    The hash is the layer's cache ID, a container's mount ID or ``<mount ID>-init``;
    the base device has hash "" and the file name ``base``.
    """
    hash: str
    device_id: int
    size: int                          # bytes of the thin device
    transaction_id: int                # the open transaction that created it
    initialized: bool
    deleted: bool                      # deferred deletion pending: still in the pool
    source: str


@dataclass(frozen=True, slots=True)
class DeviceSet:
    """Docker's devicemapper metadata directory: devices and set-level files."""
    devices: Mapping[str, DevInfo]
    next_device_id: int | None = None
    base_device_uuid: str | None = None
    base_device_filesystem: str | None = None
    open_transaction_id: int | None = None       # transaction-metadata
    transaction_device_hash: str | None = None
    transaction_device_id: int | None = None
    transaction_source: str = ""                 # the transaction-metadata file's path
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class HostFile:
    """A loop-lvm pool file as the host holds it."""
    source: str
    apparent_bytes: int                # st_size
    allocated_bytes: int               # st_blocks * 512
    extents: tuple[tuple[int, int], ...]  # (offset, length) of data, by SEEK_DATA/SEEK_HOLE
