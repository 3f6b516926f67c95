"""Where each store keeps what: every path under a data root, built in one place.

Readers never spell a path: they ask this module, as moby's stores ask
``getLayerFilename``/``contentFile`` and go-containerregistry's layout asks
``Path.path``/``blobPath``. Every path is relative to the evidence root it lies in,
with ``/`` separators, and is only ever opened through that root's safe opener. An
ID argument may be a full ``sha256:<hex>`` or its hex part; a directory name read
from the evidence is passed on as it was read (the opener refuses ``..`` and links).

References: moby daemon/daemon.go (NewDaemon: ``image/<driver>``, ``containers``,
``volumes``), image/fs.go (contentDirName, metadataDirName), layer/filestore.go
(getLayerFilename, getMountFilename, tar-split.json.gz), reference/store.go
(repositories.json), distribution/metadata/v2_metadata_service.go and
v1_id_service.go, container/container.go (config.v2.json), volume/local/local.go
(``_data``); daemon/graphdriver/overlay2/overlay.go (``<id>/diff``, ``<id>/link``,
``l/<name>``), aufs/aufs.go, overlay/overlay.go, vfs/driver.go,
devmapper/deviceset.go (metadataDir, loopback files); containerd
services/server/config (``io.containerd.*`` plugin roots), content/local/store.go
(``blobs/<alg>/<hex>``); opencontainers image-spec image-layout.md, moby
image/tarexport (manifest.json); moby builder/builder-next/controller.go (``buildkit/*.db``).
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from ..ids import hex_part

if TYPE_CHECKING:
    from .evidence import EvidenceRoot

# The evidence roots by name: every path below is relative to the data root.
DATA_ROOT = "data"
CONTAINERD_ROOT = "containerd"          # a system containerd's root, its own evidence root

# -- the data root's own directories (moby daemon.go NewDaemon) ------------------------

CONTAINERS = "containers"
VOLUMES = "volumes"
ENGINE_ID = "engine-id"                 # Docker 23+: the daemon's ID (key.json before)

# dockerd --userns-remap keeps its whole root in a folder of the data root named for the
# host IDs the remapped root user has, "<uid>.<gid>" (daemon_unix.go setupRemappedRoot).
_REMAPPED_ROOT = re.compile(r"\A([0-9]{1,10})\.([0-9]{1,10})\Z")


def remapped_root_ids(name: str) -> tuple[int, int] | None:
    """(uid, gid) of the remapped root user a data root's folder is named for, or None
    when the name is not ``<uid>.<gid>``."""
    m = _REMAPPED_ROOT.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


# Directories whose files are contents (a layer's, a volume's, a container's root),
# never a store's metadata: a reader that builds the model need not keep them.
CONTENT_DIRS = ("diff", "_data", "rootfs", "merged", "work")
# What the model reads of a container's directory (logs and the rest are not read).
CONTAINER_CONFIG = "config.v2.json"
CONTAINER_HOSTCONFIG = "hostconfig.json"
CONTAINER_CONFIG_V1 = "config.json"          # before Docker 1.10


def container_config(container_id: str, name: str = CONTAINER_CONFIG) -> str:
    """``containers/<id>/config.v2.json``: the container as the daemon saved it (before
    1.10: ``config.json``)."""
    return f"{CONTAINERS}/{container_id}/{name}"


def container_json_log(container_id: str) -> str:
    """``containers/<id>/<id>-json.log``: the json-file log driver's current file."""
    return f"{CONTAINERS}/{container_id}/{container_id}-json.log"


# volume/service/db.go: each volume's driver, labels and options (bbolt).
VOLUMES_METADATA_DB = f"{VOLUMES}/metadata.db"


def volume_dir(name: str) -> str:
    return f"{VOLUMES}/{name}"


def volume_data(name: str) -> str:
    """What the local volume driver mounts: ``volumes/<name>/_data``."""
    return f"{VOLUMES}/{name}/_data"


# -- the image, layer and reference stores of a graph driver: image/<driver>/ --------------

