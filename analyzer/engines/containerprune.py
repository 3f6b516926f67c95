"""``docker container prune``, planned: moby's ContainersPrune.

Every container that is not running is removed — a paused or restarting container
is running to the daemon (State.Running) — unless it was created after ``until``
or the label filters exclude it (its labels are its Config.Labels, which hold the
image's labels merged in at create). ContainerRm fails, and prune skips quietly, a
container whose removal is already in progress. The reclaimed space is the sum of
the removed containers' SizeRw (the image layers only a removed container still
held go too, uncounted). Docker lists them in daemon.List() order (newest
first); so does this.

References: moby v20.10.24 daemon/prune.go (ContainersPrune), daemon/delete.go
(ContainerRm, cleanupContainer), container/state.go (IsRunning).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Collection, Iterable, Mapping

from ..goapi.filters import new_args
from ..goapi.time import parse_rfc3339_ns
from ..ids import ChainID
from ..model import Container, Store
from .containers import newest_first
from .daemonapi import API_20_10
from .prune import match_labels, prune_until
from .rmi import RmiState

ACCEPTED_FILTERS = frozenset({"label", "label!", "until"})


@dataclass(frozen=True, slots=True)
class ContainerPrune:
    deleted: tuple[Container, ...]     # in the report's order
    space_reclaimed: int               # the sum of their SizeRw (unknown ones count 0)
    unmeasured: tuple[Container, ...]  # removed ones whose SizeRw cannot be read offline
    # Image layers only these containers kept (their image deleted already): released
    # with the RW layers, though Docker's figure does not count them.
    released_layers: tuple[ChainID, ...]


def plan_container_prune(store: Store, filters: Iterable[tuple[str, str]], now: float,
                         size_rw: Mapping[str, int | None],
                         build_cache_holds: Collection[ChainID] = (),
                         utc_offset: int | None = None, api: str = API_20_10
                         ) -> ContainerPrune:
    """``docker container prune [--filter K=V]...`` against ``store``, changing nothing.

    Args:
        size_rw: SizeRw by container ID (-1 the daemon could not measure it, None
            unreadable offline).
        build_cache_holds: chain IDs the BuildKit cache holds; they are never released.
        now, utc_offset: the daemon's clock and zone, for ``until``.
        api: the daemon's API version (daemonapi).

    Raises:
        DaemonError: the filters are refused, with the daemon's message.
    """
    args = new_args(filters)
    until_ns = prune_until(args, ACCEPTED_FILTERS, now, utc_offset, api)
    deleted = tuple(c for c in newest_first(store.containers.values())
                    if not c.running and not c.removal_in_progress
                    and (until_ns is None or parse_rfc3339_ns(c.created) <= until_ns)
                    and match_labels(args, c.labels))
    sizes = [size_rw.get(c.id, -1) for c in deleted]
    state = RmiState(store, build_cache_holds)
    released = [layer.chain_id for c in deleted for layer in state.release_rw_layer(c.id)]
    return ContainerPrune(deleted, sum(s for s in sizes if s is not None and s > 0),
                          tuple(c for c, s in zip(deleted, sizes) if s is None),
                          tuple(released))


def without_containers(store: Store, pruned: ContainerPrune) -> Store:
    """The store once the pruned containers are removed, with their mounts and the
    layers only they held (a released layer no longer counts as its parent's child)."""
    ids = {c.id for c in pruned.deleted}
    released = set(pruned.released_layers)
    return dataclasses.replace(
        store, containers={k: c for k, c in store.containers.items() if k not in ids},
        mounts={k: m for k, m in store.mounts.items() if k not in ids},
        layers={k: l for k, l in store.layers.items() if k not in released})
