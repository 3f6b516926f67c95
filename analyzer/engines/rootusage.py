"""``analyze du``: who owns each path of a data root, and what the root adds up to.

The root is cut into claims that never overlap: a claim is what one owner holds (a
layer's directory, a container's log, a volume, a database), each path of it walked
with everything below it, and the directories whose entries have other owners counted
alone. The model says who owns what; a path no owner names is an orphan when Docker's
own rules say why (a layer directory no layer store entry names: no ``docker`` command
will ever remove it), and unexplained otherwise. The bytes are measured elsewhere (one
walk of every claim, each inode once: sources/rootusage.py) and summed here.

An inode several claims reach (hard links between layers of the legacy overlay driver)
counts for the claim that would be removed last: claims are measured lowest layer
first.

References: moby daemon/daemon.go (NewDaemon: the root's directories),
layer/filestore.go (Remove renames ``<chain>`` to ``<chain>-<cache>-removing`` first),
layer/layer_store.go (deleteLayer: the driver's directory goes before the layer store
entry; ``tmp``: a pull's or a commit's write set), daemon/graphdriver/driver.go
(atomicRemove: ``<id>-removing``), daemon/graphdriver/overlay2/overlay.go (``l``),
daemon/delete.go (cleanupContainer), volume/local/local.go, builder-next
(``buildkit/``), the contract in DESIGN.md (``du --json``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Mapping, Sequence

from ..containerdmodel import BackendSnapshot
from ..ids import ChainID
from ..model import Store

CATEGORIES = ("image_layers", "build_cache", "container_layers", "container_logs",
              "container_other", "volumes", "containerd_content", "containerd_snapshots",
              "devicemapper", "metadata", "orphans", "other")

# The closed list of `other` (DESIGN.md): the daemon's own state that no image,
# container, volume or cache owns.
OTHER_TOP = frozenset({"network", "swarm", "plugins", "runtimes", "trust", "tmp",
                       "engine-id"})

# What each category's bytes are freed by (the table's RECLAIMABLE column).
FREED_BY = {
    "image_layers": "image prune -a",
    "build_cache": "builder prune -a",
    "container_layers": "container prune",
    "container_logs": "container prune",
    "container_other": "container prune",
    "volumes": "volume prune -a",
    "orphans": "rm with the daemon stopped",
}

# Where a graph driver keeps one directory (or file) per cache ID, mount ID or init ID.
_DRIVER_HOMES = {
    "overlay2": ("overlay2",),
    "overlay": ("overlay",),
    "vfs": ("vfs/dir",),
    "aufs": ("aufs/diff", "aufs/layers", "aufs/mnt"),
    "btrfs": ("btrfs/subvolumes",),
    "zfs": ("zfs/graph",),
}

Listdir = Callable[[str], "list[str] | None"]

# Why an orphan is one.
WHY_LAYER_DIR = "layer directory that no layer store entry names"
WHY_LAYER_ENTRY = "layer store entry whose directory is gone"
WHY_CONTAINER = "container directory without a config"
WHY_REMOVING = "*-removing leftover of an interrupted removal"
WHY_TEMP = "temporary leftover of an interrupted pull or commit"
WHY_BLOB = "blob nothing references"
WHY_SNAPSHOT = "snapshot nothing references"
WHY_SNAPSHOT_DIR = "snapshot directory no snapshot record names"
WHY_ROOTFS = "container mount point without a container"
WHY_INGEST = "temporary leftover of an interrupted content write"


@dataclass(frozen=True, slots=True)
class Claim:
    """What one owner holds of the root.

    ``category`` None: nothing explains it (``unexplained_bytes``). ``reclaimable``:
    the category's command would free it.
    """
    category: str | None
    item: str                           # the owner: a chain ID, container ID, volume, path
    paths: tuple[str, ...] = ()         # each walked with everything below it
    dirs: tuple[str, ...] = ()          # counted alone: their entries have other claims
    why: str | None = None              # an orphan's reason
    rank: int = 1 << 30                 # lower ranks take a shared inode first
    reclaimable: bool = False
    root: str = "data"                  # the evidence root it is in (layout's names)
    shared: bool = False                # an image layer more than one image has


@dataclass(frozen=True, slots=True)
class Owned:
    """A claim with what it was measured to hold."""
    claim: Claim
    bytes: int
    inodes: int


@dataclass(frozen=True, slots=True)
class CategoryUsage:
    name: str
    bytes: int
    inodes: int
    items: int
    reclaimable_bytes: int


@dataclass(frozen=True, slots=True)
class RootTotal:
    """One evidence root's own total: what ``du -s -x`` of it says."""
    name: str                           # layout's names: "data", "containerd"
    bytes: int
    inodes: int


