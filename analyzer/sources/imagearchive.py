"""Images found in an image archive (OCI layout or ``docker save``) turned into the model.

Both containers end in the same list: for each manifest, its config bytes, its layer
blobs and the names it was saved under. The image ID is the config digest; layers get
chain IDs from the config's diff IDs, their "cache ID" is the blob's path in the
archive and their size what dockerd's graph driver says once ``docker load`` has
unpacked the blob (read from the layer's tar stream: every layer is decompressed for
it, and a compressed archive is read once more — so only the commands that show
sizes ask for it). Of the manifests one index lists for
several platforms, the one Docker would choose for this host carries the names; the
others are listed with ``-a`` only.

References: moby image/tarexport/load.go (names from RepoTags), containerd
images/archive/importer.go (names from ``io.containerd.image.name``, else
``org.opencontainers.image.ref.name``), containerd platforms (the choice), moby
pkg/directory (Size: what overlay2's ApplyDiff returns as the layer's size).
"""
from __future__ import annotations

import io
import os
import platform as host_platform
import tarfile
import threading
from dataclasses import dataclass, replace
from typing import Iterator

from .. import compression
from .. import reference as refs
from ..errors import AnalyzerError, EvidenceError, MalformedError
from ..ids import CacheID, ChainID, ImageID, chain_id_from_parent, digest_of, is_digest
from ..model import ArchiveEntry, Diagnostic, Image, Layer, Reference, Store
from . import layout
from .evidence import EvidenceRoot
from .graphdriver import created_unix_ns
from .ocispec import LAYER_COMPRESSION, Descriptor, Platform, parse_config, platform_matches


@dataclass(frozen=True, slots=True)
class LayerBlob:
    """A layer as the archive holds it: where, and the descriptor that points at it
    (None in a legacy save, whose manifest.json names files, not digests)."""
    path: str
    size: int
    descriptor: Descriptor | None


@dataclass(frozen=True, slots=True)
class ArchiveImage:
    """One manifest's image as found in an archive, before it is checked."""
    config: bytes
    config_path: str
    manifest: Descriptor | None        # None in a legacy save
    layers: tuple[LayerBlob, ...]
    names: tuple[str, ...]             # references as written in the archive
    group: str                         # the index (or file) that listed it
    platform: Platform | None          # the index entry's platform, if it has one
    entry: int = 0                     # its top-level entry (index.json, manifest.json)
    via: tuple[Descriptor, ...] = ()   # the indexes between that entry and the manifest

    def blobs(self) -> dict[str, tuple[str | None, int]]:
        """Every file this image holds in the archive: its digest (None for a file a
        legacy save names otherwise) and bytes."""
        held = {layout.oci_blob(d.digest): (d.digest, d.size) for d in self.via}
        if self.manifest is not None:
            held[layout.oci_blob(self.manifest.digest)] = (self.manifest.digest,
                                                           self.manifest.size)
        held[self.config_path] = (digest_in_path(self.config_path), len(self.config))
        held.update((blob.path, (digest_in_path(blob.path), blob.size)) for blob in self.layers)
        return held


# machine -> GOARCH, for the platform Docker would pick on this host.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
           "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host() -> Platform:
    machine = host_platform.machine()
    return Platform("linux", _GOARCH.get(machine, machine))


def build(root: EvidenceRoot, kind: str, found: list[ArchiveImage],
          diagnostics: list[Diagnostic]) -> tuple[Store, "ArchiveFiles"]:
    """The model of an archive's images, its layers not measured yet (their size is
    their blob's until ``ArchiveFiles.measured``), and what verify reads of it."""
    return build_store(kind, found, diagnostics, host()), ArchiveFiles(root, found)


