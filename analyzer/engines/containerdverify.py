"""verify on the containerd image store: each image's index, manifest and config blobs
against their descriptors, each layer blob against its descriptor, its config's diff ID
and the ``containerd.io/uncompressed`` label of its content record.

containerd checks a blob's digest only when it is written (containerd#953): a blob
changed later, or a label rewritten, goes unnoticed until something pulls it again.
Here the layer blobs are read once each, hashed while they are decompressed (gzip,
zstd or plain, by magic bytes), as for image archives (engines/blobverify.py). A
label that disagrees with what the blob decompresses to is the content record's
fault, not the blob's: the layer is a ``mismatch`` of fault ``metadata``.

References: containerd core/content (Info.Labels), core/images (the
``containerd.io/uncompressed`` label, set by unpack), plugins/content/local/store.go
(blobs/<alg>/<hex>); moby v28.5.2 daemon/containerd (the image ID is the target digest).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Protocol, Sequence

from ..ids import ImageID
from ..model import Store
from .blobverify import ArchiveFilesLike, verify_archive
from .verify import MISMATCH, METADATA, LayerResult, VerifyReport

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
