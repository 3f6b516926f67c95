"""BuildKit's build cache in a graph-driver data root: its records and the layers it holds.

Docker 20.10's BuildKit (the "builder-next", moby builder/builder-next) keeps three
bbolt files under ``buildkit/``:

- ``metadata_v2.db``: the cache records. Bucket ``_main`` has one bucket per record
  (a 25-char base36 ID), each key a JSON ``{"value": …}`` (cache/metadata.go keys:
  ``cache.description``, ``cache.createdAt``/``cache.lastUsedAt`` in Unix ns,
  ``cache.usageCount``, ``cache.parent``, ``snapshot.committed``, ``snapshot.size``,
  ``cache.equalMutable``, ``cache.recordType``, ``cache.snapshot``, ``cache.deleted``).
- ``snapshots.db``: moby's snapshotter adapter. One bucket per snapshot key with
  ``chainid`` (the layer store entry this snapshot became), ``committed`` (the
  graph-driver ID of a committed snapshot), ``parent`` and ``size``.
- ``containerdmeta.db``: containerd metadata in namespace ``buildkit``; its leases
  (``v1/buildkit/leases/<record ID>/snapshots/default/<snapshot key>``) keep
  snapshots alive.

How the cache holds image layers: when dockerd starts, the snapshotter's lease
manager loads every lease's snapshots (snapshot/leasemanager.go addRef →
getLayer), and each snapshot that resolves to a chain ID (the key itself when it is
``sha256:…``, else ``snapshots.db`` ``<key>/chainid``) takes a reference in the
layer store. While that reference stands, ``docker image rm`` cannot release the
layer or its parents; ``docker builder prune`` deletes the lease and the
snapshotter's remove() releases it. Layers BuildKit built are registered with
RegisterByGraphID, so their ``cache-id`` is the snapshot's graph-driver ID.

What ``/system/df`` lists is what BuildKit's cache manager loads on start
(cacheManager.init → getRecord: records whose parent or equal-mutable twin cannot
load, and records marked deleted, are dropped) less the immutable twins of mutable
records (DiskUsage: "ignore duplicates that share data"). Sizes not yet recorded
are computed as the daemon would: a layer's diff size, the snapshot's recorded
size, or the graph driver's DiffSize of the snapshot directory.

References: moby v20.10 builder/builder-next/controller.go (newController),
adapters/snapshot/snapshot.go (getLayer, getGraphDriverID, Usage, Commit, remove),
adapters/snapshot/layer.go (EnsureLayer), adapters/snapshot/leasemanager.go
(addRef, delRef), imagerefchecker/checker.go (Exists); moby/buildkit v0.8
(eeb7b65) cache/manager.go (init, getRecord, DiskUsage, markShared),
cache/refs.go (Size, parentChain), cache/metadata.go (getters),
cache/metadata/metadata.go (Store, StorageItem, Value), client/diskusage.go.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Collection, Iterable, Mapping, NamedTuple, Union

from ..errors import EvidenceError, MalformedError
from ..ids import ChainID, chain_ids, is_digest
from ..model import BuildCacheRecord, Diagnostic, Image, Layer
from . import layout
from .evidence import EvidenceRoot
from .bbolt import BoltDB, Bucket, read_db_file
from .containerdmeta import varint
from .layout import BUILDKIT_CONTAINERD_DB as CONTAINERD_DB
from .layout import BUILDKIT_LEGACY_METADATA_DB as LEGACY_METADATA_DB
from .layout import BUILDKIT_METADATA_DB as METADATA_DB
from .layout import BUILDKIT_SNAPSHOTS_DB as SNAPSHOTS_DB
from .usage import directory_size

MAIN_BUCKET = "_main"
NAMESPACE = "buildkit"                          # leaseutil.WithNamespace(…, "buildkit")
SNAPSHOTTER = "default"                         # snapshotter.Name()
TEMPORARY_LEASE_LABEL = b"buildkit/lease.temporary"
RECORD_TYPE_REGULAR = "regular"
ZERO_TIME = "0001-01-01T00:00:00Z"
SIZE_UNKNOWN = -1

Files = Union[Mapping[str, bytes], Callable[[str], Union[bytes, None]]]
BlobSize = Callable[[str], Union[int, None]]     # a content digest's size, None if absent


class BuildCache(NamedTuple):
    """What the build cache holds, as the daemon would see it after a start."""
    records: tuple[BuildCacheRecord, ...]       # /system/df BuildCache, sorted by ID
    held_chain_ids: frozenset[ChainID]          # every layer-store entry referenced
    diagnostics: tuple[Diagnostic, ...]


# -- metadata values ---------------------------------------------------------------------

ABSENT = object()      # the key is not set
INVALID = object()     # set, but Go's json.Unmarshal into the wanted type fails
_GO_TYPES = {"str": str, "int": int, "bool": bool}


@dataclass
class _Item:
    """A StorageItem: one record's metadata values, decoded from their JSON."""
    id: str
    values: dict[str, object] = field(default_factory=dict)

    def get(self, key: str, kind: str) -> object:
        """The value as Go's json.Unmarshal into ``kind`` ("str", "int" for int64,
        "bool") leaves it: ABSENT, INVALID, or the value."""
        raw = self.values.get(key, ABSENT)
        if raw is ABSENT or raw is INVALID:
            return raw
        if raw is None:                          # JSON null leaves the zero value
            return _GO_TYPES[kind]()
        if kind == "int":
            ok = isinstance(raw, int) and not isinstance(raw, bool) and -2**63 <= raw < 2**63
        else:
            ok = isinstance(raw, _GO_TYPES[kind])
        return raw if ok else INVALID

    # The getters of cache/metadata.go: the type's default when absent or invalid.
    def text(self, key: str) -> str:
        value = self.get(key, "str")
        return value if isinstance(value, str) else ""

    def flag(self, key: str) -> bool:
        return self.get(key, "bool") is True

    def number(self, key: str, default: int) -> int:
        value = self.get(key, "int")
        return value if isinstance(value, int) else default


