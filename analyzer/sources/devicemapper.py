"""The devicemapper graph driver's own files: Docker's device metadata and the loop-lvm pool.

Under ``devicemapper/`` (moby's ``home``), DeviceSet keeps:

* ``metadata/<hash>``: one devInfo JSON per thin device (the base device's file is
  ``base``); the hash is a layer's cache ID, a container's mount ID or ``<mount ID>-init``;
* ``metadata/deviceset-metadata`` and ``metadata/transaction-metadata``;
* ``devicemapper/data`` and ``devicemapper/metadata``: the pool's sparse loop files
  (loop-lvm; absent when the pool is on real devices, direct-lvm).

The image and layer store is the common one (graphdriver.py). The data file's contents
are never read: only its allocated extents, with SEEK_DATA/SEEK_HOLE.

References: moby v24 daemon/graphdriver/devmapper/deviceset.go (devInfo, transaction,
metadataFile, deviceFileWalkFunction, loadMetadata, loadTransactionMetaData,
loadDeviceSetMetaData, NewDeviceSet option parsing), driver.go; lseek(2).
"""
from __future__ import annotations

import dataclasses
import errno
import os
from typing import Any, Iterable

import orjson

from ..errors import EvidenceError, MalformedError, UnsupportedLayoutError
from ..goapi import unmarshal
from ..model import DeviceSet, DevInfo, Diagnostic, HostFile, Store, ThinPool
from . import layout, mobytypes, thinmeta
from .evidence import EvidenceRoot
from .graphdriver import read_graphdriver_store

DRIVER = "devicemapper"
MAX_DEVICE_ID = 0xFFFFFF                    # deviceset.go maxDeviceID: 24-bit thin device IDs


def detect(root: EvidenceRoot) -> bool:
    """A devicemapper data root: its image store or its device metadata directory."""
    return has_image_store(root) or root.lstat(layout.DM_METADATA_DIR) is not None


def has_image_store(root: EvidenceRoot) -> bool:
    return root.lstat(layout.ImageRoot(DRIVER).base) is not None


def _json_object(data: bytes, source: str) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedError(source, f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedError(source, "not a JSON object")
    return obj


def parse_dev_info(data: bytes, hash_: str, source: str) -> DevInfo:
    """``metadata/<hash>`` as deviceset.go loadMetadata reads it."""
    obj = _json_object(data, source)
    try:
        unmarshal.check(obj, mobytypes.DEV_INFO)
    except unmarshal.Mismatch as exc:
        raise MalformedError(source, str(exc)) from None
    # json.Unmarshal: a missing key (or a null) keeps the zero value.
    device_id = obj.get("device_id") or 0
    if not 0 <= device_id <= MAX_DEVICE_ID:
        # loadMetadata: "Ignoring Invalid DeviceId"
        raise MalformedError(source, f"invalid device_id {device_id}")
    return DevInfo(hash=hash_, device_id=device_id, size=obj.get("size") or 0,
                   transaction_id=obj.get("transaction_id") or 0,
                   initialized=obj.get("initialized") or False,
                   deleted=obj.get("deleted") or False, source=source)


def read_device_set(root: EvidenceRoot) -> DeviceSet:
    """Every device file and the set-level files; what dockerd could not load is a Diagnostic.

    Raises:
        UnsupportedLayoutError: the root has no devicemapper metadata directory.
    """
    names = root.listdir(layout.DM_METADATA_DIR)
    if names is None:
        raise UnsupportedLayoutError(root.path,
                                     f"not a devicemapper data root (no {layout.DM_METADATA_DIR})")
    diags: list[Diagnostic] = []
    devices: dict[str, DevInfo] = {}
    for name in sorted(names):
        # deviceFileWalkFunction: these are not device files.
        if (name.endswith(".migrated") or name.startswith(".")
                or name in (layout.DM_DEVICE_SET_FILE, layout.DM_TRANSACTION_FILE)):
            continue
        rel = layout.dm_device_metadata(name)
        st = root.lstat(rel)
        if st is None or st.is_dir:
            continue
        try:
            data = root.read(rel)
            if data is None:
                continue
            info = parse_dev_info(data, "" if name == "base" else name, rel)
        except EvidenceError as exc:
            diags.append(Diagnostic(exc.path, f"{exc.reason} (dockerd fails to start on it)"))
            continue
        devices[info.hash] = info
    trans_file = layout.dm_device_metadata(layout.DM_TRANSACTION_FILE)
    sets = _optional_json(root, layout.dm_device_metadata(layout.DM_DEVICE_SET_FILE), diags)
    trans = _optional_json(root, trans_file, diags)
    return DeviceSet(
        devices=devices,
        next_device_id=_get(sets, "next_device_id", int),
        base_device_uuid=_get(sets, "BaseDeviceUUID", str),
        base_device_filesystem=_get(sets, "BaseDeviceFilesystem", str),
        open_transaction_id=_get(trans, "open_transaction_id", int),
        transaction_device_hash=_get(trans, "device_hash", str),
        transaction_device_id=_get(trans, "device_id", int),
        transaction_source=trans_file,
        diagnostics=tuple(diags))


def _optional_json(root: EvidenceRoot, rel: str, diags: list[Diagnostic]) -> dict[str, Any]:
    try:
        data = root.read(rel)
        return {} if data is None else _json_object(data, rel)
    except EvidenceError as exc:
        diags.append(Diagnostic(exc.path, exc.reason))
        return {}


def _get(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    if kind is int and isinstance(value, bool):
        return None
    return value if isinstance(value, kind) else None


def data_extents(fd: int, size: int) -> tuple[tuple[int, int], ...]:
    """(offset, length) of every data extent, by SEEK_DATA/SEEK_HOLE (implicit hole at EOF)."""
    out = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:        # no data past pos
                break
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end - start))
        pos = end
    return tuple(out)


