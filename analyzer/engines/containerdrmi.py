"""``docker image rm`` on the containerd image store, planned: moby 28.5's
daemon/containerd ImageDelete written purely over containerd's image records.

There an image is a set of image records (names) sharing one target digest — the
image ID. An argument is resolved to one record and all records with its target
(resolveAllReferences): a name (``TagNameOnly``), a full digest, or an ID prefix of
4 to 64 hex digits (shorter ones are only names). A name that shares the target
with records of other repositories or tags is untagged alone (with the digest
records of its repository when no other tag of it is left: getSameReferences); the
last name, an ID or a dangling record deletes every record of the image and prints
one ``Deleted:`` line — there are no per-layer lines: containerd's garbage collector
frees content and snapshots afterwards (engines/containerdgc.py).

Conflicts: a running container using the image is hard; a stopped one and, without
``-f``, several names are soft. Without ``-f`` the last name of an image a container
uses is refused; with it, the name goes and the image is kept as a dangling record
``moby-dangling@<digest>`` (softImageDelete). Where Docker picks at random (which
container a conflict names), this picks the container with the smallest ID.

References: moby v28.5.2 daemon/containerd/image_delete.go (ImageDelete, deleteAll,
getSameReferences, imageDeleteHelper, checkImageDeleteConflict, untagReferences,
isImageIDPrefix), image.go (resolveAllReferences, checkTruncatedID), soft_delete.go,
image_children.go (Children, parents: the classic builder's parent label),
daemon/images/errors.go (ErrImageDoesNotExist).
"""
from __future__ import annotations

import dataclasses
import enum
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..containerdmodel import Image
from ..errors import DaemonError, InvalidReference, NoSuchImage, NotFound
from ..ids import short_id
from ..model import Container
from ..reference import (DigestReference, Named, parse, parse_any_reference,
                         parse_normalized_named, tag_name_only)
from .rmi import DeleteConflict, Outcome, Record, deleted

DANGLING_PREFIX = "moby-dangling@"
# daemon/containerd image_builder.go imageLabelClassicBuilderParent
PARENT_LABEL = "org.mobyproject.image.parent"
_TRUNCATED_ID = re.compile(r"(?:sha256:)?([a-f0-9]{4,64})")


class Conflict(enum.Flag):
    """image_delete.go conflictType (no dependent-child conflict in this store)."""
    RUNNING_CONTAINER = 1
    ACTIVE_REFERENCE = 2
    STOPPED_CONTAINER = 4
    HARD = RUNNING_CONTAINER
    SOFT = ACTIVE_REFERENCE | STOPPED_CONTAINER


def is_dangling(image: Image) -> bool:
    return image.name == DANGLING_PREFIX + image.target.digest


def check_truncated_id(value: str) -> str:
    """The hex of a 4..64 hex-digit ID (``sha256:`` optional), or ""."""
    m = _TRUNCATED_ID.fullmatch(value)
    return m.group(1) if m else ""


def is_image_id_prefix(image_id: str, possible: str) -> bool:
    return image_id.startswith(possible) or image_id.partition(":")[2].startswith(possible)


def no_such_image(ref: Named | DigestReference) -> NoSuchImage:
    # daemon/images/errors.go ErrImageDoesNotExist: a name gets its default tag.
    shown = tag_name_only(ref).familiar if isinstance(ref, Named) else ref.familiar
    return NoSuchImage(f"No such image: {shown}")


def _familiar(name: str) -> str | None:
    """FamiliarString(ParseAnyReference(name)) of a stored name; None when it does not parse."""
    try:
        parsed = parse_any_reference(name)
    except InvalidReference:
        return None
    return parsed.familiar


def _parse_named(name: str) -> Named | None:
    """reference.ParseNamed: only a name already in canonical form."""
    try:
        ref = parse(name)
    except InvalidReference:
        return None
    return ref if ref.domain and str(ref) == name else None


@dataclass
class State:
    """The moby namespace's image records as the calls so far left them."""
    images: list[Image]
    containers: Sequence[Container]
    removed: list[Image] = field(default_factory=list)      # records deleted, in order
    created: list[Image] = field(default_factory=list)      # dangling records made
    deleted_images: list[str] = field(default_factory=list)

    def get(self, name: str) -> Image | None:
        return next((i for i in self.images if i.name == name), None)

    def with_target(self, digest: str) -> list[Image]:
        return [i for i in self.images if i.target.digest == digest]

    def delete(self, image: Image) -> None:
        self.images = [i for i in self.images if i.name != image.name]
        self.removed.append(image)

    def create(self, image: Image) -> None:
        if self.get(image.name) is None:
            self.images = sorted([*self.images, image], key=lambda i: i.name.encode())
            self.created.append(image)

    def first_container(self, image_id: str, running: bool | None = None) -> Container | None:
        found = [c for c in self.containers if c.image_id == image_id
                 and (running is None or c.running == running)]
        return min(found, key=lambda c: c.id) if found else None


