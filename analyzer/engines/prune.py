"""``docker image prune [-a]``, planned: moby's ImagesPrune over the rmi planner.

The candidates are the images without children (dangling mode) or all images
(``-a``), less untagged intermediate images, images newer than ``until`` and
images the label filters exclude. Each candidate is then deleted with ImageDelete,
quietly skipping any error: by its 64-hex ID if it has no references, else
reference by reference (normalized strings, sorted) — in dangling mode only when
none of them is a tag. So an image two tags name loses all but its last tag even
when a container keeps it (moby#36295). The reclaimed space is the sum of the
DiffSize of the deleted layers.

Docker walks the candidates in Go map order (random); here they go in image-ID
order.

References: moby v20.10.24 daemon/images/image_prune.go (ImagesPrune, matchLabels,
getUntilFromPruneFilters).
"""
from __future__ import annotations

import time
from typing import Collection, Iterable, Mapping

from ..errors import DaemonError
from ..goapi.filters import match_kv_list, new_args
from ..goapi.time import GO_ZERO_UNIX
from ..goapi.timetypes import timestamp_ns
from ..ids import SHA256_PREFIX, ChainID
from ..model import Image, Store
from .daemonapi import API_20_10, created_is_optional, invalid_filter
from .rmi import Outcome, Plan, Record, RmiState, image_delete

ACCEPTED_FILTERS = ("dangling", "label", "label!", "until")

# Go's zero time.Time (0001-01-01T00:00:00Z), which 20.10 gives an image without
# "created"; v24+ skips such images under an until filter instead.
_ZERO_TIME_NS = GO_ZERO_UNIX * 10**9


def plan_prune(store: Store, all: bool, filters: Iterable[tuple[str, str]], now: float,
               utc_offset: int | None = None,
               build_cache_holds: Iterable[ChainID] = (), api: str = API_20_10
               ) -> tuple[Plan, list[Record], int]:
    """``docker image prune [-a] [--filter K=V]...`` against ``store``, changing nothing.

    Args:
        store: the data root's model.
        all: ``-a``; the CLI sends ``dangling=false`` (else ``dangling=true``).
        filters: the ``--filter`` pairs, as the CLI parsed them.
        now: Unix seconds, the daemon's time.Now() (for ``until``).
        utc_offset: the daemon's local zone offset in seconds east of UTC, for
            ``until`` times without a zone; default this machine's at ``now``.
        build_cache_holds: chain IDs the BuildKit cache holds.
        api: the daemon's API version (engines.daemonapi): its filter errors, and
            whether ``until`` keeps an image without a Created (28.5) or prunes it
            as created at Go's zero time (20.10).

    Returns:
        (plan, the report's records in order, SpaceReclaimed in bytes). The plan's
        ``errors`` is empty: prune skips every failed delete silently.

    Raises:
        DaemonError: the filters are refused, with the daemon's message.
    """
    args = new_args(filters)
    args.setdefault("dangling", set()).add("false" if all else "true")
    until_ns = prune_until(args, ACCEPTED_FILTERS, now, utc_offset, api)
    dangling_only = _dangling_only(args)
    state = RmiState(store, tuple(build_cache_holds))
    candidates = [i for i in store.images.values()
                  if not dangling_only or not store.children.get(i.id)]
    top = [i.id for i in candidates
           if _keep(store, i, args, until_ns, created_is_optional(api))]
    outcomes: list[Outcome] = []
    for image_id in sorted(top):
        refs = state.references(image_id)
        if refs:
            if not dangling_only or not any(not r.is_digest for r in refs):
                # The normalized strings: ImageDelete gets ref.String().
                outcomes.extend(_delete(state, r.normalized) for r in refs)
        else:
            outcomes.append(_delete(state, image_id[len(SHA256_PREFIX):]))
    plan = Plan(tuple(outcomes), (), state)
    records = list(plan.records)
    reclaimed = sum(store.layers[ChainID(r.value)].diff_size for r in records
                    if r.kind == "Deleted" and r.value in store.layers)
    return plan, records, reclaimed


def _delete(state: RmiState, name: str) -> Outcome:
    try:
        return Outcome(name, tuple(image_delete(state, name, force=False, prune=True)))
    except DaemonError as error:                   # imageDeleteFailed: skipped
        return Outcome(name, (), error)


def check_filters(args: Mapping[str, set[str]], accepted: Collection[str],
                  api: str = API_20_10) -> None:
    """Args.Validate: every key is one this prune takes (DaemonError if not, worded as
    the daemon speaking ``api`` words it)."""
    for key in sorted(args):                        # Go map order; sorted here
        if key not in accepted:
            raise DaemonError(invalid_filter(api, key))


def prune_until(args: Mapping[str, set[str]], accepted: Collection[str], now: float,
                utc_offset: int | None, api: str = API_20_10) -> int | None:
    """A prune's filters checked (Args.Validate) and its ``until`` as Unix nanoseconds
    (getUntilFromPruneFilters), None without one.

    Args:
        accepted: the filter keys this prune takes.
        utc_offset: the daemon's zone offset for times without a zone; default this
            machine's at ``now``.
        api: the daemon's API version (daemonapi), which words the refusal.

    Raises:
        DaemonError: a filter it does not take, or a bad ``until``, in the daemon's words.
    """
    check_filters(args, accepted, api)
    # ImagesPrune refuses a dangling filter with none of true/1/false/0, which the CLI's
    # own dangling=true|false never lets happen.
    if "until" not in args:
        return None
    values = args["until"]
    if len(values) > 1:
        raise DaemonError("more than one until filter specified")
    if utc_offset is None:
        utc_offset = time.localtime(now).tm_gmtoff
    return timestamp_ns(next(iter(values)), now, utc_offset)


def _dangling_only(args: Mapping[str, set[str]]) -> bool:
    # 20.10 ImagesPrune: any false-ish value wins (ExactMatch over the value set).
    return not args.get("dangling", set()) & {"false", "0"}


def _keep(store: Store, image: Image, args: Mapping[str, set[str]], until_ns: int | None,
          created_optional: bool) -> bool:
    if not store.refs(image.id) and store.children.get(image.id):
        return False                                # an intermediate image
    if until_ns is not None and (_created_ns(image) > until_ns or
                                 created_optional and image.created is None):
        return False
    return not image.has_config or match_labels(args, image.labels)


def _created_ns(image: Image) -> int:
    return _ZERO_TIME_NS if image.created is None else image.created_ns


def match_labels(args: Mapping[str, set[str]], labels: Mapping[str, str]) -> bool:
    """matchLabels: every ``label`` matches; not every ``label!`` matches (so
    several ``label!`` values exclude only an image matching all of them)."""
    if not match_kv_list(args.get("label", set()), labels):
        return False
    return not ("label!" in args and match_kv_list(args["label!"], labels))
