"""verify: every digest of the image and layer stores, checked offline, naming what changed.

An image is sound when its ID is the sha256 of its config bytes and its
``rootfs.diff_ids`` lead, chain ID by chain ID, to layers of the layer store that
record those diff IDs. A layer is sound when its tar stream, rebuilt as dockerd would
rebuild it for ``docker save`` or ``push`` — tar-split's segments with each member's
content read from the layer's directory — hashes to its diff ID, and when the
directory holds what that stream describes: each member's content matches the CRC-64
tar-split recorded, its mode, owner, link target, device numbers and extended
attributes match the header tar-split kept, and nothing else is there.

The diff ID alone would miss two things: metadata that extraction applied but that a
rebuilt stream does not read back (a ``chmod u+s`` changes no digest, since the
headers come from tar-split), and files added beside the layer's members (the rebuild
reads only the names tar-split lists). Both are checked directly.

overlay2 does not store whiteouts as tar members: a ``.wh.<name>`` member became a
character device 0/0 at ``<name>``, owned as the member was, and ``.wh..wh..opq``
became the xattr ``trusted.overlay.opaque=y`` on its directory. aufs keeps them as
the tar has them (``.wh.`` files), and adds its own ``.wh..wh.*`` entries at the
layer's top, which its Diff leaves out. Directories that no member names but that
members need were made by extraction: they are expected.

vfs and legacy overlay keep each layer as a full copy: the parent's tree (copied; legacy
overlay hard-links its regular files), the layer's tar applied over it (a whiteout
removed its path and left no mark). What the tar-split does not name is the parent's: it
must be as the parent's copy has it (moby's ChangesDirs test; for legacy overlay, the
parent's very inode), and what the parent has must be there unless the layer removed it.
A difference the parent's own verdict names is the parent's, not the copy's.

A layer whose tar-split is gone or unreadable cannot be rebuilt, and dockerd has no
fallback either: it is ``unverifiable``, never ``ok``.

References: moby layer/layer_store.go (getTarStream, assembleTarTo), layer/ro_layer.go
(newVerifiedReadCloser: "could not verify layer data"), pkg/archive/archive.go
(Unpack: "." skipped, implied parents made; createTarFile: lchown, xattrs, handleLChmod
with hard links chmod'ed through their target), pkg/archive/archive_linux.go
(overlayWhiteoutConverter.ConvertRead), daemon/graphdriver/aufs/aufs.go (Diff:
ExcludePatterns ``.wh..wh.*`` but ``.wh..wh..opq``), image/fs.go (image IDs), image/rootfs.go
(ChainID), pkg/archive/changes.go (ChangesDirs), daemon/graphdriver/copy/copy.go
(DirCopy), vfs/driver.go (Create), overlay/overlay.go (ApplyDiff); tar-split tar/asm/assemble.go (WriteOutputTarStream: size-0 members are
not read; "file integrity checksum failed").
"""
from __future__ import annotations

import stat as stat_mod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import orjson

from ..digest import Sha256
from ..errors import EvidenceError
from ..goapi.archive import same_fs_time
from ..ids import ChainID, DiffID, ImageID, chain_id_from_parent, digest_of
from ..model import Diagnostic, Layer, SoundMembers, Store

OK, MISMATCH, MISSING, UNVERIFIABLE = "ok", "mismatch", "missing", "unverifiable"
CONTENT, METADATA = "content", "metadata"
CHANGED, TRUNCATED, GONE, ADDED, META = "changed", "truncated", "missing", "added", "metadata"
CONTENT_REASONS = frozenset((CHANGED, TRUNCATED, GONE, ADDED))

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
AUFS_META_PREFIX = ".wh..wh."          # aufs's own files at a layer's top (.wh..wh.aufs, ...)
OPAQUE_XATTR = "trusted.overlay.opaque"
# Set by the host's security policy on every file created; compared only when the tar has one.
HOST_XATTRS = frozenset(("security.selinux",))
# overlayfs's own bookkeeping (origin, impure, ...), left on a directory that was an upper
# dir: BuildKit registers its snapshot directories as layers (moby builder-next
# adapters/snapshot/layer.go EnsureLayer). Only the opaque flag belongs to the layer.
OVERLAY_XATTR_PREFIX = "trusted.overlay."
# The one xattr moby's ChangesDirs compares between a layer's copy and its parent's.
CAPABILITY_XATTR = "security.capability"

# Go tar type flags (archive/tar common.go) and the file type each extracts to.
_FILE_TYPE = {"0": stat_mod.S_IFREG, "7": stat_mod.S_IFREG, "2": stat_mod.S_IFLNK,
              "3": stat_mod.S_IFCHR, "4": stat_mod.S_IFBLK, "5": stat_mod.S_IFDIR,
              "6": stat_mod.S_IFIFO}
