"""dm-thin persistent metadata, read with no kernel: devices, mappings, data space map.

Reads the metadata device of a thin pool (Docker's loop-lvm file
``devicemapper/devicemapper/metadata``, or a copy of a direct-lvm metadata LV).
Every block's checksum and location are checked; damage becomes a Diagnostic that
names the block, and the walk goes on around it where it can. Only a superblock
that cannot be trusted stops the read (MalformedError), as it stops the kernel.

All integers are little-endian; a metadata block is 4096 bytes, block N at N*4096.

References: linux drivers/md/dm-thin-metadata.c (struct thin_disk_superblock,
struct disk_device_details, pack_block_time, sb_check, __open_device),
drivers/md/persistent-data/dm-btree-internal.h (struct node_header, value_base),
dm-btree-spine.c (node_check, BTREE_CSUM_XOR), dm-space-map-common.c
(struct disk_sm_root, disk_index_entry, disk_bitmap_header, sm_lookup_bitmap,
dm_bitmap_check), dm-block-manager.c (dm_bm_checksum);
thin-provisioning-tools v0.9 thin_ls.cc, thin_dump.
"""
from __future__ import annotations

import os
import struct
from struct import Struct
from typing import Iterator, NamedTuple, Protocol

from ..thinloops import crc32c, thin_keys_ok
from ..errors import MalformedError
from ..model import DataSpaceMap, Diagnostic, ThinDevice, ThinLeaf, ThinPool

METADATA_BLOCK_SIZE = 4096
THIN_SUPERBLOCK_MAGIC = 27022010
THIN_METADATA_NEEDS_CHECK_FLAG = 1
SUPPORTED_VERSIONS = (1, 2)                 # THIN_VERSION; tpt 0.9 restores version 1 by default
# dm_bm_checksum salts, one per block kind.
SUPERBLOCK_CSUM_XOR = 160774
BTREE_CSUM_XOR = 121107
BITMAP_CSUM_XOR = 240779
INTERNAL_NODE = 1
LEAF_NODE = 2
# 2 bits per data block after a 16-byte header (sm_ll_init: entries_per_block).
ENTRIES_PER_BITMAP = (METADATA_BLOCK_SIZE - 16) * 4
TIME_BITS = 24                              # pack_block_time: data_block << 24 | time
MAX_BTREE_DEPTH = 32                        # far beyond any real tree: a guard, not a limit
MAX_DIAGNOSTICS = 200
_MAX_KEY = 2**64 - 1

SUPERBLOCK = Struct("<IIQ16sQIIQQ128s128sQQIIQIII")


class ThinDiskSuperblock(NamedTuple):
    csum: int
    flags: int
    blocknr: int
    uuid: bytes
    magic: int
    version: int
    time: int
    trans_id: int
    held_root: int
    data_space_map_root: bytes
    metadata_space_map_root: bytes
    data_mapping_root: int
    device_details_root: int
    data_block_size: int                    # sectors
    metadata_block_size: int                # sectors
    metadata_nr_blocks: int
    compat_flags: int
    compat_ro_flags: int
    incompat_flags: int


NODE_HEADER = Struct("<IIQIIII")


class NodeHeader(NamedTuple):
    csum: int
    flags: int
    blocknr: int
    nr_entries: int
    max_entries: int
    value_size: int
    padding: int


DISK_SM_ROOT = Struct("<QQQQ")


class DiskSmRoot(NamedTuple):
    nr_blocks: int
    nr_allocated: int
    bitmap_root: int
    ref_count_root: int


DISK_INDEX_ENTRY = Struct("<QII")


class DiskIndexEntry(NamedTuple):
    blocknr: int
    nr_free: int
    none_free_before: int


DISK_BITMAP_HEADER = Struct("<IIQ")


class DiskBitmapHeader(NamedTuple):
    csum: int
    not_used: int
    blocknr: int


DISK_DEVICE_DETAILS = Struct("<QQII")


class DiskDeviceDetails(NamedTuple):
    mapped_blocks: int
    transaction_id: int
    creation_time: int
    snapshotted_time: int


_U64 = Struct("<Q")
_CSUM = Struct("<I")
_BLOCK_HEADER = Struct("<IIQ")
# sm_lookup_bitmap: of an entry's two bits, the lower-numbered one is the HIGH bit of
# the count. One translate table per entry of a byte (four 2-bit entries a byte).
_BITMAP_ENTRY = tuple(
    bytes((((x >> (2 * k)) & 1) << 1) | ((x >> (2 * k + 1)) & 1) for x in range(256))
    for k in range(4))


