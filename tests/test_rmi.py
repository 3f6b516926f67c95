"""The rmi planner against the behaviour moby's ImageDelete has (research notes §2, §3, §9).

Stores are built in memory with the model's dataclasses; the real-daemon comparison
lives in test_oracle_rm.py.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.goapi.time import parse_rfc3339_ns
from analyzer.ids import ChainID, ContainerID, DiffID, ImageID, chain_ids
from analyzer.model import Container, Image, Layer, Mount, Store
from analyzer.reference import parse_normalized_named, store_reference
from analyzer.engines.resolve import get_image
from analyzer.engines.rmi import (Conflict, Holder, Record, is_image_id_prefix,
                                  is_single_reference, plan_rmi, release)
from analyzer.render.rm import format_rm


def hexid(prefix: str, salt: str = "") -> str:
    """64 hex starting with ``prefix``, the rest derived from it."""
    return (prefix + hashlib.sha256((prefix + salt).encode()).hexdigest())[:64]


def diff(ch: str) -> DiffID:
    return DiffID("sha256:" + ch * 64)


D1, D2, D3 = diff("1"), diff("2"), diff("3")
C1 = ChainID(D1)
C2 = ChainID("sha256:9932074217c35353d2e03a3f5a86549f7c67bfeb0ba53e23d69f4d4c8f7958f5")
C3 = ChainID("sha256:50127c0d6b338be78246434b4bce23ecf75e505158ea0bbd15effeb162fbf3ec")
DIGEST = "sha256:" + "d" * 64


class StoreBuilder:
    """Images, layers, references and containers, wired as dockerd restores them."""

    def __init__(self) -> None:
        self.images: dict[ImageID, Image] = {}
        self.layers: dict[ChainID, Layer] = {}
        self.refs: list = []
        self.containers: dict[ContainerID, Container] = {}
        self.mounts: dict[str, Mount] = {}

    def image(self, prefix: str, diff_ids: Sequence[DiffID], refs: Iterable[str] = (),
              parent: ImageID | None = None, created: str | None = "2024-01-01T00:00:00Z",
              labels: dict | None = None, size: int = 1000, config: bool = True) -> ImageID:
        image_id = ImageID("sha256:" + hexid(prefix))
        chains = chain_ids(diff_ids)
        for i, (chain, diff_id) in enumerate(zip(chains, diff_ids)):
            self.layers.setdefault(chain, Layer(
                chain_id=chain, diff_id=diff_id, parent=chains[i - 1] if i else None,
                cache_id="c" + chain[7:19], diff_size=size + i, source=""))
        cfg = {"created": created} if created else {}
        if config:
            cfg["config"] = {"Labels": labels}
        self.images[image_id] = Image(
            id=image_id, config=cfg, diff_ids=tuple(diff_ids),
            top_layer=chains[-1] if chains else None, parent=parent, created=created,
            created_ns=parse_rfc3339_ns(created) if created else 0, last_updated=None,
            source="")
        for familiar in refs:
            self.ref(familiar, image_id)
        return image_id

    def ref(self, familiar: str, image_id: ImageID) -> None:
        self.refs.append(store_reference(parse_normalized_named(familiar).familiar_name,
                                         familiar, image_id))

    def container(self, prefix: str, image_id: ImageID, running: bool = False) -> ContainerID:
        cid = ContainerID(hexid(prefix, "ctr"))
        self.containers[cid] = Container(
            id=cid, name=prefix, image_id=image_id, image=image_id, created="", path="",
            args=(), running=running, paused=False, restarting=False, dead=False,
            removal_in_progress=False, exit_code=0, started_at="", finished_at="",
            health=None, labels={}, ports=(), mounts=(), networks=(), source="")
        self.mounts[cid] = Mount(name=cid, mount_id=hexid(prefix, "mnt"), init_id=None,
                                 parent=self.images[image_id].top_layer, source="")
        return cid

    def build(self) -> Store:
        return Store(driver="overlay2", images=dict(self.images), layers=dict(self.layers),
                     references=tuple(self.refs), containers=dict(self.containers),
                     mounts=dict(self.mounts))


def rm(store: Store, *args: str, force: bool = False, prune: bool = True) -> tuple[str, str, int]:
    return format_rm(plan_rmi(store, args, force, prune), force)


def lines(*records: str) -> str:
    return "".join(r + "\n" for r in records)


# -- §9 case 1: remove by tag, digests of the repository go along, then layers --------

def test_untag_digest_cleanup_and_layers() -> None:
    b = StoreBuilder()
    a = b.image("a416", [D1, D2], ["busybox:latest", f"busybox@{DIGEST}"])
    out, err, code = rm(b.build(), "busybox")
    assert (out, err, code) == (lines("Untagged: busybox:latest", f"Untagged: busybox@{DIGEST}",
                                      f"Deleted: {a}", f"Deleted: {C2}", f"Deleted: {C1}"), "", 0)


def test_chain_ids_of_the_notes() -> None:
    assert chain_ids([D1, D2, D3]) == [C1, C2, C3]


# -- §9 case 2: short IDs ----------------------------------------------------------

def short_id_store() -> tuple[Store, ImageID, ImageID]:
    b = StoreBuilder()
    i1, i2 = b.image("abc1", [D1]), b.image("abc2", [D2])
    return b.build(), i1, i2


@pytest.mark.parametrize("arg", ["abc", "a", "ab"])
def test_ambiguous_prefix_is_no_such_image(arg: str) -> None:
    store, _, _ = short_id_store()
    assert rm(store, arg) == ("", f"Error response from daemon: No such image: {arg}:latest\n", 1)


def test_unique_prefixes_resolve() -> None:
    store, i1, i2 = short_id_store()
    assert get_image(store, "abc1").id == i1
    assert get_image(store, "sha256:abc2").id == i2
    assert get_image(store, i1[7:]).id == i1
    assert get_image(store, i1).id == i1
    out, _, code = rm(store, "abc1")
    assert out == lines(f"Deleted: {i1}", f"Deleted: {C1}") and code == 0


@pytest.mark.parametrize("arg,message", [
    ("f" * 64, "No such image: sha256:" + "f" * 64),
    ("sha256:" + "f" * 64, "No such image: sha256:" + "f" * 64),
    ("sha256:abcz", "No such image: sha256:abcz"),
    ("sha512:abc", "No such image: sha512:abc"),
    ("busybox", "No such image: busybox:latest"),
    ("docker.io/library/busybox", "No such image: busybox:latest"),
    ("index.docker.io/library/busybox:1.36", "No such image: busybox:1.36"),
    (f"busybox@{DIGEST}", f"No such image: busybox@{DIGEST}"),
    (f"busybox:1@{DIGEST}", f"No such image: busybox:1@{DIGEST}"),
    ("localhost:5000", "No such image: localhost:5000"),
    ("a//b", "No such image: a/b:latest"),
])
def test_not_found_messages(arg: str, message: str) -> None:
    store, _, _ = short_id_store()
    assert rm(store, arg) == ("", f"Error response from daemon: {message}\n", 1)
    assert rm(store, arg, force=True) == ("", f"Error response from daemon: {message}\n", 0)


@pytest.mark.parametrize("arg,message", [
    ("Busybox", "invalid reference format: repository name must be lowercase"),
    ("Foo/bar", "invalid reference format: repository name must be lowercase"),
    ("a b", "invalid reference format"),
    ("[::1]:5000/foo", "invalid reference format"),
    ("busybox:", "invalid reference format"),
    ("busybox@sha256:" + "a" * 40, "invalid checksum digest length"),
    ("busybox@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("a" * 250 + "/b", "repository name must not be more than 255 characters"),
    (" ", "image name cannot be blank"),
])
def test_daemon_refusals(arg: str, message: str) -> None:
    store, _, _ = short_id_store()
    assert rm(store, arg) == ("", f"Error response from daemon: {message}\n", 1)
    assert rm(store, arg, force=True)[2] == 1          # not a NotFound: -f still fails


@pytest.mark.parametrize("arg", ["", ".", "..", "../.."])
def test_paths_that_leave_images_are_page_not_found(arg: str) -> None:
    store, _, _ = short_id_store()
    assert rm(store, arg) == ("", "Error response from daemon: page not found\n", 1)
    assert rm(store, arg, force=True)[2] == 0


def test_the_client_cleans_the_path() -> None:
    b = StoreBuilder()
    b.image("aaaa", [D1], ["busybox:latest", "abc:1"])
    store = b.build()
    assert rm(store, "busybox/")[0] == lines("Untagged: busybox:latest")
    assert rm(store, "x/../busybox")[0] == lines("Untagged: busybox:latest")
    assert rm(store, "../../v1.41/images/abc:1")[0] == lines("Untagged: abc:1")


# -- §9 case 3: several tags, sorted by normalized string ------------------------------

def multi_tag_store() -> tuple[Store, ImageID]:
    b = StoreBuilder()
    image = b.image("fd48", [D1], ["test:latest", "test1:latest", "test2:latest"])
    return b.build(), image


def test_id_with_several_tags_must_be_forced() -> None:
    store, image = multi_tag_store()
    assert rm(store, "fd48") == (
        "", f"Error response from daemon: conflict: unable to delete {image[7:19]} (must be "
            "forced) - image is referenced in multiple repositories\n", 1)


def test_forced_id_untags_in_normalized_order() -> None:
    store, image = multi_tag_store()
    out, _, code = rm(store, "fd48", force=True)
    assert out == lines("Untagged: test1:latest", "Untagged: test2:latest",
                        "Untagged: test:latest", f"Deleted: {image}", f"Deleted: {C1}")
    assert code == 0


def test_tag_of_a_multi_tag_image_only_untags() -> None:
    store, _ = multi_tag_store()
    assert rm(store, "test1") == (lines("Untagged: test1:latest"), "", 0)


# -- §9 cases 4 and 5: containers --------------------------------------------------

def container_store(running: bool) -> tuple[Store, ImageID, ContainerID]:
    b = StoreBuilder()
    image = b.image("aaaa", [D1, D2], ["busybox:latest"])
    ctr = b.container("0123", image, running=running)
    return b.build(), image, ctr


@pytest.mark.parametrize("running", [False, True])
def test_last_reference_of_a_used_image(running: bool) -> None:
    store, image, ctr = container_store(running)
    assert rm(store, "busybox") == (
        "", 'Error response from daemon: conflict: unable to remove repository reference '
            f'"busybox" (must force) - container {ctr[:12]} is using its referenced image '
            f'{image[7:19]}\n', 1)


def test_forced_untag_of_an_image_a_stopped_container_uses() -> None:
    store, image, _ = container_store(running=False)
    plan = plan_rmi(store, ["busybox"], force=True)
    assert format_rm(plan, True) == (lines("Untagged: busybox:latest", f"Deleted: {image}"), "", 0)
    assert plan.released_layers == ()
    assert plan.held_layers[C2] == (Holder("container", next(iter(store.containers))),)
    assert plan.held_layers[C1] == plan.held_layers[C2]


def test_forced_untag_of_an_image_a_running_container_uses() -> None:
    store, image, _ = container_store(running=True)
    plan = plan_rmi(store, ["busybox"], force=True)
    assert format_rm(plan, True) == (lines("Untagged: busybox:latest"), "", 0)
    assert plan.deleted_images == ()
    assert get_image(store, "aaaa").id == image               # the store never changes


@pytest.mark.parametrize("force", [False, True])
def test_running_container_is_a_hard_conflict(force: bool) -> None:
    store, image, ctr = container_store(running=True)
    assert rm(store, "aaaa", force=force) == (
        "", f"Error response from daemon: conflict: unable to delete {image[7:19]} (cannot be "
            f"forced) - image is being used by running container {ctr[:12]}\n", 1)


def test_stopped_container_is_a_soft_conflict() -> None:
    store, image, ctr = container_store(running=False)
    assert rm(store, "aaaa") == (
        "", f"Error response from daemon: conflict: unable to delete {image[7:19]} (must be "
            f"forced) - image is being used by stopped container {ctr[:12]}\n", 1)
    out, _, code = rm(store, "aaaa", force=True)
    assert out == lines("Untagged: busybox:latest", f"Deleted: {image}") and code == 0


def test_conflict_names_the_smallest_container_id() -> None:
    b = StoreBuilder()
    image = b.image("aaaa", [D1])
    ids = sorted(b.container(p, image) for p in ("c1", "c2", "c3"))
    assert ids[0][:12] in rm(b.build(), "aaaa")[1]


def test_several_references_untag_despite_a_container() -> None:
    b = StoreBuilder()
    image = b.image("aaaa", [D1], ["busybox:latest", "zz:1"])
    b.container("0123", image, running=True)
    assert rm(b.build(), "busybox") == (lines("Untagged: busybox:latest"), "", 0)


# -- §9 case 6: shared layers ------------------------------------------------------

def test_shared_layers_go_with_the_last_image() -> None:
    b = StoreBuilder()
    a = b.image("aaaa", [D1, D2], ["a:1"])
    bb = b.image("bbbb", [D1, D2, D3], ["b:1"])
    c = b.image("cccc", [D1, D2], ["c:latest"])
    store = b.build()
    out, _, _ = rm(store, "b:1", "a:1")
    assert out == lines("Untagged: b:1", f"Deleted: {bb}", f"Deleted: {C3}",
                        "Untagged: a:1", f"Deleted: {a}")
    plan = plan_rmi(store, ["b:1", "a:1"])
    assert plan.held_layers == {C2: (Holder("image", c),), C1: (Holder("image", c),)}
    out, _, _ = rm(store, "b:1", "a:1", "c")
    assert out.endswith(lines("Untagged: c:latest", f"Deleted: {c}", f"Deleted: {C2}",
                              f"Deleted: {C1}"))


# -- §9 case 7: legacy parents --------------------------------------------------------

def legacy_store() -> tuple[Store, ImageID, ImageID, ImageID]:
    b = StoreBuilder()
    base = b.image("b000", [D1], ["busybox:latest"])
    i1 = b.image("1111", [D1, D2], parent=base)
    i2 = b.image("2222", [D1, D2, D3], ["app:latest"], parent=i1)
    return b.build(), base, i1, i2


def test_parents_are_pruned() -> None:
    store, _, i1, i2 = legacy_store()
    assert rm(store, "app")[0] == lines("Untagged: app:latest", f"Deleted: {i2}",
                                        f"Deleted: {C3}", f"Deleted: {i1}", f"Deleted: {C2}")


def test_no_prune_keeps_parents() -> None:
    store, _, _, i2 = legacy_store()
    assert rm(store, "app", prune=False)[0] == lines("Untagged: app:latest", f"Deleted: {i2}",
                                                     f"Deleted: {C3}")


def test_parent_with_children() -> None:
    store, base, _, _ = legacy_store()
    for force in (False, True):
        assert rm(store, base[7:], force=force)[1] == (
            f"Error response from daemon: conflict: unable to delete {base[7:19]} (cannot be "
            "forced) - image has dependent child images\n")
    assert rm(store, "busybox") == (lines("Untagged: busybox:latest"), "", 0)


def test_pruning_walks_up_to_an_untagged_base() -> None:
    store, base, i1, i2 = legacy_store()
    out, _, _ = rm(store, "busybox", "app")
    assert out == lines("Untagged: busybox:latest", "Untagged: app:latest", f"Deleted: {i2}",
                        f"Deleted: {C3}", f"Deleted: {i1}", f"Deleted: {C2}",
                        f"Deleted: {base}", f"Deleted: {C1}")


def test_missing_parent_fails_the_call_but_keeps_its_changes() -> None:
    b = StoreBuilder()
    ghost = ImageID("sha256:" + hexid("9999"))
    child = b.image("1111", [D1], ["app:latest"], parent=ghost)
    plan = plan_rmi(b.build(), ["app", "app"])
    assert format_rm(plan, False) == (
        "", f"Error response from daemon: unrecognized image ID {ghost}\n"
            "Error response from daemon: No such image: app:latest\n", 1)
    assert plan.deleted_images == (child,)


# -- §9 case 8: several arguments, exit status ----------------------------------------

def test_several_arguments_and_exit_status() -> None:
    b = StoreBuilder()
    image = b.image("aaaa", [D1], ["busybox:latest"])
    used = b.image("eeee", [D2])
    b.container("0123", used, running=True)
    store = b.build()
    deleted = lines("Untagged: busybox:latest", f"Deleted: {image}", f"Deleted: {C1}")
    missing = "Error response from daemon: No such image: missing:latest\n"
    assert rm(store, "missing", "busybox") == (deleted, missing, 1)
    assert rm(store, "missing", "busybox", force=True) == (deleted, missing, 0)
    out, err, code = rm(store, "missing", "eeee", force=True)
    assert err.startswith(missing) and err.count("\n") == 2 and code == 1
    assert rm(store, "busybox", "busybox")[1] == (
        "Error response from daemon: No such image: busybox:latest\n")


# -- more of §2.4 ---------------------------------------------------------------------

def test_digest_reference_when_a_tag_remains() -> None:
    b = StoreBuilder()
    b.image("aaaa", [D1], ["busybox:latest", f"busybox@{DIGEST}"])
    assert rm(b.build(), f"busybox@{DIGEST}") == (lines(f"Untagged: busybox@{DIGEST}"), "", 0)


def test_tag_and_digest_input_removes_the_digest_entry() -> None:
    b = StoreBuilder()
    b.image("aaaa", [D1], ["busybox:latest", f"busybox@{DIGEST}"])
    plan = plan_rmi(b.build(), [f"busybox:latest@{DIGEST}"])
    assert plan.records == (Record("Untagged", f"busybox:latest@{DIGEST}"),)
    assert [r.familiar for r in plan.untagged] == [f"busybox@{DIGEST}"]


def test_other_repository_keeps_its_digests() -> None:
    b = StoreBuilder()
    b.image("aaaa", [D1], ["busybox:latest", f"busybox@{DIGEST}", f"other@{DIGEST}"])
    assert rm(b.build(), "busybox")[0] == lines("Untagged: busybox:latest",
                                                f"Untagged: busybox@{DIGEST}")


def test_tag_spelling_the_id_takes_the_id_branch() -> None:
    b = StoreBuilder()
    image = b.image("abc1", [D1], ["abc:latest", "zz:1"])
    assert rm(b.build(), "abc")[1] == (
        f"Error response from daemon: conflict: unable to delete {image[7:19]} (must be "
        "forced) - image is referenced in multiple repositories\n")


def test_a_tag_wins_over_an_id_prefix() -> None:
    b = StoreBuilder()
    b.image("abc1", [D1])
    other = b.image("ffff", [D2], ["abc:latest"])
    assert get_image(b.build(), "abc").id == other


def test_layerless_image() -> None:
    b = StoreBuilder()
    image = b.image("aaaa", [], ["empty:latest"])
    assert rm(b.build(), "empty")[0] == lines("Untagged: empty:latest", f"Deleted: {image}")


# -- pieces ------------------------------------------------------------------------

def ref(familiar: str):
    return store_reference(parse_normalized_named(familiar).familiar_name, familiar,
                           ImageID("sha256:" + "a" * 64))


@pytest.mark.parametrize("refs,single", [
    ([], False),
    (["busybox:latest"], True),
    (["busybox:latest", f"busybox@{DIGEST}", "busybox@sha256:" + "e" * 64], True),
    ([f"a@{DIGEST}", "a@sha256:" + "e" * 64], True),
    (["busybox:1", "busybox:latest"], False),
    (["busybox:latest", f"alpine@{DIGEST}"], False),
    ([f"a@{DIGEST}", f"b@{DIGEST}"], False),
])
def test_is_single_reference(refs: list[str], single: bool) -> None:
    assert is_single_reference([ref(r) for r in refs]) is single


def test_is_image_id_prefix() -> None:
    image = "sha256:abc123"
    assert all(is_image_id_prefix(image, p) for p in ("abc", "sha256:ab", "sha", "sha256:"))
    assert not is_image_id_prefix(image, "bc")


def test_conflict_flags() -> None:
    assert Conflict.HARD == Conflict.DEPENDENT_CHILD | Conflict.RUNNING_CONTAINER
    assert Conflict.STOPPED_CONTAINER in Conflict.SOFT
    assert Conflict.ACTIVE_REFERENCE not in Conflict.HARD


def test_release_stops_at_a_shared_layer() -> None:
    b = StoreBuilder()
    b.image("aaaa", [D1, D2, D3])
    b.image("bbbb", [D1, D2])
    store = b.build()
    counts = dict(store.layer_refcounts)
    assert counts == {C1: 1, C2: 2, C3: 1}
    assert [layer.chain_id for layer in release(counts, store.layers, C3)] == [C3]
    assert counts == {C1: 1, C2: 1}
    assert [layer.chain_id for layer in release(counts, store.layers, C2)] == [C2, C1]
    assert counts == {}


def test_build_cache_holds_a_layer() -> None:
    b = StoreBuilder()
    image = b.image("aaaa", [D1, D2], ["a:1"])
    plan = plan_rmi(b.build(), ["a:1"], build_cache_holds={C1})
    assert plan.deleted_images == (image,)
    assert plan.released_layers == (C2,)
    assert plan.held_layers == {C1: (Holder("build-cache", ""),)}


def test_orphan_layer_is_named_as_holder() -> None:
    b = StoreBuilder()
    b.image("aaaa", [D1, D2], ["a:1"])
    b.image("bbbb", [D1], ["b:1"])
    store = b.build()
    # A third layer on C1 that no image uses (a pull that was interrupted).
    orphan = chain_ids([D1, D3])[1]
    layers = dict(store.layers)
    layers[orphan] = Layer(chain_id=orphan, diff_id=D3, parent=C1, cache_id="x", diff_size=1,
                           source="")
    store = Store(driver="overlay2", images=store.images, layers=layers,
                  references=store.references)
    plan = plan_rmi(store, ["a:1", "b:1"])
    assert plan.held_layers[C1] == (Holder("layer", orphan),)


# -- properties (STYLE §16) -----------------------------------------------------------

@st.composite
def stores(draw: st.DrawFn) -> Store:
    """Random stores: shared chains, legacy parents, tags, digests, containers."""
    b = StoreBuilder()
    diffs = [diff(c) for c in "123456789abc"]
    n = draw(st.integers(1, 8))
    ids: list[ImageID] = []
    for i in range(n):
        depth = draw(st.integers(0, 4))
        start = draw(st.integers(0, 3))
        layers = diffs[start:start + depth]
        parent = None
        if ids and draw(st.booleans()):
            candidate = draw(st.sampled_from(ids))
            if list(b.images[candidate].diff_ids) == layers[:len(b.images[candidate].diff_ids)]:
                parent = candidate
        refs = draw(st.lists(st.sampled_from(
            ["a:1", "a:2", "b:latest", f"a@{DIGEST}", f"b@{DIGEST}", "c:x"]), max_size=3))
        taken = {r.familiar for r in b.refs}
        refs = [r for r in dict.fromkeys(refs) if r not in taken]
        ids.append(b.image(f"{i:x}{i:x}", layers, refs, parent=parent))
    for j in range(draw(st.integers(0, 3))):
        b.container(f"c{j}", draw(st.sampled_from(ids)), running=draw(st.booleans()))
    return b.build()


def arguments(store: Store) -> st.SearchStrategy[list[str]]:
    names = [i[7:] for i in store.images] + [i[7:11] for i in store.images]
    names += [r.familiar for r in store.references] + ["a", "missing"]
    return st.lists(st.sampled_from(names), max_size=6)


def recount(plan) -> dict[ChainID, int]:
    """Reference counts computed afresh from what the plan leaves."""
    state, store = plan.state, plan.state.store
    released = set(plan.released_layers)
    counts: dict[ChainID, int] = {}
    for layer in store.layers.values():
        if layer.chain_id not in released and layer.parent is not None:
            counts[layer.parent] = counts.get(layer.parent, 0) + 1
    for mount in store.mounts.values():
        if mount.parent is not None:
            counts[mount.parent] = counts.get(mount.parent, 0) + 1
    for image_id in state.lookup.images:
        top = store.images[image_id].top_layer
        if top is not None:
            counts[top] = counts.get(top, 0) + 1
    return counts


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_released_exactly_when_the_count_reaches_zero(data: st.DataObject) -> None:
    store = data.draw(stores())
    args = data.draw(arguments(store))
    plan = plan_rmi(store, args, data.draw(st.booleans()), data.draw(st.booleans()))
    counts = recount(plan)
    assert plan.state.refcounts == counts
    for chain in plan.released_layers:
        assert chain not in counts
    assert len(set(plan.released_layers)) == len(plan.released_layers)
    for chain in store.layers:
        assert (chain in plan.released_layers) == (chain not in counts)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_no_image_a_running_container_uses_is_deleted(data: st.DataObject) -> None:
    store = data.draw(stores())
    plan = plan_rmi(store, data.draw(arguments(store)), data.draw(st.booleans()),
                    data.draw(st.booleans()))
    running = {c.image_id for c in store.containers.values() if c.running}
    assert not running & set(plan.deleted_images)


def children_first(store: Store) -> list[ImageID]:
    depth = {}
    for image_id in store.images:
        d, cur = 0, store.images[image_id].parent
        while cur in store.images:
            d, cur = d + 1, store.images[cur].parent
        depth[image_id] = d
    return sorted(store.images, key=lambda i: -depth[i])


@settings(max_examples=150, deadline=None)
@given(stores())
def test_forced_rm_of_every_image_frees_every_unheld_layer(store: Store) -> None:
    plan = plan_rmi(store, [i[7:] for i in children_first(store)], force=True)
    kept = set(plan.state.lookup.images)
    running = {c.image_id for c in store.containers.values() if c.running}
    # Only images a running container uses stay, with their ancestors.
    expected_kept = set()
    for image_id in running:
        while image_id in store.images:
            expected_kept.add(image_id)
            image_id = store.images[image_id].parent
    assert kept == expected_kept
    held = {layer.chain_id for m in store.mounts.values() for layer in store.chain(m.parent)}
    held |= {layer.chain_id for i in kept for layer in store.chain(store.images[i].top_layer)}
    assert set(plan.released_layers) == set(store.layers) - held