_TYPE_NAME = {stat_mod.S_IFREG: "regular file", stat_mod.S_IFLNK: "symbolic link",
              stat_mod.S_IFCHR: "character device", stat_mod.S_IFBLK: "block device",
              stat_mod.S_IFDIR: "directory", stat_mod.S_IFIFO: "fifo",
              stat_mod.S_IFSOCK: "socket"}
TYPE_HARDLINK, TYPE_GLOBAL = "1", "g"
_REGULAR = frozenset(("0", "7"))


# -- what verify reads, supplied by the caller (sources/layerfiles.py) -------------------

class TarHeaderLike(Protocol):
    typeflag: str
    name: str
    linkname: str
    mode: int
    uid: int
    gid: int
    size: int
    devmajor: int
    devminor: int
    xattrs: Mapping[str, bytes]


class FileEntryLike(Protocol):
    name: str
    size: int
    crc: int | None


class DiskEntryLike(Protocol):
    mode: int
    uid: int
    gid: int
    size: int
    dev: int
    ino: int
    nlink: int
    rdev: int


class DiskIndexLike(Protocol):
    """A layer directory's entries by path ("" for its root), and which the layer accounts for."""
    def get(self, path: str) -> DiskEntryLike | None: ...
    def expect(self, path: str) -> None:
        """The layer accounts for path and, having extracted it, for its parents."""
    def unexpected(self) -> Iterator[tuple[str, int]]:
        """(path, mode) of every entry nothing expected."""


# A member: (the segment run before it, its file entry, its header or why not); or
# members the source judged sound itself, already fed to the hash it was given.
TarSplitMember = tuple[bytes, "FileEntryLike | None", "TarHeaderLike | str | None"] | SoundMembers


class CopyEntryLike(Protocol):
    """An entry of a full-copy layer or of its parent's copy: what ChangesDirs compares."""
    mode: int
    uid: int
    gid: int
    size: int
    rdev: int
    mtime_ns: int
    dev: int
    ino: int


class ParentCopyLike(Protocol):
    """A full-copy layer's directory beside its parent layer's (vfs, legacy overlay)."""
    hard_links: bool                  # legacy overlay: inherited files are the parent's inodes

    def trees(self) -> tuple[Mapping[str, CopyEntryLike], Mapping[str, CopyEntryLike]]:
        """Every entry of (the layer's directory, the parent's) by relative path."""
    def readlinks(self, path: str) -> tuple[str | None, str | None]: ...
    def xattrs(self, path: str) -> tuple[Mapping[str, bytes], Mapping[str, bytes]]:
        """The extended attributes of path in (the layer, its parent)."""


class LayerFilesLike(Protocol):
    present: bool                     # the layer's directory exists
    damage: str | None                # why it cannot be read when it is there (a link in its path)
    xattrs_known: bool                # False: the evidence records none (a tar made without --xattrs)
    whiteouts_as_files: bool          # aufs: whiteouts are the tar's own .wh. files
    whiteouts_remove: bool            # vfs, legacy overlay: a whiteout removed its path, no mark
    parent_copy: ParentCopyLike | None  # a full-copy layer with a parent: the parent's tree
    unsupported: str | None           # why this driver's layers cannot be read, if so
    # The host IDs of the extracting daemon's root user (a remapped root's; else 0, 0):
    # extraction shifted every header's owner by them (idtools ToHost).
    root_ids: tuple[int, int]
    tar_split_path: str
    # True: the layer's tar stream is rebuilt from its files (tar-split) and hashed here,
    # and the hash is its diff ID. False: the stream is the layer blob's own, hashed as
    # the blob is read (containerd's snapshots): each file is compared byte for byte
    # with the stream instead (hash_file's crc is then a str when they differ).
    rebuilds_stream: bool

    def tar_split(self, sha: Sha256 | None = None) -> Iterator[TarSplitMember] | None: ...
    def index(self) -> DiskIndexLike: ...
    def readlink(self, path: str) -> str | None: ...
    def xattrs(self, path: str) -> Mapping[str, bytes]: ...
    def hash_file(self, path: str, sha: Sha256
                  ) -> tuple[int | str, int, Mapping[str, bytes]]: ...
    def close(self) -> None: ...


class StoreFilesLike(Protocol):
    def image_ids(self) -> Sequence[ImageID]: ...
    def image_config(self, image_id: ImageID) -> bytes | None: ...  # EvidenceError: unreadable
    def compressed_digests(self, diff_id: DiffID) -> tuple[str, ...]: ...
    def layer(self, layer: Layer) -> LayerFilesLike: ...


Progress = Callable[[int], None]


# -- the report ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class BadFile:
    path: str                # relative to the layer's root, no leading slash (surrogateescape)
    reason: str              # changed | truncated | missing | added | metadata
    detail: str              # what differs, want= and got=
    # A full-copy layer's entry judged against its parent's copy, not its tar-split: when
    # the parent's own copy is at fault, the parent names it (see _owned_by_parent).
    inherited: bool = False

    @property
    def path_bytes(self) -> bytes:
        return self.path.encode("utf-8", "surrogateescape")


