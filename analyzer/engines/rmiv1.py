"""``docker rmi`` on a pre-1.10 graph, as moby v1.9.1 answered it.

Before 1.10 an image was one layer under its v1 ID (the graph ID its driver directory
is named by), so ``Deleted:`` names that ID and no layer; deleting an image removes
its graph directory and its driver layer at once (Graph.Delete: ``driver.Remove(id)``),
whether or not a container still sits on it. The rules are those the later daemons
kept, with v1.9.1's differences: an ID argument untags an image's only tag before any
conflict is checked (and the tag stays gone when one is then found); an image that
has tags left when the rest of a deletion reaches it is "referenced in one or more
repositories"; a parent that is dangling but used by a stopped container stops the
prune with that conflict; the container a conflict names is the newest one
(``daemon.List()`` sorts by creation, newest first). IDs and prefixes are the v1 IDs
the daemon knew; ``No such image`` came from the graph's prefix index.

The plan runs on the migrated model (sources/graphv1.py) through RmiState, without
the containers' hold on layers, so ``reclaim`` prices what v1.9.1 removed.

References: moby v1.9.1 daemon/image_delete.go (ImageDelete, imageDeleteHelper,
checkImageDeleteHardConflict, checkImageDeleteSoftConflict, imageIsDangling,
getContainerUsingImage), graph/tags.go (LookupImage, GetImage), graph/graph.go (Get,
Delete), pkg/truncindex/truncindex.go (Get), daemon/daemon.go (contStore.List),
api/client/rmi.go (CmdRmi), errors/daemon.go (ErrorCodeImgDelUsed).
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

from ..errors import DaemonError, InvalidReference
from ..goapi.strconv import quote
from ..ids import ImageID
from ..model import Container, Store
from ..reference import parse_normalized_named, tag_name_only
from .rmi import DeleteConflict, Outcome, Plan, Record, RmiState, deleted, untagged

# v1.9.1's messages (errors/daemon.go, truncindex, graph.Get).
_USED = ("conflict: unable to remove repository reference {ref} (must force) - container "
         "{ctr} is using its referenced image {img}")
_NO_SUCH = "could not find image: no such id: {name}"
_AMBIGUOUS = "could not find image: Multiple IDs found with provided prefix"


def v1_id(store: Store, image_id: ImageID) -> str:
    """The v1 ID an image had: the graph ID of its own layer."""
    return store.layers[store.images[image_id].top_layer].cache_id


class V1State:
    """RmiState seen by v1 IDs, with v1.9.1's container order."""

    def __init__(self, store: Store):
        # A container's layer did not hold its image's: Graph.Delete removed it anyway.
        self.rmi = RmiState(dataclasses.replace(store, mounts={}))
        self.by_v1 = {v1_id(store, i): i for i in store.images}
        self.v1 = {i: v for v, i in self.by_v1.items()}
        self.newest_first = sorted(store.containers.values(),
                                   key=lambda c: (c.created, c.id), reverse=True)

    def short(self, image_id: ImageID) -> str:
        return self.v1[image_id][:12]

    def container(self, image_id: ImageID, running: bool | None = None) -> Container | None:
        return next((c for c in self.newest_first if c.image_id == image_id
                     and (running is None or c.running == running)), None)

    def lookup(self, name: str) -> tuple[ImageID, bool]:
        """LookupImage(name): (the image, whether name was a tag). A tag wins; then
        the graph's index of v1 IDs, by unique prefix."""
        try:
            ref = tag_name_only(parse_normalized_named(name))
            image_id = self.rmi.lookup.get_reference(ref)
        except InvalidReference:
            image_id = None                # ParseRepositoryTag validates nothing
        if image_id is not None and image_id in self.rmi.lookup.images:
            # isImageIDPrefix is textual: a tag that spells the ID's start is an ID.
            return image_id, not self.v1[image_id].startswith(name)
        found = [v for v in self.by_v1 if v.startswith(name)] if name else []
        live = [v for v in found if self.by_v1[v] in self.rmi.lookup.images]
        if len(live) > 1:
            raise DaemonError(_AMBIGUOUS)
        if not live:
            raise DaemonError(_NO_SUCH.format(name=name))
        return self.by_v1[live[0]], False

    def conflict(self, image_id: ImageID, force: bool) -> DeleteConflict | None:
        """checkImageDeleteConflict: hard ones always, soft ones unless forced."""
        def error(hard: bool, message: str, used: bool = False) -> DeleteConflict:
            forced = "cannot be forced" if hard else "must be forced"
            return DeleteConflict(f"conflict: unable to delete {self.short(image_id)} "
                                  f"({forced}) - {message}", hard, used)
        if self.rmi.child_count(image_id):
            return error(True, "image has dependent child images")
        ctr = self.container(image_id, running=True)
        if ctr is not None:
            return error(True, f"image is being used by running container {ctr.id[:12]}", True)
        if force:
            return None
        if self.rmi.references(image_id):
            return error(False, "image is referenced in one or more repositories")
        ctr = self.container(image_id, running=False)
        if ctr is not None:
            return error(False, f"image is being used by stopped container {ctr.id[:12]}", True)
        return None


def image_delete(state: V1State, name: str, force: bool, prune: bool) -> list[Record]:
    """ImageDelete(imageRef, force, prune) of v1.9.1; the records it returns.

    Raises:
        DaemonError: its error (what was untagged before it stays untagged).
    """
    records: list[Record] = []
    image_id, by_tag = state.lookup(name)
    refs = state.rmi.references(image_id)
    quiet = False
    if by_tag:
        if not force and len(refs) <= 1:
            ctr = state.container(image_id)
            if ctr is not None:
                raise DeleteConflict(_USED.format(ref=quote(name), ctr=ctr.id[:12],
                                                  img=state.short(image_id)))
        ref = tag_name_only(parse_normalized_named(name))
        state.rmi.remove_reference(ref)
        records.append(untagged(ref))
        if state.rmi.references(image_id):
            return records
        quiet = True
    elif len(refs) == 1:
        state.rmi.remove_reference(refs[0])
        records.append(untagged(refs[0]))
    image_delete_helper(state, image_id, records, force, prune, quiet)
    return records


def image_delete_helper(state: V1State, image_id: ImageID, records: list[Record],
                        force: bool, prune: bool, quiet: bool) -> None:
    """imageDeleteHelper, its recursion up the parents written as a loop."""
    seen: set[ImageID] = set()
    while image_id not in seen:           # a loop is damage the reader reported
        seen.add(image_id)
        conflict = state.conflict(image_id, force)
        if conflict is not None:
            if quiet and not state.rmi.is_dangling(image_id):
                return
            raise conflict
        for ref in state.rmi.references(image_id):
            state.rmi.remove_reference(ref)
            records.append(untagged(ref))
        parent = state.rmi.lookup.images[image_id].parent
        state.rmi.delete_image(image_id)
        records.append(deleted(state.v1[image_id]))
        if not prune or parent is None or parent not in state.rmi.lookup.images:
            return
        image_id, force, quiet = parent, False, True


def plan_rmi(store: Store, args: Iterable[str], force: bool = False, prune: bool = True) -> Plan:
    """``docker rmi [-f] [--no-prune] ARGS...`` against a v1.9.1 daemon; changes nothing."""
    state = V1State(store)
    outcomes = []
    for name in args:
        try:
            outcomes.append(Outcome(name, tuple(image_delete(state, name, force, prune))))
        except DaemonError as error:
            outcomes.append(Outcome(name, (), error))
    outcomes_t = tuple(outcomes)
    return Plan(outcomes_t, tuple(o for o in outcomes_t if o.error is not None), state.rmi)
