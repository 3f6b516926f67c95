"""reclaim on an image archive: the blobs that removing references leaves unreferenced.

An archive's top-level entries (``index.json``'s manifests, ``manifest.json``'s
images) are its only roots: an entry names its images, and holds every blob below it
(indexes, manifests, configs, layers). Removing a name takes it off each entry that
carries it; an entry left without names is gone, as ``skopeo``/``regctl`` delete a tag
from a layout; removing an image by ID takes every entry that leads to it. The bytes
freed are those of the blobs no remaining entry holds — what no other tool tells.

References: image-spec image-layout.md (index.json as the layout's roots);
containerd content garbage collection (what no root reaches is removed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from ..ids import ImageID
from ..model import ArchiveEntry


@dataclass(frozen=True, slots=True)
class BlobReclaim:
    untagged: tuple[str, ...]
    deleted_blobs: tuple[tuple[str, int], ...]    # (path in the archive, bytes), by path
    held_blobs: tuple[tuple[str, int], ...]       # blobs of removed entries that stay
    bytes_freed: int


def reclaim_entries(entries: Iterable[ArchiveEntry], names: Iterable[str],
                    image_ids: Iterable[ImageID]) -> BlobReclaim:
    """Remove ``names`` (familiar references) and the images ``image_ids`` from the
    archive's entries; what is freed and what the remaining entries still hold."""
    names, image_ids = set(names), set(image_ids)
    untagged: list[str] = []
    kept: list[ArchiveEntry] = []
    removed: list[ArchiveEntry] = []
    for entry in entries:
        if entry.images & image_ids:
            untagged.extend(entry.names)
            removed.append(entry)
            continue
        left = [n for n in entry.names if n not in names]
        untagged.extend(n for n in entry.names if n in names)
        (removed if entry.names and not left else kept).append(entry)
    held = {path for entry in kept for path in entry.blobs}
    gone: dict[str, int] = {}
    stays: dict[str, int] = {}
    for entry in removed:
        for path, size in entry.blobs.items():
            (stays if path in held else gone)[path] = size
    return BlobReclaim(tuple(dict.fromkeys(untagged)), tuple(sorted(gone.items())),
                       tuple(sorted(stays.items())), sum(gone.values()))