def _decode_item(record_id: str, bucket: Bucket, diags: list[Diagnostic],
                 source: str = METADATA_DB) -> _Item:
    # metadata.go newStorageItem: empty values are skipped; each other value is a
    # JSON object whose "value" is the raw JSON of the field.
    item = _Item(record_id)
    for key, data in bucket.items():
        if not data:
            continue
        name = key.decode("utf-8", "replace")
        try:
            doc = json.loads(data.decode("utf-8", "replace"))
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("index", ""), str):
            diags.append(Diagnostic(source, f"record {record_id}: {name}: value is not "
                                            f"a metadata JSON object; ignored"))
            continue
        # A missing "value" is an empty RawMessage: set, but unmarshals to nothing.
        item.values[name] = doc["value"] if "value" in doc else INVALID
    return item


def _rfc3339nano(ns: int) -> str:
    """Go's time.Time JSON form in UTC (RFC3339Nano: trailing zeros trimmed)."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    try:
        when = datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return ZERO_TIME
    base = when.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


# -- the databases -----------------------------------------------------------------------

def _open(get: Callable[[str], bytes | None], rel: str,
          diags: list[Diagnostic]) -> BoltDB | None:
    try:
        data = get(rel)
    except EvidenceError as exc:
        diags.append(Diagnostic(rel, exc.reason))
        return None
    if data is None:
        return None
    try:
        return BoltDB(data, rel)
    except MalformedError as exc:
        diags.append(Diagnostic(rel, exc.reason))
        return None


class _Snapshots:
    """snapshots.db as moby's snapshotter reads it."""

    def __init__(self, db: BoltDB | None, layers: Mapping[ChainID, Layer]):
        self.db = db
        self.layers = layers

    def _value(self, key: str, name: str) -> bytes | None:
        if self.db is None:
            return None
        bucket = self.db.bucket(key)
        return bucket.get(name) if bucket is not None else None

    def chain(self, key: str) -> ChainID | None:
        """getLayer(key, true): the layer a snapshot key stands for, if it has one."""
        seen: set[str] = set()
        while key not in seen:
            seen.add(key)
            if key.startswith("sha256:"):
                # snapshot.go chainID: a digest key is itself a chain ID.
                return ChainID(key) if is_digest(key) else None
            value = self._value(key, "chainid")
            if not value:
                return None
            key = value.decode("utf-8", "replace")
        return None

    def graph_id(self, key: str) -> str:
        """getGraphDriverID: a committed snapshot lives under the key it was prepared as."""
        value = self._value(key, "committed")
        return value.decode("utf-8", "replace") if value else key

    def recorded_size(self, key: str) -> bytes | None:
        return self._value(key, "size")

    def prepared_for_commit(self, key: str) -> bool:
        """The key a committed snapshot was prepared as (``iscommitted``): removing it
        removes nothing, its directory goes with the committed name."""
        if self.db is None:
            return False
        bucket = self.db.bucket(key)
        return bucket is not None and bucket.get("iscommitted") is not None

    def graph_ids(self) -> set[str]:
        """Every graph-driver ID a snapshot lives under: its key, and for a committed
        one the ID it was prepared as."""
        if self.db is None:
            return set()
        keys = [key.decode("utf-8", "replace") for key, _ in self.db.bucket().buckets()]
        return set(keys) | {self.graph_id(key) for key in keys}


