"""``docker system prune [-a] [--volumes]``, planned: the Docker 28 CLI's sequence of
prunes, each seeing what the ones before it removed.

The CLI runs container prune, network prune, volume prune (with ``--volumes``),
image prune (dangling, or every unused image with ``-a``) and build cache prune
(all of it with ``-a``), one after the other with the same filters; it stops at the
first refusal (what the earlier ones removed stays removed). So an image only a
stopped container used goes in the same run, a volume only a stopped container
referenced, and a build cache record whose layer only a pruned image used. The total
is the sum of their figures (network prune has none).

References: docker/cli v28.2.2 cli/command/system/prune.go (runPrune).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Mapping

from ..errors import DaemonError
from ..ids import ChainID
from ..model import Network, Store
from .builderprune import BuilderPrune, plan_builder_prune
from .containerprune import ContainerPrune, plan_container_prune, without_containers
from .daemonapi import API_20_10
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
    images: tuple[Any, list[Record], int] | None    # a Plan, or the containerd store's
    build_cache: BuilderPrune | None
    error: DaemonError | None

    @property
    def space_reclaimed(self) -> int:
        return sum(n for n in (self.containers and self.containers.space_reclaimed,
                               self.volumes and self.volumes.space_reclaimed,
                               self.images and self.images[2],
                               self.build_cache and self.build_cache.space_reclaimed) if n)


# The image prune of a run: the store once the containers went -> (its plan, its
# records, Docker's figure), the store it leaves, and the layerKeys of the images left
# (the containerd store's: what the build cache prune checks records with).
ImagePruner = Callable[[Store], tuple[tuple[Any, list[Record], int], Store, Collection[str]]]


def plan_system_prune(store: Store, networks: Iterable[Network], all: bool, volumes: bool,
                      filters: Iterable[tuple[str, str]], now: float,
                      size_rw: Mapping[str, int | None], volume_sizes: Mapping[str, int],
                      build_cache_holds: Collection[ChainID] = (),
                      utc_offset: int | None = None, api: str = API_20_10,
                      prune_images: ImagePruner | None = None) -> SystemPrune:
    """The run of prunes ``docker system prune`` makes, changing nothing; ``api`` is
    the daemon's API version (daemonapi); ``prune_images`` the image prune of another
    image store (default: the graph driver's)."""
    filters = list(filters)
    done: dict = {"containers": None, "networks": None, "volumes": None, "images": None,
                  "build_cache": None}

    def graph_driver_images(after: Store) -> tuple[tuple[Plan, list[Record], int], Store,
                                                  Collection[str]]:
        images = plan_prune(after, all, filters, now, utc_offset, build_cache_holds, api)
        return images, without_images(after, images[0]), ()
    try:
        containers = done["containers"] = plan_container_prune(
            store, filters, now, size_rw, build_cache_holds, utc_offset, api)
        after = without_containers(store, containers)
        done["networks"] = plan_network_prune(networks, filters, now, utc_offset, api)
        if volumes:
            done["volumes"] = plan_volume_prune(after, filters, volume_sizes, api)
        done["images"], after, image_keys = (prune_images or graph_driver_images)(after)
        done["build_cache"] = plan_builder_prune(after, all, filters, now, api, utc_offset,
                                                 image_keys)
    except DaemonError as error:
        return SystemPrune(**done, error=error)
    return SystemPrune(**done, error=None)


def without_images(store: Store, plan: Plan) -> Store:
    """The store once an image prune's plan is done: its images and layers gone."""
    images, layers = set(plan.deleted_images), set(plan.released_layers)
    return dataclasses.replace(
        store, images={k: i for k, i in store.images.items() if k not in images},
        layers={k: l for k, l in store.layers.items() if k not in layers})
