"""``docker image rm``, planned: moby's ImageDelete written purely over the model.

ImageDelete resolves its argument (GetImage). If the argument is not a prefix of
the image's ID, it names a repository reference: that reference is removed, then
the digest references of the same repository if no tag of it remains, and the
image itself is deleted only if no reference remains — quietly, so a conflict
leaves the image in place without an error. Without ``-f`` the last reference of
an image a container uses is refused. If the argument is an ID prefix, the image's
references are removed only when they form a "single reference" (at most one tag,
digests of that one repository), after checking hard conflicts (child images,
running containers) and, without ``-f``, stopped containers.

Deleting an image removes its remaining references, the image, and releases its
top layer: each layer whose reference count (image tops, child layers, container
mounts) drops to zero is deleted, walking down the chain. With prune (the default,
not ``--no-prune``) the legacy-builder parent image is then deleted quietly and so
on up the parent chain.

Each argument runs against the state the previous ones left; a failing argument's
records are not printed, but what it changed before failing stays changed.

Where Docker picks at random (which container a conflict names: Go map order in
container/memory_store.go First), this picks the container with the smallest ID.

References: moby v20.10.24 daemon/images/image_delete.go (ImageDelete,
imageDeleteHelper, checkImageDeleteConflict, isSingleReference, isImageIDPrefix,
removeImageRef, removeAllReferencesToImageID, imageIsDangling), image/store.go
Delete, layer/layer_store.go releaseLayer, api/server/router/image/image_routes.go
deleteImages, client/client.go getAPIPath.
"""
from __future__ import annotations

import enum
import posixpath
from dataclasses import dataclass
from functools import cached_property
from typing import Collection, Iterable, Mapping, MutableMapping, NamedTuple, Sequence

from ..errors import DaemonError, NotFound
from ..goapi.strconv import quote
from ..ids import ChainID, ImageID, short_id
from ..model import Container, Layer, Reference, Store
from ..reference import Named, tag_name_only
from .resolve import ImageLookup, lookup, normalized_name, store_cached

# The API version the Docker 28 CLI negotiates with dockerd 20.10.
API_VERSION = "1.41"


class Conflict(enum.Flag):
    """daemon/images/image_delete.go conflictType."""
    DEPENDENT_CHILD = 1
    RUNNING_CONTAINER = 2
    ACTIVE_REFERENCE = 4
    STOPPED_CONTAINER = 8
    HARD = DEPENDENT_CHILD | RUNNING_CONTAINER
    SOFT = ACTIVE_REFERENCE | STOPPED_CONTAINER


class DeleteConflict(DaemonError):
    """errdefs.Conflict (HTTP 409) from ImageDelete; ``str()`` is the daemon's text.

    ``hard`` conflicts cannot be forced; ``used`` means a container uses the image.
    """

    def __init__(self, message: str, hard: bool = False, used: bool = False):
        super().__init__(message)
        self.hard = hard
        self.used = used


def image_delete_conflict(image_id: ImageID, hard: bool, used: bool,
                          message: str) -> DeleteConflict:
    # moby: imageDeleteConflict.Error
    force = "cannot be forced" if hard else "must be forced"
    return DeleteConflict(f"conflict: unable to delete {short_id(image_id)} ({force}) - {message}",
                          hard, used)


class Record(NamedTuple):
    """One ImageDeleteResponseItem: ``("Untagged", "busybox:latest")`` or
    ``("Deleted", "sha256:…")`` (an image ID or a layer's chain ID)."""
    kind: str
    value: str


def untagged(ref: Named | Reference) -> Record:
    return Record("Untagged", ref.familiar)


def deleted(digest: str) -> Record:
    return Record("Deleted", digest)


class Holder(NamedTuple):
    """What keeps a layer: ``image`` (its chain contains the layer), ``container``
    (its read-write layer sits on it), ``mount`` (a read-write layer of no known
    container), ``build-cache`` (a BuildKit record), or ``layer`` (a layer no
    image uses, whose parent chain contains it)."""
    kind: str
    id: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """One argument: what the CLI prints for it, or the error the daemon gave."""
    argument: str
    records: tuple[Record, ...]
    error: DaemonError | None = None

    @property
    def message(self) -> str | None:
        return None if self.error is None else str(self.error)

    @property
    def not_found(self) -> bool:
        return isinstance(self.error, NotFound)