class _Content:
    """Blob sizes of the containerd content store in containerdmeta.db."""

    def __init__(self, db: BoltDB | None):
        self.db = db

    def size(self, digest: str) -> int | None:
        if self.db is None:
            return None
        blob = self.db.bucket("v1", NAMESPACE, "content", "blob", digest)
        raw = blob.get("size") if blob is not None else None
        return varint(raw) if raw is not None else None


# -- records -----------------------------------------------------------------------------

@dataclass
class _Record:
    item: _Item
    mutable: bool
    parent: str                        # the parent record's ID, "" for none
    equal_mutable: "_Record | None" = None
    equal_immutable: "_Record | None" = None


class _Loader:
    """cacheManager.init: every record loaded as getRecord would, or dropped."""

    def __init__(self, items: Mapping[str, _Item], blob_size: BlobSize,
                 diags: list[Diagnostic], source: str = METADATA_DB):
        self.items = items
        self.blob_size = blob_size
        self.diags = diags
        self.source = source
        self.loaded: dict[str, _Record | None] = {}

    def load(self, record_id: str) -> _Record | None:
        # getRecord recurses into the one record each depends on (its mutable twin,
        # else its parent); here the chain is followed first, then loaded from its
        # far end, so that long chains need no deep recursion.
        chain: list[str] = []
        on_chain: set[str] = set()
        current = record_id
        while current not in self.loaded:
            if current in on_chain:
                for looped in chain[chain.index(current):]:
                    self.loaded[looped] = None
                    self._drop(looped, "its parent chain loops back to it")
                break
            item = self.items.get(current)
            if item is None:
                self.loaded[current] = None
                break
            chain.append(current)
            on_chain.add(current)
            current = item.text("cache.equalMutable") or item.text("cache.parent")
            if not current:
                break
        for pending in reversed(chain):
            if pending not in self.loaded:
                self.loaded[pending] = self._get_record(pending)
        return self.loaded[record_id]

    def _drop(self, record_id: str, why: str) -> None:
        self.diags.append(Diagnostic(self.source, f"record {record_id}: dropped as the daemon "
                                                  f"does on start: {why}"))

    def _get_record(self, record_id: str) -> _Record | None:
        item = self.items.get(record_id)
        if item is None:
            return None
        mutable_id = item.text("cache.equalMutable")
        if mutable_id:
            mutable = self.loaded.get(mutable_id)
            if mutable is None:
                self._drop(record_id, f"its mutable twin {mutable_id} cannot be loaded")
                return None
            # An immutable twin shares the mutable record's parent and data.
            record = _Record(item, False, mutable.parent, equal_mutable=mutable)
            mutable.equal_immutable = record
            return record
        parent = item.text("cache.parent")
        if parent and self.loaded.get(parent) is None:
            self._drop(record_id, f"its parent {parent} cannot be loaded")
            return None
        if item.flag("cache.deleted"):
            self._drop(record_id, "it is marked deleted (a prune was cut short)")
            return None
        record = _Record(item, not item.flag("snapshot.committed"), parent)
        if self._lazy(record):
            self._drop(record_id, "its blob is not in the content store (lazy)")
            return None
        if not isinstance(item.get("cache.createdAt", "int"), int):
            self.diags.append(Diagnostic(self.source, f"record {record_id}: no creation time "
                                                      f"(the daemon stamps its start time)"))
        return record

    def _lazy(self, record: _Record) -> bool:
        # refs.go isLazy: a blob-only record whose blob is absent needs a remote
        # provider, which a restart does not have.
        item = record.item
        blob = item.text("cache.blob")
        return item.flag("cache.blobonly") and blob != "" and self.blob_size(blob) is None