@dataclass(frozen=True, slots=True)
class BlobResult:
    """A blob of an image archive checked against the descriptor that names it."""
    digest: str
    media_type: str | None
    compressed_ok: bool               # its bytes hash to the digest and match the size


@dataclass(frozen=True, slots=True)
class LayerResult:
    chain_id: ChainID
    diff_id: DiffID
    cache_id: str
    status: str                       # ok | mismatch | missing | unverifiable
    fault: str | None                 # content | metadata | None
    reason: str | None                # why not ok, in one line
    computed_diff_id: DiffID | None   # sha256 of the rebuilt stream, when it could be rebuilt
    bytes_hashed: int
    files_checked: int
    bad_files: tuple[BadFile, ...]
    compressed_digests: tuple[str, ...]
    blob: "BlobResult | None" = None   # image archives: the layer blob against its descriptor

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True, slots=True)
class UnverifiableContent:
    """Files in every mount of an image that no digest of it covers: on the containerd
    store, a snapshot between its layers' snapshots (the classic builder's ``-init``)."""
    snapshot: str                     # its key
    directory: str                    # where its files are, relative to the root
    files: tuple[str, ...]            # every entry below it, no leading slash
    reason: str


@dataclass(frozen=True, slots=True)
class ImageResult:
    id: ImageID
    config_ok: bool                   # the ID is the sha256 of the config bytes
    layers_ok: bool                   # rootfs.diff_ids match the layer chain
    chain: tuple[ChainID, ...]        # the chain IDs of rootfs.diff_ids, bottom first
    problems: tuple[str, ...]
    manifest_ok: bool | None = None   # image archives: the manifest blob's digest and size
    unverifiable: tuple[UnverifiableContent, ...] = ()

    @property
    def ok(self) -> bool:
        return (self.config_ok and self.layers_ok and self.manifest_ok is not False
                and not self.unverifiable)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    images: tuple[ImageResult, ...]
    layers: tuple[LayerResult, ...]
    warnings: tuple[str, ...] = ()
    # Damage verify itself finds beside its verdicts (an archive's layer blob whose
    # bytes are not what its media type says): reported as the store's diagnostics are.
    found: tuple[Diagnostic, ...] = ()

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.images) and all(lr.ok for lr in self.layers)

    @property
    def bytes_hashed(self) -> int:
        return sum(lr.bytes_hashed for lr in self.layers)


# -- images ---------------------------------------------------------------------------------

def verify_image(image_id: ImageID, config: bytes | None, store: Store,
                 config_digest: str | None = None) -> ImageResult:
    """Check an image's ID against its config bytes and its diff IDs against the layer store.

    ``config_digest``: the digest the config must have when the image ID is not it (on
    the containerd store the ID is the manifest's or index's digest).
    """
    problems: list[str] = []
    if config is None:
        return ImageResult(image_id, False, False, (), ("config file is missing",))
    want = config_digest or image_id
    got = digest_of(config)
    config_ok = got == want
    if not config_ok:
        problems.append(f"config digest want={want} got={got}")
    try:
        diff_ids = _diff_ids(config)
    except ValueError as exc:
        return ImageResult(image_id, config_ok, False, (), (*problems, str(exc)))
    chain: list[ChainID] = []
    parent: ChainID | None = None
    layers_ok = True
    for diff_id in diff_ids:
        chain_id = chain_id_from_parent(parent, diff_id)
        problem = _chain_problem(store.layers.get(chain_id), chain_id, diff_id, parent)
        if problem:
            layers_ok = False
            problems.append(problem)
        chain.append(chain_id)
        parent = chain_id
    return ImageResult(image_id, config_ok, layers_ok, tuple(chain), tuple(problems))


def _diff_ids(config: bytes) -> list[DiffID]:
    try:
        doc = orjson.loads(config)
        ids = (doc.get("rootfs") or {}).get("diff_ids") or []
    except (orjson.JSONDecodeError, AttributeError) as exc:
        raise ValueError(f"config is not image JSON: {exc}") from None
    if not isinstance(ids, list) or not all(isinstance(d, str) for d in ids):
        raise ValueError("config rootfs.diff_ids is not a list of digests")
    return [DiffID(d) for d in ids]


def _chain_problem(layer: Layer | None, chain_id: ChainID, diff_id: DiffID,
                   parent: ChainID | None) -> str | None:
    if layer is None:
        return f"layer {chain_id} (diff ID {diff_id}) is not in the layer store"
    if layer.diff_id != diff_id:
        return f"layer {chain_id}: diff ID want={diff_id} got={layer.diff_id}"
    if layer.parent != parent:
        return f"layer {chain_id}: parent want={parent} got={layer.parent}"
    return None


# -- layers ---------------------------------------------------------------------------------