def is_image_id_prefix(image_id: str, possible_prefix: str) -> bool:
    """isImageIDPrefix: textual, so a tag that spells the ID's start counts too."""
    return (image_id.startswith(possible_prefix)
            or image_id.partition(":")[2].startswith(possible_prefix))


def is_single_reference(refs: Sequence[Reference]) -> bool:
    """isSingleReference: at most one tag, and digests of that repository only."""
    if len(refs) <= 1:
        return len(refs) == 1
    single: Reference | None = None
    digest_repos: set[str] = set()
    for ref in refs:
        if ref.is_digest:
            digest_repos.add(normalized_name(ref))
        elif single is None:
            single = ref
        else:
            return False
    repository = normalized_name(single if single is not None else refs[0])
    return len(digest_repos) == 1 and repository in digest_repos


def release(refcounts: MutableMapping[ChainID, int], layers: Mapping[ChainID, Layer],
            chain_id: ChainID) -> list[Layer]:
    """moby layer_store.go releaseLayer: drop one reference, and while a count reaches
    zero delete the layer and drop the reference it held on its parent.

    Returns:
        The deleted layers, top first: a contiguous top segment of the chain.
    """
    removed: list[Layer] = []
    layer = layers.get(chain_id)          # Release of an unknown layer is a no-op
    while layer is not None:
        count = refcounts.get(layer.chain_id, 0) - 1
        assert count >= 0, f"layer not retained: {layer.chain_id}"
        if count:
            refcounts[layer.chain_id] = count
            break
        del refcounts[layer.chain_id]
        removed.append(layer)
        layer = None if layer.parent is None else layers.get(layer.parent)
        if layer is not None and layer in removed:
            break                         # a damaged chain that loops (readers report it)
    return removed


