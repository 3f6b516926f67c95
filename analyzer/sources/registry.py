"""The sources analyzer knows, in the order they are tried: one line each.

Each is detected by what the roots hold, never by a file name; the first that
recognises them reads them. A format recognised but not read gets a line too, so
that its answer is "not read yet", not "nothing here".
"""
from __future__ import annotations

from ..errors import UnsupportedLayoutError
from ..model import Store
from . import Detected, Roots, Source, containerd, dockersave, graphdriver, layout, ocilayout

SOURCES: tuple[Source, ...] = (
    graphdriver,        # image/<driver>/ of a data root: overlay2, devicemapper, aufs, ...
    containerd,         # the containerd image store (Docker 29's default): recognised
    dockersave,         # a `docker save` archive: manifest.json (legacy, or beside a layout)
    ocilayout,          # an OCI image layout: oci-layout, index.json, blobs/
)


def detect(roots: Roots) -> tuple[Source, Detected]:
    """The first source that recognises the roots, and what it found.

    Raises:
        UnsupportedLayoutError: no source recognises them.
    """
    for source in SOURCES:
        found = source.detect(roots)
        if found is not None:
            return source, found
    raise UnsupportedLayoutError(
        roots[layout.DATA_ROOT].path,
        "no image store found (expected image/<driver>/ of a Docker data root, an OCI "
        "image layout or a docker save archive)")


def read(roots: Roots) -> tuple[Detected, Store]:
    """Detect, then read: the model of whatever the roots hold."""
    source, found = detect(roots)
    return found, source.read(roots, found)
