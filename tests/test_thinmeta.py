"""The dm-thin metadata reader against thin_dump, thin_ls and thin_check on real metadata.

Pools come from thin_restore (thin-provisioning-tools 0.9), which never shares btree nodes
between devices, and from tests/dmfixtures.SharedPoolWriter, whose snapshots share
leaves and internal nodes as the kernel's do (thin_check accepts both). Damage is made by
editing those bytes. The CRC-32C and leaf loops run on the native module (SSE4.2 and
table) and on the Python twin.
"""
from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.errors import MalformedError
from analyzer.sources import thinmeta
from tests import dmfixtures as dm
from tests.dmfixtures import Dev, PoolSpec, SharedPoolWriter

HYPOTHESIS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture],
                      deadline=None, max_examples=60)
BLOCK = thinmeta.METADATA_BLOCK_SIZE


# -- CRC-32C and the leaf loops ----------------------------------------------------------

def crc32c_bitwise(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc32c_known_values(backend):
    # RFC 3720 appendix B.4 and the catalogue check value.
    assert backend.crc32c(b"123456789") == 0xE3069283
    assert backend.crc32c(bytes(32)) == 0x8A9136AA
    assert backend.crc32c(b"\xff" * 32) == 0x62A8AB43
    assert backend.crc32c(bytes(range(32))) == 0x46DD794E
    assert backend.crc32c(b"") == 0


@HYPOTHESIS
@given(data=st.binary(max_size=5000), cut=st.integers(0, 5000), seed=st.integers(0, 2**32 - 1))
def test_crc32c_matches_bitwise_and_chains(backend, data, cut, seed):
    cut = min(cut, len(data))
    assert backend.crc32c(data, seed) == crc32c_bitwise(data, seed)
    assert backend.crc32c(data[cut:], backend.crc32c(data[:cut])) == backend.crc32c(data)


def test_crc32c_accepts_buffers(backend):
    data = bytes(range(256)) * 20
    assert backend.crc32c(memoryview(data)[7:]) == backend.crc32c(bytearray(data[7:]))


def block_times(pairs):
    return struct.pack(f"<{len(pairs)}Q", *(d << 24 | t for d, t in pairs))


@HYPOTHESIS
@given(blocks=st.lists(st.integers(0, 40), max_size=300), add=st.integers(0, 255),
       times=st.integers(0, 2**24 - 1))
def test_leaf_loops_match_a_plain_count(backend, blocks, add, times):
    values = block_times([(b, times) for b in blocks])
    counts = bytearray(range(0, 64, 2))             # 32 blocks, some start high
    want = bytearray(counts)
    for b in blocks:
        if b < len(want):
            want[b] = min(255, want[b] + add)
    assert backend.thin_tally(counts, values, add) == sum(b >= 32 for b in blocks)
    assert counts == want
    for target in (0, 1, 2, 255):
        assert backend.thin_count_eq(counts, values, target) == sum(
            1 for b in blocks if b < 32 and counts[b] == target)
    flags = bytearray(32)
    assert backend.thin_mark(flags, values, 4) == sum(b >= 32 for b in blocks)
    assert flags == bytearray(4 if b in set(blocks) else 0 for b in range(32))


@HYPOTHESIS
@given(keys=st.lists(st.integers(0, 2**64 - 1), max_size=40),
       lo=st.integers(0, 2**64 - 1), hi=st.integers(0, 2**64 - 1))
def test_keys_ok(backend, keys, lo, hi):
    packed = struct.pack(f"<{len(keys)}Q", *keys)
    want = all(a < b for a, b in zip(keys, keys[1:])) and all(lo <= k <= hi for k in keys)
    assert backend.thin_keys_ok(packed, lo, hi) is want


def test_leaf_loops_refuse_partial_words(backend):
    with pytest.raises(ValueError):
        backend.thin_tally(bytearray(4), b"\0" * 7, 1)
    with pytest.raises(ValueError):
        backend.thin_keys_ok(b"\0" * 9, 0, 1)


# -- pools ------------------------------------------------------------------------------------

def docker_like_spec() -> PoolSpec:
    """Base device, a chain of snapshots sharing its blocks, one device remapping a
    block at two virtual addresses, one empty device; times as create_snap bumps them."""
    base = Dev(1, transaction=0).map_range(0, 0, 300)
    l1 = Dev(2, transaction=1, creation_time=1, snap_time=2).map_range(0, 0, 300)
    l1.map_range(300, 400, 50, time=1)                 # written after the snapshot
    l2 = Dev(3, transaction=2, creation_time=2, snap_time=2).map_range(0, 0, 290)
    l2.map_range(290, 500, 700, time=2)
    l2.mappings[5000] = (17000, 2)
    twice = Dev(4, transaction=3, creation_time=2).map_range(0, 1300, 10, time=2)
    twice.mappings[100] = (1300, 2)                    # one data block at two vblocks
    empty = Dev(9, transaction=4, creation_time=2)
    return PoolSpec([base, l1, l2, twice, empty], nr_data_blocks=40000, time=2, transaction=5)


@pytest.fixture(scope="module")
def restored(tmp_path_factory) -> tuple[PoolSpec, Path]:
    spec = docker_like_spec()
    path = dm.restore(spec, tmp_path_factory.mktemp("restored") / "metadata")
    assert dm.thin_check(path).returncode == 0
    return spec, path


def shared_writer() -> SharedPoolWriter:
    """As the kernel leaves a pool after snapshots and copy-on-write."""
    w = SharedPoolWriter(nr_data_blocks=50000, transaction=7)
    w.create_thin(1, {v: (v, 0) for v in range(30000)})    # three levels
    w.create_snap(2, 1)
    w.create_snap(3, 2)
    w.write(2, 5, 40000)                                    # one leaf of 2 copied
    w.write(3, 29999, 40001)
    w.write(3, 40000, 40002)                                # appended to 3's last leaf
    w.create_snap(4, 3)                                     # the whole tree shared
    w.create_thin(5)
    w.create_thin(6, {0: (45000, 0), 1: (45000, 0)})
    return w


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shared") / "metadata"
    path.write_bytes(shared_writer().render(4096))
    check = dm.thin_check(path)
    assert check.returncode == 0, check.stderr
    return path


def read(path: Path) -> thinmeta.ThinPool:
    return thinmeta.read_pool(path.read_bytes(), source=path.name)


def leaf_recount(pool) -> Counter:
    """Data block reference counts as the kernel keeps them: once per distinct leaf."""
    counts: Counter = Counter()
    for leaf in pool.leaves.values():
        for (bt,) in struct.iter_unpack("<Q", leaf.values):
            counts[bt >> 24] += 1
    return counts


def test_checksums_of_every_block_kind(restored):
    _, path = restored
    data = path.read_bytes()
    kinds = Counter()
    for b in range(len(data) // BLOCK):
        blk = data[b * BLOCK:(b + 1) * BLOCK]
        if not any(blk):
            continue
        (stored,) = struct.unpack_from("<I", blk)
        for kind, salt in (("superblock", thinmeta.SUPERBLOCK_CSUM_XOR),
                           ("node", thinmeta.BTREE_CSUM_XOR),
                           ("bitmap", thinmeta.BITMAP_CSUM_XOR), ("index", 160478)):
            if thinmeta.dm_bm_checksum(blk, salt) == stored:
                kinds[kind] += 1
    assert kinds["superblock"] == 1 and kinds["node"] > 10
    assert kinds["bitmap"] >= 3 and kinds["index"] == 1


@pytest.mark.parametrize("source", ["restored", "shared"])
def test_mappings_equal_thin_dump(loops, source, request):
    fixture = request.getfixturevalue(source)
    path = fixture[1] if isinstance(fixture, tuple) else fixture
    pool = read(path)
    assert pool.diagnostics == ()
    dumped = dm.thin_dump(path)
    assert sorted(pool.devices) == sorted(dumped)
    for dev_id, rows in dumped.items():
        assert list(thinmeta.device_mappings(pool, dev_id)) == rows
        assert pool.devices[dev_id].complete


def test_superblock_and_details_equal_the_xml(restored):
    spec, path = restored
    pool = read(path)
    assert (pool.transaction_id, pool.time, pool.data_block_size, pool.nr_data_blocks) == (
        5, 2, 128, 40000)
    assert pool.data_block_bytes == 65536
    assert pool.metadata_nr_blocks == (8 << 20) // BLOCK and pool.held_root == 0
    for dev in spec.devices:
        got = pool.devices[dev.dev_id]
        assert (got.mapped_blocks, got.transaction_id, got.creation_time,
                got.snapshotted_time) == (len(dev.mappings), dev.transaction,
                                          dev.creation_time, dev.snap_time)


def test_data_space_map_is_the_leaf_recount(restored, shared):
    for path in (restored[1], shared):
        pool = read(path)
        sm = pool.data_space_map
        want = leaf_recount(pool)
        assert sm.nr_blocks == pool.nr_data_blocks and sm.nr_allocated == len(want)
        got = {b: thinmeta.ref_count(sm, b) for b in range(sm.nr_blocks) if sm.counts[b]}
        assert got == dict(want)


def test_restored_counts_are_per_mapping(restored):
    # thin_restore increments a block once per mapping (restore_emitter.cc): block 0 is
    # mapped by devices 1, 2 and 3, so its count is in the ref-count tree.
    pool = read(restored[1])
    assert thinmeta.ref_count(pool.data_space_map, 0) == 3
    assert thinmeta.ref_count(pool.data_space_map, 1300) == 2
    assert pool.data_space_map.overflow


def test_shared_pool_shares_nodes(shared):
    pool = read(shared)
    d1, d2, d3, d4 = (pool.devices[i].leaves for i in (1, 2, 3, 4))
    assert d3 == d4                                           # a snapshot never written to
    assert len(set(d1) & set(d2)) == len(d1) - 1              # one leaf copied on write
    assert len(pool.leaves) < len(d1) + len(d2) + len(d3)
    assert pool.devices[2].mapped_blocks == 30000 and pool.devices[3].mapped_blocks == 30001
    # the space map counts leaves, not devices: block 1000 is in one leaf all four share,
    # block 7 in device 1's first leaf and in the copy 2 made (which 3 and 4 share)
    assert thinmeta.ref_count(pool.data_space_map, 1000) == 1
    assert thinmeta.ref_count(pool.data_space_map, 7) == 2
    assert thinmeta.ref_count(pool.data_space_map, 5) == 1    # 2's copy maps 40000 there
    assert thinmeta.ref_count(pool.data_space_map, 45000) == 2


def test_reads_from_a_file_descriptor(shared):
    import os
    fd = os.open(shared, os.O_RDONLY)
    try:
        pool = thinmeta.read_pool(thinmeta.FdBlocks(fd), source="m", size=os.fstat(fd).st_size)
    finally:
        os.close(fd)
    assert pool.devices == read(shared).devices


# -- damage -----------------------------------------------------------------------------------

def edit_block(data: bytes, blocknr: int, edit, salt: int | None = thinmeta.BTREE_CSUM_XOR) -> bytes:
    """Change a block and, unless salt is None, give it a valid checksum again."""
    blk = bytearray(data[blocknr * BLOCK:(blocknr + 1) * BLOCK])
    edit(blk)
    if salt is not None:
        struct.pack_into("<I", blk, 0, thinmeta.dm_bm_checksum(blk, salt))
    return data[:blocknr * BLOCK] + bytes(blk) + data[(blocknr + 1) * BLOCK:]


def flip(offset: int):
    def edit(blk: bytearray) -> None:
        blk[offset] ^= 0x40
    return edit


def test_bad_superblock_checksum_is_an_error(restored):
    data = edit_block(restored[1].read_bytes(), 0, flip(100), salt=None)
    with pytest.raises(MalformedError, match="superblock checksum mismatch: want=0x"):
        thinmeta.read_pool(data, source="metadata")


def test_not_metadata_is_an_error():
    with pytest.raises(MalformedError, match="not dm-thin metadata"):
        thinmeta.read_pool(bytes(3 * BLOCK), source="metadata")
    with pytest.raises(MalformedError, match="truncated"):
        thinmeta.read_pool(b"\0" * 100, source="metadata")


def test_bad_node_checksum_names_the_block_and_spares_the_rest(shared):
    pool = read(shared)
    victim = pool.devices[2].leaves[0]                  # the leaf only device 2 has
    data = edit_block(shared.read_bytes(), victim, flip(200), salt=None)
    damaged = thinmeta.read_pool(data, source="metadata")
    messages = " | ".join(str(d) for d in damaged.diagnostics)
    assert f"block {victim} (btree node): checksum mismatch" in messages
    assert not damaged.devices[2].complete
    assert damaged.devices[2].leaves == pool.devices[2].leaves[1:]
    for dev_id in (1, 3, 4, 5, 6):
        assert damaged.devices[dev_id] == pool.devices[dev_id]


def test_node_at_the_wrong_place_is_damage(shared):
    pool = read(shared)
    victim = pool.devices[1].leaves[3]
    data = edit_block(shared.read_bytes(), victim,
                      lambda blk: struct.pack_into("<Q", blk, 8, victim + 1))
    damaged = thinmeta.read_pool(data, source="metadata")
    assert any(f"block {victim} (btree node) says it is block {victim + 1}" in str(d)
               for d in damaged.diagnostics)
    assert not damaged.devices[1].complete and damaged.devices[6].complete


def internal_nodes(data: bytes):
    for b in range(1, len(data) // BLOCK):
        blk = data[b * BLOCK:(b + 1) * BLOCK]
        hdr = thinmeta.NodeHeader._make(thinmeta.NODE_HEADER.unpack_from(blk))
        if (hdr.blocknr == b and hdr.flags == thinmeta.INTERNAL_NODE
                and thinmeta.dm_bm_checksum(blk, thinmeta.BTREE_CSUM_XOR) == hdr.csum):
            yield b, hdr


def test_loop_in_a_tree_ends_with_a_diagnostic(shared):
    data = shared.read_bytes()
    # An internal node whose last child points back at the node itself, keys still in order.
    b, hdr = next((b, h) for b, h in internal_nodes(data) if h.nr_entries > 2)
    base = 32 + 8 * hdr.max_entries

    def loop(blk: bytearray) -> None:
        struct.pack_into("<Q", blk, base + 8 * (hdr.nr_entries - 1), b)
    damaged = thinmeta.read_pool(edit_block(data, b, loop), source="metadata")
    assert any("loop" in str(d) or "outside the range" in str(d) for d in damaged.diagnostics)
    assert any(not d.complete for d in damaged.devices.values())


def test_cycle_through_two_nodes_ends(shared):
    data = shared.read_bytes()
    (a, ha), (b, hb) = list(internal_nodes(data))[:2]
    # a's only child becomes b and b's only child a, with one key, so that no range check
    # can cut the cycle: only the walk's record of the path can.
    key = struct.unpack_from("<Q", data, a * BLOCK + 32)[0]

    def to(target, hdr):
        def edit(blk: bytearray) -> None:
            struct.pack_into("<I", blk, 16, 1)
            struct.pack_into("<Q", blk, 32, key)
            struct.pack_into("<Q", blk, 32 + 8 * hdr.max_entries, target)
        return edit
    data = edit_block(edit_block(data, a, to(b, ha)), b, to(a, hb))
    damaged = thinmeta.read_pool(data, source="metadata")
    assert any(f"block {a}: btree loop" in str(d) or f"block {b}: btree loop" in str(d)
               for d in damaged.diagnostics), damaged.diagnostics


def test_truncated_file_reports_blocks_past_the_end(restored, shared):
    # thin_restore writes the small trees first: a cut leaves devices with part of their tree.
    spec, path = restored
    pool = read(path)
    cut = max(pool.devices[3].leaves) - 2
    damaged = thinmeta.read_pool(path.read_bytes()[:cut * BLOCK], source="metadata")
    messages = [str(d) for d in damaged.diagnostics]
    assert any("truncated?" in m for m in messages)
    assert any("past the end of the metadata" in m for m in messages)
    assert sorted(damaged.devices) == sorted(pool.devices)
    assert not damaged.devices[3].complete
    # Here the trees come last: a cut loses them, with a diagnostic, not an exception.
    lost = thinmeta.read_pool(shared.read_bytes()[:50 * BLOCK], source="metadata")
    assert not lost.devices and lost.diagnostics and lost.data_space_map is None


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None,
          max_examples=40)
@given(st.data())
def test_random_damage_never_crashes(shared, data):
    raw = bytearray(shared.read_bytes()[:300 * BLOCK])
    for _ in range(data.draw(st.integers(1, 8))):
        block = data.draw(st.integers(0, 299))
        offset = data.draw(st.integers(0, BLOCK - 1))
        raw[block * BLOCK + offset] = data.draw(st.integers(0, 255))
        if data.draw(st.booleans()) and block:          # keep the checksum valid
            blk = raw[block * BLOCK:(block + 1) * BLOCK]
            for salt in (thinmeta.BTREE_CSUM_XOR, thinmeta.BITMAP_CSUM_XOR):
                struct.pack_into("<I", raw, block * BLOCK, thinmeta.dm_bm_checksum(blk, salt))
                if data.draw(st.booleans()):
                    break
    try:
        pool = thinmeta.read_pool(bytes(raw), source="metadata")
    except MalformedError:
        return
    for dev_id in pool.devices:
        list(thinmeta.device_mappings(pool, dev_id))
