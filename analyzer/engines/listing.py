"""``docker image ls`` as the daemon computes it: which images, which references.

Follows dockerd 20.10, whose summaries of untagged images carry ``<none>:<none>`` /
``<none>@<none>``, or dockerd 28.5 on a root it wrote (engines.daemonapi): its filter
errors, its ``dangling`` values and its optional Created.

References: moby v20.10 daemon/images/images.go (Images), v28.5.2
daemon/images/image_list.go (Images, newImageSummary), api/types/filters (Validate,
ExactMatch, GetBoolOrDefault), reference FamiliarMatch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from .. import reference as refs
from ..errors import DaemonError
from ..goapi.filters import get_bool_or_default, match_kv_list
from ..ids import ImageID
from ..model import Image, Store
from .daemonapi import API_20_10, at_least, created_is_optional, invalid_filter
from .resolve import get_image

# "until" is dockerd 25+'s (20.10 refuses it as an invalid filter).
ACCEPTED_FILTERS = ("dangling", "label", "before", "since", "reference", "until")
NONE_TAG = "<none>:<none>"
NONE_DIGEST = "<none>@<none>"


class InvalidFilter(DaemonError):
    pass


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """The daemon's image summary (types.ImageSummary)."""
    image: Image
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    containers: int          # -1 when not computed
    shared_size: int         # -1 when not computed
    created: int             # Unix seconds: the summary's Created


    @property
    def id(self) -> ImageID:
        return self.image.id


def list_images(store: Store, filters: Mapping[str, Sequence[str]], all_images: bool,
                now: float | None = None, api: str = API_20_10) -> list[ImageSummary]:
    """``now``: Unix seconds, the daemon's time.Now() for ``until`` (default: this
    machine's); ``api``: the daemon's API version (engines.daemonapi)."""
    for name in filters:
        if name not in ACCEPTED_FILTERS:
            raise InvalidFilter(invalid_filter(api, name))
    dangling_only = _dangling_only(filters.get("dangling"), api)
    optional = created_is_optional(api)
    before_ns = _bound(store, filters.get("before"), api, oldest=True)
    until_ns = _until(filters.get("until"), now)
    if until_ns is not None and (before_ns is None or until_ns < before_ns):
        before_ns = until_ns          # moby 25+: until and before are one bound, the earlier
    since_ns = _bound(store, filters.get("since"), api, oldest=False)
    labels = filters.get("label") or ()
    patterns = filters.get("reference") or ()
    children = store.children

    out: list[ImageSummary] = []
    for image in store.images.values():
        if dangling_only and image.id in children:
            continue                                  # Heads(): images without children
        if image.id in store.other_platforms and not all_images:
            continue                                  # an archive's other platforms: -a
        timeless = optional and image.created is None
        if before_ns is not None and (timeless or image.created_ns >= before_ns):
            continue
        if since_ns is not None and (timeless or image.created_ns <= since_ns):
            continue
        if labels:
            if not image.has_config:
                continue
            if not match_kv_list(labels, image.labels):
                continue
        tags, digests = _references(store, image, patterns)
        if not tags and not digests:
            if all_images or image.id not in children:
                if "dangling" in filters and not dangling_only:
                    continue
                if patterns:
                    continue
                tags, digests = [NONE_TAG], [NONE_DIGEST]
            else:
                continue
        elif dangling_only and tags:
            continue
        out.append(ImageSummary(image, tuple(tags), tuple(digests), store.image_size(image),
                                -1, -1, 0 if timeless else image.created_unix))
    # Docker sorts by Created seconds, descending, unstably; ties here go by ID.
    out.sort(key=lambda s: (-s.created, s.image.id))
    return out


def _dangling_only(values: Sequence[str] | None, api: str) -> bool:
    if values is None:
        return False
    if at_least(api, "1.42"):
        return get_bool_or_default("dangling", values)
    # 20.10: ExactMatch — only "true" and "false".
    if "true" in values:
        return True
    if "false" not in values:
        raise InvalidFilter(f"Invalid filter 'dangling=[{' '.join(values)}]'")
    return False


def _bound(store: Store, values: Sequence[str] | None, api: str, oldest: bool) -> int | None:
    """The Created (Unix ns) a ``before`` (``oldest``) or ``since`` filter compares with.
    20.10 keeps the last value resolved (map order when several); 28.5 ANDs them: the
    oldest or newest of the images that have a Created."""
    bound = None
    for value in values or ():
        image = get_image(store, value)
        if not created_is_optional(api):
            bound = image.created_ns
        elif image.created is not None:
            ns = image.created_ns
            bound = ns if bound is None else (min if oldest else max)(bound, ns)
    return bound


def _until(values: Sequence[str] | None, now: float | None) -> int | None:
    """The earliest ``until`` as Unix nanoseconds (GetTimestamp, then ParseTimestamps)."""
    import time
    from ..goapi.timetypes import timestamp_ns
    now = time.time() if now is None else now
    found = None
    for value in values or ():
        ns = timestamp_ns(value, now, time.localtime(now).tm_gmtoff)
        found = ns if found is None else min(found, ns)
    return found


def _references(store: Store, image: Image, patterns: Sequence[str]
                ) -> tuple[list[str], list[str]]:
    tags: list[str] = []
    digests: list[str] = []
    for ref in store.refs(image.id):
        if patterns and not any(refs.familiar_match(p, ref) for p in patterns):
            continue
        (digests if ref.is_digest else tags).append(ref.familiar)
    return tags, digests


def shared_sizes(store: Store, images: Sequence[Image], api: str = API_20_10
                 ) -> dict[ImageID, int]:
    """SharedSize of each image: bytes of its layers that another counted image also uses.

    20.10 counts among the listed images only, v23+ among all images.
    """
    users: dict[str, int] = {}
    for image in (store.images.values() if at_least(api, "1.42") else images):
        for layer in store.chain(image.top_layer):
            users[layer.chain_id] = users.get(layer.chain_id, 0) + 1
    return {image.id: sum(layer.diff_size for layer in store.chain(image.top_layer)
                          if users[layer.chain_id] > 1)
            for image in images}