class BlockSource(Protocol):
    """Random access to the metadata: ``os.pread`` without the fd."""

    def pread(self, size: int, offset: int) -> bytes: ...


class FdBlocks:
    """A BlockSource over an open file descriptor (the caller keeps and closes it)."""

    def __init__(self, fd: int):
        self.fd = fd

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)


class _BytesBlocks:
    def __init__(self, data) -> None:
        self.view = memoryview(data).cast("B")

    def pread(self, size: int, offset: int) -> bytes:
        return bytes(self.view[offset:offset + size])


def dm_bm_checksum(block, salt: int) -> int:
    """What the kernel stores in a block's first four bytes.

    dm-block-manager.c dm_bm_checksum: ``crc32c(~0, data, len) ^ xor`` over the block
    after the checksum field, where the kernel's crc32c returns the register without
    the final inversion; hence the extra ``^ 0xFFFFFFFF`` on a standard CRC-32C.
    """
    return crc32c(memoryview(block)[4:]) ^ 0xFFFFFFFF ^ salt


def parse_superblock(block: bytes, source: str, blocknr: int = 0) -> ThinDiskSuperblock:
    """Block 0, checked as sb_check does; anything wrong raises MalformedError."""
    if len(block) < METADATA_BLOCK_SIZE:
        raise MalformedError(source, f"truncated: {len(block)} bytes, the superblock "
                                     f"needs {METADATA_BLOCK_SIZE}")
    sb = ThinDiskSuperblock._make(SUPERBLOCK.unpack_from(block))
    if sb.magic != THIN_SUPERBLOCK_MAGIC:
        raise MalformedError(source, f"not dm-thin metadata: superblock magic {sb.magic}, "
                                     f"want {THIN_SUPERBLOCK_MAGIC}")
    want = dm_bm_checksum(block, SUPERBLOCK_CSUM_XOR)
    if sb.csum != want:
        raise MalformedError(source, f"superblock checksum mismatch: want={want:#010x} "
                                     f"got={sb.csum:#010x}")
    if sb.blocknr != blocknr:
        raise MalformedError(source, f"superblock says it is block {sb.blocknr}, "
                                     f"found at block {blocknr}")
    if sb.version not in SUPPORTED_VERSIONS:
        raise MalformedError(source, f"unsupported metadata version {sb.version}")
    if sb.incompat_flags:
        # The kernel refuses a pool with features it does not know (__check_incompat_features).
        raise MalformedError(source, f"unknown incompatible features {sb.incompat_flags:#x}")
    if not (128 <= sb.data_block_size <= 2097152 and sb.data_block_size % 128 == 0):
        raise MalformedError(source, f"impossible data block size: {sb.data_block_size} sectors")
    return sb


class _Node(NamedTuple):
    is_leaf: bool
    value_size: int
    keys: bytes                             # nr_entries le64
    values: bytes                           # nr_entries values of value_size bytes
    first: int                              # lowest key (0 when empty)
    last: int                               # highest key


_MISSING = object()