@dataclass(frozen=True, slots=True)
class RootUsage:
    total_bytes: int
    total_inodes: int
    other_filesystems_bytes: int
    bytes_are_estimate: bool            # an archive's member sizes, not st_blocks
    categories: tuple[CategoryUsage, ...]
    owned: tuple[Owned, ...]            # biggest first
    orphans: tuple[Owned, ...]
    unexplained: tuple[Owned, ...]
    roots: tuple[RootTotal, ...]        # the data root first, then a containerd root

    @property
    def unexplained_bytes(self) -> int:
        return sum(o.bytes for o in self.unexplained)


@dataclass(frozen=True, slots=True)
class ContainerdState:
    """What du needs of a containerd store: its backends and what its collector keeps.

    ``live_blobs``: digests the mark reaches. ``snapshots``: each backend snapshot (by
    snapshotter and key) the mark reaches, with the kind of what holds it (``image``,
    ``container``, ``lease``, ...); ``pruned``: the backend keys a collection removes.
    """
    base: str                                               # in its evidence root
    backends: Mapping[str, Mapping[str, BackendSnapshot]]
    live_blobs: frozenset[str]
    snapshots: Mapping[tuple[str, str], str]
    pruned: frozenset[tuple[str, str]]
    namespace: str = "moby"
    root: str = "data"


