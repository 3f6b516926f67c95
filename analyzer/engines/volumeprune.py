"""``docker volume prune``, planned: moby's VolumesService.Prune as dockerd 20.10 has it.

Every local volume created without options that no container references (in any
state: a stopped container's volume is in use) is removed, unless the label filters
exclude it. 20.10 makes no difference between anonymous and named volumes (the
Docker 28 CLI talks API 1.41 to it, so it sends no ``all`` filter, and refuses
``--all``). The reclaimed space is the sum of each volume's directory.Size. The
daemon lists them in its store's map order; here by name.

References: moby v20.10.24 volume/service/service.go (Prune, acceptedPruneFilters),
volume/service/convert.go (filtersToBy, byLabelFilter), docker/cli v28
cli/command/volume/prune.go.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..goapi.filters import new_args
from ..model import Store, Volume
from .diskusage import is_plain_local, volume_ref_counts
from .prune import check_filters, match_labels

ACCEPTED_FILTERS = frozenset({"label", "label!"})


@dataclass(frozen=True, slots=True)
class VolumePrune:
    deleted: tuple[Volume, ...]
    space_reclaimed: int               # the sum of their sizes (unknown ones count 0)


def plan_volume_prune(store: Store, filters: Iterable[tuple[str, str]],
                      sizes: Mapping[str, int]) -> VolumePrune:
    """``docker volume prune [--filter K=V]...`` against ``store``, changing nothing.

    Args:
        sizes: each volume's size by name (-1 unknown).

    Raises:
        DaemonError: the filters are refused, with the daemon's message.
    """
    args = new_args(filters)
    check_filters(args, ACCEPTED_FILTERS)
    refs = volume_ref_counts(store)
    deleted = tuple(sorted((v for v in store.volumes
                            if is_plain_local(v) and not refs.get(v.name)
                            and match_labels(args, v.labels)), key=lambda v: v.name))
    return VolumePrune(deleted, sum(max(sizes.get(v.name, -1), 0) for v in deleted))
