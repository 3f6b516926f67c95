"""What ``verify`` reads: image configs, tar-split files, and each layer's own files.

Everything goes through the evidence root (sources/evidence/): a layer's directory is
reached without following links and gets a root of its own, so one thread per layer
reads with no shared state; files are opened below it with ``O_NOFOLLOW``, extended
attributes are read without following the last component, and device nodes are only
ever stat'ed, never opened.

References: moby image/fs.go (imagedb content), layer/filestore.go (TarSplitReader),
distribution/metadata/v2_metadata_service.go (v2metadata-by-diffid),
distribution/metadata/v1_id_service.go and diffid-by-digest; daemon/graphdriver/
overlay2/overlay.go (the layer's files live in ``<cache-id>/diff``).
"""
from __future__ import annotations

import errno
import os
import threading
from typing import Callable, Iterable, Iterator, Mapping, NamedTuple

import orjson

from .. import digest, nativeio
from ..pathindex import PathIndex, walk_index
from ..errors import EvidenceError
from ..ids import ChainID, DiffID, ImageID, is_hex64
from ..model import Layer, SoundMembers
from . import layout
from .drivers import DIRECTORY_DRIVERS, FULL_COPY_IMAGES
from .evidence import JSON_LIMIT, EvidenceRoot, Stat
from .tarsplit import (BLOCK, MAX_LINE, MAX_RUN, FileEntry, RunReader, TarHeader, clean_name,
                       line_blocks, split_tar)

_CHUNK = 1 << 20
_SCAN_RUN = 2 * BLOCK
TarSplitItem = tuple[bytes, FileEntry | None, TarHeader | str | None] | SoundMembers


class DiskEntry(NamedTuple):
    """What verify compares of an entry's lstat."""
    mode: int
    uid: int
    gid: int
    size: int
    dev: int
    ino: int
    nlink: int
    rdev: int


class DiskIndex:
    """A layer directory's entries by path, each marked once the layer accounts for it.

    A layer may hold a million files: a dict of paths and stat results would cost half a
    kilobyte each, so the entries live in a PathIndex, keyed by a keyed 128-bit hash of
    the path (the key is random per index, so nobody can aim a collision at it; the
    chance of one by accident is ~n²/2¹²⁹). Names are not kept: when something is
    unexpected, the directory is walked again to name it.
    """

    def __init__(self, index: PathIndex, walk: Callable[[], Iterable[tuple[str, int]]]):
        self._index = index
        self._walk = walk

    def get(self, path: str) -> DiskEntry | None:
        st = self._index.get(path.encode("utf-8", "surrogateescape"))
        return None if st is None else DiskEntry._make(st)

    def expect(self, path: str) -> None:
        self._index.expect(path.encode("utf-8", "surrogateescape"))

    def unexpected(self) -> Iterator[tuple[str, int]]:
        if not self._index.unexpected:
            return                  # the common case: no second walk
        for path, mode in self._walk():
            if not self._index.expected(path.encode("utf-8", "surrogateescape")):
                yield path, mode


def _unsupported(driver: str, layer: Layer, parent: Layer | None) -> str | None:
    """Why verify cannot judge this layer's directory, or None when it can."""
    if driver not in DIRECTORY_DRIVERS:
        return f"{driver} keeps layers in block devices; verify reads layer directories"
    # The tar-split of a full copy names only the layer's changes: the rest is told from
    # the parent's copy, which must be known.
    if driver in FULL_COPY_IMAGES and layer.parent is not None and parent is None:
        return (f"{driver} keeps a full copy of the parent layer's files in each layer, and "
                f"the parent layer {layer.parent} is not in the layer store: the layer's own "
                "files cannot be told from the parent's")
    return None


