"""The bbolt reader: on BuildKit's databases as dockerd wrote them, and on damage.

Real files (tests/fixtures/buildkit, see SOURCE.md) carry branch pages, overflow
pages, inline and nested buckets and freelists; every page of each must be
accounted for. Damaged files must give MalformedError naming the file and page,
never IndexError or struct.error, and never hang. ``make_bolt`` writes small files
for the cases a real daemon does not produce on demand.
"""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.errors import MalformedError
from analyzer.sources import bbolt
from analyzer.sources.bbolt import BRANCH_PAGE, LEAF_PAGE, BoltDB, Bucket, fnv64a

FIXTURES = Path(__file__).parent / "fixtures" / "buildkit"
DB_NAMES = ("metadata_v2.db", "snapshots.db", "containerdmeta.db", "cache.db")


def fixture(name: str) -> bytes:
    return gzip.decompress((FIXTURES / f"{name}.gz").read_bytes())


# -- a minimal bbolt writer --------------------------------------------------------------

def _leaf(entries: list[tuple[int, bytes, bytes]], pgid: int) -> bytes:
    """A leaf page (header, elements, keys and values), unpadded."""
    elems, data = bytearray(), bytearray()
    base = 16 + 16 * len(entries)
    for i, (flags, key, value) in enumerate(entries):
        pos = base + len(data) - (16 + 16 * i)     # relative to the element
        elems += struct.pack("<IIII", flags, pos, len(key), len(value))
        data += key + value
    body = bytes(elems + data)
    return struct.pack("<QHHI", pgid, LEAF_PAGE, len(entries), 0) + body


