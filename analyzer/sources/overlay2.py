"""overlay2 (and the older aufs and overlay drivers): where each layer lives on disk.

The shared image store comes from graphdriver.py; this module knows the
driver's own directories, so that usage accounting can name every file the
daemon would remove with a layer.

References: moby daemon/graphdriver/overlay2/overlay.go (create, Remove:
``<home>/<id>`` and the ``l/<link>`` symlink), aufs/aufs.go, overlay/overlay.go.
"""
from __future__ import annotations

from .evidence import EvidenceRoot

# Driver directory names, in dockerd's priority order (daemon/graphdriver/driver_linux.go).
DRIVERS = ("overlay2", "devicemapper", "aufs", "overlay", "vfs", "btrfs", "zfs", "fuse-overlayfs")


def layer_paths(root: EvidenceRoot, driver: str, cache_id: str) -> list[str]:
    """The paths the driver's Remove(cache_id) deletes, relative to the data root."""
    if driver == "aufs":
        return [f"aufs/diff/{cache_id}", f"aufs/layers/{cache_id}", f"aufs/mnt/{cache_id}"]
    if driver == "devicemapper":
        # The device's blocks are the pool's to free (engines/slack.py dm_reclaim);
        # on the host filesystem Remove deletes its metadata file and mount point.
        return [f"devicemapper/metadata/{cache_id}", f"devicemapper/mnt/{cache_id}"]
    paths = [f"{driver}/{cache_id}"]
    if driver == "overlay2":
        link = root.read(f"overlay2/{cache_id}/link")
        if link:
            name = link.decode("ascii", "replace").strip()
            if name and "/" not in name and name not in (".", ".."):
                paths.append(f"overlay2/l/{name}")
    return paths


def diff_dir(driver: str, cache_id: str) -> str:
    """Where a layer's own files are (upper dir), relative to the data root."""
    if driver == "aufs":
        return f"aufs/diff/{cache_id}"
    if driver == "overlay":
        return f"overlay/{cache_id}/root"
    if driver == "vfs":
        return f"vfs/dir/{cache_id}"
    return f"{driver}/{cache_id}/diff"