IMAGE = "image"
TAR_SPLIT = "tar-split.json.gz"
LAYER_FILES = ("diff", "size", "cache-id", "parent")       # layer/filestore.go getters
MOUNT_FILES = ("mount-id", "init-id", "parent")
IMAGE_METADATA_FILES = ("parent", "lastUpdated")            # image/store.go GetParent, GetLastUpdated


class ImageRoot:
    """``image/<driver>/``: the image store (imagedb), the layer store (layerdb), the
    reference store and the distribution metadata of one graph driver."""

    def __init__(self, driver: str):
        self.driver = driver
        self.base = f"{IMAGE}/{driver}"
        self.repositories_json = f"{self.base}/repositories.json"
        self.imagedb = f"{self.base}/imagedb"
        self.image_contents = f"{self.imagedb}/content/sha256"
        self.image_metadata_dir = f"{self.imagedb}/metadata/sha256"
        self.layerdb = f"{self.base}/layerdb"
        self.layers = f"{self.layerdb}/sha256"
        self.mounts = f"{self.layerdb}/mounts"
        self.diffid_by_digest_dir = f"{self.base}/distribution/diffid-by-digest/sha256"

    def image_config(self, image_id: str) -> str:
        """image/fs.go contentFile: the config bytes the image ID is the sha256 of."""
        return f"{self.image_contents}/{hex_part(image_id)}"

    def image_metadata(self, image_id: str, key: str | None = None) -> str:
        """image/fs.go metadataDir, or one of its files (``parent``, ``lastUpdated``)."""
        rel = f"{self.image_metadata_dir}/{hex_part(image_id)}"
        return rel if key is None else f"{rel}/{key}"

    def layer(self, chain_id: str, file: str | None = None) -> str:
        """layer/filestore.go getLayerFilename: a layer's directory, or one of its files."""
        rel = f"{self.layers}/{hex_part(chain_id)}"
        return rel if file is None else f"{rel}/{file}"

    def mount(self, name: str, file: str | None = None) -> str:
        """layer/filestore.go getMountFilename: a container's RW layer entry, or a file of it."""
        rel = f"{self.mounts}/{name}"
        return rel if file is None else f"{rel}/{file}"

    def v2metadata_by_diffid(self, diff_id: str) -> str:
        """The registry blobs a layer was pulled as or pushed to (JSON)."""
        return f"{self.base}/distribution/v2metadata-by-diffid/sha256/{hex_part(diff_id)}"

    def diffid_by_digest(self, blob_digest: str) -> str:
        """The diff ID a pulled registry blob decompressed to (text)."""
        return f"{self.diffid_by_digest_dir}/{hex_part(blob_digest)}"


# -- before Docker 1.10: the graph (one directory per v1 image and its layer) -----------

GRAPH = "graph"


def graph_dir(v1_id: str, file: str | None = None) -> str:
    """``graph/<id>``, or one of its files (graph/graph.go: jsonPath, layersize,
    checksum, tar-data.json.gz)."""
    return f"{GRAPH}/{v1_id}" if file is None else f"{GRAPH}/{v1_id}/{file}"


def repositories_v1(driver: str) -> str:
    """``repositories-<driver>``: the tag store before 1.10 (graph/tags.go)."""
    return f"repositories-{driver}"


# -- graph-driver directories: where a cache ID's files are ------------------------------

def diff_dir(driver: str, cache_id: str) -> str:
    """Where a layer's own files are (its upper directory)."""
    if driver == "aufs":
        return f"{AUFS_DIFF}/{cache_id}"
    if driver == "overlay":
        return overlay_dir(cache_id, "root")
    if driver == "vfs":
        return f"vfs/dir/{cache_id}"
    return f"{driver}/{cache_id}/diff"


# aufs/aufs.go: each layer's and container's parents' IDs, nearest first, one a line.
AUFS_LAYERS = "aufs/layers"
AUFS_DIFF = "aufs/diff"


def aufs_layers(cache_id: str) -> str:
    return f"{AUFS_LAYERS}/{cache_id}"


