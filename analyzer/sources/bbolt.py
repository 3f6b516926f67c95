"""A read-only reader of bbolt (BoltDB) files, from a buffer: no cgo, no lock, no writes.

bbolt is the key/value store of BuildKit, containerd and Docker's own small
databases (``buildkit/*.db``, ``network/files/local-kv.db``, ``volumes/metadata.db``).
A file is an array of pages of ``page_size`` bytes; pages 0 and 1 are the two meta
pages, written alternately (``txid % 2``). A bucket is a B+tree of branch and leaf
pages; a small bucket is stored "inline", its one leaf page inside its parent's
value. All integers are little-endian on the platforms Docker runs on.

Everything read is bounds-checked: a page ID past the file or the meta's high-water
mark, an element or key outside its page, a page reached twice in one tree (a
cycle), a wrong page type or a bad meta checksum raise MalformedError naming the
file and the page; nothing here raises IndexError or struct.error, or loops forever.

References: etcd-io/bbolt internal/common/page.go (Page, branchPageElement,
leafPageElement, flags), internal/common/meta.go (Meta, Validate, Sum64 = FNV-64a),
internal/common/bucket.go (InBucket, inline pages), db.go (getPageSize, mmap,
meta: the valid meta with the highest txid), bucket.go (openBucket, pageNode),
cursor.go (first, next, seek), tx.go (page: FastCheck).
"""
from __future__ import annotations

from bisect import bisect_right
from struct import Struct
from typing import TYPE_CHECKING, Iterator, NamedTuple, Union

from ..errors import EvidenceError, MalformedError

if TYPE_CHECKING:
    from .evidence import EvidenceRoot

MAGIC = 0xED0CDAED
VERSION = 2
# Page flags (page.go): exactly one is set on a valid page.
BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
META_PAGE = 0x04
FREELIST_PAGE = 0x10
BUCKET_LEAF_FLAG = 0x01           # leafPageElement.flags: the value is a bucket
PGID_NO_FREELIST = 0xFFFF_FFFF_FFFF_FFFF

PAGE_HEADER = Struct("<QHHI")     # id, flags, count, overflow
BRANCH_ELEMENT = Struct("<IIQ")   # pos, ksize, pgid
LEAF_ELEMENT = Struct("<IIII")    # flags, pos, ksize, vsize
IN_BUCKET = Struct("<QQ")         # root, sequence
META = Struct("<IIII16sQQQQ")     # magic, version, pageSize, flags, root, freelist, pgid, txid, checksum
META_CHECKSUMMED = META.size - 8  # Sum64 covers every field before checksum

# db.go getPageSizeFromSecondMeta: meta 1 is probed at 1 KiB << i, i in 0..14.
_PROBE_PAGE_SIZES = tuple(1024 << i for i in range(15))
_MIN_PAGE_SIZE = PAGE_HEADER.size + META.size

Key = Union[bytes, str]


# Docker's own databases (BuildKit's, the volume and network stores) stay far below this.
DB_LIMIT = 1 << 30


def read_db_file(root: "EvidenceRoot", rel: str) -> bytes | None:
    """A database file's bytes, read whole: as many as lstat says (buffers are sized
    by it), None when there is none.

    Raises:
        EvidenceError: it cannot be read, or is larger than DB_LIMIT.
    """
    st = root.lstat(rel)
    if st is None:
        return None
    if st.size > DB_LIMIT:
        raise EvidenceError(rel, f"larger than {DB_LIMIT} bytes; not read")
    return root.read(rel, max(st.size, 1))


class Meta(NamedTuple):
    """A meta page (meta.go Meta)."""
    page: int                     # 0 or 1
    magic: int
    version: int
    page_size: int
    flags: int
    root: int                     # root page of the root bucket
    root_sequence: int
    freelist: int
    pgid: int                     # high-water mark: pages >= pgid are not in use
    txid: int
    checksum: int
    checksum_ok: bool             # checksum == FNV-64a of the fields before it

    @property
    def valid(self) -> bool:
        """meta.go Validate: magic, version and checksum."""
        return self.magic == MAGIC and self.version == VERSION and self.checksum_ok