def host_file(root: EvidenceRoot, rel: str) -> HostFile | None:
    """A pool file's sizes and allocated extents; None if absent. Never reads its contents."""
    if root.lstat(rel) is None:
        return None
    fd = _open(root, rel)
    try:
        st = os.fstat(fd)
        try:
            extents = data_extents(fd, st.st_size)
        except OSError as exc:
            raise EvidenceError(rel, f"cannot list its extents (SEEK_DATA): {exc.strerror}") from None
        return HostFile(source=rel, apparent_bytes=st.st_size,
                        allocated_bytes=st.st_blocks * 512, extents=extents)
    finally:
        os.close(fd)


def data_file(root: EvidenceRoot) -> HostFile | None:
    """The loop-lvm pool's data file: sizes and extents (None on direct-lvm)."""
    return host_file(root, layout.DM_DATA_FILE)


def _open(root: EvidenceRoot, rel: str) -> int:
    if not root.has_fd:
        raise UnsupportedLayoutError(root.path, "the thin pool is read from a directory data "
                                                "root, not an archive")
    return root.open_fd(rel)


def read_pool(root: EvidenceRoot, metadata_file: tuple[str, int] | None = None
              ) -> tuple[ThinPool, HostFile | None]:
    """The pool's metadata: the loop file, or ``metadata_file`` (the name and an open fd,
    which this closes, of a copy of a direct-lvm metadata device or a metadata snapshot:
    the analyst's file, opened by the CLI) when given. Returns the pool and, for the loop
    file, its sizes."""
    if metadata_file is not None:
        source, fd = metadata_file
        meta = None
    else:
        if root.lstat(layout.DM_METADATA_FILE) is None:
            raise EvidenceError(layout.DM_METADATA_FILE, "no pool metadata file (direct-lvm? "
                                               "give a copy of the metadata device)")
        meta = host_file(root, layout.DM_METADATA_FILE)
        fd = _open(root, layout.DM_METADATA_FILE)
        source = layout.DM_METADATA_FILE
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            # A block device reports no size in st_size; let reads find its end.
            size = os.lseek(fd, 0, os.SEEK_END) or None
        return thinmeta.read_pool(thinmeta.FdBlocks(fd), source=source, size=size), meta
    finally:
        os.close(fd)


def mapped_bytes_by_hash(pool: ThinPool, device_set: DeviceSet) -> dict[str, int]:
    """Per device hash (cache ID, mount ID, ``-init``): the bytes its thin device maps."""
    by_id = {info.device_id: info.hash for info in device_set.devices.values()}
    return {by_id[d.device_id]: d.mapped_blocks * pool.data_block_bytes
            for d in pool.devices.values() if d.device_id in by_id}


def read(root: EvidenceRoot, metadata_file: tuple[str, int] | None = None) -> Store:
    """The common image store, with each device's mapped bytes as ``driver_usage``."""
    store = read_graphdriver_store(root, DRIVER)
    device_set = read_device_set(root)
    pool, _ = read_pool(root, metadata_file)
    return dataclasses.replace(
        store, driver_usage=mapped_bytes_by_hash(pool, device_set),
        diagnostics=store.diagnostics + device_set.diagnostics + pool.diagnostics)


_GO_BOOLS = {"1": True, "t": True, "T": True, "TRUE": True, "true": True, "True": True,
             "0": False, "f": False, "F": False, "FALSE": False, "false": False, "False": False}


def blkdiscard_from_options(storage_opts: Iterable[str]) -> bool:
    """Whether dockerd discards a device before deleting it, from its storage options.

    NewDeviceSet: on by default; off by default when the pool is on real devices
    (``dm.thinpooldev`` or ``dm.datadev``) and ``dm.blkdiscard`` is not given. Keys are
    case-insensitive, values strconv.ParseBool's.

    Raises:
        MalformedError: a ``dm.blkdiscard`` value dockerd would refuse.
    """
    on, explicit, raw_devices = True, False, False
    for opt in storage_opts:
        key, sep, value = opt.partition("=")
        key = key.strip().lower()
        if key == "dm.blkdiscard":
            if value.strip() not in _GO_BOOLS:
                raise MalformedError("storage-opts", f"dm.blkdiscard={value}: not a boolean")
            on, explicit = _GO_BOOLS[value.strip()], True
        elif key in ("dm.thinpooldev", "dm.datadev") and sep:
            raw_devices = raw_devices or bool(value.strip())
    return on if explicit or not raw_devices else False


def blkdiscard_from_daemon_config(data: bytes, source: str) -> bool:
    """dm.blkdiscard from a daemon.json (``storage-opts``)."""
    opts = _json_object(data, source).get("storage-opts") or []
    if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
        raise MalformedError(source, "storage-opts is not a list of strings")
    return blkdiscard_from_options(opts)
