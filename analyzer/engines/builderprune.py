"""``docker builder prune [-a]``, planned: moby's Builder.Prune over BuildKit's
cacheManager.prune, as dockerd 20.10 (BuildKit v0.8) and 28.5 (v0.25) run it.

moby checks the filters (``until``, ``unused-for``, ``label``, ``label!`` — accepted,
and ignored — and BuildKit's ``id``, ``parent``, ``type``, ``description``, ``inuse``,
``shared``, ``private``), turns ``until`` (or its old name ``unused-for``) into a keep
duration — a Go duration on 20.10, also a timestamp from Docker 23 on — and the rest
into one BuildKit filter, ``id~=V`` and ``K==V`` joined by commas (all must match).

BuildKit then prunes in passes until one removes nothing. A pass takes every record
nothing holds (a child holds its parent: a record goes only after its children), that
is not kept by the rules (without ``--all``: internal and frontend records, and those
whose own layer an image uses — not their parents, which their children hold), not
used within the keep duration, and that the filter matches; the filter sees only the
record's ID, type, mutability, shared flag and (v0.25) description. A record and its
immutable twin go together, under the mutable record's ID. Each removed record is
reported with its size; the space reclaimed is their sum.

With a cap on what the cache keeps (20.10's keep-storage, BuildKit's KeepBytes; 28.5's
reserved-space, keep-storage its old name, and max-used-space: calculateKeepBytes keeps
the larger), the passes are BuildKit's garbage collection: while the records that no
image shares (df's Shared false) add up to the cap or more, one record goes a pass,
the least recently and least often used of those the rules above let go
(sortDeleteRecords: its rank by last use plus its rank by use count, each over its
highest rank). min-free-space depends on the free space of the daemon's disk, which
the evidence does not hold.

References: moby v20.10.24 builder/builder-next/builder.go (Prune,
toBuildkitPruneInfo, cacheFields), v28.5.0 the same, and api/server/router/build
(postPrune: keep-storage, reserved-space, max-used-space); moby/buildkit eeb7b65 (v0.8)
and v0.25.0 cache/manager.go (prune, pruneOnce, adaptUsageInfo, calculateKeepBytes,
sortDeleteRecords); containerd filters (the selector's == and ~= operators).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Collection, Iterable, Mapping

from ..errors import DaemonError
from ..goapi.filters import Args, new_args
from ..goapi.strconv import quote
from ..goapi.time import parse_duration
from ..goapi.timetypes import timestamp_ns
from ..ids import ChainID, chain_ids
from ..model import BuildCacheRecord, Layer, Store
from .daemonapi import API_20_10, at_least
from .prune import check_filters
from .rmi import RmiState

# The keys moby passes to BuildKit (cacheFields); "mutable" and "immutable" it refuses.
CACHE_FIELDS = ("id", "parent", "type", "description", "inuse", "shared", "private")
ACCEPTED_FILTERS = frozenset({"until", "unused-for", "label", "label!", *CACHE_FIELDS})
# client.UsageRecordType values prune keeps without --all.
KEPT_TYPES = frozenset({"internal", "frontend"})
ERROR_PREFIX = "failed to prune build cache: "


@dataclass(frozen=True, slots=True)
class BuilderPrune:
    deleted: tuple[BuildCacheRecord, ...]    # pass by pass (each pass by ID)
    space_reclaimed: int                      # the sum of their sizes
    # The layers the cache no longer holds that nothing else keeps: they go too.
    released_layers: tuple[ChainID, ...]
    # Graph-driver directories of the removed records' snapshots that are no layer.
    removed_dirs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SpaceCaps:
    """What the prune request caps the cache at, in bytes (0: no cap)."""
    keep_storage: int = 0       # 20.10's KeepStorage; 28.5's ReservedSpace when that is 0
    reserved_space: int = 0     # API 1.48+
    max_used_space: int = 0     # API 1.48+

    def keep_bytes(self, api: str) -> int:
        """postPrune then calculateKeepBytes (without MinFreeSpace): the most the cache
        may keep, 0 for no cap."""
        if not at_least(api, "1.48"):
            return self.keep_storage
        return max(self.max_used_space, self.reserved_space or self.keep_storage)


def plan_builder_prune(store: Store, all: bool, filters: Iterable[tuple[str, str]],
                       now: float, api: str = API_20_10, utc_offset: int | None = None,
                       image_layer_keys: Collection[str] = (),
                       caps: SpaceCaps = SpaceCaps()) -> BuilderPrune:
    """``docker builder prune [-a] [--filter K=V]...`` against ``store`` (its
    ``build_cache``), changing nothing.

    Args:
        now: Unix seconds, the daemon's time.Now() (for ``until``).
        api: the daemon's API version (daemonapi).
        utc_offset: the daemon's zone offset for timestamps without a zone (API 1.42+);
            default this machine's at ``now``.
        image_layer_keys: on the containerd store, the layerKey of each image's layers
            (a record whose own key is one is an image's); on a graph driver, its layer
            is looked up in the images' chains instead.
        caps: the request's keep-storage, reserved-space and max-used-space.

    Raises:
        DaemonError: the filters are refused, with the daemon's message.
    """
    args = new_args(filters)
    try:
        check_filters(args, ACCEPTED_FILTERS, api)
        cutoff_ns = _keep_cutoff(args, now, api, utc_offset)
        selectors = _selectors(args)
    except DaemonError as error:
        raise DaemonError(ERROR_PREFIX + str(error)) from None
    description_seen = at_least(api, "1.42")
    image_chains = {c for image in store.images.values() for c in chain_ids(image.diff_ids)}
    alive = {r.id: r for r in store.build_cache}
    deleted: list[BuildCacheRecord] = []
    keep_bytes = caps.keep_bytes(api)
    total = sum(r.size for r in store.build_cache if not r.shared)
    while not keep_bytes or total >= keep_bytes:
        held = {r.parent for r in alive.values() if r.parent}
        batch = [r for _, r in sorted(alive.items()) if r.id not in held
                 and _prunable(r, all, r.chain_id in image_chains
                               or r.layer_key in image_layer_keys, cutoff_ns, selectors,
                               description_seen)]
        if not batch:
            break
        if keep_bytes:
            batch = [least_used(batch, first_rank=float(at_least(api, "1.42")))]
            total -= batch[0].size
        for record in batch:
            del alive[record.id]
        deleted.extend(batch)
    released = _released_layers(store, deleted, alive.values())
    dirs = {d for r in deleted for d in r.snapshot_dirs}
    dirs -= {d for r in alive.values() for d in r.snapshot_dirs}
    return BuilderPrune(tuple(deleted), sum(r.size for r in deleted), released,
                        tuple(sorted(dirs)))


def least_used(records: list[BuildCacheRecord], first_rank: float) -> BuildCacheRecord:
    """The record sortDeleteRecords puts first: ranks by last use (never used first) and
    by use count, each divided by its highest rank; ``first_rank`` is where the ranks
    start (BuildKit v0.8: 0, v0.25: 1). Ties keep the order of the sorts before (Go's
    sorts are stable at these sizes), then the ID."""
    by_use = sorted(records, key=lambda r: (r.last_used_ns is not None, r.last_used_ns or 0,
                                            r.id))
    used_rank: dict[str, float] = {}
    rank, last = first_rank, 0
    for record in by_use:
        if record.last_used_ns is not None and record.last_used_ns > last:
            rank, last = rank + 1, record.last_used_ns
        used_rank[record.id] = rank
    top_used = rank
    count_rank: dict[str, float] = {}
    rank, count = first_rank, 0
    for record in sorted(by_use, key=lambda r: r.usage_count):
        if record.usage_count != count:
            rank, count = rank + 1, record.usage_count
        count_rank[record.id] = rank
    top_count = rank
    order = sorted(by_use, key=lambda r: r.usage_count)
    # v0.8 divides by a highest rank of 0 (NaN: no comparison moves a record).
    return min(order, key=lambda r: (used_rank[r.id] / top_used if top_used else 0.0)
               + (count_rank[r.id] / top_count if top_count else 0.0))


def _keep_cutoff(args: Args, now: float, api: str, utc_offset: int | None) -> int | None:
    """toBuildkitPruneInfo's keep duration as the cutoff (Unix ns) pruneOnce compares
    each record's last use with; None for no keep duration."""
    until, unused = args.get("until", set()), args.get("unused-for", set())
    if until and unused:
        raise DaemonError('conflicting filters: "until" and "unused-for"')
    key = "unused-for" if unused else "until"
    values = sorted(until | unused)
    if not values:
        return None
    if len(values) > 1:
        raise DaemonError("filters expect only one value")
    value = values[0]
    now_ns = round(now * 1e9)
    if at_least(api, "1.42"):
        if utc_offset is None:
            utc_offset = time.localtime(now).tm_gmtoff
        try:
            stamp = timestamp_ns(value, now, utc_offset)
        except DaemonError as error:
            raise DaemonError(f'"{key}" filter expects a duration (e.g., \'24h\') or a '
                              f"timestamp: {error}") from None
        keep = now_ns - stamp
    else:
        duration = parse_duration(value)
        if duration is None:
            raise DaemonError(f'"{key}" filter expects a duration (e.g., \'24h\'): '
                              f"time: invalid duration {quote(value)}")
        keep = duration
    return None if keep == 0 else now_ns - keep


def _selectors(args: Args) -> list[tuple[str, str]]:
    """The BuildKit filter's selectors: (field, value); ``id`` is a regular expression."""
    out = []
    for field in CACHE_FIELDS:
        values = args.get(field)
        if not values:
            continue
        if len(values) > 1:
            raise DaemonError("filters expect only one value")
        out.append((field, next(iter(values))))
    return out


def _prunable(record: BuildCacheRecord, all_records: bool, shared: bool,
              cutoff_ns: int | None, selectors: list[tuple[str, str]],
              description_seen: bool) -> bool:
    """pruneOnce's tests of a record nothing holds; ``shared``: an image uses its own
    layer (imagerefchecker Exists)."""
    if not all_records and (record.cache_type in KEPT_TYPES or shared):
        return False
    if cutoff_ns is not None and record.last_used_ns is not None \
            and record.last_used_ns > cutoff_ns:
        return False
    return all(_matches(record, field, value, description_seen)
               for field, value in selectors)


def _matches(record: BuildCacheRecord, field: str, value: str, description_seen: bool
             ) -> bool:
    """One selector against adaptUsageInfo of what pruneOnce fills in: ID, type,
    mutability, shared (and from v0.25 the description); every other field is absent."""
    if field == "id":
        try:
            return re.search(value, record.id) is not None
        except re.error:
            return False
    fields = {"type": record.cache_type,
              "description": record.description if description_seen else ""}
    present = fields.get(field, "")
    return bool(present) and present == value


def _released_layers(store: Store, deleted: Collection[BuildCacheRecord],
                     kept: Iterable[BuildCacheRecord]) -> tuple[ChainID, ...]:
    """The snapshotter's remove() of each removed record's layers: the cache's hold on
    each goes, and a layer nothing else keeps is deleted with the parents only it held."""
    still = {c for r in kept for c in r.layer_chain_ids}
    state = RmiState(store, store.build_cache_holds)
    gone: list[Layer] = []
    for chain in sorted({c for r in deleted for c in r.layer_chain_ids} - still):
        gone += state.release_build_cache(chain)
    return tuple(layer.chain_id for layer in gone)