class RmiState:
    """The daemon's stores while a plan runs: what is left after each step.

    Derived from the immutable Store; only this object changes.
    """

    def __init__(self, store: Store, build_cache_holds: Collection[ChainID] = ()):
        self.store = store
        self.lookup: ImageLookup = lookup(store).copy()
        self.refcounts: dict[ChainID, int] = dict(store.layer_refcounts)
        # The BuildKit cache's hold on a layer is one more reference.
        self.build_cache_holds = frozenset(c for c in build_cache_holds if c in store.layers)
        for chain in self.build_cache_holds:
            self.refcounts[chain] = self.refcounts.get(chain, 0) + 1
        self._child_counts: dict[ImageID, int] = {}
        self.untagged: list[Reference] = []
        self.deleted_images: list[ImageID] = []
        self.released: list[Layer] = []

    # -- what the conflict checks read ----------------------------------------------
    def child_count(self, image_id: ImageID) -> int:
        counts = self._child_counts
        if image_id in counts:
            return counts[image_id]
        return len(self.store.children.get(image_id, ()))

    def references(self, image_id: ImageID) -> tuple[Reference, ...]:
        return self.lookup.references(image_id)

    def is_dangling(self, image_id: ImageID) -> bool:
        # moby: imageIsDangling — no references and no children.
        return not self.references(image_id) and not self.child_count(image_id)

    def first_container(self, image_id: ImageID, running: bool | None = None
                        ) -> Container | None:
        """The container (smallest ID) using the image: c.ImageID == id (20.10; v28 also
        counts containers that mount the image), running or not as asked."""
        users = [c for c in self.store.containers_by_image.get(image_id, ())
                 if running is None or c.running == running]   # paused is running
        return min(users, key=lambda c: c.id) if users else None

    # -- changes ----------------------------------------------------------------------
    def remove_reference(self, ref: Named | Reference) -> None:
        """removeImageRef: delete ``TagNameOnly(ref)`` from the reference store.

        Raises:
            ReferenceDoesNotExist: not there.
        """
        self.untagged.append(self.lookup.delete_reference(ref))

    def delete_image(self, image_id: ImageID) -> list[Layer]:
        """image/store.go Delete: drop the image, then release its top layer.

        Raises:
            DaemonError: ``unrecognized image ID`` — a parent named by metadata that
                the image store does not hold.
        """
        image = self.lookup.images.get(image_id)
        if image is None:
            raise DaemonError(f"unrecognized image ID {image_id}")
        assert not self.child_count(image_id), "children are a hard conflict"
        if image.parent is not None and image.parent in self.lookup.images:
            self._child_counts[image.parent] = self.child_count(image.parent) - 1
        self.lookup.delete_image(image_id)
        self.deleted_images.append(image_id)
        if image.top_layer is None:
            return []
        removed = release(self.refcounts, self.store.layers, image.top_layer)
        self.released.extend(removed)
        return removed

    def release_rw_layer(self, name: str) -> list[Layer]:
        """layer_store.go ReleaseRWLayer: a container's mount goes, and with it its
        reference on the image's top layer (which may be all that kept the chain)."""
        mount = self.store.mounts.get(name)
        if mount is None or mount.parent is None:
            return []
        removed = release(self.refcounts, self.store.layers, mount.parent)
        self.released.extend(removed)
        return removed

    def release_build_cache(self, chain_id: ChainID) -> list[Layer]:
        """The build cache lets go of a layer (moby's snapshotter remove()); it may
        have been all that kept the layer and its parents."""
        if chain_id not in self.build_cache_holds:
            return []
        self.build_cache_holds -= {chain_id}
        removed = release(self.refcounts, self.store.layers, chain_id)
        self.released.extend(removed)
        return removed

    # -- what holds a layer afterwards ------------------------------------------------
    def held_by(self, chain_id: ChainID) -> tuple[Holder, ...]:
        """Everything that keeps ``chain_id`` now, directly or through the layers
        above it: the images whose chain contains it, the containers (mounts) and
        build-cache records on it, and layers no image uses. Empty once released."""
        if chain_id not in self.refcounts:
            return ()
        images = self.lookup.images
        found = {holder for holder, image_id in _users_by_layer(self.store).get(chain_id, ())
                 if image_id is None or image_id in images}
        found.update(self._cache_users.get(chain_id, ()))
        return tuple(sorted(found))

    @cached_property
    def _cache_users(self) -> dict[ChainID, list[Holder]]:
        # The records that list each held chain (or an anonymous holder), on every
        # layer of that chain.
        records: dict[ChainID, list[Holder]] = {}
        for record in self.store.build_cache:
            for chain in record.layer_chain_ids:
                records.setdefault(chain, []).append(Holder("build-cache", record.id))
        users: dict[ChainID, list[Holder]] = {}
        for held in self.build_cache_holds:
            holders = records.get(held, [Holder("build-cache", "")])
            for layer in self.store.chain(held):
                users.setdefault(layer.chain_id, []).extend(holders)
        return users


def _users_by_layer(store: Store) -> Mapping[ChainID, list[tuple[Holder, ImageID | None]]]:
    return store_cached(store, "_rmi_users_by_layer", _build_users_by_layer)


def _build_users_by_layer(store: Store) -> dict[ChainID, list[tuple[Holder, ImageID | None]]]:
    """Each layer's possible holders, found by walking every holder's chain once.

    An image holder counts while the image remains (the ImageID says which); a
    container's read-write layer and a layer no image uses never go in a plan.
    """
    users: dict[ChainID, list[tuple[Holder, ImageID | None]]] = {}

    def walk(top: ChainID | None, entry: tuple[Holder, ImageID | None]) -> None:
        for layer in store.chain(top):
            users.setdefault(layer.chain_id, []).append(entry)

    for image in store.images.values():
        walk(image.top_layer, (Holder("image", image.id), image.id))
    for mount in store.mounts.values():
        kind = "container" if mount.name in store.containers else "mount"
        walk(mount.parent, (Holder(kind, mount.name), None))
    has_child = {layer.parent for layer in store.layers.values()}
    cached = {c for record in store.build_cache for c in record.layer_chain_ids}
    for chain in store.layers:
        if chain not in has_child and chain not in users and chain not in cached:
            walk(chain, (Holder("layer", chain), None))
    return users


# -- ImageDelete ----------------------------------------------------------------------

