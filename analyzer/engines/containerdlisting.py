"""``docker image ls`` on the containerd image store, as dockerd 28.5 computes it.

Each image record is filtered, then records are grouped by target digest (the image
ID): RepoTags are the familiar names of the group's records in name order (a name
with only a digest is listed there too, and the CLI then shows it as ``<none>``);
RepoDigests hold one entry, the repository of the group's last record with the
target's digest; a ``moby-dangling@`` record shows only when no named record has the
target. The size is every reachable manifest's present content (manifest, config,
layers: descriptor sizes) plus the usage of its unpacked snapshot chain. ``before``
and ``since`` compare config creation times to the nanosecond; ``until`` compares the
record's own creation time.

References: moby v28.5.2 daemon/containerd/image_list.go (Images, multiPlatformSummary,
imageSummary, singlePlatformImage, setupFilters, setupLabelFilter), image_snapshot.go
(calculateSnapshotTotalUsage), api/types/filters/parse.go (Validate, GetBoolOrDefault,
invalidFilter).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from .. import reference as refs
from ..containerdmodel import Image as Record
from ..containerdmodel import BackendSnapshot, ImageContent, Kind, MetaStore
from ..errors import DaemonError, InvalidReference
from ..goapi.filters import get_bool_or_default
from ..goapi.time import ParseError, parse
from ..goapi.timetypes import get_timestamp, parse_timestamps
from ..ids import DiffID, ImageID, chain_ids
from ..model import Image, Reference
from .containerdrmi import PARENT_LABEL, is_dangling
from .listing import ImageSummary

ACCEPTED_FILTERS = ("dangling", "label", "label!", "before", "since", "reference", "until")
RFC3339NANO = "2006-01-02T15:04:05.999999999Z07:00"


class InvalidFilter(DaemonError):
    """filters invalidFilter: ``invalid filter 'NAME'`` or ``invalid filter 'NAME=[V]'``."""


def image_of(record: Record, content: ImageContent | None) -> Image:
    """The model's Image for a target: ID is the target digest; config, diff IDs and
    creation time are the host platform's."""
    config = dict(content.config) if content and content.config else {}
    diff_ids = tuple(DiffID(d) for d in ((config.get("rootfs") or {}).get("diff_ids") or ())
                     if isinstance(d, str))
    created = config.get("created") if isinstance(config.get("created"), str) else None
    created_ns = 0
    if created:
        try:
            created_ns = parse(RFC3339NANO, created, 0)
        except ParseError:
            created_ns = 0
    chain = chain_ids(diff_ids)
    return Image(id=ImageID(record.target.digest), config=config, diff_ids=diff_ids,
                 top_layer=chain[-1] if chain else None, parent=None, created=created,
                 created_ns=created_ns, last_updated=None,
                 source=f"images/{record.name}")


def _label_matches(labels: Mapping[str, str], filters: Mapping[str, Sequence[str]]) -> bool:
    """setupLabelFilter: every label / label! check holds for the config's labels."""
    for name in ("label", "label!"):
        for value in filters.get(name, ()):
            key, sep, want = value.partition("=")
            negate = name == "label!"
            if key.endswith("!"):
                key, negate = key[:-1], not negate
            if not sep:
                if (key in labels) == negate:
                    return False
                continue
            if key not in labels or (labels[key] == want) == negate:
                return False
    return True


@dataclass(frozen=True)
class Catalog:
    """What listing needs of the store: the moby namespace's records (name order), each
    target's content, unpacked size by diff IDs, and GetImage."""
    records: Sequence[Record]
    contents: Mapping[str, ImageContent]
    unpacked: Callable[[Sequence[str]], int]
    get_image: Callable[[str], Image]
    _images: dict[str, Image] = field(default_factory=dict, repr=False)

    def image(self, record: Record) -> Image:
        """The target's Image, built once (its ID and config do not depend on the name)."""
        digest = record.target.digest
        if digest not in self._images:
            self._images[digest] = image_of(record, self.contents.get(digest))
        return self._images[digest]

    def size(self, digest: str) -> int:
        content = self.contents.get(digest)
        if content is None:
            return 0
        return content.content_size + sum(self.unpacked(d) for _, d in content.manifests)


def _reference_match(record: Record, patterns: Sequence[str]) -> bool:
    try:
        named = refs.parse_normalized_named(record.name)
    except InvalidReference:
        return False
    ref = Reference(name=named.familiar_name, familiar=named.familiar, normalized=str(named),
                    image_id=ImageID(record.target.digest), is_digest=bool(named.digest),
                    source="")
    return any(refs.familiar_match(p, ref) for p in patterns)


