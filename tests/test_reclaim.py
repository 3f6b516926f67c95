"""Pricing a plan: which containerd blobs go, what repositories.json becomes."""
from __future__ import annotations

import json

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