def build_store(kind: str, found: list[ArchiveImage], diagnostics: list[Diagnostic],
                want: Platform) -> Store:
    """The model of an archive's images; bad ones are skipped with a diagnostic. Each
    layer's size is its blob's bytes (ArchiveFiles.measured sets it)."""
    images: dict[ImageID, Image] = {}
    layers: dict[ChainID, Layer] = {}
    references: dict[str, Reference] = {}
    chosen = _platform_choice(found, want)
    others: set[ImageID] = set()
    for item in found:
        image = _image(item, layers, diagnostics)
        if image is None:
            continue
        images.setdefault(image.id, image)
        if item is not chosen.get(item.group):
            others.add(image.id)
            continue
        for name in item.names:
            ref = _reference(name, image.id, item.config_path, diagnostics)
            if ref is not None:
                references.setdefault(ref.familiar, ref)
    return Store(driver=kind, images=images, layers=layers,
                 references=tuple(references.values()), diagnostics=tuple(diagnostics),
                 other_platforms=frozenset(others - {r.image_id for r in references.values()}))


def _platform_choice(found: list[ArchiveImage], want: Platform) -> dict[str, ArchiveImage]:
    """Per group, the manifest Docker would use here: the one for this platform, else
    (a single manifest, or none matches) the first."""
    groups: dict[str, list[ArchiveImage]] = {}
    for item in found:
        groups.setdefault(item.group, []).append(item)
    return {g: next((i for i in items if platform_matches(i.platform, want)), items[0])
            for g, items in groups.items()}


def _image(item: ArchiveImage, layers: dict[ChainID, Layer], diagnostics: list[Diagnostic]
           ) -> Image | None:
    try:
        config = parse_config(item.config, item.config_path)
    except MalformedError as exc:
        diagnostics.append(Diagnostic(exc.path, exc.reason))
        return None
    if len(config.diff_ids) != len(item.layers):
        diagnostics.append(Diagnostic(item.config_path, (
            f"config has {len(config.diff_ids)} diff IDs for {len(item.layers)} layers; "
            "image skipped")))
        return None
    parent: ChainID | None = None
    for diff_id, blob in zip(config.diff_ids, item.layers):
        chain = chain_id_from_parent(parent, diff_id)
        layers.setdefault(chain, Layer(chain_id=chain, diff_id=diff_id, parent=parent,
                                       cache_id=CacheID(blob.path),
                                       diff_size=blob.size,
                                       source=blob.path))
        parent = chain
    created = config.doc.get("created")
    return Image(id=ImageID(digest_of(item.config)), config=config.doc,
                 diff_ids=config.diff_ids, top_layer=parent, parent=None,
                 created=created if isinstance(created, str) else None,
                 created_ns=created_unix_ns(created), last_updated=None, source=item.config_path)


def _named(name: str) -> refs.Named | None:
    """A name as ``docker load`` lists it: normalized, ``latest`` when it has no tag
    (a bare ``ref.name`` such as ``t1`` becomes ``t1:latest``, as dockerd 28.5 says);
    None when it is not a reference at all."""
    try:
        return refs.tag_name_only(refs.parse_normalized_named(name))
    except AnalyzerError:
        return None


def _reference(name: str, image_id: ImageID, source: str,
               diagnostics: list[Diagnostic]) -> Reference | None:
    ref = _named(name)
    if ref is None:
        diagnostics.append(Diagnostic(source, f"name {name!r} is not a reference; not listed"))
        return None
    return Reference(name=ref.familiar_name, familiar=ref.familiar, normalized=str(ref),
                     image_id=image_id, is_digest=bool(ref.digest) and not ref.tag,
                     source=source)


# Chunks a layer blob is read in: large enough that hashing and inflating run long
# stretches without the GIL, small enough that memory does not grow with the layer.
CHUNK = 1 << 20


