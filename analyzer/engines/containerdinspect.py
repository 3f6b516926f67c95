"""``docker image inspect`` on the containerd image store: what dockerd 28.5 computes
for one image (its names, sizes, last tag time, chain of snapshots).

References: moby v28.5.2 daemon/containerd/image_inspect.go (ImageInspect,
collectRepoTagsAndDigests, size), image_children.go (getImageLabelByDigest).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Mapping, Sequence

from ..containerdmodel import Descriptor, ImageContent
from ..containerdmodel import Image as Record
from ..errors import InvalidReference
from ..ids import DiffID, chain_ids
from ..reference import parse
from .containerdrmi import PARENT_LABEL, is_dangling


@dataclass(frozen=True, slots=True)
class Inspected:
    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    parent: str
    size: int
    target: Descriptor
    annotations: Mapping[str, str]
    config: Mapping | None
    last_tag_time: str
    snapshotter: str
    layers: tuple[tuple[str, str, str, int | None], ...]   # chain, diff, snapshot, size


def _rfc3339nano_utc(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    frac = f"{nanos:09d}".rstrip("0")
    return base[:-1] + (f".{frac}" if frac else "") + "Z"


def repo_tags_and_digests(tagged: Sequence[Record]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """collectRepoTagsAndDigests, deduplicated in order (sliceutil.Dedup)."""
    tags: list[str] = []
    digests: list[str] = []
    for record in tagged:
        if is_dangling(record):
            continue
        try:
            name = parse(record.name)
        except InvalidReference:
            tags.append(record.name)
            continue
        if str(name) != record.name:
            tags.append(record.name)           # ParseNamed: not in canonical form
            continue
        tags.append(name.familiar)
        digests.append(name.familiar if name.digest
                       else f"{name.familiar_name}@{record.target.digest}")
    return tuple(dict.fromkeys(tags)), tuple(dict.fromkeys(digests))


def inspect(record: Record, records: Sequence[Record], content: ImageContent | None,
            snapshot: Callable[[str], tuple[str, int | None] | None],
            snapshotter: str = "overlayfs") -> Inspected:
    """Args:
        record: the record the argument resolved to.
        records: every record of the namespace, in name order.
        snapshot: a chain ID's backend snapshot key and committed size, if unpacked.
    """
    digest = record.target.digest
    tagged = [r for r in records if r.target.digest == digest]
    updated = max([0] + [r.updated_ns for r in tagged if r.updated_ns is not None])
    parent = next((r.labels[PARENT_LABEL] for r in tagged if r.labels.get(PARENT_LABEL)), "")
    tags, digests = repo_tags_and_digests(tagged)
    config = content.config if content is not None else None
    diff_ids = [d for d in ((config or {}).get("rootfs") or {}).get("diff_ids") or ()
                if isinstance(d, str)]
    layers = []
    for chain, diff in zip(chain_ids(DiffID(d) for d in diff_ids), diff_ids):
        found = snapshot(chain)
        layers.append((chain, diff, found[0] if found else "", found[1] if found else None))
    return Inspected(digest, tags, digests, parent,
                     content.descriptor_size if content is not None else record.target.size,
                     record.target, record.annotations, config, _rfc3339nano_utc(updated),
                     snapshotter, tuple(layers))