def list_images(catalog: Catalog, filters: Mapping[str, Sequence[str]], all_images: bool,
                now_ns: int, utc_offset: int = 0) -> list[ImageSummary]:
    """Images(ctx, ListOptions{All, Filters}) on the containerd store."""
    for name in filters:
        if name not in ACCEPTED_FILTERS:
            raise InvalidFilter(f"invalid filter '{name}'")
    checks: list[Callable[[Record], bool]] = []
    for name, later in (("before", False), ("since", True)):
        for value in filters.get(name, ()):
            pivot = catalog.get_image(value).created_ns
            checks.append(lambda r, p=pivot, later=later: (
                catalog.image(r).created_ns > p if later else catalog.image(r).created_ns < p))
    for value in filters.get("until", ()):
        seconds, nanos = parse_timestamps(get_timestamp(value, now_ns, utc_offset))
        until = seconds * 1_000_000_000 + nanos
        checks.append(lambda r, u=until: r.created_ns is not None and r.created_ns < u)
    if filters.get("label") or filters.get("label!"):
        checks.append(lambda r: _label_matches(catalog.image(r).labels, filters))
    if "dangling" in filters:
        want = get_bool_or_default("dangling", filters["dangling"])
        checks.append(lambda r: is_dangling(r) == want)
    if filters.get("reference"):
        checks.append(lambda r: _reference_match(r, filters["reference"]))

    intermediate = set() if all_images else {r.labels.get(PARENT_LABEL) for r in catalog.records}
    unique: dict[str, Record] = {}
    tags: dict[str, list[str]] = {}
    for record in catalog.records:
        dangling = is_dangling(record)
        if dangling and record.target.digest in intermediate:
            continue
        if not all(check(record) for check in checks):
            continue
        digest = record.target.digest
        if dangling:
            unique.setdefault(digest, record)
            continue
        unique[digest] = record
        try:
            tags.setdefault(digest, []).append(refs.parse_normalized_named(record.name).familiar)
        except InvalidReference:
            continue
    out = [_summary(catalog, record, tags.get(digest, [])) for digest, record in unique.items()]
    # Docker sorts by Created seconds, descending, unstably; ties here go by ID.
    out.sort(key=lambda s: (-s.created, s.image.id))
    return out


def _summary(catalog: Catalog, record: Record, repo_tags: list[str]) -> ImageSummary:
    image = catalog.image(record)
    digests: list[str] = []
    named = refs.parse(record.name) if _canonical(record.name) else None
    if named is None:
        if not is_dangling(record):
            repo_tags = repo_tags + [record.name]
    else:
        digests.append(f"{named.familiar_name}@{record.target.digest}")
    content = catalog.contents.get(record.target.digest)
    if content is None or content.config is None:
        # No manifest for this platform: the target's digest stands in (imageSummary).
        digests = [record.target.digest]
    return ImageSummary(image, tuple(repo_tags), tuple(digests),
                        catalog.size(record.target.digest), -1, -1, image.created_unix)


def _canonical(name: str) -> bool:
    """reference.ParseNamed succeeds: the name is already in normalized form."""
    try:
        return str(refs.parse(name)) == name and "/" in name
    except InvalidReference:
        return False


SnapshotUsage = Mapping[str, "tuple[str | None, int | None]"]


def snapshot_usage(meta: MetaStore, backends: Mapping[str, Mapping[str, BackendSnapshot]],
                   namespace: str = "moby", snapshotter: str = "overlayfs",
                   upper_bytes: Callable[[int], int] | None = None) -> SnapshotUsage:
    """Each snapshot key of the namespace the snapshotter has: (parent key, committed size).

    With ``upper_bytes`` (the allocated bytes of a snapshot ID's upper directory, each
    inode once: continuity fs.DiskUsage), an active snapshot is measured as the overlay
    snapshotter's Usage measures it on every call; a view has no usage (0).
    """
    backend = backends.get(snapshotter, {})
    out: dict[str, tuple[str | None, int | None]] = {}
    for snap in meta.snapshots:
        if snap.namespace == namespace and snap.snapshotter == snapshotter:
            found = backend.get(snap.name)
            if found is None:
                continue
            size = found.size
            if upper_bytes is not None and found.kind == Kind.ACTIVE:
                size = upper_bytes(found.id)
            out[snap.key] = (snap.parent, size)
    return out


def unpacked_size(usage: SnapshotUsage, diff_ids: Sequence[str]) -> int:
    """calculateSnapshotTotalUsage of an image's top snapshot (its chain ID): the
    committed usage of it and each parent; 0 when any of them is missing (moby then
    reports no unpacked size at all)."""
    chain = chain_ids(DiffID(d) for d in diff_ids)
    total, complete = total_usage(usage, str(chain[-1]) if chain else "")
    return total if complete else 0


def total_usage(usage: SnapshotUsage, key: str) -> tuple[int, bool]:
    """calculateSnapshotTotalUsage: the usage of a snapshot and each of its parents, and
    whether the chain was whole (moby keeps the partial sum of a broken one)."""
    total, seen = 0, set()
    while key:
        found = usage.get(key)
        if found is None or key in seen:
            return total, False
        seen.add(key)
        total += found[1] or 0
        key = found[0] or ""
    return total, True
