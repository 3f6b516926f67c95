"""verify on the containerd image store: each image's index, manifest and config blobs
against their descriptors, each layer blob against its descriptor, its config's diff ID
and the ``containerd.io/uncompressed`` label of its content record.

containerd checks a blob's digest only when it is written (containerd#953): a blob
changed later, or a label rewritten, goes unnoticed until something pulls it again.
Here the layer blobs are read once each, hashed while they are decompressed (gzip,
zstd or plain, by magic bytes), as for image archives (engines/blobverify.py). A
label that disagrees with what the blob decompresses to is the content record's
fault, not the blob's: the layer is a ``mismatch`` of fault ``metadata``.

From the same read, each layer's unpacked snapshot (the namespace's snapshot keyed
by its chain ID, its directory from the snapshotter's own database) is checked file
by file against the blob's tar stream as it passes, as overlay2 layers are against
tar-split (engines/verify.py): a changed, added, missing or chmod-ed file is named on
its layer. Each file's bytes are compared with the stream's, not hashed: the stream's
hash is the blob's diff ID, taken in the same pass, so files equal to it byte for
byte rebuild that very stream (sources/layerfiles.SnapshotFiles). A container's active
snapshot is not content-addressed and is not judged.

The snapshot chain need not be the layer chain: an image the classic builder made
(``DOCKER_BUILDKIT=0``) has layer snapshots whose parent is the build container's
``-init`` snapshot (its /etc/hosts, /etc/resolv.conf, /etc/hostname, /.dockerenv),
committed with it. Those files are in every mount of the image and no blob holds
them: each such snapshot is named, with its files, as ``unverifiable`` content of
the image — never passed over, and never blamed on the clean layers around it.

References: containerd core/content (Info.Labels), core/images (the
``containerd.io/uncompressed`` label, set by unpack), plugins/content/local/store.go
(blobs/<alg>/<hex>); moby v28.5.2 daemon/containerd (the image ID is the target digest).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from ..ids import ImageID
from ..model import Layer, Store
from .blobverify import ArchiveFilesLike, blob_bytes, verify_archive
from .verify import (MISMATCH, METADATA, ImageResult, LayerFilesLike, LayerResult,
                     Progress, UnverifiableContent, VerifyReport, verify_layer)

UNCOMPRESSED_LABEL = "containerd.io/uncompressed"

# A layer's unpacked snapshot, its tar stream the one given; None when not unpacked.
SnapshotFiles = Callable[[Layer, Iterable[bytes]], "LayerFilesLike | None"]


class ContentFilesLike(ArchiveFilesLike, Protocol):
    def config_digest(self, image_id: ImageID) -> str | None: ...
    def problems(self, image_id: ImageID) -> tuple[str, ...]:
        """What was wrong with the image's index or manifest blobs, as they were read."""


def verify_content(files: ContentFilesLike, store: Store, labels: Mapping[str, str],
                   snapshot_files: SnapshotFiles, image_ids: Sequence[ImageID] | None = None,
                   jobs: int | None = None, progress: Progress | None = None) -> VerifyReport:
    """Every image of the namespace (or those named), each of its layer blobs and, from
    the same read of the blob, the layer's unpacked snapshot.

    Args:
        labels: each blob's ``containerd.io/uncompressed`` label, by digest.
        snapshot_files: a layer's snapshot, read against the stream it is given.
        progress: called with each count of blob bytes read, from worker threads.
    """
    def unpacked(layer: Layer, stream: Iterable[bytes]) -> LayerResult | None:
        found = snapshot_files(layer, stream)
        if found is None:
            return None
        try:
            return verify_layer(layer, found)
        finally:
            found.close()

    report = verify_archive(files, store, image_ids, jobs, files.config_digest, progress,
                            unpacked)
    images = tuple(replace(i, problems=(*files.problems(i.id), *i.problems))
                   for i in report.images)
    layers = tuple(_check_label(layer, labels) for layer in report.layers)
    return replace(report, images=images, layers=layers)


def content_bytes(files: ContentFilesLike, store: Store,
                  image_ids: Sequence[ImageID] | None = None) -> int:
    """The blob bytes ``verify_content`` reads: what its progress ends at."""
    return blob_bytes(files, store, image_ids, files.config_digest)


def _check_label(layer: LayerResult, labels: Mapping[str, str]) -> LayerResult:
    label = labels.get(layer.blob.digest) if layer.blob else None
    if label is None or layer.computed_diff_id is None or label == layer.computed_diff_id:
        return layer
    problem = (f"label {UNCOMPRESSED_LABEL}={label} on {layer.blob.digest}, which "
               f"decompresses to {layer.computed_diff_id}")
    return replace(layer, status=MISMATCH, fault=layer.fault or METADATA,
                   reason="; ".join(filter(None, (layer.reason, problem))))


def snapshots_between(chain: Sequence[str], parent_of: Mapping[str, str]) -> list[str]:
    """The snapshots under an image's top layer snapshot (keyed by its chain ID) that
    are not its layers', walking parents down; a key the store lacks ends the walk."""
    layers = set(chain)
    found: list[str] = []
    seen: set[str] = set()
    key = chain[-1] if chain else ""
    while key and key not in seen:
        seen.add(key)
        if key not in layers:
            found.append(key)
        key = parent_of.get(key, "")
    return found


def with_unverifiable(report: VerifyReport, parent_of: Mapping[str, str],
                      entries: Callable[[str], tuple[str, tuple[str, ...], str | None]]
                      ) -> VerifyReport:
    """Each image with the snapshots in its mounts that are not its layers' named as
    unverifiable content.

    Args:
        parent_of: each snapshot key's parent key (the namespace's, by key).
        entries: a snapshot's directory, its entries, and why they could not be listed.
    """
    named: dict[str, UnverifiableContent] = {}

    def content(key: str) -> UnverifiableContent:
        if key not in named:
            directory, files, damage = entries(key)
            what = ("the classic builder's -init snapshot of its build container"
                    if key.endswith("-init") else "a snapshot no layer blob holds")
            reason = (f"{what} lies between the image's layer snapshots: its files are in "
                      "every mount of the image and no digest covers them")
            named[key] = UnverifiableContent(key, directory, files,
                                             f"{reason}; {damage}" if damage else reason)
        return named[key]

    def image(result: ImageResult) -> ImageResult:
        keys = snapshots_between(result.chain, parent_of)
        return replace(result, unverifiable=tuple(content(k) for k in keys)) if keys \
            else result
    return replace(report, images=tuple(image(i) for i in report.images))