def _snapshot_id(item: _Item) -> str:
    # cache/metadata.go getSnapshotID: absent means the record's own ID.
    value = item.get("cache.snapshot", "str")
    if value is ABSENT:
        return item.id
    return value if isinstance(value, str) else ""


@dataclass
class _Sizer:
    """cacheRecord.Size for records whose size is not yet recorded: the snapshot's
    usage (``usage(record ID, snapshot key)``) plus the size of the record's blob."""
    blob_size: BlobSize
    usage: Callable[[str, str], int]
    diags: list[Diagnostic]

    def size(self, record: _Record) -> int:
        size = record.item.number("snapshot.size", SIZE_UNKNOWN)
        if size != SIZE_UNKNOWN:
            return size
        if record.mutable:
            # cacheManager.get of a mutable record returns its immutable twin (or
            # commits one), whose size is measured on the mutable snapshot.
            twin = record.equal_immutable
            if twin is not None:
                size = twin.item.number("snapshot.size", SIZE_UNKNOWN)
                if size != SIZE_UNKNOWN:
                    return size
                return self._measure(twin.item, _snapshot_id(record.item))
            return self._measure(_Item(record.item.id), _snapshot_id(record.item))
        driver_id = _snapshot_id(record.equal_mutable.item if record.equal_mutable
                                 else record.item)
        return self._measure(record.item, driver_id)

    def _measure(self, item: _Item, driver_id: str) -> int:
        size = 0
        if not item.flag("cache.blobonly"):
            size = self.usage(item.id, driver_id)
        blob = item.text("cache.blob")
        if blob:
            size += self.blob_size(blob) or 0
        return size


@dataclass
class _GraphUsage:
    """moby's snapshotter adapter's Usage: a layer's diff size, else the recorded size,
    else the graph driver's DiffSize (overlay2: the size of the diff directory)."""
    snapshots: _Snapshots
    diff_size: Callable[[str], int | None] | None
    diags: list[Diagnostic]

    def __call__(self, record_id: str, key: str) -> int:
        chain = self.snapshots.chain(key)
        if chain is not None:
            layer = self.snapshots.layers.get(chain)
            if layer is not None:
                return layer.diff_size
            self._note(record_id, f"snapshot {key} is layer {chain}, which the layer store "
                                  f"does not have; size counted as 0")
            return 0
        recorded = self.snapshots.recorded_size(key)
        if recorded is not None:
            text = recorded.decode("ascii", "replace")
            if text.lstrip("+-").isdigit():
                return int(text)
            self._note(record_id, f"snapshot {key} has size {text!r}, not a number; "
                                  f"counted as 0")
            return 0
        graph_id = self.snapshots.graph_id(key)
        measured = self.diff_size(graph_id) if self.diff_size is not None else None
        if measured is None or measured < 0:
            self._note(record_id, f"size of snapshot directory {graph_id} unknown; counted as 0")
            return 0
        return measured

    def _note(self, record_id: str, message: str) -> None:
        self.diags.append(Diagnostic(METADATA_DB, f"record {record_id}: {message}"))


def _image_chains(images: Iterable[Image]) -> set[ChainID]:
    # imagerefchecker: a layer is shared when its diff IDs are a prefix of some
    # image's rootfs.diff_ids, i.e. its chain ID is one of the image's chain IDs.
    out: set[ChainID] = set()
    for image in images:
        out.update(chain_ids(image.diff_ids))
    return out


class _Hold(NamedTuple):
    """What one lease keeps: layer store entries, and graph-driver directories of
    snapshots that are no layer (removed with the lease: snapshot.go remove)."""
    chains: set[ChainID]
    dirs: set[str]


