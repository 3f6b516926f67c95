"""Readers of evidence. ``load(path)`` opens a data root and builds the model."""
from __future__ import annotations

import dataclasses

from ..errors import UnsupportedLayoutError
from ..model import Diagnostic, Store
from . import layout
from .drivers import DRIVERS
from .evidence import EvidenceRoot, open_root
from .graphdriver import read_graphdriver_store


def detect_driver(root: EvidenceRoot) -> tuple[str, list[Diagnostic]]:
    """The graph driver whose image store this root holds.

    A root can keep the image stores of several drivers (the daemon was
    switched); dockerd then refuses to guess unless told. We take the first in
    dockerd's priority order that has a layer store and say so.
    """
    present = [d for d in DRIVERS if root.lstat(layout.ImageRoot(d).layerdb) is not None
               or root.lstat(layout.ImageRoot(d).repositories_json) is not None]
    notes: list[Diagnostic] = []
    if not present:
        if _has_containerd_store(root):
            raise UnsupportedLayoutError(
                root.path, "uses the containerd image store (Docker 29's default for new "
                "installs); this version reads only graph-driver image stores")
        raise UnsupportedLayoutError(
            root.path, "no image store found (expected image/<driver>/ of a Docker data root)")
    if len(present) > 1:
        notes.append(Diagnostic("image", f"image stores of several drivers ({', '.join(present)}); "
                                         f"reading {present[0]}"))
    return present[0], notes


def _has_containerd_store(root: EvidenceRoot) -> bool:
    return any(root.lstat(p) is not None
               for p in (layout.CONTAINERD_META_DB, layout.CONTAINERD_OVERLAYFS))


def load(path: str) -> tuple[EvidenceRoot, Store]:
    root = open_root(path)
    driver, notes = detect_driver(root)
    store = read_graphdriver_store(root, driver)
    if notes:
        store = dataclasses.replace(store, diagnostics=tuple(notes) + store.diagnostics)
    return root, store