class LayerFiles:
    """One layer's files, for one thread. Close it when done."""

    def __init__(self, root: EvidenceRoot, layer: Layer, lock: threading.Lock, driver: str,
                 directory: str | None = None, root_ids: tuple[int, int] = (0, 0),
                 parent: Layer | None = None):
        self._root = root
        self.root_ids = root_ids
        self._lock = lock
        self._layer = layer
        self.diff_path = directory or layout.diff_dir(driver, layer.cache_id)
        self.unsupported = _unsupported(driver, layer, parent)
        self._files = None
        self._index: PathIndex | None = None     # index()'s, which the native scan reads
        # The key of that index and of the tar-split reader's names (RunReader.seen).
        self._key = os.urandom(16)
        # Why the directory cannot be read, naming what is wrong (a link in its path).
        self.damage: str | None = None
        if self.unsupported is None:
            self._files, self.damage = _open_directory(root, lock, self.diff_path)
        self.present = self._files is not None
        # An archive made without --xattrs records none: then none can be compared.
        self.xattrs_known = root.has_xattrs
        self.whiteouts_as_files = driver == "aufs"
        self.whiteouts_remove = driver in FULL_COPY_IMAGES
        self.parent_copy: ParentCopy | None = None
        if self._files is not None and driver in FULL_COPY_IMAGES and parent is not None:
            parent_path = layout.diff_dir(driver, parent.cache_id)
            parent_files, damage = _open_directory(root, lock, parent_path)
            if parent_files is None:
                self.unsupported = ("the parent layer's copy cannot be read ("
                                    f"{damage or parent_path + ': is gone'}): the layer's own "
                                    "files cannot be told from the parent's")
            else:
                self.parent_copy = ParentCopy(self._files, parent_files,
                                              hard_links=driver == "overlay")
        self.tar_split_path = layout.ImageRoot(driver).layer(layer.chain_id, layout.TAR_SPLIT)
        self.rebuilds_stream = True
        # The helper threads of the native walk (walk_index) and scan's reader
        # (nativeio.TarSplitScan): -1 while a CPU is free, 0 never, 1 always.
        self.readahead = -1

    def tar_split(self, sha: digest.Sha256 | None = None
                  ) -> Iterator[TarSplitItem] | None:
        """The tar-split entries as (segment run, file entry, its header or why not), or None
        when the layer has no tar-split file. Raises MalformedError as damage is met.

        Given the layer's hash (and after index()), members the native scan judges sound
        are fed to sha here and come as SoundMembers (see nativeio.TarSplitScan)."""
        with self._lock:
            if self._root.lstat(self.tar_split_path) is None:
                return None
            fd, offset, length = self._root.content(self.tar_split_path)
        return self._members(fd, offset, length, sha)

    def _members(self, fd: int, offset: int, length: int, sha: digest.Sha256 | None
                 ) -> Iterator[TarSplitItem]:
        reader = RunReader(self.tar_split_path, self._key)
        try:
            scan = self._scan(reader.seen, sha)
            for block, pos, end in line_blocks(chunks(fd, offset, length),
                                               self.tar_split_path, lambda: reader.number):
                while pos < end:
                    # A member the scan judges has a run of its padding and one header:
                    # with more before it, the lines are the reader's until the run is
                    # taken, and the scan never copies a long run in and out line by line.
                    # (It stops by end: what follows has no newline.)
                    if scan is not None and len(reader.segments) < _SCAN_RUN:
                        pos, hashed, content, files = scan.scan(block, pos, reader)
                        if files:
                            yield SoundMembers(hashed, content, files)
                        if pos >= end:
                            break
                    # A line the scan left (or every line, without one): the reader's.
                    nl = block.find(b"\n", pos, end)
                    nl = end if nl < 0 else nl
                    entry = reader.line(block[pos:nl])
                    pos = nl + 1
                    if entry is not None:
                        run = reader.take()
                        yield run, entry, reader.header(run)
            yield reader.take(), None, None
        finally:
            os.close(fd)

    def _scan(self, seen: PathIndex, sha: digest.Sha256 | None
              ) -> "nativeio.TarSplitScan | None":
        """The native scan, where the files are opened as the scan opens them: below
        the layer directory's fd, beneath it with openat2 (hash_file; the scan opens each
        directory so and a file by its one name there). ``seen``: the names met so far."""
        if sha is None or self._index is None or self._files is None \
                or not self._files.has_fd or not nativeio.HAVE_OPENAT2:
            return None
        return nativeio.TarSplitScan(self._files.fileno(), self._index, seen, sha,
                                     self.xattrs_known, MAX_LINE, MAX_RUN, *self.root_ids,
                                     self.readahead)

    def index(self) -> DiskIndex:
        """Every entry of the layer's directory by path ("" for its root), links not followed.
        Raises EvidenceError when a directory in it cannot be read."""
        files = self._files
        assert files is not None
        index = self._index = PathIndex(self._key)
        if files.has_fd:
            # A directory gone since its parent was listed (a live host) is simply gone.
            errors = [e for e in walk_index(index, files.fileno(), self.readahead)
                      if e[1] != errno.ENOENT]
            if errors:
                path, err = errors[0]
                raise EvidenceError(f"{self.diff_path}/{os.fsdecode(path)}",
                                    f"cannot read directory: {os.strerror(err)}")
        else:
            for path, st in self._walk():
                index.add(os.fsencode(path), (st.mode, st.uid, st.gid, st.size, st.dev,
                                              st.ino, st.nlink, st.rdev))
        return DiskIndex(index, lambda: ((path, st.mode) for path, st in self._walk()))

    def _walk(self) -> Iterator[tuple[str, Stat]]:
        assert self._files is not None
        return ((path.lstrip("/"), st) for path, st in self._files.walk(""))

    def readlink(self, path: str) -> str | None:
        assert self._files is not None
        return self._files.readlink(path)

    def xattrs(self, path: str) -> dict[str, bytes]:
        assert self._files is not None
        return self._files.xattrs(path) or {}

    def hash_file(self, path: str, sha: digest.Sha256) -> tuple[int, int, dict[str, bytes]]:
        """Feed a regular file's whole content to sha: (CRC-64/GO-ISO, bytes read, xattrs).
        Raises EvidenceError when it cannot be opened as a regular file."""
        assert self._files is not None
        return self._files.hash_file(path, sha)

    def close(self) -> None:
        if self.parent_copy is not None:
            self.parent_copy.close()
            self.parent_copy = None
        if self._files is not None:
            self._files.close()
            self._files = None