def _clean(name: str) -> str:
    """A member's path below the layer root: Go's filepath.Join(root, name), made relative."""
    if "//" not in name and "/." not in name and name[:1] not in ("", ".", "/") \
            and name[-1] != "/":
        return name                        # already clean: the common case, made fast
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return "/.."               # leads out of the layer: never on disk
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _kind(mode: int) -> str:
    return _TYPE_NAME.get(stat_mod.S_IFMT(mode), f"type {stat_mod.S_IFMT(mode):o}")


@dataclass
class _LayerCheck:
    """One layer's walk through its tar-split, collecting bad files.

    Memory grows with the files of the layer only through the disk index (compact, see
    sources/layerfiles.py): members are judged as they stream by, and what waits for the
    end (opaque directories, hard-link groups, suspects) is a few entries per layer.
    """
    files: LayerFilesLike
    progress: Progress | None
    disk: DiskIndexLike
    sha: Sha256 = field(default_factory=Sha256)
    hashed: int = 0
    checked: int = 0
    bad: dict[str, BadFile] = field(default_factory=dict)
    # Directories an opaque whiteout names, and those of tar-split's directories that
    # carry the opaque flag on disk: the two must be the same.
    opaque: set[str] = field(default_factory=set)
    disk_opaque: set[str] = field(default_factory=set)
    # Extraction chmods and chowns a hard link's target through the link (moby
    # handleLChmod), so a target's metadata is judged at the end against the last
    # header of its group: the regular files that differ from their own header, and
    # the last link header of each target.
    suspects: dict[str, TarHeaderLike] = field(default_factory=dict)
    link_last: dict[str, TarHeaderLike] = field(default_factory=dict)
    # The xattrs read through the file just hashed, saving a lookup by name.
    hashed_xattrs: tuple[str, Mapping[str, bytes]] = ("", {})
    # Full-copy layers: the paths the layer's whiteouts removed, and the entries its
    # tar-split does not name (inherited from the parent, or added).
    removed: set[str] = field(default_factory=set)
    strays: list[str] = field(default_factory=list)

    def flag(self, path: str, reason: str, detail: str, inherited: bool = False) -> None:
        # A content problem outranks a metadata one on the same path.
        old = self.bad.get(path)
        if old is None or (old.reason == META and reason != META):
            self.bad[path] = BadFile(path, reason, detail, inherited)

    def run(self, members: Iterable[TarSplitMember]) -> None:
        for item in members:
            if type(item) is SoundMembers:
                self.hashed += item.hashed
                self.checked += item.files
                if self.progress is not None and item.content:
                    self.progress(item.content)
                continue
            run, entry, header = item
            if run and self.files.rebuilds_stream:
                self.sha.update(run)
                self.hashed += len(run)
            if entry is not None:
                self.checked += 1
                self.member(entry, header)

    def member(self, entry: FileEntryLike, header: TarHeaderLike | str | None) -> None:
        path = _clean(entry.name)
        if isinstance(header, str) or header is None:
            self.flag(path, META, f"tar-split holds no readable header: {header}")
            header = None
        elif _clean(header.name) != path:
            self.flag(path, META, f"tar-split header names {header.name!r}")
            header = None
        if header is not None and header.typeflag == TYPE_GLOBAL:
            return                         # a PAX global header: nothing is extracted
        disk = self.disk.get(path)
        if entry.size > 0:
            self.content(path, entry, disk)
        if header is None or path.startswith("/.."):
            self.disk.expect(path)
            return
        base = path.rpartition("/")[2]
        if self.files.whiteouts_as_files:
            self.disk.expect(path)
            self.metadata(path, header, entry.size, disk)
        elif base == OPAQUE_WHITEOUT:
            self.opaque.add(_parent(path))
            self.disk.expect(_parent(path))
        elif base.startswith(WHITEOUT_PREFIX) and self.files.whiteouts_remove:
            # Applied to a full copy, a whiteout removed its path and left nothing.
            self.removed.add(f"{_parent(path)}/{base[len(WHITEOUT_PREFIX):]}".lstrip("/"))
        elif base.startswith(WHITEOUT_PREFIX):
            self.whiteout(path, base, header)
        else:
            self.disk.expect(path)
            self.metadata(path, header, entry.size, disk)

    def content(self, path: str, entry: FileEntryLike, disk: DiskEntryLike | None) -> None:
        """Feed the file to the hash as assembly would, and judge it against its CRC."""
        if path.startswith("/.."):
            self.flag(path, GONE, "path leads out of the layer")
            return
        if disk is None:
            self.flag(path, GONE, f"{entry.size} bytes expected; not in the layer")
            return
        if not stat_mod.S_ISREG(disk.mode):
            self.flag(path, CHANGED, f"is a {_kind(disk.mode)}, not a regular file")
            return
        try:
            crc, nread, xattrs = self.files.hash_file(path, self.sha)
            self.hashed_xattrs = (path, xattrs)
        except EvidenceError as exc:
            self.flag(path, CHANGED, f"cannot be read: {exc.reason}")
            return
        self.hashed += nread
        if self.progress is not None:
            self.progress(nread)
        if nread < entry.size:
            self.flag(path, TRUNCATED, f"size want={entry.size} got={nread}")
        elif nread > entry.size:
            self.flag(path, CHANGED, f"size want={entry.size} got={nread}")
        elif isinstance(crc, str):         # compared byte for byte: how it differs
            self.flag(path, CHANGED, crc)
        elif crc != entry.crc:
            self.flag(path, CHANGED, f"crc64 want={entry.crc:016x} got={crc:016x}")

    def whiteout(self, path: str, base: str, header: TarHeaderLike) -> None:
        # moby overlayWhiteoutConverter.ConvertRead: mknod(<name>, S_IFCHR, 0), chown.
        target = f"{_parent(path)}/{base[len(WHITEOUT_PREFIX):]}".lstrip("/")
        self.disk.expect(target)
        disk = self.disk.get(target)
        if disk is None:
            self.flag(target, GONE, "whiteout (character device 0/0) is gone")
        elif not stat_mod.S_ISCHR(disk.mode) or disk.rdev != 0:
            self.flag(target, META, f"whiteout want=character device 0/0 got={_kind(disk.mode)}")
        elif (owner := _owner_difference(header, disk, self.files.root_ids)) is not None:
            self.flag(target, META, owner)

    def metadata(self, path: str, header: TarHeaderLike, size: int,
                 disk: DiskEntryLike | None) -> None:
        if path == "":
            return                         # the layer's root: Unpack skips "."
        if disk is None:
            self.flag(path, GONE, f"{_header_kind(header)} is not in the layer")
            return
        if header.typeflag == TYPE_HARDLINK:
            self.hardlink(path, header, disk)
            return
        if stat_mod.S_ISREG(disk.mode) and size == 0 and disk.size > 0:
            self.flag(path, CHANGED, f"size want=0 got={disk.size}")
        if header.typeflag in _REGULAR:
            if self.difference(path, header, disk):
                self.suspects[path] = header
            return
        self.compare(path, header, disk)

    def hardlink(self, path: str, header: TarHeaderLike, disk: DiskEntryLike) -> None:
        target = _clean(header.linkname)
        self.link_last[target] = header
        other = self.disk.get(target)
        if other is None or (other.dev, other.ino) != (disk.dev, disk.ino):
            self.flag(path, META, f"no longer a hard link to {target!r}")

    def compare(self, path: str, header: TarHeaderLike, disk: DiskEntryLike,
                want_type: int | None = None) -> None:
        detail = self.difference(path, header, disk, want_type)
        if detail:
            self.flag(path, META, detail)

    def difference(self, path: str, header: TarHeaderLike, disk: DiskEntryLike,
                   want_type: int | None = None) -> str | None:
        """How the entry differs from what extraction made of the header, or None."""
        want = want_type if want_type is not None else _FILE_TYPE.get(header.typeflag)
        if want is None:
            return None                    # a member type Docker does not extract
        if stat_mod.S_IFMT(disk.mode) != want:
            return f"type want={_TYPE_NAME[want]} got={_kind(disk.mode)}"
        diffs = _difference(header, disk, want, self.files.root_ids)
        if want == stat_mod.S_IFLNK and header.linkname != (link := self.files.readlink(path)):
            diffs.append(f"link target want={header.linkname!r} got={link!r}")
        if self.files.xattrs_known:
            got = self.disk_xattrs(path)
            if (want == stat_mod.S_IFDIR and got.get(OPAQUE_XATTR) == b"y"
                    and OPAQUE_XATTR not in header.xattrs):
                # What an opaque whiteout makes, and one may come later in the stream:
                # judged in finish.
                self.disk_opaque.add(path)
                got = {k: v for k, v in got.items() if k != OPAQUE_XATTR}
            xattrs = _xattr_difference(header.xattrs, got)
            if xattrs:
                diffs.append(xattrs)
        return "; ".join(diffs) or None

    def disk_xattrs(self, path: str) -> Mapping[str, bytes]:
        seen, xattrs = self.hashed_xattrs
        return xattrs if seen == path else self.files.xattrs(path)

    def finish(self) -> None:
        for path in self.suspects.keys() | self.link_last.keys():
            disk = self.disk.get(path)
            if disk is not None:
                header = self.link_last.get(path) or self.suspects[path]
                self.compare(path, header, disk, stat_mod.S_IFREG)
        if not self.files.whiteouts_remove:
            for path in self.opaque:
                self.opaque_directory(path)
        for path in self.disk_opaque - self.opaque:
            self.flag(path, META, f"xattr {OPAQUE_XATTR} want=None got=b'y': "
                                  "no opaque whiteout in the layer")
        for path, mode in self.disk.unexpected():
            if self.files.whiteouts_as_files and path.partition("/")[0].startswith(
                    AUFS_META_PREFIX):
                continue                   # aufs's own bookkeeping, never in the layer's tar
            if self.files.parent_copy is not None and not self.hidden(path):
                self.strays.append(path)   # judged against the parent's copy
                continue
            self.flag(path, ADDED, f"{_kind(mode)} unknown to tar-split")
        if self.files.parent_copy is not None:
            self.inherited(self.files.parent_copy)

    def hidden(self, path: str) -> bool:
        """Whether the layer removed path: a whiteout names it or an ancestor, or an
        ancestor is an opaque directory of the layer."""
        if path in self.removed:
            return True
        parent = _parent(path)
        while parent:
            if parent in self.removed or parent in self.opaque:
                return True
            parent = _parent(parent)
        return "" in self.opaque

    def inherited(self, copy: ParentCopyLike) -> None:
        """A full copy's entries that its tar-split does not name are the parent's, as
        the driver copied them (vfs: a copy; legacy overlay: a hard link to each regular
        file); each parent entry the layer did not remove is there."""
        own, parent = copy.trees()
        for path in self.strays:
            here, there = own.get(path), parent.get(path)
            if here is None:
                continue                   # gone since the walk (a live host)
            if there is None:
                self.flag(path, ADDED, f"{_kind(here.mode)} unknown to tar-split and not in "
                                       "the parent layer", inherited=True)
                continue
            found = self.copy_difference(copy, path, here, there)
            if found:
                self.flag(path, found[0], "differs from the parent layer's copy: " + found[1],
                          inherited=True)
        for path, there in parent.items():
            if path in own or self.hidden(path):
                continue
            # Below a directory that is gone too (or replaced), the top one is named.
            above = own.get(_parent(path))
            if above is not None and stat_mod.S_ISDIR(above.mode):
                self.flag(path, GONE, f"{_kind(there.mode)} of the parent layer is gone and "
                                      "tar-split records no whiteout", inherited=True)

    def copy_difference(self, copy: ParentCopyLike, path: str, here: CopyEntryLike,
                        there: CopyEntryLike) -> tuple[str, str] | None:
        """(reason, what differs) between an inherited entry and the parent's, as moby's
        ChangesDirs tells a changed file (statDifferent, the capability xattr), and for
        legacy overlay's regular files, whether it is still the parent's inode."""
        if stat_mod.S_IFMT(here.mode) != stat_mod.S_IFMT(there.mode):
            return CHANGED, f"type want={_kind(there.mode)} got={_kind(here.mode)}"
        if stat_mod.S_ISDIR(here.mode):
            pass                           # a directory's size and mtime measure nothing
        elif copy.hard_links and stat_mod.S_ISREG(here.mode):
            if (here.dev, here.ino) != (there.dev, there.ino):
                return CHANGED, (f"no longer a hard link to it: inode want={there.ino} "
                                 f"got={here.ino}")
            return None                    # the same inode: the parent's verdict is its own
        elif here.size != there.size:
            return CHANGED, f"size want={there.size} got={here.size}"
        elif not same_fs_time(there.mtime_ns, here.mtime_ns):
            return CHANGED, f"mtime want={there.mtime_ns} got={here.mtime_ns}"
        if stat_mod.S_ISLNK(here.mode):
            mine, theirs = copy.readlinks(path)
            if mine != theirs:
                return CHANGED, f"link target want={theirs!r} got={mine!r}"
        diffs = []
        if here.mode != there.mode:
            diffs.append(f"mode want={there.mode & 0o7777:04o} got={here.mode & 0o7777:04o}")
        if (here.uid, here.gid) != (there.uid, there.gid):
            diffs.append(f"owner want={there.uid}:{there.gid} got={here.uid}:{here.gid}")
        if here.rdev != there.rdev:
            diffs.append(f"device want={there.rdev:#x} got={here.rdev:#x}")
        if not diffs and self.files.xattrs_known and stat_mod.S_ISREG(here.mode):
            mine_cap, theirs_cap = (x.get(CAPABILITY_XATTR) for x in copy.xattrs(path))
            if mine_cap != theirs_cap:
                diffs.append(f"xattr {CAPABILITY_XATTR} want={theirs_cap!r} got={mine_cap!r}")
        return (META, "; ".join(diffs)) if diffs else None

    def opaque_directory(self, path: str) -> None:
        """A directory an opaque whiteout names: a tar-split directory or one extraction made."""
        disk = self.disk.get(path)
        if disk is None:
            self.flag(path, GONE, "directory is not in the layer")
        elif not stat_mod.S_ISDIR(disk.mode):
            self.flag(path, META, f"want=directory got={_kind(disk.mode)}")
        elif (self.files.xattrs_known and path not in self.disk_opaque
              and self.disk_xattrs(path).get(OPAQUE_XATTR) != b"y"):
            self.flag(path, META, f"opaque directory lost {OPAQUE_XATTR}=y")