def rw_dir(driver: str, mount_id: str) -> str:
    """Where a container's (or its init layer's) own files are: legacy overlay's
    ``upper``, every other driver's diff directory."""
    return overlay_dir(mount_id, "upper") if driver == "overlay" else diff_dir(driver, mount_id)


def driver_dirs(driver: str, cache_id: str) -> list[str]:
    """The paths the driver's Remove(cache_id) deletes, but overlay2's ``l/`` link (whose
    name only the layer's ``link`` file knows)."""
    if driver == "aufs":
        return [diff_dir(driver, cache_id), aufs_layers(cache_id), f"aufs/mnt/{cache_id}"]
    if driver == "devicemapper":
        # The device's blocks are the pool's to free (engines/slack.py dm_reclaim);
        # on the host filesystem Remove deletes its metadata file and mount point.
        return [dm_device_metadata(cache_id), f"{DM_HOME}/mnt/{cache_id}"]
    if driver == "vfs":
        return [diff_dir(driver, cache_id)]      # moby vfs: <home>/dir/<id>
    return [f"{driver}/{cache_id}"]


def overlay2_dir(cache_id: str, sub: str) -> str:
    """``overlay2/<id>/<sub>``: ``diff`` (upper), ``work``, ``merged``, ``link``, ``lower``."""
    return f"overlay2/{cache_id}/{sub}"


def overlay2_short_link(name: str) -> str:
    return f"overlay2/l/{name}"


def overlay_dir(cache_id: str, sub: str) -> str:
    """Legacy overlay's ``overlay/<id>/<sub>``: ``root`` (an image layer: its parent's
    tree hard-linked, plus its changes), or a container's and an init layer's ``upper``
    (over its image's ``root``), ``work``, ``merged``, ``lower-id``."""
    return f"overlay/{cache_id}/{sub}"


# -- devicemapper: DeviceSet's home ------------------------------------------------------

DM_HOME = "devicemapper"
DM_METADATA_DIR = f"{DM_HOME}/metadata"                     # one devInfo JSON per device
DM_DEVICE_SET_FILE = "deviceset-metadata"
DM_TRANSACTION_FILE = "transaction-metadata"
DM_DATA_FILE = f"{DM_HOME}/devicemapper/data"              # loop-lvm pool files
DM_METADATA_FILE = f"{DM_HOME}/devicemapper/metadata"


def dm_device_metadata(device_hash: str) -> str:
    """deviceset.go metadataFile: ``metadata/<hash>`` (the base device's is ``base``)."""
    return f"{DM_METADATA_DIR}/{device_hash}"


# -- a containerd root: each plugin's directory ----------------------------------------

CONTAINERD_DAEMON = "containerd/daemon"      # the containerd dockerd runs, in its data root


def has_containerd_store(root: EvidenceRoot, base: str = CONTAINERD_DAEMON) -> bool:
    """Whether ``base`` in ``root`` holds a containerd root (its metadata database)."""
    return root.lstat(ContainerdRoot(base).meta_db) is not None


def containerd_sibling(data_root: str) -> str:
    """Where a host keeps the system containerd's root beside Docker's data root
    (``/var/lib/docker`` → ``/var/lib/containerd``)."""
    return os.path.join(os.path.dirname(os.path.abspath(data_root.rstrip("/"))), "containerd")