def _open_directory(root: EvidenceRoot, lock: threading.Lock, rel: str
                    ) -> tuple[EvidenceRoot | None, str | None]:
    """(a root of its own for a layer's directory, or None and what stands in its way)."""
    with lock:
        try:
            files = root.subroot(rel)
        except EvidenceError as exc:
            return None, str(exc)
        return files, None if files is not None else not_a_directory(root, rel)


class ParentCopy:
    """A full-copy layer's directory beside its parent layer's: vfs copies the parent's
    tree into each new layer, legacy overlay hard-links its regular files (moby
    daemon/graphdriver/vfs/driver.go Create: dirCopy; overlay/overlay.go ApplyDiff:
    copy.DirCopy(parentRootDir, tmpRootDir, copy.Hardlink)), before the layer's tar is
    applied. Both trees are held by path (with mtimes, which the compact disk index
    lacks): these drivers are rare, and the layer's own files are few."""

    def __init__(self, own: EvidenceRoot, parent: EvidenceRoot, hard_links: bool):
        self._own = own
        self._parent = parent
        self.hard_links = hard_links

    def trees(self) -> tuple[dict[str, Stat], dict[str, Stat]]:
        return (_tree(self._own), _tree(self._parent))

    def readlinks(self, path: str) -> tuple[str | None, str | None]:
        return self._own.readlink(path), self._parent.readlink(path)

    def xattrs(self, path: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
        return self._own.xattrs(path) or {}, self._parent.xattrs(path) or {}

    def close(self) -> None:
        self._parent.close()


def _tree(files: EvidenceRoot) -> dict[str, Stat]:
    return {path.lstrip("/"): st for path, st in files.walk("")}



class SnapshotFiles(LayerFiles):
    """A layer as containerd's overlay snapshotter unpacked it: its files in the
    snapshot's ``fs`` directory, its tar stream the layer blob's own as verify reads
    it (decompressed as containerd does, by magic bytes), cut as tar-split cuts one
    (tarsplit.split_tar) as it passes.

    The stream is not rebuilt from the files: the blob's reader hashes it (the diff ID).
    Instead each member's content is compared byte for byte with its file as it passes
    (a CRC alone could be forged to match), and hash_file answers from that comparison;
    its crc is then the file's CRC-64, or how the bytes differ. Small members whose
    files are sound are judged by the native scan as they pass, a chunk at a time (the
    tar-split scan's judge, the member's bytes for its CRC: TarSplitScan.scan_stream)."""

    def __init__(self, root: EvidenceRoot, layer: Layer, lock: threading.Lock, upper: str,
                 blob: str, stream: Iterable[bytes]):
        super().__init__(root, layer, lock, "overlay2", directory=upper)
        self.tar_split_path = blob
        self.rebuilds_stream = False
        self._stream = stream
        self._compared: _Comparison | None = None

    def tar_split(self, sha: digest.Sha256 | None = None) -> Iterator[TarSplitItem]:
        # The blob's stream, cut as it passes. The native scan judges the small sound
        # members (a generator: it starts once verify has walked the index it reads).
        # Its hash is never fed: the stream is the blob's, hashed as the blob is read.
        yield from split_tar(self._stream, self.tar_split_path, self._compare,
                             self._scan(PathIndex(self._key, False), digest.Sha256()))

    def _compare(self, name: str, size: int) -> Callable[[memoryview], None] | None:
        """The sink of a member's content: its file, opened as the content begins (the
        member's path as extraction cleaned it; one leading out of the layer is none)."""
        self._end_comparison()
        path = clean_name(name).lstrip("/")
        if path in ("", ".", "..") or path.startswith("../") or self._files is None:
            return None
        try:
            fd, offset, length = self._files.content(path)
        except EvidenceError as exc:
            self._compared = _Comparison(path, -1, 0, -1, exc)
            return None
        self._compared = _Comparison(path, fd, offset, length)
        return self._compared.feed

    def hash_file(self, path: str, sha: digest.Sha256) -> tuple[int | str, int, dict[str, bytes]]:
        """The comparison just made of the member's content with the file at path:
        (its CRC-64 or how it differs, its bytes, its xattrs). sha is not fed: the
        stream is the blob's, hashed as the blob is read."""
        compared = self._compared
        if compared is None or compared.path != path:
            raise EvidenceError(f"{self.diff_path}/{path}", "not compared with the layer "
                                "blob's stream (its name is not the member's)")
        self._compared = None
        try:
            return compared.result(), compared.size(), self._xattrs_of(compared.fd, path)
        finally:
            compared.close()

    def _xattrs_of(self, fd: int, path: str) -> dict[str, bytes]:
        if not self.xattrs_known:
            return {}
        assert self._files is not None
        if not self._files.has_fd:
            return self.xattrs(path)       # an archive's fd is its spool's, not the file's
        try:
            return {n: os.getxattr(fd, n) for n in os.listxattr(fd)}
        except OSError as exc:
            raise EvidenceError(f"{self.diff_path}/{path}", exc.strerror or str(exc)) from None

    def _end_comparison(self) -> None:
        if self._compared is not None:
            self._compared.close()
            self._compared = None

    def close(self) -> None:
        self._end_comparison()
        super().close()


class _Comparison:
    """A member's content, as it passes, against the file extraction made of it."""

    def __init__(self, path: str, fd: int, base: int, length: int,
                 error: EvidenceError | None = None):
        # The file's bytes are fd's from base, length of them (-1: to its end).
        self.path, self.fd, self.base, self.length, self.error = path, fd, base, length, error
        self.offset = 0                 # bytes of the member compared
        self.read = 0                   # of them, bytes the file held
        self.crc = 0
        self.differs_at: int | None = None

    def feed(self, piece: bytes | memoryview) -> None:
        if self.read == self.offset:    # the file has not ended short
            try:
                held = piece if self.length < 0 else piece[:max(0, self.length - self.offset)]
                nread, self.crc, differs = digest.compare_fd(self.fd, self.base + self.offset,
                                                             held, self.crc)
            except OSError as exc:
                self.error = EvidenceError(self.path, exc.strerror or str(exc))
                nread, differs = 0, -1
            self.read += nread
            if self.differs_at is None and differs >= 0:
                self.differs_at = self.offset + differs
        self.offset += len(piece)

    def size(self) -> int:
        """The file's bytes: what was compared, or its whole size when it is longer."""
        if self.read < self.offset:
            return self.read
        return max(self.read, self.length if self.length >= 0 else os.fstat(self.fd).st_size)

    def result(self) -> int | str:
        if self.error is not None:
            raise self.error
        if self.differs_at is None:
            return self.crc
        return f"content differs from the layer blob's stream at byte {self.differs_at}"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def not_a_directory(root: EvidenceRoot, rel: str) -> str | None:
    """What stands where a directory of rel should be (a link, a file), or None if nothing."""
    parts = rel.split("/")
    for i in range(1, len(parts) + 1):
        path = "/".join(parts[:i])
        st = root.lstat(path)
        if st is None:
            return None
        if st.is_link:
            return (f"{path}: is a symbolic link to {root.readlink(path)!r}, where the layer's "
                    "directory should be; not followed")
        if not st.is_dir:
            return f"{path}: not a directory"
    return None


def chunks(fd: int, offset: int = 0, length: int = -1) -> Iterator[bytes]:
    end = None if length < 0 else offset + length
    while end is None or offset < end:
        chunk = os.pread(fd, _CHUNK if end is None else min(_CHUNK, end - offset), offset)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


class StoreFiles:
    """The image and layer store files verify reads, from a directory data root."""

    def __init__(self, root: EvidenceRoot, driver: str, layers: Mapping[ChainID, Layer],
                 root_ids: tuple[int, int] = (0, 0)):
        self._root = root
        self._driver = driver
        self._layers = layers           # a full-copy layer is read beside its parent's
        self._root_ids = root_ids
        self._paths = layout.ImageRoot(driver)
        self._lock = threading.Lock()
        self._by_diff: dict[str, list[str]] | None = None
        self._spooled = False

    def image_ids(self) -> list[ImageID]:
        """Every image the image store holds a config for, loadable or not."""
        names = self._root.listdir(self._paths.image_contents) or []
        return sorted(ImageID("sha256:" + n) for n in names if is_hex64(n))

    def image_config(self, image_id: ImageID) -> bytes | None:
        """The raw config bytes, as the image ID was computed from them."""
        with self._lock:
            return self._root.read(self._paths.image_config(image_id), JSON_LIMIT)

    def compressed_digests(self, diff_id: DiffID) -> tuple[str, ...]:
        """Registry blob digests known for a diff ID (pulled or pushed layers only)."""
        found = set(self._diffid_by_digest().get(diff_id, ()))
        rel = self._paths.v2metadata_by_diffid(diff_id)
        try:
            with self._lock:
                data = self._root.read(rel, JSON_LIMIT)
            for item in orjson.loads(data) if data else ():
                if isinstance(item, dict) and isinstance(item.get("Digest"), str):
                    found.add(item["Digest"])
        except (EvidenceError, orjson.JSONDecodeError, TypeError):
            pass                    # a hint only: damage here changes no verdict
        return tuple(sorted(found))

    def _diffid_by_digest(self) -> dict[str, list[str]]:
        with self._lock:
            if self._by_diff is None:
                by_diff: dict[str, list[str]] = {}
                for name in self._root.listdir(self._paths.diffid_by_digest_dir) or []:
                    if not is_hex64(name):
                        continue
                    try:
                        data = self._root.read(self._paths.diffid_by_digest(name))
                    except EvidenceError:
                        continue
                    if data:
                        by_diff.setdefault(data.decode("ascii", "replace").strip(),
                                           []).append("sha256:" + name)
                self._by_diff = by_diff
            return self._by_diff

    def layer(self, layer: Layer) -> LayerFiles:
        with self._lock:
            if not self._spooled:
                # An archive streams once more: every layer's files, into a spool.
                self._root.spool((self._driver,))
                self._spooled = True
        parent = None if layer.parent is None else self._layers.get(layer.parent)
        return LayerFiles(self._root, layer, self._lock, self._driver,
                          root_ids=self._root_ids, parent=parent)