class _Reader:
    """One pass over the metadata; decoded nodes are kept, as snapshots share them."""

    def __init__(self, src: BlockSource, nr_file_blocks: int | None, source: str):
        self.src = src
        self.nr_file_blocks = nr_file_blocks
        self.source = source
        self.diagnostics: list[Diagnostic] = []
        self.dropped = 0
        self.nodes: dict[int, _Node | None] = {}
        self.memo: dict[tuple[int, int], tuple[tuple[int, ...], bool]] = {}

    def warn(self, message: str) -> None:
        if len(self.diagnostics) < MAX_DIAGNOSTICS:
            self.diagnostics.append(Diagnostic(self.source, message))
        else:
            self.dropped += 1

    def block(self, blocknr: int, salt: int, kind: str) -> bytes | None:
        """A block whose checksum and self-reported location check out, or None."""
        if self.nr_file_blocks is not None and blocknr >= self.nr_file_blocks:
            self.warn(f"block {blocknr} ({kind}) is past the end of the metadata "
                      f"({self.nr_file_blocks} blocks): truncated?")
            return None
        data = self.src.pread(METADATA_BLOCK_SIZE, blocknr * METADATA_BLOCK_SIZE)
        if len(data) != METADATA_BLOCK_SIZE:
            self.warn(f"block {blocknr} ({kind}) is cut short at {len(data)} bytes: truncated?")
            return None
        # Every checksummed block starts with le32 csum, le32 flags, le64 its own blocknr.
        stored, _, where = _BLOCK_HEADER.unpack_from(data)
        want = crc32c(data[4:]) ^ 0xFFFFFFFF ^ salt
        if stored != want:
            self.warn(f"block {blocknr} ({kind}): checksum mismatch want={want:#010x} "
                      f"got={stored:#010x}")
            return None
        if where != blocknr:
            self.warn(f"block {blocknr} ({kind}) says it is block {where}")
            return None
        return data

    # -- btrees ---------------------------------------------------------------------------
    def node(self, blocknr: int) -> _Node | None:
        hit = self.nodes.get(blocknr, _MISSING)
        if hit is _MISSING:
            data = self.block(blocknr, BTREE_CSUM_XOR, "btree node")
            hit = None if data is None else self._decode_node(blocknr, data)
            self.nodes[blocknr] = hit
        return hit  # type: ignore[return-value]

    def _decode_node(self, blocknr: int, data: bytes) -> _Node | None:
        # dm-btree-spine.c node_check, plus the key order thin_check verifies.
        _, flags, _, n, max_entries, value_size, _ = NODE_HEADER.unpack_from(data)
        if flags != INTERNAL_NODE and flags != LEAF_NODE:
            self.warn(f"block {blocknr}: btree node flags {flags:#x} are neither "
                      f"internal nor leaf")
            return None
        # value_base: values start after max_entries keys, not after nr_entries.
        base = 32 + 8 * max_entries
        if base + value_size * max_entries > METADATA_BLOCK_SIZE:
            self.warn(f"block {blocknr}: btree node max_entries {max_entries} of "
                      f"{value_size}-byte values do not fit a block")
            return None
        if n > max_entries:
            self.warn(f"block {blocknr}: btree node has {n} entries, "
                      f"more than its max_entries {max_entries}")
            return None
        keys = data[32:32 + 8 * n]
        if not thin_keys_ok(keys, 0, _MAX_KEY):
            self.warn(f"block {blocknr}: btree node keys are not in ascending order")
            return None
        if n:
            (first,) = _U64.unpack_from(data, 32)
            (last,) = _U64.unpack_from(data, 24 + 8 * n)
        else:
            first = last = 0
        return _Node(flags == LEAF_NODE, value_size, keys,
                     data[base:base + value_size * n], first, last)

    def leaves(self, root: int, value_size: int, what: str,
               lo: int = 0, hi: int = _MAX_KEY) -> tuple[tuple[int, ...], bool]:
        """The leaf blocks of a btree in key order, and whether all of it was readable."""
        return self._subtree(root, value_size, what, lo, hi, 0, set())

    def _subtree(self, blocknr: int, value_size: int, what: str, lo: int, hi: int,
                 depth: int, path: set[int]) -> tuple[tuple[int, ...], bool]:
        node = self.node(blocknr)
        if node is None:
            self.warn(f"{what}: subtree at block {blocknr} skipped")
            return (), False
        if node.keys and (node.first < lo or node.last > hi):
            self.warn(f"block {blocknr}: keys {node.first}..{node.last} are outside the range "
                      f"{lo}..{hi} its parent gives ({what})")
            return (), False
        memo = self.memo.get((blocknr, value_size))
        if memo is not None:
            return memo
        if blocknr in path:
            self.warn(f"block {blocknr}: btree loop ({what}); not followed again")
            return (), False
        if node.is_leaf:
            if node.value_size != value_size:
                self.warn(f"block {blocknr}: leaf of {node.value_size}-byte values where "
                          f"{value_size} are expected ({what})")
                return (), False
            result: tuple[tuple[int, ...], bool] = ((blocknr,), True)
        else:
            if node.value_size != 8:
                self.warn(f"block {blocknr}: internal node with {node.value_size}-byte values")
                return (), False
            if depth >= MAX_BTREE_DEPTH:
                self.warn(f"block {blocknr}: btree deeper than {MAX_BTREE_DEPTH} levels ({what})")
                return (), False
            path.add(blocknr)
            n = len(node.keys) // 8
            keys = struct.unpack(f"<{n}Q", node.keys)
            children = struct.unpack(f"<{n}Q", node.values)
            parts: list[int] = []
            complete = True
            for i, child in enumerate(children):
                child_hi = keys[i + 1] - 1 if i + 1 < n else hi
                sub, ok = self._subtree(child, value_size, what, keys[i], child_hi, depth + 1, path)
                parts.extend(sub)
                complete = complete and ok
            path.discard(blocknr)
            result = (tuple(parts), complete)
        self.memo[(blocknr, value_size)] = result
        return result

    def items(self, root: int, value_size: int, what: str) -> tuple[list[tuple[int, bytes]], bool]:
        """(key, raw value) of a small btree (details, top-level mappings, index)."""
        blocks, complete = self.leaves(root, value_size, what)
        out: list[tuple[int, bytes]] = []
        for b in blocks:
            node = self.nodes[b]
            assert node is not None
            for i, (key,) in enumerate(struct.iter_unpack("<Q", node.keys)):
                out.append((key, node.values[i * value_size:(i + 1) * value_size]))
        return out, complete

    # -- the data space map ----------------------------------------------------------------
    def data_space_map(self, root: DiskSmRoot) -> DataSpaceMap | None:
        """sm_disk: an index btree of bitmap blocks, and a ref-count btree for counts > 2."""
        nr_bitmaps = -(-root.nr_blocks // ENTRIES_PER_BITMAP)
        index, complete = self.items(root.bitmap_root, DISK_INDEX_ENTRY.size,
                                     "data space map index")
        if not complete and not index:
            self.warn("data space map unreadable; reference counts not checked")
            return None
        counts = bytearray(nr_bitmaps * ENTRIES_PER_BITMAP)
        seen = set()
        for i, raw in index:
            if i >= nr_bitmaps:
                self.warn(f"data space map index names bitmap {i}, past the {nr_bitmaps} "
                          f"that {root.nr_blocks} blocks need")
                continue
            seen.add(i)
            entry = DiskIndexEntry._make(DISK_INDEX_ENTRY.unpack(raw))
            data = self.block(entry.blocknr, BITMAP_CSUM_XOR, f"data space map bitmap {i}")
            if data is None:
                self.warn(f"reference counts of data blocks {i * ENTRIES_PER_BITMAP}.."
                          f"{(i + 1) * ENTRIES_PER_BITMAP - 1} unknown (read as 0)")
                continue
            words = data[DISK_BITMAP_HEADER.size:]
            base = i * ENTRIES_PER_BITMAP
            for k, table in enumerate(_BITMAP_ENTRY):
                counts[base + k:base + ENTRIES_PER_BITMAP:4] = words.translate(table)
        missing = nr_bitmaps - len(seen)
        if missing:
            self.warn(f"data space map index lacks {missing} of its {nr_bitmaps} bitmaps")
        del counts[root.nr_blocks:]
        overflow_blocks, _ = self.leaves(root.ref_count_root, 4, "data space map ref counts")
        overflow = tuple(self.leaf(b) for b in overflow_blocks)
        in_tree = sum(leaf.nr_entries for leaf in overflow)
        if complete and in_tree != counts.count(3):
            self.warn(f"data space map: {counts.count(3)} blocks have counts above 2, "
                      f"the ref-count tree holds {in_tree}")
        allocated = root.nr_blocks - counts.count(0)
        if complete and allocated != root.nr_allocated:
            self.warn(f"data space map: {allocated} blocks in use, its root says "
                      f"{root.nr_allocated}")
        return DataSpaceMap(root.nr_blocks, root.nr_allocated, bytes(counts), overflow)

    def leaf(self, blocknr: int) -> ThinLeaf:
        node = self.nodes[blocknr]
        assert node is not None
        return ThinLeaf(blocknr, node.keys, node.values)


def read_pool(metadata, *, source: str, size: int | None = None) -> ThinPool:
    """Parse a pool's metadata.

    Args:
        metadata: the metadata bytes, or a BlockSource (``FdBlocks(fd)``).
        source: the name diagnostics give the metadata (a path relative to the data root).
        size: bytes of the metadata device, to tell truncation from damage; the length
            of ``metadata`` when it is bytes.

    Returns:
        The pool; ``diagnostics`` lists every damaged or inconsistent block.

    Raises:
        MalformedError: no usable superblock.
    """
    if isinstance(metadata, (bytes, bytearray, memoryview)):
        size = len(metadata)
        metadata = _BytesBlocks(metadata)
    nr_file_blocks = None if size is None else size // METADATA_BLOCK_SIZE
    sb = parse_superblock(metadata.pread(METADATA_BLOCK_SIZE, 0), source)
    r = _Reader(metadata, nr_file_blocks, source)
    if size is not None and size % METADATA_BLOCK_SIZE:
        r.warn(f"size {size} is not a whole number of {METADATA_BLOCK_SIZE}-byte blocks")
    if nr_file_blocks is not None and nr_file_blocks < sb.metadata_nr_blocks:
        r.warn(f"holds {nr_file_blocks} blocks, the superblock says {sb.metadata_nr_blocks}: "
               f"truncated?")
    if sb.flags & THIN_METADATA_NEEDS_CHECK_FLAG:
        r.warn("the superblock's needs_check flag is set: the kernel found this metadata "
               "damaged (run thin_check)")
    if sb.metadata_block_size != METADATA_BLOCK_SIZE // 512:
        r.warn(f"superblock metadata_block_size {sb.metadata_block_size} sectors, expected "
               f"{METADATA_BLOCK_SIZE // 512}")
    data_sm = DiskSmRoot._make(DISK_SM_ROOT.unpack_from(sb.data_space_map_root))
    meta_sm = DiskSmRoot._make(DISK_SM_ROOT.unpack_from(sb.metadata_space_map_root))
    devices, leaves = _devices(r, sb)
    space_map = r.data_space_map(data_sm)
    if r.dropped:
        r.diagnostics.append(Diagnostic(source, f"{r.dropped} more problems not listed"))
    return ThinPool(
        source=source, transaction_id=sb.trans_id, time=sb.time,
        data_block_size=sb.data_block_size, nr_data_blocks=data_sm.nr_blocks,
        metadata_nr_blocks=sb.metadata_nr_blocks, metadata_nr_allocated=meta_sm.nr_allocated,
        held_root=sb.held_root, needs_check=bool(sb.flags & THIN_METADATA_NEEDS_CHECK_FLAG),
        devices=devices, leaves=leaves, data_space_map=space_map,
        diagnostics=tuple(r.diagnostics))


def _devices(r: _Reader, sb: ThinDiskSuperblock) -> tuple[dict[int, ThinDevice], dict[int, ThinLeaf]]:
    """The device details tree joined with the two-level mapping tree."""
    details_items, _ = r.items(sb.device_details_root, DISK_DEVICE_DETAILS.size,
                               "device details tree")
    details = {k: DiskDeviceDetails._make(DISK_DEVICE_DETAILS.unpack(v)) for k, v in details_items}
    top_items, _ = r.items(sb.data_mapping_root, 8, "top-level mapping tree")
    roots = {k: _U64.unpack(v)[0] for k, v in top_items}
    leaves: dict[int, ThinLeaf] = {}
    devices: dict[int, ThinDevice] = {}
    for dev_id in sorted(details.keys() | roots.keys()):
        root = roots.get(dev_id)
        if root is None:
            r.warn(f"device {dev_id} has details but no mapping tree")
            blocks, complete = (), False
        else:
            blocks, complete = r.leaves(root, 8, f"mapping tree of device {dev_id}")
        walked = 0
        for b in blocks:
            leaf = leaves.get(b)
            if leaf is None:
                leaf = leaves[b] = r.leaf(b)
            walked += leaf.nr_entries
        dd = details.get(dev_id)
        if dd is None:
            r.warn(f"device {dev_id} has a mapping tree but no details")
            dd = DiskDeviceDetails(walked, 0, 0, 0)
        elif complete and dd.mapped_blocks != walked:
            r.warn(f"device {dev_id}: details say {dd.mapped_blocks} mapped blocks, "
                   f"its mapping tree holds {walked}")
        devices[dev_id] = ThinDevice(
            device_id=dev_id, mapped_blocks=dd.mapped_blocks, transaction_id=dd.transaction_id,
            creation_time=dd.creation_time, snapshotted_time=dd.snapshotted_time,
            leaves=tuple(blocks), complete=complete)
    return devices, leaves


def device_mappings(pool: ThinPool, device_id: int) -> Iterator[tuple[int, int, int]]:
    """(virtual block, data block, time) of one device, in virtual-block order."""
    for b in pool.devices[device_id].leaves:
        leaf = pool.leaves[b]
        for (vblock,), (block_time,) in zip(struct.iter_unpack("<Q", leaf.keys),
                                            struct.iter_unpack("<Q", leaf.values)):
            yield vblock, block_time >> TIME_BITS, block_time & ((1 << TIME_BITS) - 1)


def ref_count(space_map: DataSpaceMap, block: int) -> int:
    """A data block's reference count, from the bitmap or, above 2, the ref-count tree."""
    count = space_map.counts[block]
    if count < 3:
        return count
    for leaf in space_map.overflow:
        keys = struct.unpack(f"<{leaf.nr_entries}Q", leaf.keys)
        if keys and keys[0] <= block <= keys[-1] and block in keys:
            return _CSUM.unpack_from(leaf.values, 4 * keys.index(block))[0]
    return 3
