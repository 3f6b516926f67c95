"""verify on the containerd image store: each image's index, manifest and config blobs
against their descriptors, each layer blob against its descriptor, its config's diff ID
and the ``containerd.io/uncompressed`` label of its content record.

containerd checks a blob's digest only when it is written (containerd#953): a blob
changed later, or a label rewritten, goes unnoticed until something pulls it again.
Here the layer blobs are read once each, hashed while they are decompressed (gzip,
zstd or plain, by magic bytes), as for image archives (engines/blobverify.py). A
label that disagrees with what the blob decompresses to is the content record's
fault, not the blob's: the layer is a ``mismatch`` of fault ``metadata``.

Then each layer's unpacked snapshot (the namespace's snapshot keyed by its chain ID,
its directory from the snapshotter's own database) is checked file by file against
the blob's tar stream, as overlay2 layers are against tar-split (engines/verify.py):
a changed, added, missing or chmod-ed file is named on its layer. A container's
active snapshot is not content-addressed and is not judged.

References: containerd core/content (Info.Labels), core/images (the
``containerd.io/uncompressed`` label, set by unpack), plugins/content/local/store.go
(blobs/<alg>/<hex>); moby v28.5.2 daemon/containerd (the image ID is the target digest).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Mapping, Protocol, Sequence

from ..ids import ImageID
from ..model import Layer, Store
from .blobverify import ArchiveFilesLike, verify_archive
from .verify import (MISMATCH, METADATA, LayerFilesLike, LayerResult, VerifyReport,
                     verify_layer)

UNCOMPRESSED_LABEL = "containerd.io/uncompressed"


class ContentFilesLike(ArchiveFilesLike, Protocol):
    def config_digest(self, image_id: ImageID) -> str | None: ...
    def problems(self, image_id: ImageID) -> tuple[str, ...]:
        """What was wrong with the image's index or manifest blobs, as they were read."""


def verify_content(files: ContentFilesLike, store: Store, labels: Mapping[str, str],
                   image_ids: Sequence[ImageID] | None = None,
                   jobs: int | None = None) -> VerifyReport:
    """Every image of the namespace (or those named) and each of its layer blobs.

    Args:
        labels: each blob's ``containerd.io/uncompressed`` label, by digest.
    """
    report = verify_archive(files, store, image_ids, jobs, files.config_digest)
    images = tuple(replace(i, problems=(*files.problems(i.id), *i.problems))
                   for i in report.images)
    layers = tuple(_check_label(layer, labels) for layer in report.layers)
    return replace(report, images=images, layers=layers)


def _check_label(layer: LayerResult, labels: Mapping[str, str]) -> LayerResult:
    label = labels.get(layer.blob.digest) if layer.blob else None
    if label is None or layer.computed_diff_id is None or label == layer.computed_diff_id:
        return layer
    problem = (f"label {UNCOMPRESSED_LABEL}={label} on {layer.blob.digest}, which "
               f"decompresses to {layer.computed_diff_id}")
    return replace(layer, status=MISMATCH, fault=layer.fault or METADATA,
                   reason="; ".join(filter(None, (layer.reason, problem))))


def with_snapshots(report: VerifyReport, store: Store,
                   snapshot_files: Callable[[Layer], LayerFilesLike | None],
                   jobs: int | None = None) -> VerifyReport:
    """Each layer's verdict joined with its unpacked snapshot's, checked file by file
    against the blob's tar stream (engines/verify.verify_layer): content, mode, owner,
    size, link target, xattrs, whiteouts and opaque directories as the overlay
    snapshotter applied them. ``snapshot_files`` gives None for a layer that is not
    unpacked: nothing on disk to judge."""
    def one(result: LayerResult) -> LayerResult:
        layer = store.layers.get(result.chain_id)
        files = snapshot_files(layer) if layer is not None else None
        if files is None:
            return result
        try:
            return joined(result, verify_layer(layer, files))
        finally:
            files.close()

    if jobs == 1 or len(report.layers) <= 1:
        layers = [one(r) for r in report.layers]
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="verify") as pool:
            layers = list(pool.map(one, report.layers))
    return replace(report, layers=tuple(layers))


def joined(blob: LayerResult, snapshot: LayerResult) -> LayerResult:
    """The blob's checks, then the snapshot's files: the first fault decides."""
    reason = "; ".join(r for r in (blob.reason, snapshot.reason and
                                   f"snapshot: {snapshot.reason}") if r)
    return replace(blob, status=snapshot.status if blob.ok else blob.status,
                   fault=blob.fault or snapshot.fault, reason=reason or None,
                   bytes_hashed=blob.bytes_hashed + snapshot.bytes_hashed,
                   files_checked=snapshot.files_checked, bad_files=snapshot.bad_files)
