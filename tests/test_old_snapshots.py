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

from analyzer.ids import EMPTY_LAYER_DIFF_ID, DiffID
from analyzer.service import ImageService
from analyzer.sources.graphv1 import make_config
from tests.oracle.record import run_analyze

FIXTURES = Path(__file__).parent / "fixtures" / "docker-explorer"
AS_OF = 1_700_000_000          # 2023-11-14: every snapshot is "N years ago"


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory) -> dict[str, Path]:
    """Each archive unpacked as an analyst would (tar, as root: owners as archived)."""
    out = {}
    for name in ("aufs.v1", "aufs.v2", "overlay.v2"):
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


@pytest.mark.parametrize("name", ["aufs.v1", "aufs.v2", "overlay.v2"])
def test_snapshot_verifies_but_for_the_owners_and_modes_its_copy_lost(snapshots, name):
    """Every byte and diff ID checks out; the snapshot was copied by an unprivileged
    user, so owners (and on aufs.v2 modes) differ from the layer's tar headers, and
    verify says exactly that."""
    out, _, rc = run_analyze(snapshots[name], AS_OF, ["verify", "--json"])
    report = json.loads(out)
    assert rc == 1
    assert all(i["config_ok"] and i["layers_ok"] for i in report["images"])
    for layer in report["layers"]:
        assert layer["computed_diff_id"] == layer["diff_id"]
        assert {b["reason"] for b in layer["bad_files"]} <= {"metadata"}
    assert any(layer["fault"] == "metadata" for layer in report["layers"])


def test_pre_1_10_graph_as_docker_1_10_migrated_it(snapshots):
    """aufs.v1 is the graph of Docker before 1.10: docker-explorer's expectations (by v1
    IDs), then the IDs Docker 1.10's migration gives (source-derived: moby v1.10.0
    migrate/v1/migratev1.go, image/v1/imagev1.go; no daemon that migrates runs here)."""
    root = snapshots["aufs.v1"]
    ctrs = containers(root)
    assert sorted(ctrs) == ["angry_rosalind", "insane_rosalind", "kickass_mestorf"]
    running = ctrs["angry_rosalind"]
    assert running["State"] == "running" and running["Image"] == "busybox"
    assert running["ID"] == "de44dd97cfd1c8d1c1aad7f75a435603991a7a39fa4f6b20a69bf4458809209c"
    # Before 1.10 a container's RW layer was named by the container's ID.
    assert mount_ids(root)[running["ID"]] == running["ID"]
    assert running["Size"] == "16B (virtual 1.15MB)"
    top = json.loads(analyze(root, "inspect", "busybox"))[0]
    assert top["Created"] == "2018-12-26T08:20:42.831353376Z"
    # The diff IDs rebuilt from tar-data.json.gz: busybox's layer, then v1's empty one.
    assert top["RootFS"]["Layers"] == [
        "sha256:23bc2b70b2014dec0ac22f27bb93e9babd08cdd6f1115d0c955b9ff22b382f5a",
        EMPTY_LAYER_DIFF_ID]
    assert top["Id"] == "sha256:5153e6e3e1f844baa2df2577c9abb686ca7a1720f5a5922341c8219e1bacbddb"
    assert top["Parent"] == (
        "sha256:1816d18131fd6de6264ecb24d2c7d3b707cb26f2d2d5bd0ed468391242cf3446")
    assert analyze(root, "ls").splitlines()[1].split()[:3] == ["busybox", "latest",
                                                               "5153e6e3e1f8"]
    assert [line.split()[0] for line in analyze(root, "history", "busybox").splitlines()[1:]
            ] == ["5153e6e3e1f8", "1816d18131fd"]


