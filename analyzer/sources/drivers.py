"""The graph drivers: which ones dockerd knows, and what each keeps for a layer.

The image store every driver shares is read by graphdriver.py; where each driver's
directories are is in layout.py. This table says which drivers there are, which
keep layers as plain directories, and the paths the daemon removes with a layer.

References: moby daemon/graphdriver/driver_linux.go (priority), overlay2/overlay.go
(create, Remove: ``<home>/<id>`` and the ``l/<link>`` symlink), aufs/aufs.go,
overlay/overlay.go, vfs/driver.go, devmapper/driver.go.
"""
from __future__ import annotations

from . import layout
from .evidence import EvidenceRoot

# Driver directory names, in dockerd's priority order (daemon/graphdriver/driver_linux.go).
DRIVERS = ("overlay2", "devicemapper", "aufs", "overlay", "vfs", "btrfs", "zfs", "fuse-overlayfs")
# Drivers whose layers are plain directories (layout.diff_dir knows where).
DIRECTORY_DRIVERS = ("overlay2", "overlay", "aufs", "vfs")


def layer_paths(root: EvidenceRoot, driver: str, cache_id: str) -> list[str]:
    """The paths the driver's Remove(cache_id) deletes, relative to the data root."""
    paths = layout.driver_dirs(driver, cache_id)
    if driver == "overlay2":
        link = root.read(layout.overlay2_link_file(cache_id))
        if link:
            name = link.decode("ascii", "replace").strip()
            if name and "/" not in name and name not in (".", ".."):
                paths.append(layout.overlay2_short_link(name))
    return paths
