"""Slack in a devicemapper pool: what its loop file holds that no thin device needs.

A loop-lvm pool keeps data block b at bytes [b*B, (b+1)*B) of the data file (B the pool's
data block size). Deleting a thin device only frees its blocks in the pool's space map;
the host file keeps every extent written there until something punches a hole: moby's
``dm.blkdiscard`` (on by default) discards a device just before deleting it, and the loop
driver turns a discard that reaches the data device into a hole. A block that no device
maps but the host file still holds is *slack*: punching it, pool offline, gives it back.

Per device this counts as thin_ls does: every device's mapping tree is walked on its own
(snapshots share subtrees, so the space map's per-leaf reference counts do not tell how
many devices map a block), a mapping is exclusive when no other mapping of any device
names its data block, and shared blocks are the device's mapped blocks less those.

References: thin-provisioning-tools v0.9 thin_ls.cc (mapping_set, pass1, count_exclusives);
moby v24 daemon/graphdriver/devmapper/deviceset.go (deleteDevice, issueDiscard,
markForDeferredDeletion); linux drivers/md/dm-thin.c (process_discard_cell: passdown of
unshared blocks only), drivers/block/loop.c (lo_fallocate: discard as PUNCH_HOLE).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..thinloops import thin_count_eq, thin_mark, thin_tally
from ..model import DeviceSet, DevInfo, Diagnostic, HostFile, Store, ThinPool

# Bits of the per-block flags: which kind of device maps the block.
LIVE = 1            # a device Docker knows and has not marked deleted
DEAD = 2            # a device Docker marked deleted (deferred deletion), or an orphan

METADATA_BLOCK_BYTES = 4096           # dm-thin metadata blocks (THIN_METADATA_BLOCK_SIZE)
_ONE_IF_ZERO = bytes([1] + [0] * 255)
_ONE_IF_NONZERO = bytes([0] + [1] * 255)


@dataclass(frozen=True, slots=True)
class DeviceUse:
    """One thin device: what it maps, and what Docker has it for."""
    device_id: int
    hash: str | None                   # None: an orphan no metadata file names
    mapped_bytes: int
    exclusive_bytes: int
    shared_bytes: int
    deleted: bool
    orphan: bool
    used_for: tuple[str, str] | None   # ("layer", chain ID), ("container" | "init", ID), ("base", "")
    complete: bool                     # False when part of its mapping tree was unreadable


@dataclass(frozen=True)
class SlackReport:
    data_file: HostFile | None         # None for direct-lvm (the data is a block device)
    metadata_file: HostFile | None
    data_block_bytes: int
    nr_data_blocks: int
    transaction_id: int
    mapped_bytes: int                  # blocks mapped by a live device
    deleted_device_bytes: int          # blocks mapped only by deleted or orphan devices
    slack_bytes: int
    devices: tuple[DeviceUse, ...]
    warnings: tuple[Diagnostic, ...]
    pool: ThinPool = field(repr=False)
    device_set: DeviceSet = field(repr=False)

    @property
    def metadata_used_bytes(self) -> int:
        """Bytes of the metadata blocks in use in the metadata space map."""
        return self.pool.metadata_nr_allocated * METADATA_BLOCK_BYTES


def docker_uses(store: Store | None) -> dict[str, tuple[str, str]]:
    """What each device hash is to Docker: cache IDs are layers, mount IDs containers."""
    uses: dict[str, tuple[str, str]] = {"": ("base", "")}
    if store is None:
        return uses
    for layer in store.layers.values():
        uses[layer.cache_id] = ("layer", layer.chain_id)
    for mount in store.mounts.values():
        uses[mount.mount_id] = ("container", mount.name)
        if mount.init_id:
            uses[mount.init_id] = ("init", mount.name)
    return uses


def _by_device_id(device_set: DeviceSet, warn: list[Diagnostic]) -> dict[int, DevInfo]:
    out: dict[int, DevInfo] = {}
    for info in sorted(device_set.devices.values(), key=lambda i: i.source):
        other = out.get(info.device_id)
        if other is not None:
            warn.append(Diagnostic(info.source, f"device_id {info.device_id} is also "
                                                f"claimed by {other.source}"))
            continue
        out[info.device_id] = info
    return out


def _mark(pool: ThinPool, flags: bytearray, bit_of: Mapping[int, int]) -> int:
    """flags[b] |= bit_of[device] for every block each device maps; blocks past the pool
    are counted and returned. A leaf shared by devices of one kind is marked once."""
    outside = 0
    done: set[tuple[int, int]] = set()
    for dev in pool.devices.values():
        bit = bit_of[dev.device_id]
        for b in dev.leaves:
            if (b, bit) not in done:
                done.add((b, bit))
                outside += thin_mark(flags, pool.leaves[b].values, bit)
    return outside


def bytes_in_blocks(extents: Iterable[tuple[int, int]], mask: bytes, block_bytes: int,
                    beyond: bool) -> int:
    """Host bytes of the extents inside blocks b with ``mask[b] == 1``.

    Bytes past the last block of the mask count too when ``beyond``: the pool never maps
    them (a data file grown, the pool not).
    """
    pool_end = len(mask) * block_bytes
    total = 0
    for off, length in extents:
        end = off + length
        if end > pool_end:
            if beyond:
                total += end - max(off, pool_end)
            end = pool_end
        if off >= end:
            continue
        b, last = off // block_bytes, (end - 1) // block_bytes
        while b <= last:
            start = mask.find(1, b, last + 1)
            if start < 0:
                break
            stop = mask.find(0, start, last + 1)
            if stop < 0:
                stop = last + 1
            total += min(end, stop * block_bytes) - max(off, start * block_bytes)
            b = stop
    return total


def _and(a: bytes, b: bytes) -> bytes:
    """Byte-wise AND of two 0/1 masks of one length, at C speed."""
    return (int.from_bytes(a, "little") & int.from_bytes(b, "little")).to_bytes(len(a), "little")


def slack_report(pool: ThinPool, device_set: DeviceSet, data_file: HostFile | None,
                 metadata_file: HostFile | None, store: Store | None = None) -> SlackReport:
    """Account a pool: per device as thin_ls does, and the slack of its data file.

    Args:
        pool: the pool's metadata (sources.thinmeta.read_pool).
        device_set: Docker's devicemapper metadata (sources.devicemapper.read_device_set).
        data_file, metadata_file: the loop files; None when the pool is not loop-lvm.
        store: the image store, to say what each device is to Docker.
    """
    warn: list[Diagnostic] = list(device_set.diagnostics) + list(pool.diagnostics)
    block_bytes, nr = pool.data_block_bytes, pool.nr_data_blocks
    by_id = _by_device_id(device_set, warn)
    for info in by_id.values():
        if info.device_id not in pool.devices:
            state = "marked deleted, and " if info.deleted else ""
            warn.append(Diagnostic(info.source, f"{state}device {info.device_id} is not in "
                                                f"the pool"))
    if (device_set.open_transaction_id is not None
            and device_set.open_transaction_id != pool.transaction_id):
        # deviceset.go processPendingTransaction: dockerd would roll this back on start.
        warn.append(Diagnostic(device_set.transaction_source,
                               f"open transaction {device_set.open_transaction_id} (device "
                               f"{device_set.transaction_device_id}, hash "
                               f"{device_set.transaction_device_hash!r}) was not completed: "
                               f"the pool is at transaction {pool.transaction_id}"))

    # thin_ls pass1: how many mappings, over every device walked alone, name each block.
    counts = bytearray(nr)
    leaf_uses = Counter(b for dev in pool.devices.values() for b in dev.leaves)
    outside = 0
    for b, n in leaf_uses.items():
        outside += thin_tally(counts, pool.leaves[b].values, min(n, 255)) * n
    if outside:
        warn.append(Diagnostic(pool.source, f"mappings name data blocks past the pool's "
                                            f"{nr} blocks"))
    uses = docker_uses(store)
    exclusive_of: dict[int, int] = {}
    rows = []
    for dev in pool.devices.values():
        exclusive = 0
        for b in dev.leaves:
            hit = exclusive_of.get(b)
            if hit is None:
                hit = exclusive_of[b] = thin_count_eq(counts, pool.leaves[b].values, 1)
            exclusive += hit
        info = by_id.get(dev.device_id)
        rows.append(DeviceUse(
            device_id=dev.device_id, hash=None if info is None else info.hash,
            mapped_bytes=dev.mapped_blocks * block_bytes,
            exclusive_bytes=exclusive * block_bytes,
            shared_bytes=max(0, dev.mapped_blocks - exclusive) * block_bytes,
            deleted=info is not None and info.deleted, orphan=info is None,
            used_for=None if info is None else uses.get(info.hash),
            complete=dev.complete))

    flags = bytearray(nr)
    _mark(pool, flags, {d.device_id: LIVE if not (d.deleted or d.orphan) else DEAD for d in rows})
    unmapped = flags.translate(_ONE_IF_ZERO)
    free = unmapped
    if pool.data_space_map is not None:
        held = pool.data_space_map.counts.translate(_ONE_IF_NONZERO)
        if len(held) == nr:
            free = _and(unmapped, held.translate(_ONE_IF_ZERO))
            leaked = _and(unmapped, held).count(1)
            if leaked:
                why = "a metadata snapshot holds them" if pool.held_root else "leaked"
                warn.append(Diagnostic(pool.source, f"{leaked} data blocks are in use in the "
                                                    f"space map but mapped by no device "
                                                    f"({why}); not counted as slack"))
            lost = _and(unmapped.translate(_ONE_IF_ZERO), held.translate(_ONE_IF_ZERO)).count(1)
            if lost:
                warn.append(Diagnostic(pool.source, f"{lost} mapped data blocks are free in "
                                                    f"the space map"))
    slack = 0
    if data_file is not None:
        slack = bytes_in_blocks(data_file.extents, free, block_bytes, beyond=True)
    return SlackReport(
        data_file=data_file, metadata_file=metadata_file, data_block_bytes=block_bytes,
        nr_data_blocks=nr, transaction_id=pool.transaction_id,
        mapped_bytes=(nr - flags.count(0) - flags.count(DEAD)) * block_bytes,
        deleted_device_bytes=flags.count(DEAD) * block_bytes,
        slack_bytes=slack, devices=tuple(rows), warnings=tuple(warn),
        pool=pool, device_set=device_set)


def dm_reclaim(report: SlackReport, deleted_cache_ids: Iterable[str], blkdiscard: bool
               ) -> dict[str, int]:
    """What deleting these devices gives back, pool and host.

    Args:
        report: the pool as it is now (slack_report).
        deleted_cache_ids: device hashes the plan removes: layer cache IDs, container
            mount IDs and their ``-init``.
        blkdiscard: the daemon's dm.blkdiscard (moby's default: on). On, every block the
            plan frees is discarded down to the loop file and leaves it (the last
            device to let a block go passes the discard down); off, those bytes stay
            in the file as slack.

    Returns:
        ``pool_bytes_freed``: data blocks no surviving device maps once these are gone;
        ``host_bytes_freed``: bytes the data file held in them, 0 with blkdiscard off;
        ``slack_bytes_after``: the slack once that is done.
    """
    pool = report.pool
    gone = {info.device_id for h in set(deleted_cache_ids)
            if (info := report.device_set.devices.get(h)) is not None}
    flags = bytearray(pool.nr_data_blocks)
    _mark(pool, flags, {d: DEAD if d in gone else LIVE for d in pool.devices})
    freed = flags.translate(bytes([0, 0, 1, 0]) + bytes(252))
    host = 0
    if report.data_file is not None:
        host = bytes_in_blocks(report.data_file.extents, freed, report.data_block_bytes,
                               beyond=False)
    return {"pool_bytes_freed": freed.count(1) * report.data_block_bytes,
            "host_bytes_freed": host if blkdiscard else 0,
            "slack_bytes_after": report.slack_bytes + (0 if blkdiscard else host)}