class ArchiveFiles:
    """What verify reads of an image archive: blob bytes streamed in chunks, and the
    descriptors and configs the reader found (engines/blobverify.ArchiveFilesLike)."""

    def __init__(self, root: EvidenceRoot, found: list[ArchiveImage]):
        self._root = root
        self._found = found
        self._configs = {ImageID(digest_of(i.config)): i.config for i in found}
        self._manifests = {ImageID(digest_of(i.config)): i.manifest is not None for i in found}
        self._layers = {blob.path: blob for i in found for blob in i.layers}
        self._image_layers = {ImageID(digest_of(i.config)): [b.path for b in i.layers]
                              for i in found}
        self._spooled = False
        self._lock = threading.Lock()

    def config(self, image_id: ImageID) -> bytes | None:
        return self._configs.get(image_id)

    def entries(self) -> list[ArchiveEntry]:
        """The archive's top-level entries, for reclaim: names as ``ls`` shows them."""
        by_entry: dict[int, list[ArchiveImage]] = {}
        for item in self._found:
            by_entry.setdefault(item.entry, []).append(item)
        out = []
        for items in by_entry.values():
            names = [_named(n) for n in items[0].names]
            blobs: dict[str, int] = {}
            for item in items:
                blobs.update(item.blobs())
            out.append(ArchiveEntry(tuple(n.familiar for n in names if n is not None),
                                    frozenset(ImageID(digest_of(i.config)) for i in items),
                                    blobs))
        return out

    def layer_blobs(self, image_id: ImageID) -> list[str]:
        return self._image_layers.get(image_id, [])

    def manifest_ok(self, image_id: ImageID) -> bool | None:
        # A manifest that failed its digest or size was not believed: its image is not
        # in the store (the warning names it). None: a legacy save has no manifest blob.
        return True if self._manifests.get(image_id) else None

    def descriptor(self, layer: Layer) -> tuple[str | None, int | None, str | None, str | None]:
        blob = self._layers.get(layer.cache_id)
        if blob is None or blob.descriptor is None:
            # A save names layer files; in the newer format the name is the digest.
            digest = digest_in_path(layer.cache_id)
            return digest, blob.size if blob and digest else None, None, None
        desc = blob.descriptor
        return desc.digest, desc.size, desc.media_type, LAYER_COMPRESSION.get(desc.media_type)

    def measured(self, store: Store) -> Store:
        """The store with each layer's size once unpacked (what ls, history and inspect
        show): every layer blob is decompressed for it, so only they ask. A blob that
        cannot be read to its end keeps its own bytes, with a diagnostic naming it."""
        layers = dict(store.layers)
        diagnostics = list(store.diagnostics)
        for chain, layer in store.layers.items():
            try:
                layers[chain] = replace(layer, diff_size=self._unpacked_size(layer.cache_id))
            except _UNPACK_FAULTS as exc:
                diagnostics.append(Diagnostic(layer.cache_id, (
                    f"layer cannot be unpacked to measure ({exc or type(exc).__name__}); "
                    "its size is the blob's")))
        return replace(store, layers=layers, diagnostics=tuple(diagnostics))

    def _unpacked_size(self, path: str) -> int:
        """An uncompressed layer's tar is read header by header, seeking over contents;
        a compressed one is streamed."""
        self._spool()
        fd, offset, length = self._root.content(path)
        try:
            if length < 0:
                length = os.fstat(fd).st_size
            if compression.kind_of(os.pread(fd, compression.MAGIC_BYTES, offset)) == "tar":
                return _plain_unpacked_size(fd, offset, length)
        finally:
            os.close(fd)
        return unpacked_size(self.chunks(path))

    def _spool(self) -> None:
        with self._lock:
            if not self._spooled:
                # An archive cannot seek: one more pass, spooled (a directory has its files).
                self._root.spool(tuple(sorted({p.rpartition("/")[0] or "."
                                               for p in self._layers})))
                self._spooled = True

    def chunks(self, path: str) -> Iterator[bytes]:
        self._spool()
        yield from read_chunks(self._root, path)

    def blob_bytes(self, path: str) -> int:
        return file_bytes(self._root, path)


