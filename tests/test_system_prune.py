"""system prune: the Docker 28 CLI's run of prunes, each after the ones before it."""
from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from analyzer.engines.systemprune import plan_system_prune
from analyzer.model import Volume
from tests.test_network_prune import network
from tests.test_rmi import C1, D1, D2, StoreBuilder

NOW = 1_700_000_000.0


def scenario():
    """app:1 used only by a stopped container that mounts volume "data"; base:1 by a
    running one; an unused volume and network."""
    b = StoreBuilder()
    app = b.image("a100", [D1, D2], ["app:1"], size=500)
    base = b.image("b200", [D1], ["base:1"], size=700)
    stopped = b.container("0c0c", app)
    b.container("0d0d", base, running=True)
    for cid, ctr in b.containers.items():
        mounts = ({"Name": "data", "Type": "volume"},) if cid == stopped else ()
        b.containers[cid] = dataclasses.replace(ctr, created="2023-01-01T00:00:00Z",
                                                mounts=mounts)
    vols = tuple(Volume(name=n, driver="local", options={}, size=-1, source=f"volumes/{n}")
                 for n in ("data", "spare"))
    return dataclasses.replace(b.build(), volumes=vols), stopped, app


def run(store, all=False, volumes=False, filters=()):
    return plan_system_prune(store, [network("idle"), network("bridge")], all, volumes,
                             filters, NOW, {}, {"data": 30, "spare": 2}, utc_offset=0)


def test_each_pruner_sees_what_the_ones_before_removed() -> None:
    store, stopped, app = scenario()
    result = run(store, all=True, volumes=True)
    assert result.error is None
    assert [c.id for c in result.containers.deleted] == [stopped]
    assert [n.name for n in result.networks] == ["idle"]
    assert [v.name for v in result.volumes.deleted] == ["data", "spare"]   # data: freed
    plan = result.images[0]
    assert plan.deleted_images == (app,)            # its container went first
    assert [r.value for r in result.images[1]][:1] == ["app:1"]
    assert C1 not in plan.released_layers           # base:1 keeps it
    assert result.space_reclaimed == 32 + 501       # volumes, then app:1's own layer


def test_without_volumes_or_all() -> None:
    store, _, _ = scenario()
    result = run(store)
    assert result.volumes is None and result.images[0].deleted_images == ()
    assert result.space_reclaimed == 0


def test_a_refusal_stops_the_run_where_it_happens() -> None:
    store, stopped, _ = scenario()
    refused = run(store, filters=[("bogus", "1")])
    assert str(refused.error) == "Invalid filter 'bogus'"
    assert (refused.containers, refused.networks, refused.images) == (None, None, None)
    # Volume prune takes no until: containers and networks are pruned before it refuses.
    late = run(store, volumes=True, filters=[("until", "1h")])
    assert str(late.error) == "Invalid filter 'until'"
    assert [c.id for c in late.containers.deleted] == [stopped]
    assert [n.name for n in late.networks] == ["idle"] and late.images is None


# Each container: (running, removal in progress, the volumes it mounts).
CONTAINERS = st.lists(st.tuples(st.booleans(), st.booleans(),
                                st.sets(st.sampled_from("abcd"), max_size=3)), max_size=6)


@given(CONTAINERS, st.sets(st.sampled_from("abcde"), min_size=1))
def test_what_stays_is_what_running_containers_use(containers, names) -> None:
    b = StoreBuilder()
    image = b.image("1bb0", [D1], ["busybox:latest"])
    for n, (running, removing, vols) in enumerate(containers):
        cid = b.container(f"{n:x}0{n:x}", image, running=running)
        b.containers[cid] = dataclasses.replace(
            b.containers[cid], created=f"2023-01-01T00:00:0{n}Z", removal_in_progress=removing,
            mounts=tuple({"Name": v, "Type": "volume"} for v in sorted(vols)))
    vols = tuple(Volume(name=v, driver="local", options={}, size=-1, source=f"volumes/{v}")
                 for v in sorted(names))
    store = dataclasses.replace(b.build(), volumes=vols)
    result = run(store, all=True, volumes=True)
    kept = [c for c in store.containers.values()
            if c.running or c.removal_in_progress]
    assert {c.id for c in result.containers.deleted} == set(store.containers) - {
        c.id for c in kept}
    used = {m["Name"] for c in kept for m in c.mounts}
    assert {v.name for v in result.volumes.deleted} == set(names) - used
    # The image goes only when no container is left to use it.
    assert bool(result.images[0].deleted_images) == (not kept)
