"""When each image was last used: the only evidence of use a snapshot holds.

The daemon keeps no "last used" time (``docker image ls`` has none). What a data root
does record, per image:

- ``container_started``, ``container_finished``, ``container_created``: a container
  made from the image (config.v2.json Created, State.StartedAt, State.FinishedAt);
- ``tagged``: a tag moved onto it or a pull named it (the image's ``lastUpdated``
  metadata, inspect's LastTagTime; on the containerd store its image records' UpdatedAt);
- ``build_cache_used``: a BuildKit cache record that holds the image's top layer — a
  build that started from exactly this image's filesystem — was used (LastUsedAt, or
  CreatedAt for a record never used since).

The latest of these wins; equal times go to the first kind in that order. An image's
own Created is when it was built, not used, and does not count. An image with none of
these has no last use (None), and ``in_use`` says a running container uses it now.

References: moby container/state.go (StartedAt, FinishedAt), image/store.go
(SetLastUpdated), containerd metadata/images.go (UpdatedAt), buildkit cache/metadata
(LastUsedAt).
"""
from __future__ import annotations

from typing import Iterator, Mapping, NamedTuple

from ..goapi.time import parse_rfc3339_ns
from ..ids import ImageID
from ..model import Store
from .timeline import GO_ZERO

# Ties go to the kind named first.
KINDS = ("container_started", "container_finished", "container_created", "tagged",
         "build_cache_used")


class LastUse(NamedTuple):
    unix_ns: int
    evidence: str                      # one of KINDS
    id: str                            # the container, image or cache record it is from
    in_use: bool                       # a running container uses the image


def tag_times(store: Store) -> dict[ImageID, int]:
    """Each image's ``lastUpdated`` (graph-driver image metadata), where it reads."""
    return {image.id: when for image in store.images.values()
            if (when := _ns(image.last_updated)) is not None}


def last_used(store: Store, tagged_ns: Mapping[ImageID, int]) -> dict[ImageID, LastUse | None]:
    """Every image's last use by the evidence above (``tagged_ns``: when a tag last
    moved onto each image, as the store keeps it)."""
    best: dict[ImageID, tuple[int, int, str]] = {}
    running = {ctr.image_id for ctr in store.containers.values() if ctr.running}
    for image_id, when, kind, ident in _uses(store, tagged_ns):
        if image_id not in store.images:
            continue
        candidate = (when, -KINDS.index(kind), ident)
        if image_id not in best or candidate > best[image_id]:
            best[image_id] = candidate
    return {image_id: (LastUse(best[image_id][0], KINDS[-best[image_id][1]],
                               best[image_id][2], image_id in running)
                       if image_id in best else None)
            for image_id in store.images}


def _uses(store: Store, tagged_ns: Mapping[ImageID, int]
          ) -> Iterator[tuple[ImageID, int, str, str]]:
    for ctr in store.containers.values():
        for stamp, kind in ((ctr.started_at, "container_started"),
                            (ctr.finished_at, "container_finished"),
                            (ctr.created, "container_created")):
            when = _ns(stamp)
            if when is not None:
                yield ctr.image_id, when, kind, ctr.id
    for image_id, when in tagged_ns.items():
        yield image_id, when, "tagged", image_id
    tops = {}
    for image in store.images.values():
        if image.top_layer is not None:
            tops.setdefault(image.top_layer, []).append(image.id)
    for record in store.build_cache:
        when = _ns(record.last_used_at) or _ns(record.created_at)
        if when is None:
            continue
        for chain_id in record.layer_chain_ids:
            for image_id in tops.get(chain_id, ()):
                yield image_id, when, "build_cache_used", record.id


def _ns(stamp: str | None) -> int | None:
    """A time of the evidence; Go's zero time (never) and what does not read are none
    (the timeline names the latter)."""
    if not stamp or stamp == GO_ZERO:
        return None
    try:
        return parse_rfc3339_ns(stamp)
    except ValueError:
        return None