def file_bytes(root: EvidenceRoot, path: str) -> int:
    """A regular file's bytes as it lies; 0 when it is not one."""
    st = root.lstat(path)
    return st.size if st is not None and st.is_reg else 0


def read_chunks(root: EvidenceRoot, path: str) -> Iterator[bytes]:
    """A file's bytes in CHUNK pieces; EvidenceError when it cannot be read or ends
    before the length its backend gave."""
    fd, offset, length = root.content(path)
    try:
        while length != 0:
            chunk = os.pread(fd, CHUNK if length < 0 else min(CHUNK, length), offset)
            if not chunk:
                if length > 0:
                    raise EvidenceError(path, "ended early")
                break
            offset += len(chunk)
            length -= len(chunk) if length > 0 else 0
            yield chunk
    finally:
        os.close(fd)


# What a damaged layer blob raises: unreadable, its compression or its tar broken.
_UNPACK_FAULTS = (EvidenceError, compression.StreamError, tarfile.TarError, EOFError, OSError)


def unpacked_size(chunks: Iterator[bytes]) -> int:
    """A layer's size as dockerd's graph driver reports it once the layer is unpacked
    (moby's directory.Size of its diff directory): the bytes of every entry that is not
    a directory (a symbolic link's: its target's length), each file once (a hard link
    adds nothing, an entry written again replaces the one before), from the layer's
    tar stream (gzip, zstd or plain, by its magic bytes). The stream is read to its
    end, so that a cut or a bad checksum is a fault, not a smaller size."""
    stream = compression.open_stream(io.BufferedReader(_ChunksIO(chunks), CHUNK))
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        size = _entry_bytes(tar)
    while stream.read(CHUNK):
        pass
    return size


def _plain_unpacked_size(fd: int, offset: int, length: int) -> int:
    """``unpacked_size`` of an uncompressed tar at (fd, offset, length), reading only
    its headers; it must end in tar's end-of-archive block, or it was cut."""
    with tarfile.open(fileobj=io.BufferedReader(_Slice(fd, offset, length)), mode="r:") as tar:
        size = _entry_bytes(tar)
        end = tar.offset
    if end + tarfile.BLOCKSIZE > length or \
            os.pread(fd, tarfile.BLOCKSIZE, offset + end) != bytes(tarfile.BLOCKSIZE):
        raise tarfile.ReadError(f"cut short: no end-of-archive block at byte {end}")
    return size


def _entry_bytes(tar: tarfile.TarFile) -> int:
    """What directory.Size counts of a layer's entries (see unpacked_size)."""
    sizes: dict[str, int] = {}
    for info in tar:
        if info.isdir():
            continue
        name = info.name.removeprefix("./").strip("/")
        sizes[name] = (info.size if info.isreg()
                       else len(info.linkname.encode("utf-8", "surrogateescape"))
                       if info.issym() else 0)
    return sum(sizes.values())


class _Slice(io.RawIOBase):
    """(fd, offset, length) as a seekable raw file, read with pread (the fd's own
    position is never moved: it may be shared)."""

    def __init__(self, fd: int, offset: int, length: int):
        self._fd, self._offset, self._length, self._pos = fd, offset, length, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer) -> int:
        n = max(0, min(len(buffer), self._length - self._pos))
        data = os.pread(self._fd, n, self._offset + self._pos) if n else b""
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)


class _ChunksIO(io.RawIOBase):
    """Chunks of bytes as a raw binary file, for the buffered reader decompression
    peeks into."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._chunk = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._chunk:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._chunk = memoryview(chunk)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


def digest_in_path(path: str) -> str | None:
    """The digest a blob's path names (``blobs/sha256/<hex>``), else None."""
    algorithm, _, hex_digest = path.removeprefix(f"{layout.OCI_BLOBS}/").partition("/")
    candidate = f"{algorithm}:{hex_digest}"
    return candidate if algorithm == "sha256" and is_digest(candidate) else None