def _header_kind(header: TarHeaderLike) -> str:
    if header.typeflag == TYPE_HARDLINK:
        return "hard link"
    return _TYPE_NAME.get(_FILE_TYPE.get(header.typeflag, 0), f"member type {header.typeflag!r}")


def _difference(header: TarHeaderLike, disk: DiskEntryLike, want: int,
                root_ids: tuple[int, int]) -> list[str]:
    """How mode, owner and device numbers differ from what extraction made of a header."""
    diffs = []
    if want != stat_mod.S_IFLNK:
        # Symlinks keep 0777: Linux has no lchmod (moby handleLChmod skips them).
        mode_want, mode_got = header.mode & 0o7777, disk.mode & 0o7777
        if mode_want != mode_got:
            diffs.append(f"mode want={mode_want:04o} got={mode_got:04o}")
    if (owner := _owner_difference(header, disk, root_ids)) is not None:
        diffs.append(owner)
    if want in (stat_mod.S_IFCHR, stat_mod.S_IFBLK):
        dev = (disk.rdev >> 8 & 0xFFF | disk.rdev >> 32 & ~0xFFF,
               disk.rdev & 0xFF | disk.rdev >> 12 & ~0xFF)
        if dev != (header.devmajor, header.devminor):
            diffs.append(f"device want={header.devmajor},{header.devminor} got={dev[0]},{dev[1]}")
    return diffs