def resolve_all_references(state: State, ref_or_id: str) -> tuple[Image | None, list[Image]]:
    """image.go resolveAllReferences: the record the argument names (if any) and every
    record with the same target."""
    try:
        parsed = parse_any_reference(ref_or_id)
    except InvalidReference as exc:
        raise InvalidReference(str(exc)) from None
    digest = ""
    image: Image | None = None
    short = check_truncated_id(ref_or_id)
    if short:
        if isinstance(parsed, DigestReference):
            image = state.get(str(parsed))
            digest = image.target.digest if image is not None else parsed.digest
        else:
            name = str(tag_name_only(parsed))
            pattern = re.compile(rf"sha256:{re.escape(short)}[0-9a-fA-F]{{{64 - len(short)}}}")
            found = [i for i in state.images
                     if i.name == name or pattern.fullmatch(i.target.digest)]
            if not found:
                raise no_such_image(parsed)
            for candidate in found:
                if candidate.name == name:
                    image = candidate
                if digest and candidate.target.digest != digest:
                    raise NotFound("ambiguous reference")
                digest = candidate.target.digest
            if image is None or len(found) > 1:
                return image, found
    else:
        if not isinstance(parsed, Named):
            raise InvalidReference("invalid name reference")
        digest = parsed.digest
        image = state.get(str(tag_name_only(parsed)))
        if image is None and not digest:
            raise no_such_image(parsed)
        if image is not None:
            digest = image.target.digest
    found = state.with_target(digest)
    if not found:
        raise no_such_image(parsed)
    return image, found


def get_same_references(named: Named | None, images: Sequence[Image]) -> list[Image]:
    """image_delete.go getSameReferences: the records the argument stands for."""
    tag, same, all_tags = "", [], False
    digest_refs: list[Image] | None = []
    if named is not None:
        if named.tag:
            tag = named.tag
        elif named.digest:
            all_tags = True
    for ref in images:
        if not is_dangling(ref):
            repo = _parse_named(ref.name)
            if repo is None:
                continue                   # "failed to parse image name, ignoring"
            if named is None:
                named, tag = repo, repo.tag
            elif named.name != repo.name:
                continue
            elif not all_tags:
                if repo.tag:
                    if not tag:
                        tag = repo.tag
                    elif tag != repo.tag:
                        digest_refs = None   # same repository, another tag
                        continue
                else:
                    if digest_refs is not None:
                        digest_refs.append(ref)
                    continue
        same.append(ref)
    return same + (digest_refs or [])


def _conflict(reference: str, hard: bool, used: bool, message: str) -> DeleteConflict:
    force = "cannot be forced" if hard else "must be forced"
    return DeleteConflict(f"conflict: unable to delete {reference} ({force}) - {message}",
                          hard, used)


def check_image_delete_conflict(state: State, image_id: str, all_: Sequence[Image],
                                mask: Conflict) -> DeleteConflict | None:
    if mask & Conflict.RUNNING_CONTAINER:
        ctr = state.first_container(image_id, running=True)
        if ctr is not None:
            return _conflict(short_id(image_id), True, True,
                             f"image is being used by running container {short_id(ctr.id)}")
    if mask & Conflict.STOPPED_CONTAINER:
        ctr = state.first_container(image_id, running=False)
        if ctr is not None:
            return _conflict(short_id(image_id), False, True,
                             f"image is being used by stopped container {short_id(ctr.id)}")
    if mask & Conflict.ACTIVE_REFERENCE and len(all_) > 1:
        return _conflict(short_id(image_id), False, False,
                         "image is referenced in multiple repositories")
    return None


def _dangling_copy(image: Image) -> Image:
    """soft_delete.go ensureDanglingImage: the record kept for an image losing its name."""
    labels = {k: v for k, v in image.labels.items()
              if k not in ("io.containerd.image.name", "org.opencontainers.image.ref.name")}
    return dataclasses.replace(image, name=DANGLING_PREFIX + image.target.digest,
                               labels=labels)


def _children(state: State, image_id: str) -> list[Image]:
    return [i for i in state.images if i.labels.get(PARENT_LABEL) == image_id]


def _parents(state: State, image_id: str) -> list[Image]:
    """image_children.go parents: up the classic builder's parent labels."""
    out: list[Image] = []
    seen = {image_id}
    current = state.with_target(image_id)
    while current:
        parent_id = current[0].labels.get(PARENT_LABEL)
        if not parent_id or parent_id in seen:
            break
        seen.add(parent_id)
        current = state.with_target(parent_id)
        out.extend(current[:1])
    return out