def _held(containerd: BoltDB | None, snapshots: _Snapshots, dropped: Collection[str],
          diags: list[Diagnostic]) -> dict[str, _Hold]:
    """What each lease holds once the daemon has started (lease ID -> hold)."""
    out: dict[str, _Hold] = {}
    leases = containerd.bucket("v1", NAMESPACE, "leases") if containerd is not None else None
    if leases is None:
        return out
    for lease_key, lease in leases.buckets():
        lease_id = lease_key.decode("utf-8", "replace")
        labels = lease.bucket("labels")
        # controller.go deletes temporary leases on start; init deletes the
        # leases of records it drops.
        if labels is not None and labels.get(TEMPORARY_LEASE_LABEL) is not None:
            continue
        if lease_id in dropped:
            continue
        resources = lease.bucket("snapshots", SNAPSHOTTER)
        if resources is None:
            continue
        hold = out.setdefault(lease_id, _Hold(set(), set()))
        for key in resources:
            snapshot = key.decode("utf-8", "replace")
            chain = snapshots.chain(snapshot)
            if chain is None:
                graph_id = snapshots.graph_id(snapshot)
                if not snapshots.prepared_for_commit(snapshot) and _is_name(graph_id):
                    hold.dirs.add(graph_id)
                continue
            if chain not in snapshots.layers:
                diags.append(Diagnostic(CONTAINERD_DB, f"lease {lease_id}: snapshot {snapshot} "
                                                       f"is layer {chain}, which the layer "
                                                       f"store does not have"))
                continue
            hold.chains.add(chain)
    return out


def read_build_cache(files: Files, layers: Mapping[ChainID, Layer],
                     images: Iterable[Image],
                     diff_size: Callable[[str], int | None] | None = None) -> BuildCache:
    """The build cache of a graph-driver data root, from the bytes of its bbolt files.

    Args:
        files: ``buildkit/*.db`` contents by path relative to the data root, as a
            mapping or a function returning None for an absent file.
        layers: the layer store (chain ID -> Layer).
        images: the image store; decides which records are ``Shared``.
        diff_size: the graph driver's DiffSize of a graph-driver ID (overlay2: moby
            directory.Size of ``overlay2/<id>/diff``), for snapshots whose size was
            never recorded; None or a None answer counts 0 with a diagnostic.

    Returns:
        The records ``/system/df`` would list, the layers the cache holds, and
        what was wrong. Damaged files become diagnostics, never exceptions.
    """
    get = files.get if isinstance(files, Mapping) else files
    diags: list[Diagnostic] = []
    metadata = _open(get, METADATA_DB, diags)
    if metadata is None:
        if not diags and _open(get, LEGACY_METADATA_DB, diags) is not None:
            diags.append(Diagnostic(LEGACY_METADATA_DB, "BuildKit metadata of the v1 format "
                                                        "(before Docker 19.03) is not read"))
        return BuildCache((), frozenset(), tuple(diags))
    snapshots = _Snapshots(_open(get, SNAPSHOTS_DB, diags), layers)
    containerd = _open(get, CONTAINERD_DB, diags)
    chains = _image_chains(images)
    return _read_records(
        metadata, METADATA_DB, _Content(containerd).size, _GraphUsage(snapshots, diff_size, diags),
        lambda listed, loaded: _image_layers(listed, snapshots, chains),
        lambda dropped: _held(containerd, snapshots, dropped, diags), diags,
        lambda key: _own_layer(snapshots, key))


def read_containerd_build_cache(data: bytes | None, source: str, blob_size: BlobSize,
                                usage: Callable[[str], int | None],
                                image_layers: Collection[tuple[str, ...]]) -> BuildCache:
    """The build cache of a daemon on the containerd image store: BuildKit's containerd
    worker keeps its records in ``source`` and its snapshots and blobs in the image
    store itself, so it holds nothing back from ``docker image rm`` (containerd's
    collector sees its leases).

    Args:
        data: the bytes of the worker's metadata_v2.db (None: absent).
        blob_size: the content store's size of a digest (None: not there).
        usage: the snapshotter's Usage of a snapshot key (None: no such snapshot).
        image_layers: the layer digests of every image manifest (imagerefchecker).
    """
    diags: list[Diagnostic] = []
    metadata = _open(lambda rel: data, source, diags)
    if metadata is None:
        return BuildCache((), frozenset(), tuple(diags))

    def snapshot_usage(record_id: str, key: str) -> int:
        found = usage(key)
        if found is None:
            diags.append(Diagnostic(source, f"record {record_id}: snapshot {key} is not in "
                                            f"the snapshotter; size counted as 0"))
        return found or 0

    layer_lists = set(image_layers)
    keys: dict[str, str] = {}

    def image_records(listed: Mapping[str, _Record], loaded: Mapping[str, _Record]) -> set[str]:
        keys.update(_layer_keys(listed, loaded))
        return _image_blob_chains(keys, layer_lists)
    return _read_records(metadata, source, blob_size, snapshot_usage, image_records,
                         lambda dropped: {}, diags, layer_key=lambda rid: keys.get(rid, ""))