def fnv64a(data: bytes | memoryview) -> int:
    """FNV-1a, 64 bits (Go hash/fnv New64a), as bbolt's Meta.Sum64 computes it."""
    h = 0xCBF29CE484222325
    for byte in bytes(data):
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFF_FFFF_FFFF_FFFF
    return h


def _meta_at(buf: memoryview, offset: int, page: int) -> Meta | None:
    """The meta stored in the page at ``offset``, or None if the buffer ends first."""
    start = offset + PAGE_HEADER.size
    if start + META.size > len(buf):
        return None
    fields = META.unpack_from(buf, start)
    magic, version, page_size, flags, root, freelist, pgid, txid, checksum = fields
    root_page, sequence = IN_BUCKET.unpack(root)
    sum_ok = fnv64a(buf[start:start + META_CHECKSUMMED]) == checksum
    return Meta(page, magic, version, page_size, flags, root_page, sequence, freelist,
                pgid, txid, checksum, sum_ok)


class BoltDB:
    """One bbolt file, read from ``data`` (bytes, mmap or memoryview) as of its last
    committed transaction.

    Args:
        data: the whole file.
        source: its path relative to the data root, for error messages.

    Raises:
        MalformedError: neither meta page is valid, or the chosen one points outside
            the file.
    """

    def __init__(self, data: bytes | bytearray | memoryview, source: str):
        self.source = source
        self._buf = memoryview(data).cast("B")
        self.meta = self._choose_meta()
        self.page_size = self.meta.page_size
        # Pages at or above the high-water mark were never committed; the file may be
        # longer (it grows in steps) but must hold every page below it.
        self._npages = min(self.meta.pgid, len(self._buf) // self.page_size)
        if self.meta.root < 2 or self.meta.root >= self._npages:
            raise self.error(self.meta.page, f"root bucket page {self.meta.root} out of range "
                                             f"(high-water mark {self.meta.pgid})")
        self.root = Bucket(self, b"", self.meta.root, None, self.meta.root_sequence)

    @property
    def txid(self) -> int:
        return self.meta.txid

    def bucket(self, *path: Key) -> "Bucket | None":
        """The bucket at ``path`` from the root (names as str or bytes), or None."""
        return self.root.bucket(*path) if path else self.root

    def check(self) -> list[str]:
        """Pages that are neither in use nor free, or in use twice (after tx.Check).

        Every page below the high-water mark must be a meta page, the freelist or
        one of its free pages, or a page of exactly one bucket's tree.

        Raises:
            MalformedError: a page on the way cannot be read.
        """
        owners: dict[int, str] = {0: "meta", 1: "meta"}
        problems: list[str] = []

        def claim(first: int, overflow: int, what: str) -> None:
            for pgid in range(first, first + overflow + 1):
                if pgid in owners:
                    problems.append(f"page {pgid}: {what}, but already {owners[pgid]}")
                else:
                    owners[pgid] = what

        if self.meta.freelist != PGID_NO_FREELIST:
            freelist = self.page(self.meta.freelist, self.meta.page, FREELIST_PAGE)
            claim(freelist.id, freelist.overflow, "the freelist")
            for pgid in freelist.free_ids():
                claim(pgid, 0, "free")
        buckets = [self.root]
        tree_pages: set[int] = set()
        while buckets:
            bucket = buckets.pop()
            if bucket.root_page:
                if bucket.root_page in tree_pages:
                    # A bucket nested in itself: following it would never end.
                    raise self.error(bucket._parent_page, f"bucket {bucket.name!r} has root "
                                     f"page {bucket.root_page}, already in a tree (cycle)")
                for page in bucket._pages():
                    tree_pages.add(page.id)
                    claim(page.id, page.overflow, f"in bucket {bucket.name!r}")
            buckets.extend(child for _, child in bucket.buckets())
        if self._npages < self.meta.pgid:
            problems.append(f"file ends at page {self._npages}, before the high-water "
                            f"mark {self.meta.pgid}")
        problems.extend(f"page {pgid}: neither in use nor free"
                        for pgid in range(self._npages) if pgid not in owners)
        return problems

    def error(self, page: int | None, reason: str) -> MalformedError:
        where = f"page {page}: " if page is not None else ""
        return MalformedError(self.source, f"bbolt {where}{reason}")

    # -- meta pages ----------------------------------------------------------------
    def _choose_meta(self) -> Meta:
        # db.go getPageSize: meta 0 gives the page size; if it is damaged, meta 1 is
        # looked for at each possible page size.
        buf = self._buf
        meta0 = _meta_at(buf, 0, 0)
        if meta0 is None:
            raise self.error(0, f"file too short for a meta page ({len(buf)} bytes)")
        page_size = meta0.page_size if meta0.valid else None
        if page_size is None:
            for size in _PROBE_PAGE_SIZES:
                if size >= len(buf) - 1024:
                    break
                probe = _meta_at(buf, size, 1)
                if probe is not None and probe.valid:
                    page_size = probe.page_size
                    break
        if page_size is None:
            raise self.error(0, "no valid meta page (bad magic, version or checksum)")
        if page_size < _MIN_PAGE_SIZE:
            raise self.error(0, f"page size {page_size} too small")
        meta1 = _meta_at(buf, page_size, 1)
        # db.go meta(): the one with the higher txid if valid, else the other.
        first, second = meta0, meta1
        if meta1 is not None and meta1.txid > meta0.txid:
            first, second = meta1, meta0
        for meta in (first, second):
            if meta is not None and meta.valid and meta.page_size == page_size:
                return meta
        raise self.error(None, "no valid meta page (bad magic, version or checksum)")

    # -- pages ---------------------------------------------------------------------
    def page(self, pgid: int, parent: int | None, flags: int | None = None) -> "Page":
        """Page ``pgid`` with its overflow pages, checked as tx.page/FastCheck does."""
        if pgid < 2 or pgid >= self._npages:
            raise self.error(parent, f"child page {pgid} out of range "
                                     f"(file has {self._npages} pages in use)")
        start = pgid * self.page_size
        ident, page_flags, count, overflow = PAGE_HEADER.unpack_from(self._buf, start)
        if ident != pgid:
            raise self.error(pgid, f"page identifies itself as {ident}")
        end = start + (overflow + 1) * self.page_size
        if pgid + overflow >= self._npages:
            raise self.error(pgid, f"{overflow} overflow pages run past the last page in use")
        if flags is not None and page_flags != flags:
            raise self.error(pgid, f"flags {page_flags:#x}, expected {flags:#x}")
        return Page(self, pgid, page_flags, count, self._buf[start:end], overflow)


class Page:
    """A page's bytes (header and overflow pages included) and decoded header."""
    __slots__ = ("db", "id", "flags", "count", "buf", "overflow")

    def __init__(self, db: BoltDB, pgid: int, flags: int, count: int, buf: memoryview,
                 overflow: int = 0):
        self.db, self.id, self.flags, self.count, self.buf = db, pgid, flags, count, buf
        self.overflow = overflow

    def free_ids(self) -> list[int]:
        """A freelist page's page IDs (page.go FreelistPageIds: a count of 0xFFFF
        means the real count is the first u64)."""
        count, base = self.count, PAGE_HEADER.size
        if count == 0xFFFF:
            if base + 8 > len(self.buf):
                raise self.db.error(self.id, "freelist count runs past the page")
            count = int.from_bytes(self.buf[base:base + 8], "little")
            base += 8
        if base + count * 8 > len(self.buf):
            raise self.db.error(self.id, f"{count} free page IDs do not fit in the page")
        return list(Struct(f"<{count}Q").unpack_from(self.buf, base))

    def _element_base(self, size: int) -> int:
        if PAGE_HEADER.size + self.count * size > len(self.buf):
            raise self.db.error(self.id, f"{self.count} elements do not fit in the page")
        return PAGE_HEADER.size

    def _slice(self, at: int, length: int, what: str) -> bytes:
        if at + length > len(self.buf):
            raise self.db.error(self.id, f"{what} at {at}+{length} runs past the page "
                                         f"({len(self.buf)} bytes)")
        return bytes(self.buf[at:at + length])

    def branch_elements(self) -> list[tuple[bytes, int]]:
        """(key, child page) of each element; keys are where each child starts."""
        base = self._element_base(BRANCH_ELEMENT.size)
        out = []
        for i in range(self.count):
            at = base + i * BRANCH_ELEMENT.size
            pos, ksize, pgid = BRANCH_ELEMENT.unpack_from(self.buf, at)
            out.append((self._slice(at + pos, ksize, f"key {i}"), pgid))
        return out

    def leaf_elements(self) -> list[tuple[int, bytes, bytes]]:
        """(flags, key, value) of each element, in stored order."""
        base = self._element_base(LEAF_ELEMENT.size)
        out = []
        for i in range(self.count):
            at = base + i * LEAF_ELEMENT.size
            flags, pos, ksize, vsize = LEAF_ELEMENT.unpack_from(self.buf, at)
            key = self._slice(at + pos, ksize, f"key {i}")
            value = self._slice(at + pos + ksize, vsize, f"value {i}")
            out.append((flags, key, value))
        return out


def _as_key(name: Key) -> bytes:
    return name.encode() if isinstance(name, str) else bytes(name)


class Bucket:
    """A bucket: a B+tree of key/value pairs and nested buckets (bucket.go)."""

    def __init__(self, db: BoltDB, name: bytes, root: int, inline: Page | None,
                 sequence: int, parent_page: int | None = None):
        self.db = db
        self.name = name
        self.root_page = root             # 0 for an inline bucket
        self.sequence = sequence          # NextSequence's counter
        self._inline = inline
        self._parent_page = parent_page   # the page holding this bucket's entry

    def __repr__(self) -> str:
        return f"<Bucket {self.name!r} root={self.root_page}>"

    # -- tree walk -----------------------------------------------------------------
    def _root(self, seen: set[int]) -> Page:
        if self._inline is not None:
            return self._inline
        seen.add(self.root_page)
        return self.db.page(self.root_page, self._parent_page)

    def _child(self, page: Page, pgid: int, seen: set[int]) -> Page:
        if pgid in seen:
            raise self.db.error(page.id, f"child page {pgid} reached twice (cycle)")
        seen.add(pgid)
        return self.db.page(pgid, page.id)

    def _walk(self) -> Iterator[tuple[Page, bytes | None, bytes | None]]:
        """Branch and leaf pages, depth first, leaves in key order, each with the key
        range its keys must lie in (from ``lo``, below ``hi``) for cursor.go's seek
        to find them. A page reached a second time is a cycle (or a shared subtree),
        which bbolt never writes."""
        seen: set[int] = set()
        stack: list[tuple[Page, bytes | None, bytes | None]] = [(self._root(seen), None, None)]
        while stack:
            page, lo, hi = stack.pop()
            if page.flags == BRANCH_PAGE and self._inline is None:
                children = page.branch_elements()
                keys = [key for key, _ in children]
                if any(a >= b for a, b in zip(keys, keys[1:])):
                    raise self.db.error(page.id, "branch keys out of order")
                for i in reversed(range(len(children))):
                    child = self._child(page, children[i][1], seen)
                    stack.append((child, keys[i] if i else lo,
                                  keys[i + 1] if i + 1 < len(keys) else hi))
            elif page.flags != LEAF_PAGE:
                raise self.db.error(page.id, f"not a branch or leaf page (flags {page.flags:#x})")
            yield page, lo, hi

    def _pages(self) -> Iterator[Page]:
        return (page for page, _, _ in self._walk())

    def _entries(self) -> Iterator[tuple[int, bytes, bytes, int]]:
        last: bytes | None = None
        for page, lo, hi in self._walk():
            if page.flags != LEAF_PAGE:
                continue
            for flags, key, value in page.leaf_elements():
                if last is not None and key <= last:
                    raise self.db.error(page.id, f"key {key!r} out of order")
                if (lo is not None and key < lo) or (hi is not None and key >= hi):
                    raise self.db.error(page.id, f"key {key!r} outside its branch's range")
                last = key
                yield flags, key, value, page.id

    def _seek(self, key: bytes) -> tuple[int, bytes, int] | None:
        """(flags, value, page) of ``key``, descending as cursor.go seek does."""
        seen: set[int] = set()
        page = self._root(seen)
        while page.flags == BRANCH_PAGE and self._inline is None:
            children = page.branch_elements()
            if not children:
                return None
            keys = [k for k, _ in children]
            index = max(bisect_right(keys, key) - 1, 0)
            page = self._child(page, children[index][1], seen)
        if page.flags != LEAF_PAGE:
            raise self.db.error(page.id, f"not a branch or leaf page (flags {page.flags:#x})")
        for flags, k, value in page.leaf_elements():
            if k == key:
                return flags, value, page.id
        return None

    def _open(self, key: bytes, value: bytes, page: int) -> "Bucket":
        # bucket.go openBucket: an InBucket header; root 0 means the bucket's one
        # leaf page follows the header inside the value.
        if len(value) < IN_BUCKET.size:
            raise self.db.error(page, f"bucket {key!r}: value of {len(value)} bytes is too "
                                      f"short for a bucket header")
        root, sequence = IN_BUCKET.unpack_from(value)
        if root != 0:
            return Bucket(self.db, key, root, None, sequence, page)
        body = memoryview(value)[IN_BUCKET.size:]
        if len(body) < PAGE_HEADER.size:
            raise self.db.error(page, f"inline bucket {key!r} has no page header")
        _, flags, count, _ = PAGE_HEADER.unpack_from(body)
        if flags != LEAF_PAGE:
            raise self.db.error(page, f"inline bucket {key!r} is not a leaf (flags {flags:#x})")
        inline = Page(self.db, page, flags, count, body)
        return Bucket(self.db, key, 0, inline, sequence, page)

    # -- public --------------------------------------------------------------------
    def items(self) -> Iterator[tuple[bytes, bytes | None]]:
        """(key, value) in key order; value is None for a nested bucket (ForEach)."""
        for flags, key, value, _ in self._entries():
            yield key, (None if flags & BUCKET_LEAF_FLAG else value)

    def __iter__(self) -> Iterator[bytes]:
        for key, _ in self.items():
            yield key

    def get(self, key: Key) -> bytes | None:
        """The value of ``key``; None if absent or a nested bucket (bucket.go Get)."""
        found = self._seek(_as_key(key))
        if found is None or found[0] & BUCKET_LEAF_FLAG:
            return None
        return found[1]

    def bucket(self, *path: Key) -> "Bucket | None":
        """The nested bucket at ``path`` (names as str or bytes), or None."""
        current: Bucket = self
        for name in path:
            key = _as_key(name)
            found = current._seek(key)
            if found is None or not found[0] & BUCKET_LEAF_FLAG:
                return None
            current = current._open(key, found[1], found[2])
        return current

    def buckets(self) -> Iterator[tuple[bytes, "Bucket"]]:
        """The nested buckets, in key order."""
        for flags, key, value, page in self._entries():
            if flags & BUCKET_LEAF_FLAG:
                yield key, self._open(key, value, page)

