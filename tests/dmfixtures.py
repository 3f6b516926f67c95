"""Builders for the devicemapper tests: thin-pool metadata, Docker's devicemapper tree, data files.

Pool metadata comes two ways:

* ``restore(spec, path)``: thin_restore (thin-provisioning-tools 0.9) from XML written here.
  Real metadata from the real tool, but 0.9 builds an independent mapping tree per device:
  it never shares btree nodes between devices, as the kernel's snapshots do.
* ``SharedPoolWriter``: metadata written block by block (with our CRC-32C), where snapshots
  share leaves and internal nodes as after the kernel's ``create_snap`` and copy-on-write.
  Reference counts are per distinct node, as the kernel keeps them; thin_check accepts it.

``docker_tree`` lays out what moby's devmapper driver writes (devicemapper/metadata/<hash>,
deviceset-metadata, transaction-metadata, devicemapper/devicemapper/{data,metadata}) plus a
minimal image/devicemapper layer store, and ``DataFile`` makes the sparse loop file whose
allocated extents a test controls (real writes, then holes punched with fallocate).

References: thin-provisioning-tools v0.9 xml_format.cc, restore_emitter.cc, thin_ls.cc;
linux drivers/md/dm-thin-metadata.c, persistent-data/dm-btree*.c, dm-space-map-common.c,
dm-space-map-metadata.c; moby v24 daemon/graphdriver/devmapper/deviceset.go.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from analyzer._thin_py import crc32c

BLOCK = 4096
SUPERBLOCK_CSUM_XOR = 160774
BTREE_CSUM_XOR = 121107
BITMAP_CSUM_XOR = 240779
INDEX_CSUM_XOR = 160478
ENTRIES_PER_BITMAP = (BLOCK - 16) * 4
THIN_SUPERBLOCK_MAGIC = 27022010


# -- pool specifications and the thin-provisioning-tools ----------------------------------

@dataclass
class Dev:
    """A thin device: vblock -> (data block, time)."""
    dev_id: int
    mappings: dict[int, tuple[int, int]] = field(default_factory=dict)
    transaction: int = 0
    creation_time: int = 0
    snap_time: int = 0

    def map_range(self, vbegin: int, dbegin: int, length: int, time: int = 0) -> "Dev":
        for i in range(length):
            self.mappings[vbegin + i] = (dbegin + i, time)
        return self


@dataclass
class PoolSpec:
    devices: list[Dev]
    nr_data_blocks: int
    data_block_size: int = 128          # sectors: 64 KiB, Docker's default
    time: int = 0
    transaction: int = 0

    @property
    def block_bytes(self) -> int:
        return self.data_block_size * 512


def _runs(mappings: dict[int, tuple[int, int]]) -> Iterable[tuple[int, int, int, int]]:
    """(vbegin, dbegin, length, time) runs, as thin_dump prints range_mapping."""
    run = None
    for v in sorted(mappings):
        d, t = mappings[v]
        if run and v == run[0] + run[2] and d == run[1] + run[2] and t == run[3]:
            run[2] += 1
            continue
        if run:
            yield tuple(run)
        run = [v, d, 1, t]
    if run:
        yield tuple(run)


def write_xml(spec: PoolSpec, out) -> None:
    """thin_restore's input (xml_format.cc), streamed."""
    out.write(f'<superblock uuid="" time="{spec.time}" transaction="{spec.transaction}" '
              f'flags="0" version="2" data_block_size="{spec.data_block_size}" '
              f'nr_data_blocks="{spec.nr_data_blocks}">\n')
    for dev in spec.devices:
        out.write(f'  <device dev_id="{dev.dev_id}" mapped_blocks="{len(dev.mappings)}" '
                  f'transaction="{dev.transaction}" creation_time="{dev.creation_time}" '
                  f'snap_time="{dev.snap_time}">\n')
        for v, d, n, t in _runs(dev.mappings):
            if n == 1:
                out.write(f'    <single_mapping origin_block="{v}" data_block="{d}" time="{t}"/>\n')
            else:
                out.write(f'    <range_mapping origin_begin="{v}" data_begin="{d}" '
                          f'length="{n}" time="{t}"/>\n')
        out.write('  </device>\n')
    out.write('</superblock>\n')


