"""verify for image archives: each blob against its descriptor, each layer against its diff ID.

A layer blob is read once, as a stream: its bytes are hashed (the digest and size its
descriptor names) while they are decompressed — gzip, zstd, or not at all, chosen by
the blob's own magic bytes as containerd chooses — and the decompressed stream is
hashed again (the diff ID the config names); where the layer is also unpacked
(containerd's snapshots), its files are judged against that same stream as it passes
(engines/containerdverify.py). Hashing runs in the native core and decompression in
ISA-L (``isal``) or ``zstandard``, each with the GIL released, so a blob is read and
decompressed in a thread of its own beside the one that hashes it and what comes out
(and judges that) — the two halves of ``zstd -dc | openssl dgst`` — and layers
verify in parallel threads; memory is a few chunks, whatever the layer's size. The
blob's bytes are what verify's progress counts.

A media type that disagrees with the magic bytes is a warning naming the blob, not a
failed digest (the image still loads). Index, manifest and config blobs were checked
when the archive was read (digest and size); a blob that failed there is named in the
warnings and its image is not in the store.

References: containerd archive/compression (DecompressStream by magic bytes),
image-spec descriptor.md (digest and size), config.md (rootfs.diff_ids).
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Iterator, Protocol, Sequence, TypeVar

from .. import compression
from ..goapi.runtime import num_cpu
from ..digest import Sha256
from ..errors import EvidenceError
from ..ids import CacheID, DiffID, ImageID
from ..model import Diagnostic, Layer, Store
from .verify import (MISMATCH, MISSING, OK, BlobResult, ImageResult, LayerResult,
                     Progress, VerifyReport, verify_image)

@dataclass(frozen=True, slots=True)
class StreamDigests:
    """What one pass over a layer blob found."""
    digest: str                 # sha256 of the blob's bytes
    size: int                   # the blob's bytes
    compression: str            # gzip | zstd | tar, by magic bytes
    diff_id: DiffID | None      # sha256 of the decompressed stream; None if it broke
    uncompressed_bytes: int
    error: str | None           # why decompression failed


T = TypeVar("T")

# Chunks and pieces (a megabyte each at most: a source's chunk, compression.OUTPUT_LIMIT)
# made ahead of the hashing: enough that neither thread waits on the other's jitter,
# few enough to stay megabytes.
AHEAD = 8


def _ahead(items: Iterator[T], depth: int = AHEAD) -> Iterator[T]:
    """``items``, made in a thread of their own up to ``depth`` ahead of the caller's.

    What the maker raises is raised here, in its place in the sequence. A caller that
    stops early (closes this generator) stops the maker at its next item, and the maker
    has ended when this returns.
    """
    handoff: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def make() -> None:
        try:
            for item in items:
                handoff.put((item, None))
                if stop.is_set():
                    return
            handoff.put((end, None))
        except BaseException as exc:    # noqa: BLE001 - raised again in the caller
            handoff.put((end, exc))

    maker = threading.Thread(target=make, name="verify-stream", daemon=True)
    maker.start()
    try:
        while True:
            item, exc = handoff.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        while maker.is_alive():     # room for the maker's last put, then it sees stop
            try:
                while True:
                    handoff.get_nowait()
            except queue.Empty:
                pass
            maker.join(0.05)


def reader_beside(layers_at_once: int, judged: bool = False) -> bool:
    """Whether each layer's blob is read and decompressed in a thread beside its hashing:
    when every layer verified at once can have two cores. Where they cannot, the layers
    already keep the cores busy, and twice their threads would only take turns with the
    GIL (a thread the system preempts holding it stalls its partner).

    A layer whose unpacked files are ``judged`` from its stream (containerd's snapshots)
    has its reader beside wherever there are two cores, however many layers: its halves
    weigh alike (reading and decompressing; hashing and comparing each file), and one
    thread doing both spends a fifth more CPU than the two (a 600 MB image in two gzip
    layers: 3.0 CPU s, 2.6 split; benchmarks/bench_snapshot_verify.py), so a thread a
    layer (``-j 2``) was slower than one layer at a time with its reader (``-j 1``), 0.93x
    on two cores; layers of unlike weight (one of small files) now share the cores."""
    return 2 * (1 if judged else layers_at_once) <= num_cpu()


def _hex(sha: Sha256) -> str:
    return "sha256:" + sha.digest().hex()


# What the reading thread hands the hashing one, in the blob's order.
_READ, _PIECE, _BROKEN, _UNREADABLE = range(4)


class BlobStream:
    """One pass over a layer blob: iterating it yields the decompressed stream (for a
    tar check to cut, engines/containerdverify.py) while the blob's own bytes and the
    decompressed ones are hashed as they pass. One thread reads and decompresses, the
    caller's hashes both (the lighter half, beside whatever judges the stream), or,
    not ``beside``, the caller's does all. A
    stream that breaks ends there (the rest of the blob is still read and hashed);
    ``digests()`` reads the blob to its end first, whatever a consumer left unread."""

    def __init__(self, chunks: Iterable[bytes], progress: Progress | None = None,
                 beside: bool = True):
        self._blob, self._plain = Sha256(), Sha256()
        self.size = self.out = 0
        self.error: str | None = None
        self.unreadable: EvidenceError | None = None
        self._progress = progress
        self._decoder = compression.Decoder()
        made = self._made(chunks)
        self._pieces = self._hashed(_ahead(made) if beside else made)

    def _made(self, chunks: Iterable[bytes]) -> Iterator[tuple[int, object]]:
        """The reading thread's side: each chunk, then the pieces it decompresses to."""
        broken = False
        try:
            for chunk in chunks:
                yield _READ, chunk
                if not broken:
                    try:
                        for piece in self._decoder.feed(chunk):
                            yield _PIECE, piece
                    except compression.StreamError as exc:
                        broken = True
                        yield _BROKEN, str(exc)
        except EvidenceError as exc:
            yield _UNREADABLE, exc
            return
        if not broken:
            try:
                for piece in self._decoder.finish():
                    yield _PIECE, piece
            except compression.StreamError as exc:
                yield _BROKEN, str(exc)

    def _hashed(self, items: Iterator[tuple[int, object]]) -> Iterator[bytes]:
        for tag, item in items:
            if tag == _READ:
                self._blob.update(item)
                self.size += len(item)
                if self._progress is not None:
                    self._progress(len(item))
            elif tag == _PIECE:
                self._plain.update(item)
                self.out += len(item)
                yield item
            elif tag == _BROKEN:
                self.error = item
            else:
                self.unreadable = item

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces

    def digests(self) -> StreamDigests:
        for _ in self._pieces:
            pass
        kind = self._decoder.kind
        return StreamDigests(_hex(self._blob), self.size, kind,
                             None if self.error else DiffID(_hex(self._plain)), self.out,
                             f"{kind} stream: {self.error}" if self.error else None)


def digest_stream(chunks: Iterable[bytes], progress: Progress | None = None,
                  beside: bool = True) -> StreamDigests:
    """Hash a layer blob and its decompressed stream in one pass over ``chunks``.

    The compression is read from the first bytes; a stream that breaks or ends early
    still has its blob digest (the rest is hashed), but no diff ID.
    """
    return BlobStream(chunks, progress, beside).digests()


# -- what verify reads, supplied by the caller -----------------------------------------

class ArchiveFilesLike(Protocol):
    def chunks(self, path: str) -> Iterator[bytes]:
        """A blob's bytes in chunks; EvidenceError when it cannot be read."""
    def blob_bytes(self, path: str) -> int:
        """A blob file's bytes as it lies (0 when it is not there)."""
    def descriptor(self, layer: Layer) -> tuple[str | None, int | None, str | None, str | None]:
        """(digest, size, media type, the compression that media type means) of the
        descriptor naming a layer's blob; None where the archive has none."""
    def manifest_ok(self, image_id: ImageID) -> bool | None: ...
    def config(self, image_id: ImageID) -> bytes | None: ...
    def layer_blobs(self, image_id: ImageID) -> Sequence[str]:
        """The paths of an image's layer blobs, bottom first."""


# Judges a layer's unpacked files against the blob's decompressed stream as it passes
# (containerd's snapshots); None when the layer is not unpacked.
UnpackedCheck = Callable[[Layer, Iterable[bytes]], "LayerResult | None"]


def verify_layer_blob(layer: Layer, files: ArchiveFilesLike, progress: Progress | None = None,
                      unpacked: UnpackedCheck | None = None, beside: bool = True
                      ) -> tuple[LayerResult, Diagnostic | None]:
    """A layer's blob against its descriptor and its diff ID — and, from the same read,
    its unpacked files when ``unpacked`` judges them; and a warning when its bytes are
    not compressed as its media type says."""
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
    stream = BlobStream(files.chunks(layer.cache_id), progress, beside)
    files_result = unpacked(layer, stream) if unpacked is not None else None
    digests = stream.digests()
    if stream.unreadable is not None:
        return result(MISSING, stream.unreadable.reason, None), None
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
    verdict = result(MISMATCH, "; ".join(problems), digests) if problems \
        else result(OK, None, digests)
    # Files judged against a stream that broke off would be judged against part of it.
    if files_result is not None and digests.error is None:
        verdict = joined(verdict, files_result)
    return verdict, warning


def joined(blob: LayerResult, unpacked: LayerResult) -> LayerResult:
    """The blob's checks, then the unpacked files': the first fault decides."""
    reason = "; ".join(r for r in (blob.reason, unpacked.reason and
                                   f"snapshot: {unpacked.reason}") if r)
    return replace(blob, status=unpacked.status if blob.ok else blob.status,
                   fault=blob.fault or unpacked.fault, reason=reason or None,
                   bytes_hashed=blob.bytes_hashed + unpacked.bytes_hashed,
                   files_checked=unpacked.files_checked, bad_files=unpacked.bad_files)


def _images(files: ArchiveFilesLike, store: Store, image_ids: Sequence[ImageID] | None,
            config_digest: Callable[[ImageID], str | None]) -> tuple[ImageResult, ...]:
    ids = sorted(store.images) if image_ids is None else list(image_ids)
    return tuple(replace(verify_image(i, files.config(i), store, config_digest(i)),
                         manifest_ok=files.manifest_ok(i)) for i in ids)


def _layer_blobs(files: ArchiveFilesLike, store: Store, images: Sequence[ImageResult]
                 ) -> list[Layer]:
    """The layers to check, one per blob, their cache ID the blob's path: a layer (one
    chain ID) can be held as several blobs, gzip in one image and zstd in another, and
    each must be what its descriptor says."""
    order: dict[str, Layer] = {}
    for image in images:
        for chain_id, path in zip(image.chain, files.layer_blobs(image.id)):
            layer = store.layers.get(chain_id)
            if layer is not None:
                order.setdefault(path, replace(layer, cache_id=CacheID(path), source=path))
    return list(order.values())


def blob_bytes(files: ArchiveFilesLike, store: Store,
               image_ids: Sequence[ImageID] | None = None,
               config_digest: Callable[[ImageID], str | None] = lambda i: None) -> int:
    """The bytes ``verify_archive`` reads (its progress counts them): each layer blob
    of the images, once."""
    images = _images(files, store, image_ids, config_digest)
    return sum(files.blob_bytes(layer.cache_id) for layer in _layer_blobs(files, store, images))


def verify_archive(files: ArchiveFilesLike, store: Store,
                   image_ids: Sequence[ImageID] | None = None,
                   jobs: int | None = None,
                   config_digest: Callable[[ImageID], str | None] = lambda i: None,
                   progress: Progress | None = None,
                   unpacked: UnpackedCheck | None = None) -> VerifyReport:
    """Every image of the archive (or those named) and each of its layer blobs.

    Args:
        config_digest: what an image's config must hash to, when not its ID.
        progress: called with each count of blob bytes read, from worker threads.
        unpacked: judges a layer's unpacked files from its blob's stream (one read).
    """
    images = _images(files, store, image_ids, config_digest)
    todo = _layer_blobs(files, store, images)

    at_once = 1 if jobs == 1 else min(jobs or len(todo), len(todo))
    beside = reader_beside(at_once, judged=unpacked is not None)

    def one(layer: Layer) -> tuple[LayerResult, Diagnostic | None]:
        return verify_layer_blob(layer, files, progress, unpacked, beside)
    if jobs == 1 or len(todo) <= 1:
        results = [one(layer) for layer in todo]
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="verify") as pool:
            results = list(pool.map(one, todo))
    found = tuple(w for _, w in results if w)
    return VerifyReport(images, tuple(r for r, _ in results),
                        tuple(str(d) for d in (*store.diagnostics, *found)), found)
