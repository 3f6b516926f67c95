"""Real data roots of old engines (docker-explorer's test snapshots, tests/fixtures/
docker-explorer/SOURCE.md): analyze agrees with what docker-explorer's own tests expect
of them (images, tags, containers, running state, image and mount IDs), and goes beyond
it: container sizes as the daemon reported them, what rm would do, and verification.

No daemon can judge these drivers any more (aufs needs its kernel module; Docker 24
dropped both), so the expectations are docker-explorer's and Docker's rules: aufs's
DiffSize is its diff directory's size, legacy overlay's the naive diff of a container's
upper against its init layer's (judged on dockerd 20.10 by the "overlay" oracle scenario).
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from analyzer.service import ImageService
from tests.oracle.record import run_analyze

FIXTURES = Path(__file__).parent / "fixtures" / "docker-explorer"
AS_OF = 1_700_000_000          # 2023-11-14: every snapshot is "N years ago"


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> dict[str, Path]:
    """Each archive unpacked as an analyst would (tar, as root: owners as archived)."""
    out = {}
    for name in ("aufs.v2", "overlay.v2"):
        dest = tmp_path_factory.mktemp(name)
        subprocess.run(["tar", "-xzf", str(FIXTURES / f"{name}.tgz"), "-C", str(dest)],
                       check=True, capture_output=True)
        out[name] = dest / "docker"
    return out


def analyze(root: Path, *args: str) -> str:
    out, err, rc = run_analyze(root, AS_OF, args)
    assert rc == 0 and err == "", err
    return out


def containers(root: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in
            analyze(root, "ps", "-a", "-s", "--no-trunc", "--format", "json").splitlines()]
    return {row["Names"]: row for row in rows}


def mount_ids(root: Path) -> dict[str, str]:
    with ImageService(str(root), warn=lambda message: None) as service:
        return {name: m.mount_id for name, m in service.store.mounts.items()}


class Explorer(NamedTuple):
    """What docker-explorer's tests.py expects of a snapshot."""
    image_id: str
    created: str
    containers: int
    running: str                 # the one running container: name, ID, image, mount ID
    running_id: str
    image_name: str
    mount_id: str


EXPLORER = {
    "aufs.v2": Explorer(
        "sha256:7968321274dc6b6171697c33df7815310468e694ac5be0ec03ff053bb135e768",
        "2017-01-13T22:13:54.401355854Z", 7, "dreamy_snyder",
        "7b02fb3e8a665a63e32b909af5babb7d6ba0b64e10003b2d9534c7d5f2af8966", "busybox",
        "b16a494082bba0091e572b58ff80af1b7b5d28737a3eedbe01e73cd7f4e01d23"),
    "overlay.v2": Explorer(
        "sha256:5b0d59026729b68570d99bc4f3f7c31a2e4f2a5736435641565d93e7c25bd2c3",
        "2018-01-24T04:29:35.590938514Z", 6, "elastic_booth",
        "5dc287aa80b460652a5584e80a5c8c1233b0c0691972d75424cf5250b917600a", "busybox:latest",
        "974e2b994f9db74e1ddd6fc546843bc65920e786612a388f25685acf84b3fed1"),
}


@pytest.mark.parametrize("name", sorted(EXPLORER))
def test_agrees_with_docker_explorer(snapshots, name):
    root, want = snapshots[name], EXPLORER[name]
    assert analyze(root, "ls", "-q", "--no-trunc").split() == [want.image_id]
    assert json.loads(analyze(root, "inspect", "busybox"))[0]["Created"] == want.created
    ctrs = containers(root)
    assert len(ctrs) == want.containers
    assert [n for n, row in ctrs.items() if row["State"] == "running"] == [want.running]
    assert (ctrs[want.running]["ID"], ctrs[want.running]["Image"]) == (want.running_id,
                                                                       want.image_name)
    assert mount_ids(root)[want.running_id] == want.mount_id


def test_aufs_sizes_and_metadata(snapshots):
    root = snapshots["aufs.v2"]
    # aufs's DiffSize is its diff directory's size: these hold only empty files.
    assert {row["Size"] for row in containers(root).values()} == {"0B (virtual 1.11MB)"}
    inspect = json.loads(analyze(root, "inspect", "busybox"))[0]
    assert inspect["GraphDriver"] == {"Data": None, "Name": "aufs"}   # aufs gives none


def test_legacy_overlay_sizes_diff_and_metadata(snapshots):
    root = snapshots["overlay.v2"]
    # Docker's size of a legacy overlay container: its upper diffed against its init
    # layer's (.ash_history and /test here), not the upper's raw size.
    sizes = {name: row["Size"].split()[0] for name, row in containers(root).items()}
    assert sizes == {"elastic_booth": "27B", "frosty_lichterman": "31B",
                     "nostalgic_shannon": "0B", "mystifying_euler": "0B",
                     "gallant_rosalind": "0B", "friendly_sinoussi": "0B"}
    assert analyze(root, "diff", "elastic_booth").splitlines() == [
        "C /root", "A /root/.ash_history", "A /test"]
    inspect = json.loads(analyze(root, "inspect", "busybox"))[0]
    top = "a94d714512251b0d8a9bfaacb832e0c6cb70f71cb71976cca7a528a429336aae"
    assert inspect["GraphDriver"] == {"Data": {"RootDir": f"{root}/overlay/{top}/root"},
                                      "Name": "overlay"}


@pytest.mark.parametrize("name", ["aufs.v2", "overlay.v2"])
def test_rm_of_an_image_containers_use_only_untags(snapshots, name):
    root = snapshots[name]
    out, err, rc = run_analyze(root, AS_OF, ["rm", "busybox"])
    assert (out, rc) == ("", 1)
    assert err.startswith('Error response from daemon: conflict: unable to remove repository '
                          'reference "busybox" (must force) - container ')
    out, err, rc = run_analyze(root, AS_OF, ["rm", "-f", "busybox"])
    assert (err, rc) == ("", 0)
    assert out.startswith("Untagged: busybox:latest\n") and "Deleted" not in out


@pytest.mark.parametrize("name", ["aufs.v2", "overlay.v2"])
def test_snapshot_verifies_but_for_the_owners_and_modes_its_copy_lost(snapshots, name):
    """Every byte and diff ID checks out; the snapshot was copied by an unprivileged
    user, so owners (and on aufs.v2 modes) differ from the layer's tar headers, and
    verify says exactly that."""
    out, _, rc = run_analyze(snapshots[name], AS_OF, ["verify", "--json"])
    report = json.loads(out)
    assert rc == 1
    assert [(i["config_ok"], i["layers_ok"]) for i in report["images"]] == [(True, True)]
    layer, = report["layers"]
    assert layer["computed_diff_id"] == layer["diff_id"]
    assert layer["fault"] == "metadata" and layer["bad_files"]
    assert {b["reason"] for b in layer["bad_files"]} == {"metadata"}