def restore(spec: PoolSpec, path: Path, metadata_bytes: int = 8 << 20) -> Path:
    """Real metadata from thin_restore; the output must exist at its final size."""
    xml = path.with_suffix(".xml")
    with open(xml, "w") as out:
        write_xml(spec, out)
    with open(path, "wb") as f:
        f.truncate(metadata_bytes)
    subprocess.run(["thin_restore", "-q", "-i", str(xml), "-o", str(path)], check=True,
                   capture_output=True)
    return path


def thin_dump(path: Path) -> dict[int, list[tuple[int, int, int]]]:
    """Every device's (vblock, data block, time), as thin_dump's XML says."""
    xml = subprocess.run(["thin_dump", str(path)], check=True, capture_output=True).stdout
    out: dict[int, list[tuple[int, int, int]]] = {}
    for dev in ET.fromstring(xml).iter("device"):
        rows = out.setdefault(int(dev.get("dev_id")), [])
        for m in dev:
            t = int(m.get("time"))
            if m.tag == "single_mapping":
                rows.append((int(m.get("origin_block")), int(m.get("data_block")), t))
            else:
                v, d = int(m.get("origin_begin")), int(m.get("data_begin"))
                rows.extend((v + i, d + i, t) for i in range(int(m.get("length"))))
    return out


def thin_ls(path: Path) -> dict[int, tuple[int, int, int]]:
    """dev -> (MAPPED_BLOCKS, EXCLUSIVE_BLOCKS, SHARED_BLOCKS) from thin_ls 0.9 (reads a file
    directly; -m is only for a live pool's metadata snapshot)."""
    out = subprocess.run(["thin_ls", "--no-headers", "-o",
                          "DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS", str(path)],
                         check=True, capture_output=True, text=True).stdout
    rows = {}
    for line in out.splitlines():
        dev, mapped, excl, shared = (int(x) for x in line.split())
        rows[dev] = (mapped, excl, shared)
    return rows


def thin_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["thin_check", str(path)], capture_output=True, text=True)


def use_loops(module, monkeypatch) -> None:
    """Run the reader and the engine on one module's CRC-32C and leaf loops."""
    from analyzer.engines import slack
    from analyzer.sources import thinmeta
    for target in (thinmeta, slack):
        for name in ("crc32c", "thin_keys_ok", "thin_tally", "thin_count_eq", "thin_mark"):
            if hasattr(target, name):
                monkeypatch.setattr(target, name, getattr(module, name))


# -- metadata written here, with shared subtrees ------------------------------------------