class _Root:
    """The claims of one data root, built top down from its listings."""

    def __init__(self, store: Store, listdir: Listdir, build_snapshots: Collection[str],
                 containerd: ContainerdState | None = None):
        self.store = store
        self.listdir = listdir
        self.build_snapshots = build_snapshots
        self.cstate = containerd
        self.claims: list[Claim] = []
        # Layers a container uses stay after image prune -a (and keep their images).
        self.used = {layer.chain_id for ctr in store.containers.values()
                     for image in _image(store, ctr.image_id)
                     for layer in store.chain(image.top_layer)}
        # How many images each layer is in: one is the image's own (unique), more shared.
        self.images_of: dict[ChainID, int] = {}
        for image in store.images.values():
            for layer in store.chain(image.top_layer):
                self.images_of[layer.chain_id] = self.images_of.get(layer.chain_id, 0) + 1

    def add(self, category: str | None, item: str, paths: Iterable[str] = (),
            dirs: Iterable[str] = (), **kw) -> None:
        self.claims.append(Claim(category, item, tuple(paths), tuple(dirs), **kw,
                                 root=self.root_name))

    root_name = "data"

    def listing(self, rel: str) -> list[str] | None:
        """The names in a directory, sorted; None when rel is not one."""
        names = self.listdir(rel)
        if names is None:
            return None
        # An archive's "./" member is listed as a name "" of its own directory.
        return sorted(n for n in names if n not in ("", ".", ".."))

    def entries(self, rel: str) -> list[str]:
        return self.listing(rel) or []

    # -- the root's own directories ---------------------------------------------------

    def top(self) -> None:
        self.add("metadata", "data root", dirs=[""])
        driver_tops = {home.split("/")[0] for home in _DRIVER_HOMES.get(self.store.driver, ())}
        for name in self.entries(""):
            if name == "containers":
                self.containers()
            elif name == "image":
                self.image()
            elif name in driver_tops:
                self.driver_home(name)
            elif name == "volumes":
                self.volumes()
            elif name == "buildkit":
                self.buildkit(name)
            elif name == "containerd":
                self.containerd(name)
            elif name == "rootfs":
                self.rootfs(name)
            elif name == "devicemapper" and self.store.driver == "devicemapper":
                self.add("devicemapper", name, [name])
            elif name in OTHER_TOP:
                self.add("other", name, [name])
            else:
                self.add(None, name, [name])

    def containers(self) -> None:
        self.add("metadata", "containers", dirs=["containers"])
        for cid in self.entries("containers"):
            rel = f"containers/{cid}"
            names = self.listing(rel)
            if names is None:
                self.add(None, rel, [rel])
                continue
            if "config.v2.json" not in names:
                self.add("orphans", rel, [rel], why=WHY_CONTAINER, reclaimable=True)
                continue
            stopped = self._stopped(cid)
            logs = [f"{rel}/{n}" for n in names if n.startswith(f"{cid}-json.log")]
            rest = [f"{rel}/{n}" for n in names if not n.startswith(f"{cid}-json.log")]
            if logs:
                self.add("container_logs", cid, logs, reclaimable=stopped)
            self.add("container_other", cid, rest, dirs=[rel], reclaimable=stopped)

    def _stopped(self, cid: str) -> bool:
        ctr = self.store.containers.get(cid)  # type: ignore[call-overload]
        return ctr is not None and not (ctr.running or ctr.paused or ctr.restarting)

    def image(self) -> None:
        self.add("metadata", "image", dirs=["image"])
        driver = self.store.driver
        for name in self.entries("image"):
            rel = f"image/{name}"
            if name != driver:
                self.add("metadata", rel, [rel])
                continue
            self.add("metadata", rel, dirs=[rel])
            for sub in self.entries(rel):
                if sub == "layerdb":
                    self.layerdb(f"{rel}/layerdb")
                else:
                    self.add("metadata", f"{rel}/{sub}", [f"{rel}/{sub}"])

    def layerdb(self, rel: str) -> None:
        self.add("metadata", rel, dirs=[rel])
        present = self._driver_ids()
        for sub in self.entries(rel):
            path = f"{rel}/{sub}"
            if sub == "sha256":
                self.add("metadata", path, dirs=[path])
                for hex_id in self.entries(path):
                    if hex_id.endswith("-removing"):     # filestore.go Remove's rename
                        self.add("orphans", f"{path}/{hex_id}", [f"{path}/{hex_id}"],
                                 why=WHY_REMOVING, reclaimable=True)
                        continue
                    layer = self.store.layers.get(ChainID(f"sha256:{hex_id}"))
                    gone = layer is not None and present is not None \
                        and layer.cache_id not in present
                    if gone:
                        self.add("orphans", f"{path}/{hex_id}", [f"{path}/{hex_id}"],
                                 why=WHY_LAYER_ENTRY, reclaimable=True)
                    else:
                        self.add("metadata", f"{path}/{hex_id}", [f"{path}/{hex_id}"])
            elif sub == "tmp":
                self.add("metadata", path, dirs=[path])
                for name in self.entries(path):
                    self.add("orphans", f"{path}/{name}", [f"{path}/{name}"], why=WHY_TEMP,
                             reclaimable=True)
            else:
                self.add("metadata", path, [path])

    def _driver_ids(self) -> set[str] | None:
        homes = _DRIVER_HOMES.get(self.store.driver)
        if not homes:
            return None
        return set(self.entries(homes[0]))

    def driver_home(self, top: str) -> None:
        homes = _DRIVER_HOMES[self.store.driver]
        owners = self._owners()
        listed: set[str] = set()
        for home in homes:
            for i in range(1, home.count("/") + 2):
                d = "/".join(home.split("/")[:i])
                if d.split("/")[0] == top and d not in listed:
                    listed.add(d)
                    self.add("metadata", d, dirs=[d])
        for home in homes:
            if home.split("/")[0] != top:
                continue
            for name in self.entries(home):
                self._driver_entry(home, name, owners)
        for d in sorted(listed):
            for name in self.entries(d):
                rel = f"{d}/{name}"
                if rel not in listed and d not in homes:
                    self.add("metadata" if name == "backingFsBlockDev" else None, rel, [rel])

    def _driver_entry(self, home: str, name: str, owners: dict[str, Claim]) -> None:
        rel = f"{home}/{name}"
        owner = owners.get(name)
        if owner is not None:
            self.add(owner.category, owner.item, [rel], rank=owner.rank,
                     reclaimable=owner.reclaimable, shared=owner.shared)
        elif name in ("l", "backingFsBlockDev"):
            self.add("metadata", rel, [rel])          # overlay2's short links; quota probe
        elif name.endswith("-removing"):
            self.add("orphans", rel, [rel], why=WHY_REMOVING, reclaimable=True)
        else:
            self.add("orphans", rel, [rel], why=WHY_LAYER_DIR, reclaimable=True)

    def _owners(self) -> dict[str, Claim]:
        """Who owns each driver ID: a layer (by its depth in its chain), a container's
        read-write and init layers, a BuildKit snapshot."""
        store = self.store
        owners: dict[str, Claim] = {}
        for sid in self.build_snapshots:
            owners[sid] = Claim("build_cache", sid, reclaimable=True)
        for mount in store.mounts.values():
            stopped = self._stopped(mount.name)
            for mid in (mount.mount_id, mount.init_id):
                if mid:
                    owners[mid] = Claim("container_layers", mount.name, reclaimable=stopped)
        for layer in store.layers.values():
            cid = layer.chain_id
            only_cache = cid not in self.images_of and cid in store.build_cache_holds
            category = "build_cache" if only_cache else "image_layers"
            owners[layer.cache_id] = Claim(category, cid, rank=len(store.chain(cid)),
                                           reclaimable=cid not in self.used,
                                           shared=self.images_of.get(cid, 0) > 1)
        return owners

    def volumes(self) -> None:
        self.add("metadata", "volumes", dirs=["volumes"])
        in_use = {m.get("Name") for ctr in self.store.containers.values()
                  for m in ctr.mounts if isinstance(m, dict) and m.get("Type") == "volume"}
        for name in self.entries("volumes"):
            rel = f"volumes/{name}"
            if name == "metadata.db":
                self.add("other", rel, [rel])
            elif name == "backingFsBlockDev":
                self.add("metadata", rel, [rel])
            else:
                self.add("volumes", name, [rel], reclaimable=name not in in_use)

    def buildkit(self, rel: str) -> None:
        """BuildKit's databases are the daemon's (`other`); its content, executor and
        cache mounts are the build cache's."""
        self.add("other", rel, dirs=[rel])
        for name in self.entries(rel):
            path = f"{rel}/{name}"
            if name.endswith(".db") or name == "workerid":
                self.add("other", path, [path])
            elif name.startswith("containerd-") and self.listing(path) is not None:
                self.buildkit(path)
            else:
                self.add("build_cache", path, [path], reclaimable=True)

    def containerd(self, rel: str) -> None:
        """The containerd dockerd runs (``containerd/daemon``): its content and
        snapshots, and its own state."""
        self.add("metadata", rel, dirs=[rel])
        for name in self.entries(rel):
            path = f"{rel}/{name}"
            if name != "daemon":
                self.add("metadata", path, [path])
            elif self.cstate is not None and self.cstate.base == path:
                self.containerd_root(path)
            else:
                self.add("metadata", path, dirs=[path])
                for plugin in self.entries(path):
                    sub = f"{path}/{plugin}"
                    self.add(_plugin_category(plugin), sub, [sub])

    def containerd_root(self, base: str) -> None:
        """A containerd root holding Docker's images: each blob and snapshot with its
        owner, or why nothing owns it (what containerd's collector would remove)."""
        self.add("metadata", base or "containerd root", dirs=[base])
        for plugin in self.entries(base):
            path = _join(base, plugin)
            if plugin == "io.containerd.content.v1.content":
                self.content(path)
            elif plugin.startswith("io.containerd.snapshotter.v1."):
                self.snapshotter(path, plugin.removeprefix("io.containerd.snapshotter.v1."))
            else:
                self.add("metadata", path, [path])

    def content(self, path: str) -> None:
        state = self.cstate
        assert state is not None
        self.add("metadata", path, dirs=[path])
        for name in self.entries(path):
            sub = f"{path}/{name}"
            if name == "blobs":
                self.add("metadata", sub, dirs=[sub])
                for alg in self.entries(sub):
                    self.add("metadata", f"{sub}/{alg}", dirs=[f"{sub}/{alg}"])
                    for hex_ in self.entries(f"{sub}/{alg}"):
                        digest, blob = f"{alg}:{hex_}", f"{sub}/{alg}/{hex_}"
                        if digest in state.live_blobs:
                            self.add("containerd_content", digest, [blob])
                        else:
                            self.add("orphans", blob, [blob], why=WHY_BLOB, reclaimable=True)
            elif name == "ingest":
                self.add("metadata", sub, dirs=[sub])
                for ref in self.entries(sub):
                    self.add("orphans", f"{sub}/{ref}", [f"{sub}/{ref}"], why=WHY_INGEST,
                             reclaimable=True)
            else:
                self.add("metadata", sub, [sub])

    def snapshotter(self, path: str, name: str) -> None:
        state = self.cstate
        assert state is not None
        by_id = {str(s.id): s for s in state.backends.get(name, {}).values()}
        self.add("metadata", path, dirs=[path])
        for entry in self.entries(path):
            sub = f"{path}/{entry}"
            if entry != "snapshots":
                self.add("metadata", sub, [sub])
                continue
            self.add("metadata", sub, dirs=[sub])
            for ident in self.entries(sub):
                snap, rel = by_id.get(ident), f"{sub}/{ident}"
                if snap is None:
                    self.add("orphans", rel, [rel], why=WHY_SNAPSHOT_DIR, reclaimable=True)
                elif (name, snap.key) in state.pruned:
                    self.add("orphans", rel, [rel], why=WHY_SNAPSHOT, reclaimable=True)
                else:
                    self._snapshot(rel, name, snap.key)

    def _snapshot(self, rel: str, snapshotter: str, key: str) -> None:
        """A live snapshot: a Docker container's read-write (or init) layer, BuildKit's
        (held by its leases), or an image's."""
        state = self.cstate
        assert state is not None
        namespace, _, own_key = _split_backend_key(key)
        holder = state.snapshots.get((snapshotter, key))
        ctr = own_key.removesuffix("-init")
        if namespace == state.namespace and ctr in self.store.containers:
            self.add("container_layers", ctr, [rel], reclaimable=self._stopped(ctr))
        elif namespace == state.namespace and holder == "lease":
            self.add("build_cache", own_key, [rel], reclaimable=True)
        else:
            self.add("containerd_snapshots", key, [rel])

    def rootfs(self, rel: str) -> None:
        """``rootfs/<snapshotter>/<container>``: where the containerd store mounts a
        container's root filesystem."""
        self.add("metadata", rel, dirs=[rel])
        for snapshotter in self.entries(rel):
            sub = f"{rel}/{snapshotter}"
            names = self.listing(sub)
            if names is None:
                self.add(None, sub, [sub])
                continue
            self.add("metadata", sub, dirs=[sub])
            for cid in names:
                path = f"{sub}/{cid}"
                if cid in self.store.containers:
                    self.add("container_layers", cid, [path], reclaimable=self._stopped(cid))
                else:
                    self.add("orphans", path, [path], why=WHY_ROOTFS, reclaimable=True)