def check_image_delete_conflict(state: RmiState, image_id: ImageID,
                                mask: Conflict) -> DeleteConflict | None:
    """checkImageDeleteConflict: the first conflict in the mask, in moby's order."""
    if Conflict.DEPENDENT_CHILD in mask and state.child_count(image_id):
        return image_delete_conflict(image_id, True, False, "image has dependent child images")
    if Conflict.RUNNING_CONTAINER in mask:
        ctr = state.first_container(image_id, running=True)
        if ctr is not None:
            return image_delete_conflict(
                image_id, True, True,
                f"image is being used by running container {short_id(ctr.id)}")
    if Conflict.ACTIVE_REFERENCE in mask and state.references(image_id):
        return image_delete_conflict(image_id, False, False,
                                     "image is referenced in multiple repositories")
    if Conflict.STOPPED_CONTAINER in mask:
        ctr = state.first_container(image_id, running=False)
        if ctr is not None:
            return image_delete_conflict(
                image_id, False, True,
                f"image is being used by stopped container {short_id(ctr.id)}")
    return None


def image_delete(state: RmiState, image_ref: str, force: bool, prune: bool) -> list[Record]:
    """ImageDelete(imageRef, force, prune): the records the daemon returns.

    Raises:
        DaemonError: the daemon's error; changes made before it stay made.
    """
    records: list[Record] = []
    image, ref = state.lookup.resolve(image_ref)
    image_id = image.id
    repo_refs = state.references(image_id)
    removed_repository_ref = False

    if not is_image_id_prefix(image_id, image_ref):
        # A repository reference: remove it, unless it is the last one of an image a
        # container uses (without force).
        if not force and is_single_reference(repo_refs):
            ctr = state.first_container(image_id)
            if ctr is not None:
                raise DeleteConflict(
                    f"conflict: unable to remove repository reference {quote(image_ref)} "
                    f"(must force) - container {short_id(ctr.id)} is using its referenced "
                    f"image {short_id(image_id)}")
        # A digest reference is always the full ID, so this is the ParseNormalizedNamed
        # of image_ref.
        assert isinstance(ref, Named)
        parsed = tag_name_only(ref)
        state.remove_reference(parsed)
        # For name:tag@digest the record keeps the tag though the digest entry went.
        records.append(untagged(parsed))
        repo_refs = state.references(image_id)
        if not parsed.digest:
            repo_refs = _remove_orphan_digests(state, parsed, repo_refs, records)
        if repo_refs:
            return records
        removed_repository_ref = True
    elif is_single_reference(repo_refs):
        mask = Conflict.HARD if force else Conflict.HARD | Conflict.STOPPED_CONTAINER
        conflict = check_image_delete_conflict(state, image_id, mask)
        if conflict is not None:
            raise conflict
        for repo_ref in repo_refs:
            state.remove_reference(repo_ref)
            records.append(untagged(repo_ref))

    image_delete_helper(state, image_id, records, force, prune, quiet=removed_repository_ref)
    return records


def _remove_orphan_digests(state: RmiState, parsed: Named, repo_refs: tuple[Reference, ...],
                           records: list[Record]) -> tuple[Reference, ...]:
    # A removed tag takes the digest references of its repository along once no tag
    # of that repository is left.
    name = parsed.name
    if any(not r.is_digest and normalized_name(r) == name for r in repo_refs):
        return repo_refs
    remaining = []
    for ref in repo_refs:
        if ref.is_digest and normalized_name(ref) == name:
            state.remove_reference(ref)
            records.append(untagged(ref))
        else:
            remaining.append(ref)
    return tuple(remaining)