class ContainerdRoot:
    """A containerd root's plugin directories, below ``base``: the path of the root in
    the evidence root that holds it (``containerd/daemon`` in a data root; "" when the
    containerd root is an evidence root of its own)."""

    def __init__(self, base: str = CONTAINERD_DAEMON):
        self.base = base
        self.meta_db = self._at("io.containerd.metadata.v1.bolt/meta.db")
        self.blobs = self._at("io.containerd.content.v1.content/blobs")

    def _at(self, rel: str) -> str:
        return f"{self.base}/{rel}" if self.base else rel

    def blob(self, digest: str) -> str:
        """content/local/store.go blobPath: ``blobs/<alg>/<hex>``."""
        return f"{self.blobs}/{digest.replace(':', '/', 1)}"

    def snapshotter(self, name: str) -> str:
        """A snapshotter plugin's root: ``io.containerd.snapshotter.v1.<name>``."""
        return self._at(f"io.containerd.snapshotter.v1.{name}")

    def snapshotter_db(self, name: str) -> str:
        """The snapshotter's own bbolt database (snapshot IDs, kinds, parents)."""
        return f"{self.snapshotter(name)}/metadata.db"

    def snapshot(self, snapshotter: str, ident: int | str) -> str:
        """A snapshot's directory (overlay: ``snapshots/<id>``, its files in ``fs``)."""
        return f"{self.snapshotter(snapshotter)}/snapshots/{ident}"

    def snapshot_upper(self, snapshotter: str, ident: int | str) -> str:
        """overlay.go upperPath: a snapshot's own files, ``snapshots/<id>/fs``."""
        return f"{self.snapshot(snapshotter, ident)}/fs"


# -- image archives: an OCI image layout (directory or tar), a docker save ---------------

OCI_LAYOUT_FILE = "oci-layout"               # {"imageLayoutVersion": ...}
OCI_INDEX = "index.json"
OCI_BLOBS = "blobs"
DOCKER_SAVE_MANIFEST = "manifest.json"      # docker save: Config, RepoTags, Layers
DOCKER_SAVE_LAYER = "layer.tar"             # a legacy save's <id>/layer.tar


def oci_blob(digest: str) -> str:
    """image-spec image-layout.md: ``blobs/<alg>/<encoded>`` (gcr layout blobPath)."""
    return f"{OCI_BLOBS}/{digest.replace(':', '/', 1)}"


# -- BuildKit (builder-next): buildkit/ --------------------------------------------------

BUILDKIT_METADATA_DB = "buildkit/metadata_v2.db"
BUILDKIT_SNAPSHOTS_DB = "buildkit/snapshots.db"
BUILDKIT_CONTAINERD_DB = "buildkit/containerdmeta.db"
BUILDKIT_LEGACY_METADATA_DB = "buildkit/metadata.db"        # migrated to v2 on start


def buildkit_worker_metadata_db(snapshotter: str) -> str:
    """The cache records of BuildKit's containerd worker, which a daemon on the
    containerd image store runs (buildkit worker/containerd: ``containerd-<snapshotter>``)."""
    return f"buildkit/containerd-{snapshotter}/metadata_v2.db"


# -- the other way: what a path under the root belongs to --------------------------------

def path_owner(driver: str, rel: str) -> tuple[str, str] | None:
    """(kind, ID) a path under the data root belongs to, read from where it is: kind is
    ``cache_id`` (a layer's or a container's graph-driver directory, a device's metadata),
    ``chain_id``, ``container_id``, ``image_id``, ``volume``, or ``link`` (an overlay2
    ``l/`` name, which only its target resolves); None for a path of no such object."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if len(parts) < 2:
        return None
    images = ImageRoot(driver)
    for prefix, kind in ((images.layers, "chain_id"), (images.mounts, "container_id"),
                         (images.image_contents, "image_id"),
                         (images.image_metadata_dir, "image_id"),
                         (CONTAINERS, "container_id"), (VOLUMES, "volume")):
        depth = prefix.count("/") + 1
        if parts[:depth] == prefix.split("/") and len(parts) > depth:
            return kind, parts[depth]
    head, second = parts[0], parts[1]
    if head == "overlay2":
        if second == "l":
            return ("link", parts[2]) if len(parts) > 2 else None
        return "cache_id", second
    if head in ("aufs", "vfs", DM_HOME) and len(parts) > 2 and \
            parts[1] in ("diff", "layers", "mnt", "dir", "metadata"):
        return "cache_id", parts[2]
    if head == "overlay":
        return "cache_id", second
    # btrfs: <home>/subvolumes/<id>; zfs: the dataset's mount point <home>/graph/<id>.
    if (head, second) in (("btrfs", "subvolumes"), ("zfs", "graph")) and len(parts) > 2:
        return "cache_id", parts[2]
    return None