def _read_records(metadata: BoltDB, source: str, blob_size: BlobSize,
                  usage: Callable[[str, str], int],
                  image_layers: Callable[[Mapping[str, _Record], Mapping[str, _Record]], set[str]],
                  held: Callable[[Collection[str]], dict[str, _Hold]],
                  diags: list[Diagnostic],
                  chain: Callable[[str], ChainID | None] = lambda key: None,
                  layer_key: Callable[[str], str] = lambda key: "") -> BuildCache:
    """cacheManager.init then DiskUsage, over the records of ``metadata``."""
    try:
        items = _items(metadata, diags, source)
        loader = _Loader(items, blob_size, diags, source)
        for record_id in items:
            loader.load(record_id)
        dropped = {rid for rid, rec in loader.loaded.items() if rec is None}
        holds = held(dropped)
        loaded = {rid: rec for rid, rec in loader.loaded.items() if rec is not None}
        listed = {rid: rec for rid, rec in loaded.items() if rec.equal_mutable is None}
        marked = _with_parents(image_layers(listed, loaded), listed)
        sizer = _Sizer(blob_size, usage, diags)
        records = tuple(_usage_record(rec, sizer.size(rec), rid in marked, chain(rid),
                                      _record_hold(rec, holds), _listed_parent(rec, loaded),
                                      source, layer_key(rid))
                        for rid, rec in sorted(listed.items()))
    except MalformedError as exc:
        diags.append(Diagnostic(exc.path, exc.reason))
        return BuildCache((), frozenset(), tuple(diags))
    all_held = frozenset(c for hold in holds.values() for c in hold.chains)
    return BuildCache(records, all_held, tuple(diags))


def _items(metadata: BoltDB, diags: list[Diagnostic], source: str = METADATA_DB
           ) -> dict[str, _Item]:
    main = metadata.bucket(MAIN_BUCKET)
    if main is None:
        return {}
    return {key.decode("utf-8", "replace"): _decode_item(key.decode("utf-8", "replace"),
                                                         bucket, diags, source)
            for key, bucket in main.buckets()}


def _own_layer(snapshots: _Snapshots, record_id: str) -> ChainID | None:
    # The layer store entry a record's snapshot is (imagerefchecker's getLayer).
    chain = snapshots.chain(record_id)
    return chain if chain is not None and chain in snapshots.layers else None


def _image_layers(listed: Mapping[str, _Record], snapshots: _Snapshots,
                  image_chains: Collection[ChainID]) -> set[str]:
    # imagerefchecker Exists: the records whose own layer an image uses.
    return {record_id for record_id in listed
            if _own_layer(snapshots, record_id) in image_chains}


def _layer_keys(listed: Mapping[str, _Record], loaded: Mapping[str, _Record]
                ) -> dict[str, str]:
    # The layerKey of each listed record's chain of blobs (its parents' and its own,
    # bottom first: layerDigestChain): the digests joined with no separator, a record
    # without a blob adding "".
    keys: dict[str, str] = {}
    for record_id in listed:
        chain: list[str] = []
        current = record_id
        while current in loaded and len(chain) <= len(loaded):   # the loader broke loops
            chain.append(loaded[current].item.text("cache.blob"))
            current = loaded[current].parent
        keys[record_id] = "".join(reversed(chain))
    return keys


def image_layer_keys(image_layers: Iterable[tuple[str, ...]]) -> frozenset[str]:
    """imagerefchecker's keys of image manifests' layer lists (an empty one is none)."""
    return frozenset("".join(layers) for layers in image_layers) - {""}


def _image_blob_chains(keys: Mapping[str, str],
                       image_layers: Collection[tuple[str, ...]]) -> set[str]:
    # imagerefchecker on the containerd store: the records whose layerKey is some image
    # manifest's. A mutable record without a blob (a RUN of a stage no image keeps) on
    # an image's layers is that image's.
    images = image_layer_keys(image_layers)
    return {record_id for record_id, key in keys.items() if key in images}


