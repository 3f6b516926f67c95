"""verify on a tar of a data root: the same verdicts as on the directory, read in place."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "examples", "sample-root.tar.gz")


def verify(root: str) -> tuple[dict, int, str]:
    out = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", root, "verify",
                          "--json"], capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout), out.returncode, out.stderr


def verdicts(doc: dict) -> dict:
    return {l["chain_id"]: (l["status"], l["fault"], l["diff_id"],
                            sorted((b["path"], b["reason"]) for b in l["bad_files"]))
            for l in doc["layers"]}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    top = tmp_path_factory.mktemp("sample") / "root"
    top.mkdir()
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(top, filter="fully_trusted")
    return top


def test_archive_and_directory_agree(extracted):
    """The sample tar records xattrs as PAX records, and verify compares them in place;
    Python's extraction drops xattrs, so the extracted copy's opaque directory has lost
    trusted.overlay.opaque — the only difference verify finds there."""
    from_tar, rc_tar, err = verify(SAMPLE)
    assert rc_tar == 0 and err == ""
    assert from_tar["layers"] and all(l["status"] == "ok" for l in from_tar["layers"])
    from_dir, rc_dir, _ = verify(str(extracted))
    assert rc_dir == 1
    tar_v, dir_v = verdicts(from_tar), verdicts(from_dir)
    assert tar_v.keys() == dir_v.keys()
    for chain, (status, fault, diff_id, bad) in dir_v.items():
        if bad:
            assert (status, fault) == ("mismatch", "metadata")
            details = [b["detail"] for l in from_dir["layers"] if l["chain_id"] == chain
                       for b in l["bad_files"]]
            assert all("trusted.overlay.opaque" in d for d in details)
        else:
            assert (status, fault, diff_id, bad) == tar_v[chain]


def test_changed_byte_in_an_archive_is_named(extracted, tmp_path):
    """Re-tar the sample with one byte of one layer file changed."""
    victim = None
    out = tmp_path / "tampered.tar"
    with tarfile.open(SAMPLE) as src, tarfile.open(out, "w") as dst:
        for info in src:
            data = src.extractfile(info).read() if info.isreg() else None
            if victim is None and info.isreg() and "/diff/" in info.name and info.size > 0:
                victim = info.name
                data = bytes([data[0] ^ 1]) + data[1:]
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    assert victim is not None
    doc, rc, _ = verify(str(out))
    assert rc == 1
    bad = [(l["cache_id"], b["path"], b["reason"]) for l in doc["layers"] for b in l["bad_files"]]
    cache_id, path = victim.split("/overlay2/", 1)[1].split("/diff/", 1)
    assert bad == [(cache_id, path, "changed")]
    assert [l["status"] for l in doc["layers"] if l["bad_files"]] == ["mismatch"]


def _retar(tmp_path, name: str, change) -> str:
    out = tmp_path / name
    with tarfile.open(SAMPLE) as src, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as dst:
        for info in src:
            data = src.extractfile(info).read() if info.isreg() else None
            info, data = change(info, data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(out)


def test_archive_without_xattrs_says_it_cannot_compare_them(tmp_path):
    def drop_xattrs(info, data):
        info.pax_headers = {k: v for k, v in info.pax_headers.items()
                            if not k.startswith("SCHILY.xattr.")}
        return info, data
    doc, rc, err = verify(_retar(tmp_path, "plain.tar", drop_xattrs))
    assert rc == 0 and "records no extended attributes" in err
    assert all(l["status"] == "ok" for l in doc["layers"])


def test_setuid_added_in_an_archive_is_named(tmp_path):
    victim = []

    def setuid(info, data):
        if not victim and info.isreg() and "/diff/" in info.name:
            victim.append(info.name)
            info.mode |= 0o4000
        return info, data
    doc, rc, _ = verify(_retar(tmp_path, "suid.tar", setuid))
    assert rc == 1
    bad = [(b["path"], b["reason"]) for l in doc["layers"] for b in l["bad_files"]]
    assert bad == [(victim[0].split("/diff/", 1)[1], "metadata")]