def make_bolt(tree: dict, *, page_size: int = 4096, txids: tuple[int, int] = (4, 5),
              sequence: int = 0) -> bytes:
    """A bbolt file holding ``tree`` (bytes keys; bytes values or dicts for buckets).

    Buckets without sub-buckets that fit in a quarter page are inline, as bbolt
    writes them; others get one leaf page (with overflow pages when large).
    """
    pages: dict[int, bytes] = {}
    next_id = 3                                          # 2 is the freelist

    def place(entries: list[tuple[int, bytes, bytes]]) -> int:
        nonlocal next_id
        pgid = next_id
        page = bytearray(_leaf(entries, pgid))
        count = max(1, -(-len(page) // page_size))
        struct.pack_into("<I", page, 12, count - 1)      # overflow
        pages[pgid] = bytes(page.ljust(count * page_size, b"\0"))
        next_id += count
        return pgid

    def bucket_value(sub: dict) -> bytes:
        entries = entries_of(sub)
        inline = _leaf(entries, 0)
        if all(flags == 0 for flags, _, _ in entries) and len(inline) <= page_size // 4:
            return struct.pack("<QQ", 0, sequence) + inline
        return struct.pack("<QQ", place(entries), sequence)

    def entries_of(sub: dict) -> list[tuple[int, bytes, bytes]]:
        out = []
        for key in sorted(sub):
            value = sub[key]
            if isinstance(value, dict):
                out.append((bbolt.BUCKET_LEAF_FLAG, key, bucket_value(value)))
            else:
                out.append((0, key, value))
        return out

    root = place(entries_of(tree))
    pages[2] = struct.pack("<QHHI", 2, bbolt.FREELIST_PAGE, 0, 0).ljust(page_size, b"\0")
    for meta_page, txid in enumerate(txids):
        meta = struct.pack("<IIII16sQQQ", bbolt.MAGIC, bbolt.VERSION, page_size, 0,
                           struct.pack("<QQ", root, 0), 2, next_id, txid)
        meta += struct.pack("<Q", fnv64a(meta))
        pages[meta_page] = (struct.pack("<QHHI", meta_page, bbolt.META_PAGE, 0, 0)
                            + meta).ljust(page_size, b"\0")
    out = bytearray(next_id * page_size)
    for pgid, page in pages.items():
        out[pgid * page_size:pgid * page_size + len(page)] = page
    return bytes(out)


def dump(bucket: Bucket) -> dict:
    """A bucket as nested dicts, read both by iteration and by lookup."""
    out: dict = {}
    for key, value in bucket.items():
        if value is None:
            child = bucket.bucket(key)
            assert child is not None and bucket.get(key) is None
            out[key] = dump(child)
        else:
            assert bucket.get(key) == value and bucket.bucket(key) is None
            out[key] = value
    return out


def full_walk(db: BoltDB) -> None:
    """Everything a reader can be asked: page accounting, every bucket, every lookup."""
    db.check()
    dump(db.root)


# -- real files --------------------------------------------------------------------------

def test_fnv64a_vectors() -> None:
    # Go hash/fnv New64a: the offset basis for no input, and the FNV reference vector.
    assert fnv64a(b"") == 0xCBF29CE484222325
    assert fnv64a(b"a") == 0xAF63DC4C8601EC8C
    assert fnv64a(b"foobar") == 0x85944171F73967E8


@pytest.mark.parametrize("name", DB_NAMES)
def test_every_page_of_a_real_file_is_accounted_for(name: str) -> None:
    db = BoltDB(fixture(name), f"buildkit/{name}")
    assert db.page_size == 4096
    assert db.check() == []
    dump(db.root)


def test_the_valid_meta_with_the_highest_txid_is_used() -> None:
    data = fixture("metadata_v2.db")
    metas = [bbolt._meta_at(memoryview(data), i * 4096, i) for i in (0, 1)]
    assert all(m.valid for m in metas)
    db = BoltDB(data, "m")
    assert db.txid == max(m.txid for m in metas)
    assert db.meta.page == db.txid % 2                  # meta.go Write: page = txid % 2


def test_real_file_structure() -> None:
    db = BoltDB(fixture("metadata_v2.db"), "buildkit/metadata_v2.db")
    main = db.bucket("_main")
    assert main is not None and main.root_page != 0
    assert any(page.flags == BRANCH_PAGE for page in main._pages())
    records = dict(main.buckets())
    assert len(records) >= 40
    # Small records are inline buckets; larger ones get a page of their own.
    assert {b.root_page == 0 for b in records.values()} == {True, False}
    assert all(len(name) == 25 for name in records)          # identity.NewID: base36
    for _, record in records.items():
        assert record.get("cache.createdAt").startswith(b'{"value":')
    external = db.bucket("_external")
    big = [v for _, b in external.buckets() for _, v in b.items() if v and len(v) > 4096]
    assert big, "the content-hash value spills onto overflow pages"
    assert db.bucket("_main", "nope") is None
    assert db.bucket("_main", next(iter(records)), "cache.createdAt") is None
    assert db.bucket(b"_index") is not None


def test_lookup_descends_branch_pages() -> None:
    db = BoltDB(fixture("cache.db"), "buildkit/cache.db")
    seen = 0
    for _, top in db.root.buckets():
        for key, value in top.items():
            if value is None:
                assert top.bucket(key) is not None
            else:
                assert top.get(key) == value
            seen += 1
        assert top.get(b"\xff" * 80) is None and top.get(b"") is None
    assert seen > 100


# -- files written here ------------------------------------------------------------------

TREE = {
    b"plain": {b"a": b"1", b"b": b"", b"c": b"x" * 300},
    b"nested": {b"inner": {b"k": b"v"}, b"value": b"here"},
    b"big": {b"blob": bytes(range(256)) * 40, b"z": b"last"},
    b"empty": {},
}


def test_written_file_reads_back() -> None:
    db = BoltDB(make_bolt(TREE), "t.db")
    assert dump(db.root) == TREE
    assert db.check() == []
    assert db.bucket("plain").root_page == 0              # inline
    assert db.bucket("nested").root_page != 0             # has a sub-bucket
    assert db.bucket("big").root_page != 0                # overflow pages


def test_damaged_newer_meta_falls_back_to_the_older() -> None:
    data = bytearray(make_bolt(TREE, txids=(8, 9)))
    data[4096 + 16 + 40] ^= 0xFF                          # meta 1's txid: checksum fails
    db = BoltDB(bytes(data), "t.db")
    assert db.txid == 8 and db.meta.page == 0
    assert dump(db.root) == TREE


def test_damaged_meta_0_page_size_from_meta_1() -> None:
    data = bytearray(make_bolt(TREE, page_size=8192, txids=(8, 9)))
    data[16] ^= 0xFF                                      # meta 0's magic
    db = BoltDB(bytes(data), "t.db")
    assert db.page_size == 8192 and db.txid == 9
    assert dump(db.root) == TREE


def test_real_file_with_its_newer_meta_damaged_reads_the_previous_transaction() -> None:
    data = bytearray(fixture("metadata_v2.db"))
    newer = BoltDB(bytes(data), "m").meta.page
    data[newer * 4096 + 16 + 60] ^= 0x01                  # checksum
    db = BoltDB(bytes(data), "buildkit/metadata_v2.db")
    assert db.meta.page != newer
    dump(db.root)


def test_both_metas_damaged() -> None:
    data = bytearray(make_bolt(TREE))
    data[16 + 8] ^= 1
    data[4096 + 16 + 8] ^= 1
    with pytest.raises(MalformedError, match="no valid meta page") as exc:
        BoltDB(bytes(data), "buildkit/x.db")
    assert exc.value.path == "buildkit/x.db"


@pytest.mark.parametrize("length", [0, 15, 100, 4095, 4096 + 80, 8191, 3 * 4096 + 5, 40000])
def test_truncated(length: int) -> None:
    data = fixture("metadata_v2.db")[:length]
    with pytest.raises(MalformedError) as exc:
        full_walk(BoltDB(data, "buildkit/metadata_v2.db"))
    assert exc.value.path == "buildkit/metadata_v2.db"


def _branch_page(data: bytes) -> int:
    db = BoltDB(data, "m")
    return next(p.id for p in db.bucket("_main")._pages() if p.flags == BRANCH_PAGE)


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_child_page_out_of_range() -> None:
    data = fixture("metadata_v2.db")
    branch = _branch_page(data)
    bad = _patched(data, branch * 4096 + 16 + 8, "<Q", 10**12)   # element 0's pgid
    with pytest.raises(MalformedError, match=rf"page {branch}: child page 1000000000000 out of range"):
        full_walk(BoltDB(bad, "buildkit/metadata_v2.db"))


@pytest.mark.parametrize("element", [0, 1])
def test_cyclic_branch(element: int) -> None:
    data = fixture("metadata_v2.db")
    branch = _branch_page(data)
    bad = _patched(data, branch * 4096 + 16 + 16 * element + 8, "<Q", branch)
    db = BoltDB(bad, "buildkit/metadata_v2.db")
    with pytest.raises(MalformedError, match="cycle"):
        list(db.bucket("_main").items())
    with pytest.raises(MalformedError, match="cycle"):
        db.check()


def tree_pages(db: BoltDB) -> list[bbolt.Page]:
    """Every branch and leaf page of every bucket."""
    out, buckets = [], [db.root]
    while buckets:
        bucket = buckets.pop()
        if bucket.root_page:
            out.extend(bucket._pages())
        buckets.extend(child for _, child in bucket.buckets())
    return out


def test_overflow_past_the_end() -> None:
    data = fixture("metadata_v2.db")
    spilled = next(p for p in tree_pages(BoltDB(data, "m")) if p.overflow)
    bad = _patched(data, spilled.id * 4096 + 12, "<I", 2**31)
    with pytest.raises(MalformedError, match=f"page {spilled.id}: .*overflow"):
        full_walk(BoltDB(bad, "buildkit/metadata_v2.db"))


def test_element_outside_its_page() -> None:
    data = make_bolt({b"b": {b"k": b"v" * 2000, b"j": {b"x": b"y"}}})
    db = BoltDB(data, "t.db")
    leaf = db.bucket("b").root_page
    bad = _patched(data, leaf * 4096 + 16 + 8, "<I", 2**32 - 1)    # element 0's ksize
    with pytest.raises(MalformedError, match=f"page {leaf}: key 0 .* runs past the page"):
        dump(BoltDB(bad, "t.db").root)
    bad = _patched(data, leaf * 4096 + 10, "<H", 60000)             # element count
    with pytest.raises(MalformedError, match="do not fit"):
        dump(BoltDB(bad, "t.db").root)


def test_page_that_is_not_a_tree_page() -> None:
    data = make_bolt(TREE)
    db = BoltDB(data, "t.db")
    bad = _patched(data, db.meta.root * 4096 + 8, "<H", bbolt.FREELIST_PAGE)
    with pytest.raises(MalformedError, match="not a branch or leaf"):
        list(BoltDB(bad, "t.db").root.items())
    bad = _patched(data, db.meta.root * 4096, "<Q", 77)             # page id mismatch
    with pytest.raises(MalformedError, match="identifies itself as 77"):
        BoltDB(bad, "t.db").root.get("x")


def test_bad_inline_bucket() -> None:
    data = bytearray(make_bolt({b"b": {b"k": b"v"}}))
    db = BoltDB(bytes(data), "t.db")
    root = db.meta.root * 4096
    # The root leaf's only element is bucket "b": cut its value to 3 bytes.
    struct.pack_into("<I", data, root + 16 + 12, 3)
    with pytest.raises(MalformedError, match="too short for a bucket header"):
        BoltDB(bytes(data), "t.db").bucket("b")
    data = bytearray(make_bolt({b"b": {b"k": b"v"}}))
    # Its inline page claims to be a branch page.
    value_at = root + 16 + 16 + 1                        # after the element and key "b"
    struct.pack_into("<H", data, value_at + 16 + 8, BRANCH_PAGE)
    with pytest.raises(MalformedError, match="inline bucket b'b' is not a leaf"):
        BoltDB(bytes(data), "t.db").bucket("b")


def test_keys_out_of_order() -> None:
    data = make_bolt({b"b": {b"a": b"1", b"b": b"2", b"c": {b"x": b"y"}}})
    swapped = data.replace(b"a1b2", b"b1a2", 1)
    assert swapped != data
    with pytest.raises(MalformedError, match="out of order"):
        dump(BoltDB(swapped, "t.db").root)


def test_freelist_with_an_extended_count() -> None:
    page = bytearray(4096)
    struct.pack_into("<QHHI", page, 0, 2, bbolt.FREELIST_PAGE, 0xFFFF, 0)
    struct.pack_into("<QQQ", page, 16, 2, 7, 9)
    db = BoltDB(make_bolt(TREE), "t.db")
    assert bbolt.Page(db, 2, bbolt.FREELIST_PAGE, 0xFFFF, memoryview(bytes(page))).free_ids() \
        == [7, 9]
    struct.pack_into("<Q", page, 16, 10**6)
    with pytest.raises(MalformedError, match="do not fit"):
        bbolt.Page(db, 2, bbolt.FREELIST_PAGE, 0xFFFF, memoryview(bytes(page))).free_ids()


def test_pages_neither_used_nor_free_are_reported() -> None:
    data = bytearray(make_bolt(TREE))
    for meta in (0, 1):                                  # raise both metas' high-water mark
        base = meta * 4096 + 16
        struct.pack_into("<Q", data, base + 40, struct.unpack_from("<Q", data, base + 40)[0] + 2)
        struct.pack_into("<Q", data, base + 56, fnv64a(data[base:base + 56]))
    data += bytes(2 * 4096)
    problems = BoltDB(bytes(data), "t.db").check()
    assert len(problems) == 2 and all("neither in use nor free" in p for p in problems)


# -- mutation ----------------------------------------------------------------------------

REAL = fixture("metadata_v2.db")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(REAL) - 1), st.integers(0, 255)),
                min_size=1, max_size=8),
       st.booleans())
def test_mutated_real_file_gives_a_value_or_malformed_error(
        edits: list[tuple[int, int]], data_pages_only: bool) -> None:
    data = bytearray(REAL)
    for offset, byte in edits:
        if data_pages_only:
            offset = 2 * 4096 + offset % (len(REAL) - 2 * 4096)
        data[offset] = byte
    try:
        full_walk(BoltDB(bytes(data), "buildkit/metadata_v2.db"))
    except MalformedError as exc:
        assert exc.path == "buildkit/metadata_v2.db"


def test_bucket_nested_in_itself() -> None:
    data = bytearray(make_bolt({b"a": {b"x": {b"y": {b"q": b"1"}}}}))
    db = BoltDB(bytes(data), "t.db")
    outer = db.bucket("a").root_page
    at = outer * 4096 + 16                               # the leaf's only element: "x"
    pos, ksize = struct.unpack_from("<II", data, at + 4)
    struct.pack_into("<Q", data, at + pos + ksize, outer)   # x's root := a's page
    db = BoltDB(bytes(data), "t.db")
    with pytest.raises(MalformedError, match="cycle"):
        db.check()
    assert db.bucket("a", "x", "x", "x") is not None     # explicit paths still end