def _owner_difference(header: TarHeaderLike, disk: DiskEntryLike, root_ids: tuple[int, int]
                      ) -> str | None:
    """How the owner on disk differs from the header's as extraction stored it (shifted
    by a remapped root's IDs), in the host's IDs."""
    want = (header.uid + root_ids[0], header.gid + root_ids[1])
    if want == (disk.uid, disk.gid):
        return None
    return f"owner want={want[0]}:{want[1]} got={disk.uid}:{disk.gid}"


def _xattr_difference(want: Mapping[str, bytes], got: Mapping[str, bytes]) -> str | None:
    if not want and not got:
        return None                        # nearly every file: nothing to compare
    got = {k: v for k, v in got.items() if k in want or not (
        k in HOST_XATTRS or (k.startswith(OVERLAY_XATTR_PREFIX) and k != OPAQUE_XATTR))}
    if dict(want) == got:
        return None
    names = sorted(want.keys() | got.keys())
    parts = [f"{n} want={want.get(n)!r} got={got.get(n)!r}" for n in names
             if want.get(n) != got.get(n)]
    return "xattr " + ", ".join(parts)


def verify_layer(layer: Layer, files: LayerFilesLike, progress: Progress | None = None,
                 compressed: tuple[str, ...] = ()) -> LayerResult:
    """Rebuild one layer's tar stream, hash it, and judge the layer's directory."""
    def result(status: str, fault: str | None, reason: str | None,
               check: _LayerCheck | None = None, computed: DiffID | None = None) -> LayerResult:
        bad = tuple(sorted(check.bad.values(), key=lambda b: b.path_bytes)) if check else ()
        return LayerResult(layer.chain_id, layer.diff_id, layer.cache_id, status, fault, reason,
                           computed, check.hashed if check else 0,
                           check.checked if check else 0, bad, compressed)

    if files.unsupported:
        return result(UNVERIFIABLE, None, files.unsupported)
    if not files.present:
        return result(MISSING, CONTENT, files.damage or "the layer's directory is gone")
    try:
        sha = Sha256()
        members = files.tar_split(sha)
        if members is None:
            return result(UNVERIFIABLE, METADATA, f"{files.tar_split_path} is missing: the "
                          "layer's tar stream cannot be rebuilt")
        check = _LayerCheck(files, progress, files.index(), sha)
        check.disk.expect("")
        check.run(members)
        check.finish()
    except EvidenceError as exc:
        return result(UNVERIFIABLE, METADATA, str(exc))
    # A stream that is not rebuilt here is the blob's: the blob's reader hashes it, and
    # every file was compared with it byte for byte, so a rebuild from the files would
    # be that same stream and hash to that same digest — a second pass learns nothing.
    computed = DiffID("sha256:" + check.sha.digest().hex()) if files.rebuilds_stream \
        else None
    return _judge(layer, check, computed, result)


