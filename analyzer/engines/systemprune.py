"""``docker system prune [-a] [--volumes]``, planned: the Docker 28 CLI's sequence of
prunes, each seeing what the ones before it removed.

The CLI runs container prune, network prune, volume prune (with ``--volumes``),
image prune (dangling, or every unused image with ``-a``) and build cache prune,
one after the other with the same filters; it stops at the first refusal (what the
earlier ones removed stays removed). So an image only a stopped container used goes
in the same run, and a volume only a stopped container referenced. The total is the
sum of their figures (network prune has none).

References: docker/cli v28.2.2 cli/command/system/prune.go (runPrune).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Mapping

from ..errors import DaemonError
from ..ids import ChainID
from ..model import Network, Store
from .containerprune import ContainerPrune, plan_container_prune, without_containers
from .networkprune import plan_network_prune
from .prune import plan_prune
from .rmi import Plan, Record
from .volumeprune import VolumePrune, plan_volume_prune


@dataclass(frozen=True)
class SystemPrune:
    """What each pruner removed, in the CLI's order; ``error`` is the refusal that
    stopped the run (the pruners after it did not run: None)."""
    containers: ContainerPrune | None
    networks: tuple[Network, ...] | None
    volumes: VolumePrune | None
    images: tuple[Plan, list[Record], int] | None
    error: DaemonError | None

    @property
    def space_reclaimed(self) -> int:
        return sum(n for n in (self.containers and self.containers.space_reclaimed,
                               self.volumes and self.volumes.space_reclaimed,
                               self.images and self.images[2]) if n)


def plan_system_prune(store: Store, networks: Iterable[Network], all: bool, volumes: bool,
                      filters: Iterable[tuple[str, str]], now: float,
                      size_rw: Mapping[str, int | None], volume_sizes: Mapping[str, int],
                      build_cache_holds: Collection[ChainID] = (),
                      utc_offset: int | None = None) -> SystemPrune:
    """The run of prunes ``docker system prune`` makes, changing nothing (the build
    cache's prune is the caller's: it comes last and changes nothing before it)."""
    filters = list(filters)
    done: dict = {"containers": None, "networks": None, "volumes": None, "images": None}
    try:
        containers = done["containers"] = plan_container_prune(
            store, filters, now, size_rw, build_cache_holds, utc_offset)
        after = without_containers(store, containers)
        done["networks"] = plan_network_prune(networks, filters, now, utc_offset)
        if volumes:
            done["volumes"] = plan_volume_prune(after, filters, volume_sizes)
        done["images"] = plan_prune(after, all, filters, now, utc_offset, build_cache_holds)
    except DaemonError as error:
        return SystemPrune(**done, error=error)
    return SystemPrune(**done, error=None)