def _with_parents(direct: Collection[str], listed: Mapping[str, _Record]) -> set[str]:
    # cacheManager.markShared: a record an image uses is shared, and so are all its
    # parents.
    shared: set[str] = set()
    for record_id in direct:
        current = record_id
        while current in listed and current not in shared:
            shared.add(current)
            current = listed[current].parent
    return shared


def _listed_parent(record: _Record, loaded: Mapping[str, _Record]) -> str:
    # A child of an immutable twin holds its mutable record, the one listed.
    parent = loaded.get(record.parent)
    if parent is None:
        return ""
    return parent.equal_mutable.item.id if parent.equal_mutable else parent.item.id


def _record_hold(record: _Record, holds: Mapping[str, _Hold]) -> _Hold:
    # A record's lease and its immutable twin's go together (prune removes both).
    ids = [record.item.id] + ([record.equal_immutable.item.id] if record.equal_immutable else [])
    found = [holds[i] for i in ids if i in holds]
    return _Hold({c for h in found for c in h.chains}, {d for h in found for d in h.dirs})


def _usage_record(record: _Record, size: int, shared: bool, chain: ChainID | None,
                  hold: _Hold, parent: str, source: str, layer_key: str = ""
                  ) -> BuildCacheRecord:
    item = record.item
    usage_count, last_used = _last_used(item)
    created = item.get("cache.createdAt", "int")
    return BuildCacheRecord(
        id=item.id,
        cache_type=item.text("cache.recordType") or RECORD_TYPE_REGULAR,
        size=size,
        created_at=_rfc3339nano(created) if isinstance(created, int) else ZERO_TIME,
        last_used_at=last_used,
        usage_count=usage_count,
        in_use=False,                  # refs exist only while a build runs
        shared=shared,
        description=item.text("cache.description"),
        layer_chain_ids=tuple(sorted(hold.chains)),
        source=source,
        parent=parent,
        chain_id=chain,
        snapshot_dirs=tuple(sorted(hold.dirs)),
        last_used_ns=_last_used_ns(item),
        layer_key=layer_key,
    )


def _last_used_ns(item: _Item) -> int | None:
    # cache/metadata.go getLastUsed: without a usage count the last use is unknown too.
    if not isinstance(item.get("cache.usageCount", "int"), int):
        return None
    return item.number("cache.lastUsedAt", 0) or None


def _last_used(item: _Item) -> tuple[int, str | None]:
    count = item.get("cache.usageCount", "int")
    stamp = _last_used_ns(item)
    return (count if isinstance(count, int) else 0), (_rfc3339nano(stamp) if stamp else None)


def _reader(root: EvidenceRoot) -> Callable[[str], bytes | None]:
    def get(rel: str) -> bytes | None:
        return read_db_file(root, rel)
    return get


def snapshot_dirs(root: EvidenceRoot) -> tuple[frozenset[str], tuple[Diagnostic, ...]]:
    """The graph-driver IDs of BuildKit's own snapshots (snapshots.db), whose
    directories sit beside the layers' and are the build cache's, not orphans."""
    diags: list[Diagnostic] = []
    snapshots = _Snapshots(_open(_reader(root), SNAPSHOTS_DB, diags), {})
    try:
        return frozenset(snapshots.graph_ids()), tuple(diags)
    except MalformedError as exc:
        return frozenset(), (Diagnostic(exc.path, exc.reason),)


def _is_name(graph_id: str) -> bool:
    # A graph-driver ID read from the evidence names one directory, or none.
    return bool(graph_id) and "/" not in graph_id and graph_id not in (".", "..")


def load_build_cache(root: EvidenceRoot, driver: str, layers: Mapping[ChainID, Layer],
                     images: Iterable[Image]) -> BuildCache:
    """read_build_cache over a data root opened with the safe opener, measuring
    snapshot directories as the graph driver's DiffSize does (moby directory.Size)."""
    get = _reader(root)

    def measure(graph_id: str) -> int | None:
        if not _is_name(graph_id):
            return None
        size = directory_size(root, layout.diff_dir(driver, graph_id))
        return None if size < 0 else size

    return read_build_cache(get, layers, images, measure)
