"""Class 1 of issue 10: parent chains that loop.

A layer's ``parent`` naming itself, or two layers naming each other, made ``ls``,
``df -v``, ``reclaim`` and ``inspect`` loop forever; an image ``parent`` loop made
``history`` repeat IDs and ``rm`` delete images that are not the one's parents. A
cycle is damage of the layers or images in it: each is reported, naming its
``parent`` file, and every other image answers as on the undamaged root.
"""
from __future__ import annotations

import pytest

from . import IMAGEDB, LAYERDB, image_id, images_using, rows_without, write

NGINX_TOP = "26250d5afb9955585d3aeaa84494d33838e0757a06d32552bb22c52423a4066d"
NGINX_MID = "52dae90fcdb4d6d7fba398107de2eaf1b919f6071449b5c41b91b8cb174e7a46"
NGINX_BASE = "e67cc34316eeeb561508799afae4880f756767e0f5b9058e0ea15ff22fa9cb61"

# Commands that must answer for the untouched images, with their exit status.
COMMANDS = [("ls",), ("ls", "-a"), ("df", "-v"), ("inspect", "centos:latest"),
            ("history", "redis:alpine"), ("reclaim", "docker:latest"),
            ("rm", "mongo:3"), ("prune", "-a", "--json"), ("du", "--json")]


def _loop_layers(ev, members: list[str]) -> None:
    """Each layer's parent becomes the next one's, the last's the first's."""
    for layer, parent in zip(members, members[1:] + members[:1]):
        write(ev.path / LAYERDB / layer / "parent", f"sha256:{parent}")


@pytest.mark.parametrize("members", [[NGINX_TOP], [NGINX_MID, NGINX_BASE]],
                         ids=["self", "pair"])
def test_layer_cycle_is_damage_of_its_layers(sample_root, damaged, baseline, members):
    ev = damaged(sample_root)
    affected = sorted({i for m in members for i in images_using(sample_root, m)})
    assert affected
    _loop_layers(ev, members)
    ev.seal()
    for args in COMMANDS:
        got = ev.run(*args).check(baseline(sample_root, *args).rc)
        for layer in members:
            assert got.warned(f"{LAYERDB}/{layer}/parent", "cycle"), got.describe()
        if args[0] == "ls":
            want = baseline(sample_root, *args).out
            assert rows_without(got.out, affected) == rows_without(want, affected)
            assert len(rows_without(got.out, affected)) == len(got.out.splitlines()[1:])
        elif args[0] in ("inspect", "history", "reclaim", "rm"):
            assert got.out == baseline(sample_root, *args).out


def test_layer_cycle_below_an_image_top(sample_root, damaged, baseline):
    """The loop is under nginx's top layer: nginx is damaged, not only the two layers."""
    ev = damaged(sample_root)
    _loop_layers(ev, [NGINX_MID, NGINX_BASE])
    ev.seal()
    got = ev.run("inspect", "nginx:latest").check(1)
    assert got.warned(f"{LAYERDB}/{NGINX_MID}/parent", "cycle")
    assert "No such image" in got.err
    verified = ev.run("verify", "centos:latest").check(0)
    assert verified.out == baseline(sample_root, "verify", "centos:latest").out


# -- image parent chains -------------------------------------------------------------------
def _metadata_parent(image_hex: str) -> str:
    return f"{IMAGEDB}/metadata/sha256/{image_hex}/parent"


def _parents(root) -> dict[str, str]:
    base = root / IMAGEDB / "metadata/sha256"
    out = {}
    for entry in base.iterdir():
        parent = entry / "parent"
        if parent.exists():
            out[entry.name] = parent.read_text().strip()[7:]
    return out


@pytest.mark.parametrize("length", [1, 2])
def test_image_parent_cycle_is_damage_of_its_images(daemon_roots, damaged, baseline, length):
    """legacy/app:1's parent chain (the legacy builder's) made to loop in its middle."""
    source = daemon_roots["builds"]
    parents = _parents(source)
    top = image_id(source, "legacy/app:1")[7:]
    chain = [top]
    while chain[-1] in parents:
        chain.append(parents[chain[-1]])
    assert len(chain) >= 5
    members = chain[3:3 + length]
    ev = damaged(source)
    for image, parent in zip(members, members[1:] + members[:1]):
        write(ev.path / _metadata_parent(image), f"sha256:{parent}")
    ev.seal()

    history = ev.run("history", "--no-trunc", "-q", "legacy/app:1").check()
    for image in members:
        assert history.warned(_metadata_parent(image), "cycle"), history.describe()
    ids = [line for line in history.out.splitlines() if line != "<missing>"]
    assert len(ids) == len(set(ids)), history.describe()
    # Above the loop the chain is as it was; where it looped, nothing is made up.
    assert ids[:3] == [f"sha256:{i}" for i in chain[:3]]

    removed = ev.run("rm", "legacy/app:1").check()
    images = {p.name for p in (source / IMAGEDB / "content/sha256").iterdir()}
    deleted = {line.split("sha256:")[1] for line in removed.out.splitlines()
               if line.startswith("Deleted:")} & images
    # Up the chain to the first image of the loop, whose parent is not used.
    assert deleted == set(chain[:4]), removed.describe()

    # Images outside the loop answer as before.
    for args in [("ls",), ("rm", "bk/app:1"), ("history", "legacy/tool:1"),
                 ("inspect", "oracle/busybox:latest")]:
        got = ev.run(*args).check(baseline(source, *args).rc)
        want = baseline(source, *args).out
        if args == ("ls",):
            assert rows_without(got.out, chain) == rows_without(want, chain)
        else:
            assert got.out == want, got.describe()



# -- the model's own guards, for stores any reader builds -----------------------------------
def test_parent_cycles_finds_each_loop_once_in_linear_time():
    from analyzer.model import parent_cycles
    parents = {"a": "b", "b": "c", "c": "a", "d": "a", "e": None, "f": "f", "g": "zz"}
    assert sorted(parent_cycles(parents)) == [("a", "b", "c"), ("f",)]
    chain = {i: i + 1 for i in range(200_000)}        # deep: no recursion
    chain[199_999] = 0
    assert [len(c) for c in parent_cycles(chain)] == [200_000]


def test_store_walks_stop_where_a_chain_loops():
    from analyzer.model import Image, Layer, Store
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    layers = {a: Layer(a, a, b, "ca", 5, "la"), b: Layer(b, b, a, "cb", 7, "lb")}
    img = Image("sha256:" + "1" * 64, {}, (a,), a, "sha256:" + "2" * 64, None, 0, None, "i1")
    parent = Image("sha256:" + "2" * 64, {}, (a,), a, img.id, None, 0, None, "i2")
    store = Store("overlay2", {img.id: img, parent.id: parent}, layers, ())
    assert [layer.chain_id for layer in store.chain(a)] == [a, b]
    assert store.size(a) == 12
    assert [i.id for i in store.ancestry(img)] == [img.id, parent.id]
