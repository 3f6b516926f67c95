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
from typing import Iterable, Sequence

from ..errors import DaemonError
from ..ids import ImageID
from ..model import ArchiveEntry, Store
from ..reference import Named, tag_name_only


@dataclass(frozen=True, slots=True)
class Blob:
    path: str                   # in the archive
    digest: str | None          # None for a legacy save's files
    bytes: int


@dataclass(frozen=True, slots=True)
class BlobReclaim:
    untagged: tuple[str, ...]
    deleted_blobs: tuple[Blob, ...]     # by path
    held_blobs: tuple[Blob, ...]        # blobs of removed entries that remaining ones hold
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
    gone: dict[str, Blob] = {}
    stays: dict[str, Blob] = {}
    for entry in removed:
        for path, (digest, size) in entry.blobs.items():
            (stays if path in held else gone)[path] = Blob(path, digest, size)
    return BlobReclaim(tuple(dict.fromkeys(untagged)), tuple(gone[p] for p in sorted(gone)),
                       tuple(stays[p] for p in sorted(stays)),
                       sum(b.bytes for b in gone.values()))


def reclaim_images(store: Store, entries: Iterable[ArchiveEntry], args: Sequence[str]
                   ) -> tuple[BlobReclaim, list[str]]:
    """``reclaim IMAGE...`` on an archive: each argument resolved as Docker resolves it —
    a name takes that name away, an ID (or prefix) takes its image's every entry.

    Returns:
        what is freed, and Docker's message for each argument that names nothing.
    """
    from .resolve import lookup
    names: list[str] = []
    image_ids: list[ImageID] = []
    errors: list[str] = []
    found = lookup(store)
    listed = {r.familiar for r in store.references}
    for arg in args:
        try:
            image, ref = found.resolve(arg)
        except DaemonError as exc:
            errors.append(str(exc))
            continue
        familiar = tag_name_only(ref).familiar if isinstance(ref, Named) else None
        if familiar in listed:
            names.append(familiar)
        else:
            image_ids.append(image.id)
    return reclaim_entries(entries, names, image_ids), errors
