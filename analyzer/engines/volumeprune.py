"""``docker volume prune``, planned: moby's VolumesService.Prune, as dockerd 20.10 and
as Docker 23 and later (API 1.42) have it.

Every local volume created without options that no container references (in any
state: a stopped container's volume is in use) is removed, unless the label filters
exclude it. dockerd 20.10 makes no difference between anonymous and named volumes
(the Docker 28 CLI talks API 1.41 to it, so it sends no ``all`` filter, and refuses
``--all``). From Docker 23 the daemon keeps to the volumes it labelled
``com.docker.volume.anonymous`` when it created them for a container, unless the
``all`` filter is true (the CLI's ``--all`` sends ``all=true``). The reclaimed space
is the sum of each volume's directory.Size. The daemon lists them in its store's map
order; here by name.

References: moby v20.10.24 volume/service/service.go (Prune, acceptedPruneFilters),
volume/service/convert.go (filtersToBy, byLabelFilter); moby v28.5.0
volume/service/convert.go (withPrune), volume/service/service.go (AnonymousLabel);
docker/cli v28 cli/command/volume/prune.go.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ..errors import DaemonError
from ..goapi.filters import Args, new_args
from ..goapi.strconv import parse_bool
from ..model import Store, Volume
from .daemonapi import API_20_10, at_least
from .diskusage import is_plain_local, volume_ref_counts
from .prune import check_filters, match_labels

ACCEPTED_FILTERS = frozenset({"label", "label!"})
# API 1.42: "all" too, which withPrune reads.
ACCEPTED_FILTERS_1_42 = ACCEPTED_FILTERS | {"all"}
ANONYMOUS_LABEL = "com.docker.volume.anonymous"


@dataclass(frozen=True, slots=True)
class VolumePrune:
    deleted: tuple[Volume, ...]
    space_reclaimed: int               # the sum of their sizes (unknown ones count 0)


def plan_volume_prune(store: Store, filters: Iterable[tuple[str, str]],
                      sizes: Mapping[str, int], api: str = API_20_10) -> VolumePrune:
    """``docker volume prune [--filter K=V]...`` against ``store``, changing nothing.

    Args:
        filters: as the CLI sends them (``--all`` is ``all=true``).
        sizes: each volume's size by name (-1 unknown).
        api: the daemon's API version (daemonapi).

    Raises:
        DaemonError: the filters are refused, with the daemon's message.
    """
    args = new_args(filters)
    if at_least(api, "1.42"):
        _with_prune(args)
        check_filters(args, ACCEPTED_FILTERS_1_42, api)
    else:
        check_filters(args, ACCEPTED_FILTERS, api)
    refs = volume_ref_counts(store)
    deleted = tuple(sorted((v for v in store.volumes
                            if is_plain_local(v) and not refs.get(v.name)
                            and match_labels(args, v.labels)), key=lambda v: v.name))
    return VolumePrune(deleted, sum(max(sizes.get(v.name, -1), 0) for v in deleted))


def _with_prune(args: Args) -> None:
    """withPrune: unless ``all`` is true, only the volumes with the anonymous label."""
    values = sorted(args.get("all", ()))            # Go map order; sorted here
    if len(values) > 1:
        raise DaemonError(f"invalid filter 'all=[{' '.join(values)}]': only one value "
                          "is expected")
    if values:
        try:
            if parse_bool(values[0]):
                return
        except ValueError as error:
            raise DaemonError(f"invalid filter 'all': {error}") from None
    args.setdefault("label", set()).add(ANONYMOUS_LABEL)
