"""``docker image prune`` on the containerd image store, as dockerd 28.5 runs it.

Candidates are the dangling records (every record with ``-a``, which the CLI sends
as ``dangling=false``) that pass the ``label``/``label!``/``until`` filters; a record a
container names (its ``Config.Image``, or its image's dangling record) is spared, and
so is the last name of an image a container was created from by ID or digest. First
moby's temporary ``moby/prune.images`` leases are dropped. Then each candidate record
is deleted with a synchronous collection: ``untagged: NAME`` (the digest for a
dangling record), ``deleted: DIGEST`` for each of its manifests and indexes the
collection removed, and the descriptor sizes of all its blobs that went are the
"space reclaimed" — snapshots are freed too but not counted there. Docker walks the
candidates in map order; here in name order, so which candidate's line names a shared
blob may differ, never the set of lines or the total.

References: moby v28.5.2 daemon/containerd/image_prune.go (ImagesPrune, pruneUnused,
filterImagesUsedByContainers, pruneAll), image.go (imageFamiliarName), leases.go
(pruneLeaseFilter), docker/cli cli/command/image/prune.go.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..containerdmodel import BackendSnapshot, ImageContent, MetaStore
from ..containerdmodel import Image as Record
from ..errors import InvalidReference
from ..goapi.filters import get_bool_or_default
from ..goapi.timetypes import get_timestamp, parse_timestamps
from ..model import Container
from ..reference import parse, parse_normalized_named, tag_name_only
from .containerdgc import Resource, collect, without_removed
from .containerdlisting import InvalidFilter, _label_matches, image_of
from .containerdrmi import DANGLING_PREFIX, is_dangling
from .rmi import Record as Line

ACCEPTED_FILTERS = ("dangling", "label", "label!", "until")
PRUNE_LEASE_LABEL = "moby/prune.images"


@dataclass(frozen=True)
class PrunePlan:
    lines: tuple[Line, ...]
    space_reclaimed: int
    deleted_images: tuple[str, ...]
    meta_after: MetaStore                 # the records and leases as the prune leaves them
    deleted_blobs: tuple[str, ...]
    deleted_snapshots: Mapping[str, tuple[str, ...]]


def _familiar(record: Record) -> str:
    if is_dangling(record):
        return record.target.digest
    try:
        ref = parse(record.name)
    except InvalidReference:
        return record.name
    return ref.familiar if str(ref) == record.name else record.name


def _spared(containers: Sequence[Container], candidates: dict[str, Record]) -> set[str]:
    """filterImagesUsedByContainers: drops what containers name; returns used digests."""
    used: set[str] = set()
    for ctr in containers:
        digest = ctr.image_id
        candidates.pop(DANGLING_PREFIX + digest, None)
        image_ref = ctr.image
        if digest.startswith("sha256:" + image_ref.removeprefix("sha256:")) or \
                image_ref.endswith("@" + digest):
            used.add(digest)
        try:
            named = tag_name_only(parse_normalized_named(image_ref))
        except InvalidReference:
            continue
        candidates.pop(str(named), None)
        if named.digest and named.tag:
            candidates.pop(str(dataclasses.replace(named, digest="")), None)
    return used


def _is_manifest_or_index(media_type: str) -> bool:
    return ("manifest" in media_type or "index" in media_type) and media_type.endswith("json")


def plan_prune(meta: MetaStore, contents: Mapping[str, ImageContent],
               containers: Sequence[Container], filters: Mapping[str, Sequence[str]],
               all_images: bool, now_ns: int, *, blobs_present: frozenset[str],
               backends: Mapping[str, Mapping[str, BackendSnapshot]], utc_offset: int = 0,
               namespace: str = "moby") -> PrunePlan:
    for name in filters:
        if name not in ACCEPTED_FILTERS and name != "dangling":
            raise InvalidFilter(f"invalid filter '{name}'")
    dangling_only = get_bool_or_default("dangling", filters["dangling"]) \
        if "dangling" in filters else not all_images
    until = None
    for value in filters.get("until", ()):
        seconds, nanos = parse_timestamps(get_timestamp(value, now_ns, utc_offset))
        until = seconds * 1_000_000_000 + nanos
    records = sorted(meta.images_of(namespace), key=lambda r: r.name.encode())

    def passes(record: Record) -> bool:
        if until is not None and not (record.created_ns is not None and record.created_ns < until):
            return False
        if filters.get("label") or filters.get("label!"):
            image = image_of(record, contents.get(record.target.digest))
            return _label_matches(image.labels, filters)
        return True

    refcount: dict[str, int] = {}
    candidates: dict[str, Record] = {}
    for record in records:
        refcount[record.target.digest] = refcount.get(record.target.digest, 0) + 1
        if (not dangling_only or is_dangling(record)) and passes(record):
            candidates[record.name] = record
    used = _spared(containers, candidates)
    for name in sorted(candidates):
        digest = candidates[name].target.digest
        if refcount[digest] > 1:
            refcount[digest] -= 1
            continue
        if digest in used:
            del candidates[name]

    # The temporary leases of pulls and builds go first.
    leases = tuple(l for l in meta.leases
                   if not (l.namespace == namespace and PRUNE_LEASE_LABEL in l.labels))
    current = dataclasses.replace(meta, leases=leases)
    present = set(blobs_present)
    # What the namespace's content store can read: its record there, and the file. A
    # blob another namespace keeps (BuildKit's build history) is gone for Docker once
    # its own record is: a "deleted:" line, its size counted.
    readable = {b.digest for b in meta.blobs if b.namespace == namespace} & present
    lines: list[Line] = []
    space = 0
    deleted_images: list[str] = []
    all_blobs: list[str] = []
    all_snapshots: dict[str, list[str]] = {}
    for name in sorted(candidates):
        record = candidates[name]
        content = contents.get(record.target.digest)
        walked = content.present if content is not None else ()
        walked = tuple(b for b in walked if b[0] in readable)
        current = dataclasses.replace(current, images=tuple(
            i for i in current.images if not (i.namespace == namespace and i.name == name)))
        result = collect(current, now_ns, blobs_present=present, backends=backends)
        current = without_removed(current, result)
        present -= set(result.deleted_blobs)
        readable -= set(result.deleted_blobs)
        readable -= {n.key for n in result.removed
                     if n.type == Resource.CONTENT and n.namespace == namespace}
        all_blobs.extend(result.deleted_blobs)
        for snapshotter, keys in result.deleted_snapshots.items():
            all_snapshots.setdefault(snapshotter, []).extend(keys)
            backends = {**backends, snapshotter: {k: v for k, v in backends[snapshotter].items()
                                                  if k not in set(keys)}}
        lines.append(Line("Untagged", _familiar(record)))
        for digest, media_type, size in walked:
            if digest in readable:
                continue
            if _is_manifest_or_index(media_type):
                lines.append(Line("Deleted", digest))
                deleted_images.append(digest)
            space += size
    return PrunePlan(tuple(lines), space, tuple(deleted_images), current, tuple(all_blobs),
                     {k: tuple(v) for k, v in all_snapshots.items()})
