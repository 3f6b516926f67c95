"""The rmi and prune planners on a big in-memory store.

The store is built with the model's dataclasses (no disk): base chains shared the
way real hosts share them, images adding a few layers on top, tags, digests, legacy
parent chains and containers. Prints the time of: the store's one-time indexes,
planning ``rm`` of one image (target < 50 ms), of 1,000 images in one call, and
``prune -a``; and the holders of the layers ``rm`` keeps (what ``reclaim`` reports).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from analyzer.engines.prune import plan_prune  # noqa: E402
from analyzer.engines.resolve import lookup  # noqa: E402
from analyzer.engines.rmi import plan_rmi  # noqa: E402
from analyzer.ids import ChainID, ContainerID, DiffID, ImageID, chain_ids  # noqa: E402
from analyzer.model import Container, Image, Layer, Mount, Store  # noqa: E402
from analyzer.reference import store_reference  # noqa: E402


def _hex(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def synthetic_store(images: int, seed: int = 1) -> Store:
    rng = random.Random(seed)
    layers: dict[ChainID, Layer] = {}
    all_images: dict[ImageID, Image] = {}
    refs = []
    bases = [[DiffID("sha256:" + _hex("base", b, i)) for i in range(rng.randint(3, 8))]
             for b in range(max(1, images // 40))]

    def add_image(n: int, diff_ids: list[DiffID], parent: ImageID | None) -> ImageID:
        chains = chain_ids(diff_ids)
        for i, chain in enumerate(chains):
            if chain not in layers:
                layers[chain] = Layer(chain_id=chain, diff_id=diff_ids[i],
                                      parent=chains[i - 1] if i else None,
                                      cache_id=_hex("cache", chain)[:64],
                                      diff_size=rng.randint(0, 50_000_000), source="")
        image_id = ImageID("sha256:" + _hex("image", n))
        all_images[image_id] = Image(
            id=image_id, config={"config": {"Labels": {"n": str(n % 7)}}},
            diff_ids=tuple(diff_ids), top_layer=chains[-1], parent=parent,
            created="2024-01-01T00:00:00Z", created_ns=1_704_067_200 * 10**9 + n,
            last_updated=None, source="")
        return image_id

    n = 0
    for b, base in enumerate(bases):
        image_id = add_image(n, base, None)
        refs.append(store_reference(f"base{b}", f"base{b}:latest", image_id))
        n += 1
    while n < images:
        base = rng.choice(bases)
        diffs = base + [DiffID("sha256:" + _hex("own", n, i)) for i in range(rng.randint(2, 9))]
        parent = None
        if rng.random() < 0.05:                       # a legacy build: one image per step
            for k in range(len(base) + 1, len(diffs)):
                parent = add_image(n, diffs[:k], parent)
                n += 1
        image_id = add_image(n, diffs, parent)
        roll = rng.random()
        if roll < 0.85:
            refs.append(store_reference(f"app{n}", f"app{n}:v1", image_id))
            if roll < 0.2:
                refs.append(store_reference(f"app{n}", f"app{n}:latest", image_id))
            if roll < 0.4:
                refs.append(store_reference(f"app{n}", f"app{n}@sha256:{_hex('d', n)}", image_id))
        n += 1
    containers: dict[ContainerID, Container] = {}
    mounts: dict[str, Mount] = {}
    for c, image_id in enumerate(rng.sample(sorted(all_images), k=max(1, images // 20))):
        cid = ContainerID(_hex("ctr", c))
        containers[cid] = Container(
            id=cid, name=f"c{c}", image_id=image_id, image=image_id, created="", path="",
            args=(), running=c % 3 == 0, paused=False, restarting=False, dead=False,
            removal_in_progress=False, exit_code=0, started_at="", finished_at="",
            health=None, labels={}, ports=(), mounts=(), networks=(), source="")
        mounts[cid] = Mount(name=cid, mount_id=_hex("mount", c), init_id=None,
                            parent=all_images[image_id].top_layer, source="")
    return Store(driver="overlay2", images=all_images, layers=layers, references=tuple(refs),
                 containers=containers, mounts=mounts)


def timed(label: str, fn, repeat: int = 1) -> object:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    print(f"{label:<44} {best * 1000:9.1f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=11_000)
    parser.add_argument("--ci", action="store_true", help="small size, for CI")
    args = parser.parse_args()

    t0 = time.perf_counter()
    store = synthetic_store(1_000 if args.ci else args.images)
    print(f"store: {len(store.images)} images, {len(store.layers)} layers, "
          f"{len(store.references)} references, {len(store.containers)} containers "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    timed("indexes, once per store", lambda: (
        store.layer_refcounts, store.children, store.containers_by_image, lookup(store),
        plan_rmi(store, []).state.held_by(next(iter(store.layers)))))
    tags = sorted(r.familiar for r in store.references if not r.is_digest)
    rng = random.Random(2)
    one = rng.choice(tags)
    timed(f"rm {one}", lambda: plan_rmi(store, [one]), repeat=5)
    timed("  ... and what holds its layers", lambda: plan_rmi(store, [one]).held_layers, repeat=5)
    short = rng.choice(sorted(store.images))[7:19]
    timed(f"rm -f {short}", lambda: plan_rmi(store, [short], force=True), repeat=5)
    many = rng.sample(tags, min(1000, len(tags)))
    plan = timed("rm of 1,000 images in one call", lambda: plan_rmi(store, many), repeat=3)
    print(f"  -> {len(plan.deleted_images)} images deleted, "
          f"{len(plan.released_layers)} layers released, {len(plan.errors)} errors")
    timed("  ... and what holds their layers", lambda: plan_rmi(store, many).held_layers, repeat=3)
    result = timed("prune -a", lambda: plan_prune(store, True, (), time.time()), repeat=3)
    print(f"  -> {len(result[0].deleted_images)} images deleted, "
          f"{len(result[0].released_layers)} layers released, {result[2]} bytes")
    timed("prune (dangling)", lambda: plan_prune(store, False, (), time.time()), repeat=3)


if __name__ == "__main__":
    main()