def _plugin_category(plugin: str) -> str:
    if plugin.startswith("io.containerd.content."):
        return "containerd_content"
    if plugin.startswith("io.containerd.snapshotter."):
        return "containerd_snapshots"
    return "metadata"


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _split_backend_key(key: str) -> tuple[str, str, str]:
    """A snapshotter's key of a namespace's snapshot: ``<namespace>/<n>/<key>``."""
    namespace, _, rest = key.partition("/")
    number, _, own = rest.partition("/")
    return namespace, number, own


def _image(store: Store, image_id: str) -> list:
    image = store.images.get(image_id)  # type: ignore[call-overload]
    return [image] if image is not None else []


def claims(store: Store, listdir: Listdir, build_snapshots: Collection[str] = (),
           containerd: ContainerdState | None = None) -> list[Claim]:
    """Every path of a data root claimed once, lowest layers first.

    Args:
        store: the model, with its build cache (the layers only BuildKit holds).
        listdir: the names in a directory of the root, None when it is none.
        build_snapshots: the graph-driver IDs BuildKit's snapshotter names (its own
            directories beside the layers', which are not orphans).
        containerd: the containerd store Docker's images are in, when it is in this
            root (``containerd/daemon``).
    """
    root = _Root(store, listdir, build_snapshots, containerd)
    root.top()
    return sorted(root.claims, key=lambda c: c.rank)