def image_delete_helper(state: State, image: Image, all_: Sequence[Image],
                        records: list[Record], extra: Conflict) -> None:
    image_id = image.target.digest
    conflict = check_image_delete_conflict(state, image_id, all_, Conflict.HARD | extra)
    if conflict is not None:
        raise conflict
    untagged = _familiar(image.name)
    if untagged is None:
        raise InvalidReference("invalid reference format")
    if not is_dangling(image) and len(all_) == 1 and extra & Conflict.ACTIVE_REFERENCE \
            and _children(state, image_id):
        state.create(_dangling_copy(image))
    state.delete(image)
    if not is_dangling(image):
        records.append(Record("Untagged", untagged))


def delete_all(state: State, image_id: str, all_: Sequence[Image], mask: Conflict,
               prune: bool, records: list[Record]) -> None:
    parents = _parents(state, image_id) if prune else []
    for image in all_:
        image_delete_helper(state, image, all_, records, mask)
    state.deleted_images.append(image_id)
    records.append(deleted(image_id))
    for parent in parents:
        if not is_dangling(parent):
            break
        try:
            image_delete_helper(state, parent, all_, records, Conflict.SOFT)
        except DaemonError:
            break                          # logged by the daemon, not reported
        state.deleted_images.append(parent.target.digest)
        records.append(deleted(parent.target.digest))


def untag_references(state: State, refs: Sequence[Image], records: list[Record]) -> None:
    for ref in refs:
        state.delete(ref)
        try:
            records.append(Record("Untagged", parse_normalized_named(ref.name).familiar))
        except InvalidReference:
            pass


def image_delete(state: State, image_ref: str, force: bool, prune: bool) -> list[Record]:
    """ImageDelete for one argument.

    Raises:
        DaemonError: Docker's error for this argument (what it changed stays changed).
    """
    records: list[Record] = []
    mask = Conflict(0) if force else Conflict.SOFT
    image, all_ = resolve_all_references(state, image_ref)
    if image is None:
        image_id = all_[0].target.digest
        named = None
        if not is_image_id_prefix(image_id, image_ref):
            try:
                named = parse_normalized_named(image_ref)
            except InvalidReference:
                named = None
        same = get_same_references(named, all_)
        if not same and named is not None:
            raise no_such_image(named)
        if len(same) == len(all_) and not force:
            mask &= ~Conflict.ACTIVE_REFERENCE
        if named is not None and same and len(same) != len(all_):
            untag_references(state, same, records)
            return records
    else:
        image_id = image.target.digest
        explicit_dangling = image_ref.startswith(DANGLING_PREFIX) and is_dangling(image)
        if is_image_id_prefix(image_id, image_ref) or explicit_dangling:
            delete_all(state, image_id, all_, mask, prune, records)
            return records
        parsed = _parse_named(image.name) or parse_normalized_named(image.name)
        same = get_same_references(parsed, all_)
        if len(same) != len(all_):
            untag_references(state, same, records)
            return records
        if len(all_) > 1 and not force:
            mask &= ~Conflict.ACTIVE_REFERENCE
        ctr = state.first_container(image_id)
        if ctr is not None:
            if not force:
                raise _conflict(parsed.familiar, False, True,
                                f"container {short_id(ctr.id)} is using its referenced image "
                                f"{short_id(image_id)}")
            if len(all_) == 1:
                state.create(_dangling_copy(image))
            state.delete(image)
            records.append(Record("Untagged", parsed.familiar))
            return records
    delete_all(state, image_id, all_, mask, prune, records)
    return records


@dataclass(frozen=True)
class Plan:
    """One ImageDelete call per argument, in order, on the records each left."""
    outcomes: tuple[Outcome, ...]
    state: State

    @property
    def errors(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.error is not None)

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(r for o in self.outcomes if o.error is None for r in o.records)


def plan_rmi(images: Iterable[Image], containers: Sequence[Container], args: Iterable[str],
             force: bool = False, prune: bool = True) -> Plan:
    """``docker image rm [-f] [--no-prune] ARGS...`` against the moby namespace's records."""
    state = State(sorted(images, key=lambda i: i.name.encode()), containers)
    outcomes = []
    for arg in args:
        records: list[Record] = []
        try:
            records = image_delete(state, arg, force, prune)
        except DaemonError as exc:
            outcomes.append(Outcome(arg, tuple(records), exc))
            continue
        outcomes.append(Outcome(arg, tuple(records)))
    return Plan(tuple(outcomes), state)
