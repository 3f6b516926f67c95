"""The layers of a container's or image's root filesystem, read through the evidence
root: which directories make the union mount, and each one's entries, whiteouts and
opaque directories in its driver's format (engines/rootfs.py lays them over each other).

Which directories make the stack comes from the model (the mount's init ID and the
image's layer chain), not from the driver's ``lower`` files: a path read from the
evidence is never trusted to say where to look.

References: moby layer/mounted_layer.go (the RW layer over its init layer),
daemon/graphdriver/overlay2/overlay.go (getLowerDirs; whiteouts as 0/0 character
devices, ``trusted.overlay.opaque``), aufs/aufs.go and pkg/archive/whiteouts.go
(``.wh.<name>``, ``.wh..wh..opq``, aufs's own ``.wh..wh.*`` files), vfs/driver.go (each
layer a full copy).
"""
from __future__ import annotations

import stat as stat_mod
from typing import NamedTuple

from ..errors import DaemonError, EvidenceError, UnsupportedLayoutError
from ..model import Container, Diagnostic, Image, Store
from . import layout
from .evidence import EvidenceRoot, Stat
from .drivers import FULL_COPY_IMAGES
from .layerfiles import not_a_directory

# overlayfs marks a directory that hides everything below it; rootless kernels use user.*.
OVERLAY_OPAQUE = ("trusted.overlay.opaque", "user.overlay.opaque")
AUFS_WHITEOUT = ".wh."
AUFS_META = ".wh..wh."                 # aufs's own names: its top-level files, the opaque mark
AUFS_OPAQUE = ".wh..wh..opq"

# Drivers whose layers are directories this module reads; vfs keeps each one a full copy.
UNION_DRIVERS = ("overlay2", "aufs", "overlay")
FULL_COPY_DRIVERS = ("vfs",)
# Legacy overlay's image layers are full copies too (drivers.FULL_COPY_IMAGES); a
# container is an overlay mount of its upper/ over its image's root/.
OVERLAY_WHITEOUTS = ("overlay2", "overlay")


class Stack(NamedTuple):
    """Directories of a union mount, top first, relative to the data root."""
    driver: str
    dirs: tuple[str, ...]


def _readable(driver: str) -> None:
    if driver not in UNION_DRIVERS + FULL_COPY_DRIVERS:
        raise UnsupportedLayoutError(driver, "the files of this driver's layers are not "
                                     "read yet (overlay2, overlay, aufs and vfs are)")


def _chain_dirs(store: Store, top, source: str, kind: str, ident: str
                ) -> tuple[list[str], list[Diagnostic]]:
    chain = store.chain(top)
    problems = []
    if top is not None and (not chain or chain[-1].parent is not None):
        problems.append(Diagnostic(source, "the layer chain is incomplete; the files of "
                                   "the layers found are shown", kind, ident))
    return [layout.diff_dir(store.driver, layer.cache_id) for layer in chain], problems


def container_stacks(store: Store, ctr: Container
                     ) -> tuple[Stack, Stack, list[Diagnostic]]:
    """The container's root filesystem and its parent's (the init layer over the image):
    what the daemon's naive diff mounts and compares. DaemonError as the daemon's when
    the container has no RW layer."""
    _readable(store.driver)
    mount = store.mounts.get(ctr.id)
    if mount is None:
        raise DaemonError(f"RWLayer of container {ctr.name} is unexpectedly nil")
    rw = layout.rw_dir(store.driver, mount.mount_id)
    init = [layout.rw_dir(store.driver, mount.init_id)] if mount.init_id else []
    image, problems = _chain_dirs(store, mount.parent, mount.source, "container", ctr.id)
    if store.driver in FULL_COPY_DRIVERS:
        parent = (init or image)[:1]
        return Stack(store.driver, (rw,)), Stack(store.driver, tuple(parent)), problems
    if store.driver in FULL_COPY_IMAGES:
        image = image[:1]
    return (Stack(store.driver, (rw, *init, *image)), Stack(store.driver, (*init, *image)),
            problems)


def image_stack(store: Store, image: Image) -> tuple[Stack, list[Diagnostic]]:
    """An image's root filesystem: its layer chain."""
    _readable(store.driver)
    dirs, problems = _chain_dirs(store, image.top_layer, image.source, "image", image.id)
    if store.driver in FULL_COPY_IMAGES:
        dirs = dirs[:1]
    return Stack(store.driver, tuple(dirs)), problems


def layer_entries(root: EvidenceRoot, driver: str, rel: str
                  ) -> tuple[dict[str, Stat], list[str], frozenset[str]]:
    """A layer directory's own entries by absolute path inside it ("/etc/hosts"), the
    paths it deletes, and its opaque directories; links never followed. EvidenceError
    when it cannot be read: a view missing a layer would be wrong."""
    st = root.lstat(rel)
    if st is None or not st.is_dir:
        why = not_a_directory(root, rel)
        if why is None:
            raise EvidenceError(rel, "the layer's directory is missing")
        where, _, reason = why.partition(": ")
        raise EvidenceError(where, reason)
    cut = len(rel)
    entries: dict[str, Stat] = {}
    whiteouts: list[str] = []
    opaque: set[str] = set()
    for full, st in root.walk(rel):
        path = full[cut:]
        if not path:
            continue
        head, _, name = path.rpartition("/")
        if driver == "aufs" and path.startswith("/" + AUFS_META):
            continue                # aufs's own files at the layer's top (aufsMetadataSkip)
        if driver == "aufs" and name.startswith(AUFS_WHITEOUT):
            if name == AUFS_OPAQUE:
                opaque.add(head or "/")
            elif not name.startswith(AUFS_META):
                whiteouts.append(f"{head}/{name[len(AUFS_WHITEOUT):]}")
            continue
        if driver in OVERLAY_WHITEOUTS:
            if stat_mod.S_ISCHR(st.mode) and st.rdev == 0:
                whiteouts.append(path)
                continue
            if st.is_dir:
                attrs = root.xattrs(full) or {}
                if any(attrs.get(name) == b"y" for name in OVERLAY_OPAQUE):
                    opaque.add(path)
        entries[path] = st
    return entries, whiteouts, frozenset(opaque)


def stack_entries(root: EvidenceRoot, stack: Stack,
                  cache: dict[str, tuple] | None = None) -> list[tuple]:
    """layer_entries of each directory of a stack, top first (each read once per cache)."""
    cache = {} if cache is None else cache
    out = []
    for rel in stack.dirs:
        if rel not in cache:
            cache[rel] = layer_entries(root, stack.driver, rel)
        out.append(cache[rel])
    return out


def capability(root: EvidenceRoot, rel: str, path: str) -> bytes | None:
    """A file's ``security.capability`` attribute (ChangesDirs compares it: a
    ``setcap`` changes no stat field)."""
    return (root.xattrs(rel + path) or {}).get("security.capability")