def _judge(layer: Layer, check: _LayerCheck, computed: DiffID | None,
           result: Callable[..., LayerResult]) -> LayerResult:
    return result(*_verdict(layer, check.bad.values(), computed), check, computed)


def _verdict(layer: Layer, bad: Iterable[BadFile], computed: DiffID | None
             ) -> tuple[str, str | None, str | None]:
    """(status, fault, reason) of a layer whose stream hashed to computed (None: the
    stream was not rebuilt here, and its digest is judged where it was read)."""
    bad = list(bad)
    reasons = []
    if computed is not None and computed != layer.diff_id:
        reasons.append(f"diff ID want={layer.diff_id} got={computed}")
    expect_chain = chain_id_from_parent(layer.parent, layer.diff_id)
    if expect_chain != layer.chain_id:
        reasons.append(f"chain ID want={layer.chain_id} got={expect_chain}")
    if bad:
        reasons.append(f"{len(bad)} file(s) differ")
    if not reasons:
        return OK, None, None
    # Content is at fault when a file's bytes changed; otherwise what is wrong is a
    # record (tar-split, the diff file, the chain) or a file's metadata.
    content_bad = any(b.reason in CONTENT_REASONS for b in bad)
    return MISMATCH, CONTENT if content_bad else METADATA, "; ".join(reasons)