def containerd_claims(store: Store, listdir: Listdir, containerd: ContainerdState
                      ) -> list[Claim]:
    """Every path of a containerd root of its own (a host's ``/var/lib/containerd``
    beside the data root) claimed once."""
    root = _Root(store, listdir, (), containerd)
    root.root_name = containerd.root
    root.containerd_root("")
    return root.claims


def account(measured: Sequence[tuple[Claim, int, int]], other_filesystems_bytes: int,
            estimate: bool = False) -> RootUsage:
    """The root's usage from each claim's measured (bytes, inodes)."""
    merged: dict[tuple[str, str | None, str, str | None], list] = {}
    for claim, nbytes, inodes in measured:
        key = (claim.root, claim.category, claim.item, claim.why)
        entry = merged.setdefault(key, [claim, 0, 0])
        entry[1] += nbytes
        entry[2] += inodes
    owned = sorted((Owned(c, b, i) for c, b, i in merged.values()),
                   key=lambda o: (-o.bytes, o.claim.category or "", o.claim.item))
    categories = []
    for name in CATEGORIES:
        mine = [o for o in owned if o.claim.category == name]
        categories.append(CategoryUsage(
            name, sum(o.bytes for o in mine), sum(o.inodes for o in mine),
            len({o.claim.item for o in mine}),
            sum(o.bytes for o in mine if o.claim.reclaimable)))
    roots: dict[str, list[int]] = {}
    for claim, nbytes, inodes in measured:
        total = roots.setdefault(claim.root, [0, 0])
        total[0] += nbytes
        total[1] += inodes
    return RootUsage(
        total_bytes=sum(b for _, b, _ in measured),
        total_inodes=sum(i for _, _, i in measured),
        other_filesystems_bytes=other_filesystems_bytes,
        bytes_are_estimate=estimate,
        categories=tuple(categories),
        owned=tuple(owned),
        orphans=tuple(o for o in owned if o.claim.category == "orphans"),
        unexplained=tuple(o for o in owned if o.claim.category is None),
        roots=tuple(RootTotal(name, b, i) for name, (b, i) in roots.items()))


__all__ = ["CATEGORIES", "Claim", "CategoryUsage", "ContainerdState", "FREED_BY", "Owned",
           "RootTotal", "RootUsage", "account", "claims", "containerd_claims"]