def test_migrated_config_keeps_raw_values_and_sorts_the_top():
    """MakeConfigFromV1Config: a map of raw messages (top keys sorted, values as written,
    HTML-escaped), v1-only keys dropped, rootfs and history added."""
    v1 = {"id": "a" * 64, "parent": "b" * 64, "created": "2016-01-02T03:04:05.5Z",
          "docker_version": "1.9.1", "config": {"Zeta": 1, "Alpha": "<x>"}, "Size": 5}
    history = [{"created": "2016-01-02T03:04:05.5Z"}]
    assert make_config(v1, (DiffID("sha256:" + "c" * 64),), history).decode() == (
        '{"config":{"Zeta":1,"Alpha":"\\u003cx\\u003e"},"created":"2016-01-02T03:04:05.5Z",'
        '"docker_version":"1.9.1","history":[{"created":"2016-01-02T03:04:05.5Z"}],'
        f'"rootfs":{{"type":"layers","diff_ids":["sha256:{"c" * 64}"]}}}}')


def test_migrated_config_of_docker_before_1_8_3_goes_through_v1_image():
    """Before 1.8.3 (or with no docker_version: a v1 JSON a puller wrote) the JSON is
    re-marshalled as Go's V1Image: unknown keys dropped, the time re-formatted, the
    container config as engine-api's struct of Docker 1.10."""
    v1 = {"id": "a" * 64, "created": "2016-01-02T03:04:05.500Z", "Size": 3, "odd": 1,
          "container_config": {"Cmd": "/bin/sh", "Labels": {"b": "2", "a": "1"},
                               "ExposedPorts": {}}}
    got = make_config(v1, (), [])
    assert got.decode() == (
        '{"container_config":{"Hostname":"","Domainname":"","User":"","AttachStdin":false,'
        '"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,'
        '"StdinOnce":false,"Env":null,"Cmd":["/bin/sh"],"Image":"","Volumes":null,'
        '"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"1","b":"2"}},'
        '"created":"2016-01-02T03:04:05.5Z","history":[],'
        '"rootfs":{"type":"layers","diff_ids":[]}}')


BASE_V1 = "df557f39d413a1408f5c28d8aab2892f927237ec22e903ef04b331305130ab38"
TOP_V1 = "1cee97b18f87b5fa91633db35f587e2c65c093facfa2cbbe83d5ebe06e1d9125"


def _loop(root: Path) -> None:
    path = root / "graph" / BASE_V1 / "json"
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "parent": TOP_V1}))


def _wrong_type(root: Path) -> None:
    (root / "graph" / BASE_V1 / "json").write_text('{"container_config": [1]}')


def _linked_json(root: Path) -> None:
    (root / "graph" / TOP_V1 / "json").unlink()
    (root / "graph" / TOP_V1 / "json").symlink_to("/etc/passwd")


def _file_gone(root: Path) -> None:
    (root / "aufs" / "diff" / BASE_V1 / "bin" / "[").unlink()


@pytest.mark.parametrize("damage, why, left", [
    (_loop, "parent chain broken (it loops back)", ""),
    (_wrong_type, "container_config: cannot unmarshal array", ""),
    (_linked_json, "is a symbolic link to '/etc/passwd'; not followed", "1816d18131fd\n"),
    (_file_gone, f"aufs/diff/{BASE_V1}/bin/[: No such file or directory; image not migrated",
     ""),
])
def test_pre_1_10_damage_is_warned_and_the_image_not_migrated(snapshots, tmp_path, damage,
                                                              why, left):
    """As Docker 1.10's migration skipped an image it could not migrate (and the images
    above it), those are not listed, and the warning names the file and why."""
    root = tmp_path / "docker"
    subprocess.run(["cp", "-a", str(snapshots["aufs.v1"]), str(root)], check=True)
    damage(root)
    out, err, rc = run_analyze(root, AS_OF, ["ls", "-a", "-q"])
    assert (out, rc) == (left, 0)
    assert why in err and "Traceback" not in err
    assert err.startswith("analyze: warning: ")


@pytest.mark.parametrize("name", ["aufs.v1", "aufs.v2", "overlay.v2"])
def test_the_archive_as_acquired_answers_as_unpacked(snapshots, name):
    """docker-explorer's .tgz read in place (its top folder followed): the same images
    and containers, the IDs derived the same way."""
    for args in (["ls", "-a", "-q", "--no-trunc"], ["ps", "-a", "-q", "--no-trunc"]):
        out, err, rc = run_analyze(FIXTURES / f"{name}.tgz", AS_OF, args)
        assert rc == 0 and "warning" not in err, err
        assert out == analyze(snapshots[name], *args)
