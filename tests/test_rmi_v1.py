"""``rm`` and ``reclaim`` on the pre-1.10 graph (docker-explorer's aufs.v1, tests/fixtures/
docker-explorer), as moby v1.9.1 answered: no daemon here runs that graph, so every
expectation is derived from v1.9.1's source (daemon/image_delete.go, graph/graph.go,
graph/tags.go, api/client/rmi.go; see analyzer/engines/rmiv1.py), and the bytes from
what Graph.Delete removes, measured with ``du`` after removing it from a copy.

The snapshot: busybox:latest is v1 image 1cee97b18f87 on its parent df557f39d413; three
containers use it: de44dd97cfd1 (running, the newest), fbb6711cefc7 (created) and
3b03d0958390 (exited).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.oracle.daemon import copy_root
from tests.oracle.record import run_analyze

pytestmark = pytest.mark.source_derived

FIXTURES = Path(__file__).parent / "fixtures" / "docker-explorer"
AS_OF = 1_700_000_000
TOP = "1cee97b18f87b5fa91633db35f587e2c65c093facfa2cbbe83d5ebe06e1d9125"
BASE = "df557f39d413a1408f5c28d8aab2892f927237ec22e903ef04b331305130ab38"
MIGRATED_TOP = "5153e6e3e1f8"              # what ls shows: the ID Docker 1.10 gave it
FAILED = "Error: failed to remove images: [{}]\n"


@pytest.fixture
def root(tmp_path) -> Path:
    subprocess.run(["tar", "-xzf", str(FIXTURES / "aufs.v1.tgz"), "-C", str(tmp_path)],
                   check=True, capture_output=True)
    return tmp_path / "docker"


def without_containers(root: Path) -> Path:
    shutil.rmtree(root / "containers")
    (root / "containers").mkdir()
    return root


def rm(root: Path, *args: str) -> tuple[str, str, int]:
    return run_analyze(root, AS_OF, ["rm", *args])


def test_a_tag_containers_use_names_the_newest_container_and_the_v1_id(root):
    assert rm(root, "busybox") == ("", (
        'Error response from daemon: conflict: unable to remove repository reference '
        '"busybox" (must force) - container de44dd97cfd1 is using its referenced image '
        f'{TOP[:12]}\n' + FAILED.format("busybox")), 1)


def test_force_untags_then_the_running_container_stops_the_delete(root):
    # v1.9.1 swallowed a conflict of the last tag's image only when it was not dangling:
    # untagged, it is, so the running container's conflict is the answer (the call
    # fails: nothing of it is printed).
    msg = (f"conflict: unable to delete {TOP[:12]} (cannot be forced) - image is being "
           "used by running container de44dd97cfd1")
    assert rm(root, "-f", "busybox") == (
        "", f"Error response from daemon: {msg}\n" + FAILED.format("busybox"), 1)
    out, _, _ = run_analyze(root, AS_OF, ["reclaim", "-f", "busybox", "--json"])
    got = json.loads(out)
    assert (got["untagged"], got["deleted_images"], got["bytes_freed"], got["errors"]) == (
        [], [], 0, [msg])


def test_ids_are_v1_ids_and_a_parent_is_a_dependent_child_conflict(root):
    assert rm(root, BASE[:12]) == ("", (
        f"Error response from daemon: conflict: unable to delete {BASE[:12]} (cannot be "
        f"forced) - image has dependent child images\n" + FAILED.format(BASE[:12])), 1)
    assert rm(root, MIGRATED_TOP, "zzz") == ("", (
        f"Error response from daemon: could not find image: no such id: {MIGRATED_TOP}\n"
        "Error response from daemon: could not find image: no such id: zzz\n"
        + FAILED.format(f"{MIGRATED_TOP} zzz")), 1)


def test_an_image_id_with_two_tags_is_referenced_in_repositories(root):
    without_containers(root)
    repos = root / "repositories-aufs"
    data = json.loads(repos.read_text())
    data["Repositories"]["busybox"]["other"] = TOP
    repos.write_text(json.dumps(data))
    assert rm(root, TOP[:12]) == ("", (
        f"Error response from daemon: conflict: unable to delete {TOP[:12]} (must be "
        "forced) - image is referenced in one or more repositories\n"
        + FAILED.format(TOP[:12])), 1)
    out, err, rc = rm(root, "-f", TOP[:12])
    assert (err, rc) == ("", 0)
    assert out == ("Untagged: busybox:latest\nUntagged: busybox:other\n"
                   f"Deleted: {TOP}\nDeleted: {BASE}\n")


def du(root: Path) -> int:
    return int(subprocess.run(["du", "-s", "-B1", str(root)], check=True, capture_output=True,
                              text=True).stdout.split()[0])


@pytest.mark.parametrize("prune", [True, False])
def test_unused_image_deletes_its_v1_chain_and_reclaim_prices_graph_delete(root, tmp_path,
                                                                           prune):
    without_containers(root)
    args = ["busybox"] if prune else ["--no-prune", "busybox"]
    gone = [TOP, BASE] if prune else [TOP]
    assert rm(root, *args) == ("Untagged: busybox:latest\n"
                               + "".join(f"Deleted: {i}\n" for i in gone), "", 0)
    out, err, rc = run_analyze(root, AS_OF, ["reclaim", *args, "--json"])
    got = json.loads(out)
    assert (rc, err) == (0, "")
    assert [layer["cache_id"] for layer in got["deleted_layers"]] == gone
    # Graph.Delete: the graph directory and the driver's layer (aufs Remove: diff,
    # layers, mnt); repositories-aufs is rewritten without the tag.
    after = tmp_path / "after"
    copy_root(root, after)
    for v1 in gone:
        for rel in (f"graph/{v1}", f"aufs/diff/{v1}", f"aufs/layers/{v1}", f"aufs/mnt/{v1}"):
            path = after / rel
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    repos = after / "repositories-aufs"
    data = json.loads(repos.read_text())
    del data["Repositories"]["busybox"]
    repos.write_text(json.dumps(data))
    assert abs(got["bytes_freed"] - (du(root) - du(after))) <= 4096, got
