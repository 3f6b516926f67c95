"""The container prune planner against moby's ContainersPrune (v20.10 daemon/prune.go)."""
from __future__ import annotations

import dataclasses

import pytest

from analyzer.engines.containerprune import plan_container_prune, without_containers
from analyzer.errors import DaemonError
from analyzer.render.prune import deleted_block, total
from tests.test_rmi import C1, C2, D1, D2, StoreBuilder

NOW = 1_700_000_000.0          # 2023-11-14T22:13:20Z


def store_with(**states):
    """One busybox-like image and a container per keyword (name=dict of fields)."""
    b = StoreBuilder()
    image = b.image("1bb0", [D1], ["busybox:latest"])
    for n, (name, fields) in enumerate(states.items()):
        cid = b.container(f"{n}a{n}", image, running=fields.pop("running", False))
        b.containers[cid] = dataclasses.replace(
            b.containers[cid], name=name,
            created=fields.pop("created", "2023-11-14T00:00:00.123456789Z"), **fields)
    return b, image


def pruned(store, filters=(), size_rw=None, holds=()):
    result = plan_container_prune(store, filters, NOW, size_rw or {}, holds, utc_offset=0)
    return [c.name for c in result.deleted], result


def test_only_containers_that_are_not_running() -> None:
    b, _ = store_with(exited={}, created={}, dead={"dead": True},
                      running={"running": True},
                      paused={"running": True, "paused": True},
                      restarting={"running": True, "restarting": True},
                      removing={"removal_in_progress": True})
    names, result = pruned(b.build())
    assert sorted(names) == ["created", "dead", "exited"]
    assert result.released_layers == ()          # the image still holds its layers


def test_newest_first_and_size_rw_summed() -> None:
    b, _ = store_with(old={"created": "2023-01-01T00:00:00Z"},
                      new={"created": "2023-11-01T00:00:00Z"},
                      unknown={"created": "2023-06-01T00:00:00Z"})
    ids = {c.name: c.id for c in b.containers.values()}
    names, result = pruned(b.build(), size_rw={ids["old"]: 5, ids["new"]: 7, ids["unknown"]: -1})
    assert names == ["new", "unknown", "old"]
    assert (result.space_reclaimed, result.unmeasured) == (12, ())


def test_unmeasurable_size_is_reported() -> None:
    b, _ = store_with(dm={})
    cid = next(iter(b.containers))
    _, result = pruned(b.build(), size_rw={cid: None})
    assert result.space_reclaimed == 0 and [c.id for c in result.unmeasured] == [cid]


def test_until_keeps_containers_created_after_it() -> None:
    b, _ = store_with(before={"created": "2023-11-14T21:13:19Z"},
                      edge={"created": "2023-11-14T21:13:20Z"},
                      after={"created": "2023-11-14T21:13:20.000000001Z"})
    assert sorted(pruned(b.build(), [("until", "1h")])[0]) == ["before", "edge"]


@pytest.mark.parametrize("filters,kept", [
    ([("label", "tier")], {"plain"}),
    ([("label", "tier=base")], {"plain", "app"}),
    ([("label!", "tier")], {"base", "app"}),
    ([("label", "tier"), ("label!", "tier=app")], {"plain", "app"}),
])
def test_labels(filters, kept) -> None:
    b, _ = store_with(plain={}, base={"labels": {"tier": "base"}},
                      app={"labels": {"tier": "app"}})
    names, _ = pruned(b.build(), filters)
    assert {"plain", "base", "app"} - set(names) == kept


@pytest.mark.parametrize("filters,message", [
    ([("dangling", "true")], "Invalid filter 'dangling'"),
    ([("until", "1h"), ("until", "2h")], "more than one until filter specified"),
    ([("until", "abc")], 'failed to parse value as time or duration: "abc"'),
])
def test_refused_filters(filters, message) -> None:
    b, _ = store_with(exited={})
    with pytest.raises(DaemonError) as info:
        pruned(b.build(), filters)
    assert str(info.value) == message


def test_layers_only_a_removed_container_held_are_released() -> None:
    # The image was deleted while its container stayed (rm -f of a stopped container's
    # image): its layers are held by the container's RW layer alone.
    b = StoreBuilder()
    image = b.image("a100", [D1, D2], ["app:1"])
    other = b.image("b200", [D1], ["base:1"])
    b.container("0c0c", image)
    b.container("0d0d", other, running=True)
    del b.images[image]
    b.refs = [r for r in b.refs if r.image_id != image]
    for cid, ctr in b.containers.items():
        b.containers[cid] = dataclasses.replace(ctr, created="2023-01-01T00:00:00Z")
    store = b.build()
    names, result = pruned(store)
    assert names == ["0c0c"] and result.released_layers == (C2,)   # C1 is base:1's
    assert pruned(store, holds=[C2])[1].released_layers == ()    # the build cache's
    after = without_containers(store, result)
    assert list(after.mounts) == [c.id for c in after.containers.values()]
    # C1 is held by base:1 and the running container, no longer by C2.
    assert C2 not in after.layers and after.layer_refcounts[C1] == 2


def test_output() -> None:
    assert deleted_block("Containers", []) + total(0) == "Total reclaimed space: 0B\n"
    assert deleted_block("Containers", ["a", "b"]) + total(1500) == (
        "Deleted Containers:\na\nb\n\nTotal reclaimed space: 1.5kB\n")
