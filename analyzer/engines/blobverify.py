"""verify for image archives: each blob against its descriptor, each layer against its diff ID.

A layer blob is read once, as a stream: its bytes are hashed (the digest and size its
descriptor names) while they are decompressed — gzip, zstd, or not at all, chosen by
the blob's own magic bytes as containerd chooses — and the decompressed stream is
hashed again (the diff ID the config names). Hashing runs in the native core and
decompression in ISA-L (``isal``) or ``zstandard``, each with the GIL released, so layers verify in
parallel threads; memory is a few chunks, whatever the layer's size.

A media type that disagrees with the magic bytes is a warning naming the blob, not a
failed digest (the image still loads). Index, manifest and config blobs were checked
when the archive was read (digest and size); a blob that failed there is named in the
warnings and its image is not in the store.

References: containerd archive/compression (DecompressStream by magic bytes),
image-spec descriptor.md (digest and size), config.md (rootfs.diff_ids).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from .. import compression
from ..digest import Sha256
from ..errors import EvidenceError
from ..ids import CacheID, DiffID, ImageID
from ..model import Diagnostic, Layer, Store
from .verify import (MISMATCH, MISSING, OK, BlobResult, ImageResult, LayerResult,
                     VerifyReport, verify_image)

@dataclass(frozen=True, slots=True)
class StreamDigests:
    """What one pass over a layer blob found."""
    digest: str                 # sha256 of the blob's bytes
    size: int                   # the blob's bytes
    compression: str            # gzip | zstd | tar, by magic bytes
    diff_id: DiffID | None      # sha256 of the decompressed stream; None if it broke
    uncompressed_bytes: int
    error: str | None           # why decompression failed


def _hex(sha: Sha256) -> str:
    return "sha256:" + sha.digest().hex()


def digest_stream(chunks: Iterable[bytes]) -> StreamDigests:
    """Hash a layer blob and its decompressed stream in one pass over ``chunks``.

    The compression is read from the first bytes; a stream that breaks or ends early
    still has its blob digest (the rest is hashed), but no diff ID.
    """
    blob, plain = Sha256(), Sha256()
    size = out = 0
    head = b""
    stream: compression.Frames | compression.Plain | None = None
    kind = "tar"
    error: str | None = None

    def feed(data: bytes) -> None:
        nonlocal out, error
        try:
            data = stream.feed(data)
        except compression.StreamError as exc:
            error = str(exc)
            return
        plain.update(data)
        out += len(data)

    for chunk in chunks:
        blob.update(chunk)
        size += len(chunk)
        if stream is None:
            head += chunk
            if len(head) < compression.MAGIC_BYTES:
                continue
            kind, stream = compression.push_decoder(head)
            chunk, head = head, b""
        if error is None:
            feed(chunk)
    if stream is None:
        kind, stream = compression.push_decoder(head)
        feed(head)
    if error is None:
        try:
            stream.finish()
        except compression.StreamError as exc:
            error = str(exc)
    return StreamDigests(_hex(blob), size, kind,
                         None if error else DiffID(_hex(plain)), out,
                         f"{kind} stream: {error}" if error else None)


# -- what verify reads, supplied by the caller -----------------------------------------

class ArchiveFilesLike(Protocol):
    def chunks(self, path: str) -> Iterator[bytes]:
        """A blob's bytes in chunks; EvidenceError when it cannot be read."""
    def descriptor(self, layer: Layer) -> tuple[str | None, int | None, str | None, str | None]:
        """(digest, size, media type, the compression that media type means) of the
        descriptor naming a layer's blob; None where the archive has none."""
    def manifest_ok(self, image_id: ImageID) -> bool | None: ...
    def config(self, image_id: ImageID) -> bytes | None: ...
    def layer_blobs(self, image_id: ImageID) -> Sequence[str]:
        """The paths of an image's layer blobs, bottom first."""


def verify_layer_blob(layer: Layer, files: ArchiveFilesLike
                      ) -> tuple[LayerResult, Diagnostic | None]:
    """A layer's blob against its descriptor and its diff ID; and a warning when its
    bytes are not compressed as its media type says."""
    want_digest, want_size, media_type, want_compression = files.descriptor(layer)

    def result(status: str, reason: str | None, digests: StreamDigests | None) -> LayerResult:
        blob = None
        if want_digest is not None:
            blob = BlobResult(want_digest, media_type, digests is not None
                              and digests.digest == want_digest and digests.size == want_size)
        return LayerResult(layer.chain_id, layer.diff_id, layer.cache_id, status,
                           "content" if status == MISMATCH else None, reason,
                           digests.diff_id if digests else None,
                           digests.size if digests else 0, 0, (),
                           (want_digest,) if want_digest else (), blob)
    try:
        digests = digest_stream(files.chunks(layer.cache_id))
    except EvidenceError as exc:
        return result(MISSING, exc.reason, None), None
    warning = None
    if want_compression is not None and digests.compression != want_compression:
        warning = Diagnostic(layer.cache_id, (
            f"layer {want_digest or layer.diff_id}: media type {media_type} says "
            f"{want_compression}, content is {digests.compression}"))
    problems = []
    if want_digest is not None and digests.digest != want_digest:
        problems.append(f"blob digest want={want_digest} got={digests.digest}")
    if want_size is not None and digests.size != want_size:
        problems.append(f"blob size want={want_size} got={digests.size}")
    if digests.error is not None:
        problems.append(digests.error)
    elif digests.diff_id != layer.diff_id:
        problems.append(f"diff ID want={layer.diff_id} got={digests.diff_id}")
    if problems:
        return result(MISMATCH, "; ".join(problems), digests), warning
    return result(OK, None, digests), warning


def verify_archive(files: ArchiveFilesLike, store: Store,
                   image_ids: Sequence[ImageID] | None = None,
                   jobs: int | None = None,
                   config_digest: Callable[[ImageID], str | None] = lambda i: None
                   ) -> VerifyReport:
    """Every image of the archive (or those named) and each of its layer blobs.

    ``config_digest``: what an image's config must hash to, when not its ID.
    """
    ids = sorted(store.images) if image_ids is None else list(image_ids)
    images = tuple(replace(verify_image(i, files.config(i), store, config_digest(i)),
                           manifest_ok=files.manifest_ok(i)) for i in ids)
    # One check per blob: a layer (one chain ID) can be held as several blobs, gzip in
    # one image and zstd in another, and each must be what its descriptor says.
    order: dict[str, Layer] = {}
    for image in images:
        for chain_id, path in zip(image.chain, files.layer_blobs(image.id)):
            layer = store.layers.get(chain_id)
            if layer is not None:
                order.setdefault(path, replace(layer, cache_id=CacheID(path), source=path))
    todo = list(order.values())
    if jobs == 1 or len(todo) <= 1:
        results = [verify_layer_blob(layer, files) for layer in todo]
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="verify") as pool:
            results = list(pool.map(lambda layer: verify_layer_blob(layer, files), todo))
    found = tuple(w for _, w in results if w)
    return VerifyReport(images, tuple(r for r, _ in results),
                        tuple(str(d) for d in (*store.diagnostics, *found)), found)