def image_delete_helper(state: RmiState, image_id: ImageID, records: list[Record],
                        force: bool, prune: bool, quiet: bool) -> None:
    """imageDeleteHelper, its tail recursion up the parent chain written as a loop.

    Quiet (after the last reference went, and for parents) swallows a conflict
    unless the image is dangling and unused.
    """
    seen: set[ImageID] = set()
    while image_id not in seen:           # a parent chain that loops is damage, reported
        seen.add(image_id)                # by the reader: the walk stops where it turns
        mask = Conflict.HARD if force else Conflict.HARD | Conflict.SOFT
        conflict = check_image_delete_conflict(state, image_id, mask)
        if conflict is not None:
            if quiet and (not state.is_dangling(image_id) or conflict.used):
                return
            raise conflict
        image = state.lookup.images.get(image_id)
        parent = None if image is None else image.parent    # read before the delete
        for ref in state.references(image_id):
            state.remove_reference(ref)
            records.append(untagged(ref))
        layers = state.delete_image(image_id)
        records.append(deleted(image_id))
        records.extend(deleted(layer.chain_id) for layer in layers)
        if not prune or parent is None:
            return
        image_id, force, quiet = parent, False, True


# -- the CLI around it ------------------------------------------------------------------

_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006" \
            "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def api_image_name(argument: str) -> str | None:
    """The ``{name}`` dockerd's router sees for ``docker image rm ARGUMENT``.

    The client builds the URL with path.Join (moby client getAPIPath), which cleans
    it: ``busybox/`` is ``busybox``, ``a//b`` is ``a/b``. None when the cleaned path
    leaves ``/images/`` (``""``, ``.``, ``..``): no route, ``page not found``.
    """
    prefix = f"/v{API_VERSION}/images/"
    path = posixpath.normpath(prefix + argument)
    return path[len(prefix):] if path.startswith(prefix) else None


def delete_argument(state: RmiState, argument: str, force: bool, prune: bool) -> Outcome:
    """One ``DELETE /images/{name}`` request, as the router and ImageDelete answer it."""
    try:
        name = api_image_name(argument)
        if name is None:
            raise NotFound("page not found")
        if not name.strip(_GO_SPACE):                        # strings.TrimSpace
            raise DaemonError("image name cannot be blank")
        return Outcome(argument, tuple(image_delete(state, name, force, prune)))
    except DaemonError as error:
        return Outcome(argument, (), error)


@dataclass(frozen=True)
class Plan:
    """What a run of the planner does.

    ``outcomes`` has one entry per ImageDelete call, in order; ``errors`` are the
    failed ones the CLI reports (prune reports none). ``untagged`` are the
    references actually removed from the store, ``deleted_images`` and
    ``released_layers`` (chain IDs, in release order) what was deleted — failed
    calls included, since the daemon does not undo. ``state`` is the final state.
    """
    outcomes: tuple[Outcome, ...]
    errors: tuple[Outcome, ...]
    state: RmiState

    @property
    def records(self) -> tuple[Record, ...]:
        """The records of the calls that succeeded, in the order the CLI prints them."""
        return tuple(r for o in self.outcomes if o.error is None for r in o.records)

    @property
    def untagged(self) -> tuple[Reference, ...]:
        return tuple(self.state.untagged)

    @property
    def deleted_images(self) -> tuple[ImageID, ...]:
        return tuple(self.state.deleted_images)

    @property
    def released_layers(self) -> tuple[ChainID, ...]:
        return tuple(layer.chain_id for layer in self.state.released)

    @cached_property
    def held_layers(self) -> Mapping[ChainID, tuple[Holder, ...]]:
        """The layers of the deleted images that stay, each with what keeps it."""
        held: dict[ChainID, tuple[Holder, ...]] = {}
        for image_id in self.state.deleted_images:
            for layer in self.state.store.chain(self.state.store.images[image_id].top_layer):
                if layer.chain_id not in held and layer.chain_id in self.state.refcounts:
                    held[layer.chain_id] = self.state.held_by(layer.chain_id)
        return held


def plan_rmi(store: Store, args: Iterable[str], force: bool = False, prune: bool = True,
             build_cache_holds: Collection[ChainID] = ()) -> Plan:
    """``docker image rm [-f] [--no-prune] ARGS...`` against ``store``, changing nothing.

    Args:
        store: the data root's model.
        args: the arguments as typed, in order.
        force: ``-f``.
        prune: not ``--no-prune``: delete untagged parents.
        build_cache_holds: chain IDs the BuildKit cache holds; they are never released.
    """
    state = RmiState(store, build_cache_holds)
    outcomes = tuple(delete_argument(state, arg, force, prune) for arg in args)
    return Plan(outcomes, tuple(o for o in outcomes if o.error is not None), state)
