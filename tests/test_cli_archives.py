"""analyze on image archives, end to end: ls, inspect, history, verify and reclaim agree
with what the real tools recorded (tests/oracle/archives.py); rm, prune and df are not
theirs to answer."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.oracle import archives
from tests.oracle.record import REPO

# Flavours that read differently: a directory in place, a tar streamed through zstd.
FLAVOURS = ("dir", "tar.zst")
AS_OF = "2026-01-01T00:00:00Z"


def analyze(path, *args: str, option: str = "--source") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer", option, str(path), "--as-of", AS_OF,
                           *args], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "TZ": "UTC", "LC_ALL": "C.UTF-8",
                               "PYTHONPATH": str(REPO)})


def host_images(image_archives, source: str) -> list[dict]:
    host = image_archives.truth["host_platform"]
    return [i for i in image_archives.images(source) if i["platform"] == host]


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("source", ["save20", "save28", "savecd", "gzip", "multi", "index"])
def test_ls_names_and_ids(image_archives, source, flavour):
    proc = analyze(image_archives.path(source, flavour), "ls", "--no-trunc", "--format", "json")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    got = {(r["ID"], f"{r['Repository']}:{r['Tag']}") for r in rows}
    want = {(i["id"], name) for i in host_images(image_archives, source) for name in i["names"]}
    assert got == want
    assert {name for _, name in got} == set(image_archives.truth["sources"][source]["loaded"])


def test_ls_all_lists_every_platform(image_archives):
    proc = analyze(image_archives.path("nested", "tar.gz"), "ls", "-a", "-q", "--no-trunc")
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) == {i["id"] for i in image_archives.images("nested")}


@pytest.mark.parametrize("source", ["save28", "zstd", "index"])
def test_inspect_by_name(image_archives, source):
    for want in host_images(image_archives, source):
        for name in want["names"]:
            proc = analyze(image_archives.path(source, "tar"), "inspect", name)
            assert proc.returncode == 0, proc.stderr
            [doc] = json.loads(proc.stdout)
            assert doc["Id"] == want["id"]
            assert doc["RootFS"]["Layers"] == want["diff_ids"]
            assert sorted(doc["RepoTags"]) == sorted(want["names"])


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("source", ["save20", "save28", "savecd", "gzip", "zstd", "plain",
                                    "multi", "archive", "index", "nested"])
def test_sizes_as_docker_load_then_docker_images_print_them(image_archives, source, flavour):
    """SIZE is the layers' once unpacked (dockerd 28.5's graph driver after ``docker
    load``), not the blobs' compressed bytes: ls, history and inspect."""
    truth = image_archives.truth["unpacked"]
    path = image_archives.path(source, flavour)
    proc = analyze(path, "ls", "--no-trunc", "--format", "{{.ID}} {{.Size}}")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rows = {tuple(line.split()) for line in proc.stdout.splitlines()}
    assert rows == {(i["id"], truth[i["id"]]["ls_size"]) for i in host_images(image_archives,
                                                                              source)}
    for image in host_images(image_archives, source):
        proc = analyze(path, "history", "--no-trunc", "--human=false", "--format", "{{.Size}}",
                       image["id"])
        assert proc.returncode == 0, proc.stderr
        assert [int(n) for n in proc.stdout.split()] == truth[image["id"]]["history"]
        if flavour == "dir":
            proc = analyze(path, "inspect", "--format", "{{.Size}}", image["id"])
            assert int(proc.stdout) == truth[image["id"]]["size"], proc.stderr


@pytest.mark.parametrize("flavour", ["dir", "tar.zst"])
@pytest.mark.parametrize("source", ["index", "nested"])
def test_sizes_of_the_other_platform_as_docker_load_prints_them(image_archives, source,
                                                                flavour):
    """The arm64 image ``ls -a`` lists beside the host's: its SIZE and history as
    dockerd 28.5 (graph driver) prints them once it has loaded that image here."""
    truth = image_archives.truth["unpacked"]
    path = image_archives.path(source, flavour)
    others = [i for i in image_archives.images(source)
              if i not in host_images(image_archives, source)]
    assert [i["platform"] for i in others] == ["linux/arm64"]
    proc = analyze(path, "ls", "-a", "--no-trunc", "--format", "{{.ID}} {{.Size}}")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rows = {tuple(line.split()) for line in proc.stdout.splitlines()}
    assert rows == {(i["id"], truth[i["id"]]["ls_size"])
                    for i in image_archives.images(source)}
    for image in others:
        proc = analyze(path, "history", "--no-trunc", "--human=false", "--format",
                       "{{.Size}}", image["id"])
        assert proc.returncode == 0, proc.stderr
        assert [int(n) for n in proc.stdout.split()] == truth[image["id"]]["history"]


