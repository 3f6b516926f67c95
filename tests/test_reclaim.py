"""Pricing a plan: which containerd blobs go, what repositories.json becomes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from analyzer.engines.reclaim import content_freed, repositories_json_size
from analyzer.ids import ImageID
from analyzer.reference import store_reference

A = ImageID("sha256:" + "a" * 64)
B = ImageID("sha256:" + "b" * 64)


def test_blobs_go_only_with_their_last_lease():
    leases = {
        f"moby/moby-image-{A}": ("sha256:m1", "sha256:shared"),
        f"moby/moby-image-{B}": ("sha256:m2", "sha256:shared"),
        "buildkit/held": ("sha256:m2",),
    }
    assert content_freed(leases, [A]) == ["sha256:m1"]
    assert content_freed(leases, [A, B]) == ["sha256:m1", "sha256:shared"]
    assert content_freed(leases, []) == []
    assert content_freed({}, [A]) == []


def test_repositories_json_is_sized_as_docker_writes_it():
    refs = [store_reference("busybox", "busybox:latest", A),
            store_reference("busybox", "busybox@sha256:" + "c" * 64, A),
            store_reference("localhost:5000/x", "localhost:5000/x:1", B)]
    want = json.dumps({"Repositories": {
        "busybox": {"busybox:latest": A, "busybox@sha256:" + "c" * 64: A},
        "localhost:5000/x": {"localhost:5000/x:1": B}}}, separators=(",", ":"), sort_keys=True)
    assert repositories_json_size(refs) == len(want)
    assert repositories_json_size([]) == len('{"Repositories":{}}')


# -- measured on a real root: the sample, extracted ---------------------------------------

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sample-root.tar.gz"
TAMPERED = "551ea261ef824cff9612102ce1c3f8a0ec45014c4525403a04dcaeb27e2c963f"   # prune -a frees it


@pytest.fixture
def sample_dir(tmp_path):
    root = tmp_path / "root"
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(root, filter="fully_trusted")        # our own fixture: links, devices
    return root


def analyze(root, *args, backend="auto"):
    done = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root), *args],
                          capture_output=True, env={**os.environ, "ANALYZER_DIGEST": backend})
    return done.returncode, done.stdout, done.stderr.decode()


@pytest.mark.parametrize("args", [("prune", "-a", "--json"), ("reclaim", "centos", "--json"),
                                  ("reclaim", "-f", "nginx", "redis:alpine", "--json"),
                                  ("df", "-v"), ("inspect", "node:slim")], ids=" ".join)
def test_native_walker_and_twin_give_the_same_answer(sample_dir, args):
    assert answer(sample_dir, args, "native") == answer(sample_dir, args, "python")


def answer(root, args, backend):
    """What analyze says, but the provenance of its JSON."""
    code, out, err = analyze(root, *args, backend=backend)
    if "--json" in args:
        out = json.loads(out)
        del out["analysis"]                 # as of and at when it ran
    return code, out, err
