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


@pytest.mark.parametrize("source", ["save20", "save28"])
def test_history_as_the_saving_daemon_printed_it(image_archives, source):
    """Rows, IDs, creation times, CREATED BY and comments; SIZE is the blob's (see
    imagearchive: an archive holds no unpacked layer to measure)."""
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


def test_a_truncated_tar_zst_is_named(image_archives, tmp_path):
    whole = image_archives.path("multi", "tar.zst").read_bytes()
    cut = tmp_path / "multi.tar.zst"
    cut.write_bytes(whole[:len(whole) // 2])
    proc = analyze(cut, "ls")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(cut) in proc.stderr
