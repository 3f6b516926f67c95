"""Class 5 of issue 10: local damage stays local.

A ``../`` in a ``cache-id`` or ``mount-id``, a layer directory or ``link`` file that is a
symbolic link, one image config that cannot be read: each aborted the whole command
with exit 2, naming a path the tool had built. Now that layer, container or image is
reported damaged, naming the file that holds the bad value, and the command answers
for everything else.
"""
from __future__ import annotations

import json
import os

import pytest

from . import IMAGEDB, LAYERDB, cache_id, image_id, layer_chain, rows_without, write

CENTOS_LAYER = "2e37a15d485b4f9f8c209a55665cc5f645b61965011ea0cec1379b2f234a3f03"


def _verified(result) -> dict:
    report = json.loads(result.out)
    return {"images": {i["id"]: i for i in report["images"]},
            "layers": {x["chain_id"][7:]: x for x in report["layers"]}}


def _same_verdicts(got: dict, want: dict, except_layers=(), except_images=()) -> None:
    for chain, layer in want["layers"].items():
        if chain not in except_layers:
            assert got["layers"][chain]["status"] == layer["status"], chain
    for iid, image in want["images"].items():
        if iid not in except_images:
            assert (got["images"][iid]["config_ok"], got["images"][iid]["layers_ok"]) == (
                image["config_ok"], image["layers_ok"]), iid


@pytest.mark.parametrize("value", ["../../../../etc", "..", "a/../../b"])
def test_cache_id_leading_out(sample_root, damaged, baseline, value):
    ev = damaged(sample_root)
    write(ev.path / LAYERDB / CENTOS_LAYER / "cache-id", value)
    ev.seal()
    centos = image_id(sample_root, "centos:latest")[7:]
    named = f"{LAYERDB}/{CENTOS_LAYER}/cache-id"
    for args in [("ls",), ("inspect", "redis:alpine"), ("reclaim", "docker:latest"), ("df", "-v"),
                 ("prune", "-a", "--json")]:
        want = baseline(sample_root, *args)
        got = ev.run(*args).check(want.rc)
        assert got.warned(named, "layer skipped"), got.describe()
        if args[0] in ("inspect", "reclaim"):
            assert got.out == want.out
        elif args[0] == "ls":
            assert rows_without(got.out, [centos]) == rows_without(want.out, [centos])
    got = ev.run("verify", "--json").check(1)
    assert got.warned(named)
    _same_verdicts(_verified(got), _verified(baseline(sample_root, "verify", "--json")),
                   except_layers={CENTOS_LAYER}, except_images={f"sha256:{centos}"})


@pytest.mark.parametrize("name", ["mount-id", "init-id"])
def test_mount_id_leading_out(daemon_roots, damaged, baseline, name):
    source = daemon_roots["basic"]
    ev = damaged(source)
    mounts = ev.path / "image/overlay2/layerdb/mounts"
    victim = sorted(os.listdir(mounts))[0]
    write(mounts / victim / name, "../../../../etc")
    ev.seal()
    named = f"image/overlay2/layerdb/mounts/{victim}/{name}"
    for args in [("df", "-v"), ("ps", "-a"), ("reclaim", "alpine:3.18"), ("prune", "-a")]:
        want = baseline(source, *args)
        got = ev.run(*args).check(want.rc)
        assert got.warned(named, "mount skipped"), got.describe()
        if args[0] == "ps":
            assert got.out == want.out


def _symlink_layer_dir(ev, target: str) -> str:
    cache = cache_id(ev.path, CENTOS_LAYER)
    layer_dir = ev.path / "overlay2" / cache
    layer_dir.rename(layer_dir.with_name(cache + "-moved"))
    layer_dir.symlink_to(target)
    return f"overlay2/{cache}"


@pytest.mark.parametrize("target", ["/", "{cache}-moved"])
def test_symlinked_layer_directory(sample_root, damaged, baseline, target):
    ev = damaged(sample_root)
    named = _symlink_layer_dir(ev, target.format(cache=cache_id(sample_root, CENTOS_LAYER)))
    ev.seal()
    got = ev.run("verify", "--json").check(1)
    verdict = _verified(got)
    assert verdict["layers"][CENTOS_LAYER]["status"] == "missing"
    assert named in verdict["layers"][CENTOS_LAYER]["reason"], got.describe()
    _same_verdicts(verdict, _verified(baseline(sample_root, "verify", "--json")),
                   except_layers={CENTOS_LAYER})
    for args in [("reclaim", "centos:latest"), ("inspect", "centos:latest")]:
        got = ev.run(*args).check(0)
        assert got.warned(named, "symbolic link"), got.describe()
    assert ev.run("ls").check().out == baseline(sample_root, "ls").out


def test_symlinked_link_file(sample_root, damaged, baseline):
    ev = damaged(sample_root)
    cache = cache_id(sample_root, CENTOS_LAYER)
    link = ev.path / "overlay2" / cache / "link"
    link.unlink()
    link.symlink_to("/etc/hostname")
    ev.seal()
    named = f"overlay2/{cache}/link"
    for args in [("reclaim", "centos:latest"), ("inspect", "centos:latest"),
                 ("prune", "-a", "--json")]:
        got = ev.run(*args).check(0)
        assert got.warned(named, "symbolic link"), got.describe()
    got = ev.run("inspect", "redis:alpine").check()
    assert got.out == baseline(sample_root, "inspect", "redis:alpine").out


@pytest.mark.parametrize("how", ["symlink", "directory", "fifo"])
def test_unreadable_image_config_in_verify(sample_root, damaged, baseline, how):
    ev = damaged(sample_root)
    centos = image_id(sample_root, "centos:latest")[7:]
    config = ev.path / IMAGEDB / "content/sha256" / centos
    config.unlink()
    {"symlink": lambda: config.symlink_to("/etc/passwd"), "directory": config.mkdir,
     "fifo": lambda: os.mkfifo(config)}[how]()
    ev.seal()
    named = f"{IMAGEDB}/content/sha256/{centos}"
    got = ev.run("verify", "--json").check(1)
    assert got.warned(named)
    verdict = _verified(got)
    image = verdict["images"][f"sha256:{centos}"]
    assert not image["config_ok"] and named in json.dumps(image), got.describe()
    _same_verdicts(verdict, _verified(baseline(sample_root, "verify", "--json")),
                   except_images={f"sha256:{centos}"}, except_layers=set(layer_chain(
                       sample_root, "centos:latest")))
    got = ev.run("verify", "redis:alpine").check(0)
    assert got.out == baseline(sample_root, "verify", "redis:alpine").out