def _owned_by_parent(results: Mapping[ChainID, LayerResult], store: Store
                     ) -> dict[ChainID, LayerResult]:
    """Each full-copy layer's results without the inherited entries its parent names.

    A full copy's inherited entry is judged against the parent's copy; when the parent's
    own copy is at fault (tampered with there, or its own ancestor's difference), the
    parent's verdict names it, and the child's copy, though it differs, is not the
    layer at fault. Judged on the parents' verdicts as they were, so a chain names the
    lowest layer that differs.
    """
    named = {chain_id: {b.path for b in r.bad_files} for chain_id, r in results.items()}
    out = dict(results)
    for chain_id, result in results.items():
        layer = store.layers[chain_id]
        parent_named = named.get(layer.parent) if layer.parent is not None else None
        if not parent_named or not any(b.inherited for b in result.bad_files):
            continue
        kept = tuple(b for b in result.bad_files
                     if not (b.inherited and b.path in parent_named))
        if len(kept) == len(result.bad_files) or result.computed_diff_id is None:
            continue
        status, fault, reason = _verdict(layer, kept, result.computed_diff_id)
        out[chain_id] = replace(result, bad_files=kept, status=status, fault=fault,
                                reason=reason)
    return out


# -- the whole store --------------------------------------------------------------------------

def verify_store(files: StoreFilesLike, store: Store, image_ids: Sequence[ImageID] | None = None,
                 jobs: int | None = None, progress: Progress | None = None) -> VerifyReport:
    """Verify images and their layers: all of them, or the images named (resolved IDs).

    Args:
        files: access to the data root's files (sources/layerfiles.StoreFiles).
        store: the model built from the same root.
        image_ids: the images to verify; None verifies every image config in the image
            store (including those the loader skipped) and every layer of the layer store.
        jobs: layers verified at once, one per thread (default: the CPU count).
        progress: called with each count of content bytes hashed, from worker threads.
    """
    every = image_ids is None
    ids = list(files.image_ids()) if every else list(image_ids)
    if every:
        ids += sorted(set(store.images) - set(ids))
    images = tuple(_verify_image(files, i, store) for i in ids)
    layers = _layers_to_verify(store, images, every)
    results = _owned_by_parent(_run_layers(files, layers, jobs, progress), store)
    return VerifyReport(images, tuple(results[layer.chain_id] for layer in layers),
                        tuple(str(d) for d in store.diagnostics))


def _verify_image(files: StoreFilesLike, image_id: ImageID, store: Store) -> ImageResult:
    try:
        config = files.image_config(image_id)
    except EvidenceError as exc:
        # One config that cannot be read (a link, a directory) is that image's damage.
        return ImageResult(image_id, False, False, (), (str(exc),))
    return verify_image(image_id, config, store)


def _layers_to_verify(store: Store, images: Iterable[ImageResult], every: bool) -> list[Layer]:
    """Images' layers bottom first, in image order; then, for a full run, the rest."""
    order: dict[ChainID, Layer] = {}
    for image in images:
        for chain_id in image.chain:
            layer = store.layers.get(chain_id)
            if layer is not None:
                order.setdefault(chain_id, layer)
    if every:
        for chain_id in sorted(store.layers):
            order.setdefault(chain_id, store.layers[chain_id])
    return list(order.values())


def _run_layers(files: StoreFilesLike, layers: Sequence[Layer], jobs: int | None,
                progress: Progress | None) -> dict[ChainID, LayerResult]:
    def one(layer: Layer) -> LayerResult:
        layer_files = files.layer(layer)
        try:
            return verify_layer(layer, layer_files, progress,
                                files.compressed_digests(layer.diff_id))
        finally:
            layer_files.close()

    # Biggest first, so one large layer does not run alone at the end.
    todo = sorted(layers, key=lambda layer: -layer.diff_size)
    if jobs == 1 or len(todo) <= 1:
        return {layer.chain_id: one(layer) for layer in todo}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="verify") as pool:
        return {layer.chain_id: result for layer, result in zip(todo, pool.map(one, todo))}
