"""The graph drivers: which ones dockerd knows, and what each keeps for a layer.

The image store every driver shares is read by graphdriver.py; where each driver's
directories are is in layout.py. This table says which drivers there are, which
keep layers as plain directories, and the paths the daemon removes with a layer.

References: moby daemon/graphdriver/driver_linux.go (priority), overlay2/overlay.go
(create, Remove: ``<home>/<id>`` and the ``l/<link>`` symlink), aufs/aufs.go,
overlay/overlay.go, vfs/driver.go, devmapper/driver.go.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import EvidenceError, UnsupportedLayoutError
from ..model import Layer
from . import layout
from .evidence import EvidenceRoot

# Driver directory names, in dockerd's priority order (daemon/graphdriver/driver_linux.go).
DRIVERS = ("overlay2", "devicemapper", "aufs", "overlay", "vfs", "btrfs", "zfs", "fuse-overlayfs")
# Drivers whose layers are plain directories (layout.diff_dir knows where).
DIRECTORY_DRIVERS = ("overlay2", "overlay", "aufs", "vfs")
# Drivers whose image store (image/<driver>/) is read, but not their layers' files, with
# what reading them would need. ls, ps, history, rm and image prune answer from the
# image, layer and reference stores, which every driver keeps alike; what needs the
# files (sizes of containers' layers, df, du, verify, diff, export, cp, reclaim's
# bytes) is refused by name, never answered wrong.
METADATA_ONLY = {
    "btrfs": "each layer is a subvolume snapshot of its parent's, btrfs/subvolumes/<cache-id>, "
             "a full tree: its own files need the naive diff against the parent's, and the "
             "bytes removal frees btrfs's shared-extent accounting",
    "zfs": "each layer is a dataset cloned from its parent's snapshot, mounted at "
           "zfs/graph/<cache-id> only while in use: its files are in the pool, which would "
           "have to be imported read-only, and GraphDriver.Data names the pool's dataset",
    "fuse-overlayfs": "its layers are laid out as overlay2's, under fuse-overlayfs/, but "
                      "its whiteouts, opaque directories and GraphDriver.Data have not been "
                      "judged against a real daemon yet",
}
# Of those, the drivers whose GraphDriver.Data (docker inspect) needs more than the data
# root: zfs's names the pool's dataset; fuse-overlayfs's is not judged yet (btrfs has none).
METADATA_UNKNOWN = ("zfs", "fuse-overlayfs")


def metadata_only(root: str, driver: str, what: str) -> EvidenceError | None:
    """The refusal of ``what`` on a driver whose layers' files are not read, or None."""
    if driver not in METADATA_ONLY:
        return None
    answered = "ls, ps, history, rm and image prune" if driver in METADATA_UNKNOWN \
        else "ls, ps, history, inspect, rm and image prune"
    return UnsupportedLayoutError(root, f"the {driver} storage driver is not read yet "
                                        f"({METADATA_ONLY[driver]}): {what} is not answered; "
                                        f"{answered} are")


# Drivers whose image layer directories are each a full copy of the parent's tree plus the
# layer's changes (legacy overlay's root/ hard-links its parent's; vfs copies).
FULL_COPY_IMAGES = ("vfs", "overlay")


def layer_paths(root: EvidenceRoot, driver: str, cache_ids: list[str]
                ) -> tuple[list[list[str]], list[list[EvidenceError]]]:
    """For each cache ID, the paths the driver's Remove(cache_id) deletes, relative to the
    data root, and what kept them from being known: a link file that could not be read
    (the ``l/`` link is then left out)."""
    paths = [layout.driver_dirs(driver, c) for c in cache_ids]
    unread: list[list[EvidenceError]] = [[] for _ in cache_ids]
    if driver == "overlay2":
        # One native batch: a big prune reads tens of thousands of these.
        links = root.read_files([layout.overlay2_dir(c, "link") for c in cache_ids])
        for own, problems, link in zip(paths, unread, links):
            if isinstance(link, EvidenceError):
                problems.append(link)
            elif link:
                name = link.decode("ascii", "replace").strip()
                if name and "/" not in name and name not in (".", ".."):
                    own.append(layout.overlay2_short_link(name))
    return paths, unread


def metadata(driver: str, home: str, chain: Sequence[Layer]) -> dict[str, str] | None:
    """GraphDriver.Data of an image whose layer chain (top first) this is, as the
    driver's GetMetadata gives it, with paths under ``home`` (the data root's path);
    None for a driver that gives none here."""
    if not chain or driver not in ("overlay2", "overlay"):
        return None
    base = home.rstrip("/")
    top = chain[0].cache_id
    if driver == "overlay":
        # An image layer has a root/ (its whole tree): that is all GetMetadata gives.
        return {"RootDir": f"{base}/{layout.diff_dir(driver, top)}"}
    data = {"MergedDir": f"{base}/{layout.overlay2_dir(top, 'merged')}",
            "UpperDir": f"{base}/{layout.diff_dir(driver, top)}",
            "WorkDir": f"{base}/{layout.overlay2_dir(top, 'work')}"}
    if len(chain) > 1:
        data["LowerDir"] = ":".join(f"{base}/{layout.diff_dir(driver, layer.cache_id)}"
                                    for layer in chain[1:])
    return data