@pytest.mark.parametrize("source", ["save20", "save28"])
def test_history_as_the_saving_daemon_printed_it(image_archives, source):
    """Rows, IDs, creation times, CREATED BY and comments."""
    for want in image_archives.images(source):
        proc = analyze(image_archives.path(source, "dir"), "history", "--no-trunc",
                       "--human=false", want["id"])
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()[1:]
        assert len(lines) == len(want["history"])
        for line, row in zip(lines, want["history"]):
            assert line.startswith(row["ID"])
            assert row["CreatedAt"] in line
            assert row["CreatedBy"] in line


@pytest.mark.parametrize("source", ["savecd", "plain", "nested"])
def test_verify_json(image_archives, source):
    proc = analyze(image_archives.path(source, "tar.gz"), "verify", "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["ok"], proc.stdout
    assert {i["id"] for i in doc["images"]} == {i["id"] for i in image_archives.images(source)}
    for layer in doc["layers"]:
        assert layer["status"] == "ok" and layer["blob"]["compressed_ok"]


def test_verify_names_the_tampered_blob(image_archives, tmp_path):
    layout = tmp_path / "zstd"
    shutil.copytree(image_archives.path("zstd", "dir"), layout)
    [image] = image_archives.images("zstd")
    bad = image["layers"][0]["digest"]
    path = layout / "blobs" / "sha256" / bad[7:]
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    proc = analyze(layout, "verify", "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert [lr["blob"]["digest"] for lr in doc["layers"] if lr["status"] != "ok"] == [bad]


@pytest.mark.parametrize("command", [["rm", "oci/b:1"], ["prune", "-a", "-f"], ["df"]])
def test_not_a_data_root(image_archives, command):
    proc = analyze(image_archives.path("multi", "tar"), *command, option="--data-root")
    assert proc.returncode == 2
    assert "not a data root" in proc.stderr and proc.stdout == ""


def test_reclaim_json(image_archives):
    proc = analyze(image_archives.path("multi", "dir"), "reclaim", "a1", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    a, b = image_archives.images("multi")
    assert doc["untagged"] == ["a1:latest"]
    assert sorted(d["digest"] for d in doc["deleted_blobs"]) == sorted(
        [a["manifest"], a["id"], a["layers"][1]["digest"]])
    assert doc["bytes_freed"] == sum(d["bytes"] for d in doc["deleted_blobs"]) > 0
    assert [h["digest"] for h in doc["held_blobs"]] == [a["layers"][0]["digest"]]


@pytest.mark.parametrize("flavour", ["tar.zst", "tar.gz"])
def test_a_truncated_archive_fails_naming_it_and_the_byte(image_archives, tmp_path, flavour):
    """Issue 10 class 6: a cut archive is no shorter archive."""
    whole = image_archives.path("multi", flavour).read_bytes()
    cut = tmp_path / f"multi.{flavour}"
    cut.write_bytes(whole[:len(whole) // 2])
    for command in (["ls"], ["verify", "--json"]):
        proc = analyze(cut, *command)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert str(cut) in proc.stderr and "byte" in proc.stderr, proc.stderr
        assert proc.stdout == ""


def test_a_truncated_layer_blob_in_an_intact_archive_is_a_mismatch(image_archives, tmp_path):
    """The archive is whole; one blob in it is cut: verify names that blob's digest as a
    mismatch and checks the rest, ls lists every image and names the blob."""
    layout = tmp_path / "multi"
    shutil.copytree(image_archives.path("multi", "dir"), layout)
    a, _ = image_archives.images("multi")
    bad = a["layers"][1]["digest"]
    blob = layout / "blobs" / "sha256" / bad[7:]
    blob.write_bytes(blob.read_bytes()[:a["layers"][1]["size"] // 2])
    archive = tmp_path / "multi-cut.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(layout), "."], check=True)
    proc = analyze(archive, "ls", "-q", "--no-trunc")
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) == {i["id"] for i in image_archives.images("multi")}
    assert f"blobs/sha256/{bad[7:]}: " in proc.stderr
    proc = analyze(archive, "verify", "--json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert not doc["ok"] and not doc["complete"]
    bad_layers = [lr for lr in doc["layers"] if lr["status"] != "ok"]
    assert [(lr["blob"]["digest"], lr["status"], lr["blob"]["compressed_ok"])
            for lr in bad_layers] == [(bad, "mismatch", False)]
    assert len(doc["layers"]) > 1