def calc_max_entries(value_size: int) -> int:
    # dm-btree.c calc_max_entries: a multiple of 3 that fits the block.
    return 3 * (((BLOCK - 32) // (8 + value_size)) // 3)


def _checksummed(body: bytearray, salt: int) -> bytes:
    struct.pack_into("<I", body, 0, crc32c(body[4:]) ^ 0xFFFFFFFF ^ salt)
    return bytes(body)


def _balanced(items: list, most: int) -> list[list]:
    """items in the fewest groups of at most ``most``, as even as can be.

    thin_check wants every node but the root at least a third full (btree_checker), and
    even groups of up to ``most`` entries are at least half of it when there are two or more.
    """
    if not items:
        return []
    groups = -(-len(items) // most)
    size, extra = divmod(len(items), groups)
    out, at = [], 0
    for g in range(groups):
        n = size + (g < extra)
        out.append(items[at:at + n])
        at += n
    return out


class _Leaf:
    """A mapping leaf; shared between devices by identity, never changed in place."""
    __slots__ = ("entries",)

    def __init__(self, entries: list[tuple[int, int]]):
        self.entries = entries          # (vblock, block_time), ascending

    @property
    def first(self) -> int:
        return self.entries[0][0]


class SharedPoolWriter:
    """dm-thin metadata where snapshots share btree nodes, written block by block.

    Devices are lists of leaves. ``create_snap`` shares the origin's leaves; ``write``
    copies only the leaf it changes (the kernel's shadowing of the path to a leaf); the
    internal levels are built per device at ``render`` and hash-consed, so devices whose
    leaves group alike share internal nodes too, down to the whole tree of a snapshot
    never written to. Reference counts are then per distinct node: a data block counts
    once per distinct leaf that maps it, a node once per parent entry naming it.
    """

    def __init__(self, nr_data_blocks: int, data_block_size: int = 128, *,
                 leaf_entries: int = 168, fanout: int = 168, time: int = 0,
                 transaction: int = 0):
        self.nr_data_blocks = nr_data_blocks
        self.data_block_size = data_block_size
        self.leaf_entries = leaf_entries
        self.fanout = fanout
        self.time = time
        self.transaction = transaction
        self.trees: dict[int, list[_Leaf]] = {}
        self.details: dict[int, tuple[int, int, int, int]] = {}

    def create_thin(self, dev_id: int, mappings: dict[int, tuple[int, int]] | None = None,
                    transaction: int = 0) -> None:
        entries = [(v, d << 24 | t) for v, (d, t) in sorted((mappings or {}).items())]
        self.trees[dev_id] = [_Leaf(p) for p in _balanced(entries, self.leaf_entries)]
        self.details[dev_id] = (len(entries), transaction, self.time, self.time)

    def create_snap(self, dev_id: int, origin: int, transaction: int = 0) -> None:
        # dm-thin-metadata.c __create_snap: the same tree, time += 1, both snapshotted now.
        self.time += 1
        self.trees[dev_id] = list(self.trees[origin])
        mapped, otx, octime, _ = self.details[origin]
        self.details[origin] = (mapped, otx, octime, self.time)
        self.details[dev_id] = (mapped, transaction, self.time, self.time)

    def delete(self, dev_id: int) -> None:
        del self.trees[dev_id], self.details[dev_id]

    def write(self, dev_id: int, vblock: int, data_block: int, time: int | None = None) -> None:
        leaves = self.trees[dev_id]
        entry = (vblock, data_block << 24 | (self.time if time is None else time))
        i = max((k for k, leaf in enumerate(leaves) if leaf.first <= vblock), default=0)
        old = leaves[i].entries if leaves else []
        kept = [e for e in old if e[0] != vblock]
        new = sorted(kept + [entry])
        mapped, tx, ctime, stime = self.details[dev_id]
        self.details[dev_id] = (mapped + (len(kept) == len(old)), tx, ctime, stime)
        parts = [new] if len(new) <= self.leaf_entries else [new[:len(new) // 2],
                                                             new[len(new) // 2:]]
        leaves[i:i + 1 if leaves else 0] = [_Leaf(p) for p in parts]

    # -- rendering ----------------------------------------------------------------------
    def render(self, nr_metadata_blocks: int = 2048) -> bytes:
        r = _Render(nr_metadata_blocks)
        leaf_blocks: dict[int, int] = {}
        data_refs: Counter[int] = Counter()
        roots: dict[int, int] = {}
        for dev_id, leaves in sorted(self.trees.items()):
            level = []
            for leaf in leaves:
                b = leaf_blocks.get(id(leaf))
                if b is None:
                    b = leaf_blocks[id(leaf)] = r.node(True, [e[0] for e in leaf.entries],
                                                       [struct.pack("<Q", e[1]) for e in leaf.entries], 8)
                    data_refs.update(e[1] >> 24 for e in leaf.entries)
                level.append((leaf.first, b))
            if not level:
                level = [(0, r.node(True, [], [], 8))]
            while len(level) > 1:
                level = [r.internal(group) for group in _balanced(level, self.fanout)]
            roots[dev_id] = level[0][1]
            r.refs[level[0][1]] += 1            # named by its entry in the top-level tree
        top = r.btree([(d, struct.pack("<Q", roots[d])) for d in sorted(roots)], 8)
        details = r.btree([(d, struct.pack("<QQII", *self.details[d])) for d in sorted(self.details)], 24)
        data_sm = r.disk_space_map(self.nr_data_blocks, data_refs)
        meta_sm = r.metadata_space_map()
        return r.superblock(self, data_sm, meta_sm, top, details)


class _Render:
    """Allocates blocks in order and counts references to them."""

    def __init__(self, nr_metadata_blocks: int):
        self.nr = nr_metadata_blocks
        self.blocks: dict[int, bytes] = {}
        self.next = 1                               # 0 is the superblock
        self.refs: Counter[int] = Counter({0: 1})
        self.internals: dict[tuple[int, ...], int] = {}

    def alloc(self) -> int:
        b, self.next = self.next, self.next + 1
        assert b < self.nr, "metadata too small"
        return b

    def node(self, leaf: bool, keys: list[int], values: list[bytes], value_size: int) -> int:
        b = self.alloc()
        self.blocks[b] = self.node_bytes(b, leaf, keys, values, value_size)
        return b

    @staticmethod
    def node_bytes(b: int, leaf: bool, keys: list[int], values: list[bytes], value_size: int) -> bytes:
        max_entries = calc_max_entries(value_size)
        body = bytearray(BLOCK)
        struct.pack_into("<IIQIIII", body, 0, 0, 2 if leaf else 1, b, len(keys), max_entries,
                         value_size, 0)
        struct.pack_into(f"<{len(keys)}Q", body, 32, *keys)
        base = 32 + 8 * max_entries
        for i, v in enumerate(values):
            body[base + i * value_size:base + (i + 1) * value_size] = v
        return _checksummed(body, BTREE_CSUM_XOR)

    def internal(self, children: list[tuple[int, int]]) -> tuple[int, int]:
        key = tuple(b for _, b in children)
        b = self.internals.get(key)
        if b is None:
            b = self.internals[key] = self.node(False, [k for k, _ in children],
                                                [struct.pack("<Q", c) for c in key], 8)
            self.refs.update(key)
        return children[0][0], b

    def btree(self, items: list[tuple[int, bytes]], value_size: int) -> int:
        """A btree of full leaves (the small trees); its root is referenced once."""
        level = [(group[0][0], self.node(True, [k for k, _ in group], [v for _, v in group],
                                         value_size))
                 for group in _balanced(items, calc_max_entries(value_size))]
        level = level or [(0, self.node(True, [], [], value_size))]
        while len(level) > 1:
            level = [self.internal(group) for group in _balanced(level, calc_max_entries(8))]
        self.refs[level[0][1]] += 1
        return level[0][1]

    def bitmaps(self, nr_blocks: int, counts: Counter[int], blocks: list[int]
                ) -> list[tuple[int, int, int]]:
        """Bitmap blocks at the given locations; returns their index entries."""
        entries = []
        for i, b in enumerate(blocks):
            body = bytearray(BLOCK)
            struct.pack_into("<IIQ", body, 0, 0, 0, b)
            lo, hi = i * ENTRIES_PER_BITMAP, min(nr_blocks, (i + 1) * ENTRIES_PER_BITMAP)
            free, first_free = 0, None
            for blk in range(lo, hi):
                c = min(counts.get(blk, 0), 3)
                e = blk - lo
                # sm_lookup_bitmap: bit 2e is the high bit, bit 2e+1 the low bit.
                bits = (c >> 1) | ((c & 1) << 1)
                body[16 + e // 4] |= bits << (2 * (e % 4))
                if c == 0:
                    free += 1
                    if first_free is None:
                        first_free = e
            self.blocks[b] = _checksummed(body, BITMAP_CSUM_XOR)
            entries.append((b, free, hi - lo if first_free is None else first_free))
        return entries

    def disk_space_map(self, nr_blocks: int, counts: Counter[int]) -> tuple:
        """The data space map: bitmaps, their index btree, a ref-count btree for counts > 2."""
        nr_bitmaps = -(-nr_blocks // ENTRIES_PER_BITMAP)
        blocks = [self.alloc() for _ in range(nr_bitmaps)]
        self.refs.update(blocks)
        entries = self.bitmaps(nr_blocks, counts, blocks)
        index = self.btree([(i, struct.pack("<QII", *e)) for i, e in enumerate(entries)], 16)
        overflow = self.btree([(b, struct.pack("<I", c)) for b, c in sorted(counts.items()) if c > 2], 4)
        allocated = sum(1 for b, c in counts.items() if c and b < nr_blocks)
        return (nr_blocks, allocated, index, overflow)

    def metadata_space_map(self) -> tuple:
        """sm_metadata: one index block (255 entries) naming bitmaps of metadata blocks."""
        assert self.nr <= 255 * ENTRIES_PER_BITMAP
        nr_bitmaps = -(-self.nr // ENTRIES_PER_BITMAP)
        index = self.alloc()
        blocks = [self.alloc() for _ in range(nr_bitmaps)]
        self.refs.update([index] + blocks)
        high = [(b, c) for b, c in sorted(self.refs.items()) if c > 2]
        # The ref-count tree's own nodes count once each, so building it changes no count > 2.
        overflow = self.btree([(b, struct.pack("<I", c)) for b, c in high], 4)
        entries = self.bitmaps(self.nr, self.refs, blocks)
        body = bytearray(BLOCK)
        struct.pack_into("<IIQ", body, 0, 0, 0, index)
        for i, e in enumerate(entries):
            struct.pack_into("<QII", body, 16 + 16 * i, *e)
        self.blocks[index] = _checksummed(body, INDEX_CSUM_XOR)
        allocated = sum(1 for c in self.refs.values() if c)
        return (self.nr, allocated, index, overflow)

    def superblock(self, w: SharedPoolWriter, data_sm: tuple, meta_sm: tuple, top: int,
                   details: int) -> bytes:
        body = bytearray(BLOCK)
        struct.pack_into("<IIQ16sQIIQQ", body, 0, 0, 0, 0, b"", THIN_SUPERBLOCK_MAGIC, 2,
                         w.time, w.transaction, 0)
        struct.pack_into("<QQQQ", body, 64, *data_sm)
        struct.pack_into("<QQQQ", body, 192, *meta_sm)
        struct.pack_into("<QQIIQIII", body, 320, top, details, w.data_block_size, 8, self.nr, 0, 0, 0)
        self.blocks[0] = _checksummed(body, SUPERBLOCK_CSUM_XOR)
        out = bytearray(self.nr * BLOCK)
        for b, data in self.blocks.items():
            out[b * BLOCK:(b + 1) * BLOCK] = data
        return bytes(out)


# -- Docker's devicemapper tree -----------------------------------------------------------

@dataclass
class DockerDev:
    """A device as Docker knows it: metadata/<hash> (hash None: an orphan, no file)."""
    hash: str | None
    device_id: int
    size: int = 10 * 1024**3
    transaction_id: int = 0
    deleted: bool = False


def go_json(obj) -> bytes:
    """json.Marshal's bytes: no spaces."""
    return json.dumps(obj, separators=(",", ":")).encode()


def docker_tree(root: Path, devices: list[DockerDev], *, metadata: bytes | Path | None,
                next_device_id: int = 0, open_transaction_id: int | None = None,
                transaction_hash: str = "", transaction_device_id: int = 0) -> Path:
    """devicemapper/ as moby's DeviceSet leaves it (loop-lvm)."""
    meta_dir = root / "devicemapper" / "metadata"
    meta_dir.mkdir(parents=True, exist_ok=True)
    for d in devices:
        if d.hash is None:
            continue
        # deviceset.go saveMetadata: json.Marshal(devInfo); the base device's file is "base".
        (meta_dir / (d.hash or "base")).write_bytes(go_json({
            "device_id": d.device_id, "size": d.size, "transaction_id": d.transaction_id,
            "initialized": True, "deleted": d.deleted}))
    (meta_dir / "deviceset-metadata").write_bytes(go_json({
        "next_device_id": next_device_id, "BaseDeviceUUID": "4c2a8c1e-0d0b-4a3b-9a57-2f1c0e6c9b11",
        "BaseDeviceFilesystem": "xfs"}))
    if open_transaction_id is not None:
        (meta_dir / "transaction-metadata").write_bytes(go_json({
            "open_transaction_id": open_transaction_id, "device_hash": transaction_hash,
            "device_id": transaction_device_id}))
    loop = root / "devicemapper" / "devicemapper"
    loop.mkdir(parents=True, exist_ok=True)
    if isinstance(metadata, Path):
        os.replace(metadata, loop / "metadata")
    elif metadata is not None:
        (loop / "metadata").write_bytes(metadata)
    return root


def layer_store(root: Path, chains: list[tuple[str, str]], mounts: dict[str, tuple[str, str]],
                driver: str = "devicemapper") -> dict[str, str]:
    """A minimal image/<driver> layer store: (diff_id seed, cache ID) per layer, bottom
    first, one image with that chain, and container mounts {container: (mount-id, parent
    index)}. Returns {cache or mount ID: chain ID}."""
    base = root / "image" / driver / "layerdb"
    parent = None
    chain_of: dict[str, str] = {}
    chain_ids = []
    diff_ids = []
    for seed, cache_id in chains:
        diff = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
        chain = diff if parent is None else "sha256:" + hashlib.sha256(
            f"{parent} {diff}".encode()).hexdigest()
        d = base / "sha256" / chain.split(":")[1]
        d.mkdir(parents=True)
        (d / "diff").write_text(diff)
        (d / "size").write_text("1234")
        (d / "cache-id").write_text(cache_id)
        if parent:
            (d / "parent").write_text(parent)
        parent = chain
        chain_of[cache_id] = chain
        chain_ids.append(chain)
        diff_ids.append(diff)
    config = go_json({"architecture": "amd64", "os": "linux", "config": {},
                      "created": "2024-01-01T00:00:00Z",
                      "rootfs": {"type": "layers", "diff_ids": diff_ids}})
    image_id = hashlib.sha256(config).hexdigest()
    content = root / "image" / driver / "imagedb" / "content" / "sha256"
    content.mkdir(parents=True)
    (content / image_id).write_bytes(config)
    (root / "image" / driver / "repositories.json").write_bytes(go_json(
        {"Repositories": {"app": {"app:latest": "sha256:" + image_id}}}))
    for ctr, (mount_id, idx) in mounts.items():
        m = base / "mounts" / ctr
        m.mkdir(parents=True)
        (m / "mount-id").write_text(mount_id)
        (m / "init-id").write_text(mount_id + "-init")
        (m / "parent").write_text(chain_ids[idx])
    return chain_of


# -- the sparse data file ----------------------------------------------------------------

FALLOC_FL_KEEP_SIZE = 1
FALLOC_FL_PUNCH_HOLE = 2
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]


class DataFile:
    """The loop file under a pool: real writes, then holes punched, as a discard would."""

    def __init__(self, path: Path, apparent_bytes: int):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(apparent_bytes)

    def write(self, offset: int, length: int) -> None:
        with open(self.path, "r+b") as f:
            f.seek(offset)
            f.write(os.urandom(length))
            f.flush()
            os.fsync(f.fileno())

    def punch(self, offset: int, length: int) -> None:
        # What a discard through the loop driver does (loop.c lo_fallocate).
        fd = os.open(self.path, os.O_RDWR)
        try:
            if _libc.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length):
                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err))
        finally:
            os.close(fd)
