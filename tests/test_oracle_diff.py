"""`analyze diff` prints what `docker diff` printed, on every recorded container."""
from __future__ import annotations

import tarfile

import pytest

from tests.oracle.record import cases, check_command, run_analyze


@pytest.mark.parametrize("case", cases("diff"), ids=str)
def test_diff_matches_docker(oracle, case):
    check_command(oracle[case.scenario], case.index)


def test_diff_export_and_cp_on_the_containerd_store(oracle, tmp_path):
    """On the containerd store, what its populate script did (the same code was checked
    against dockerd 28.5's docker diff/export/cp once; they are not recorded there,
    as mounting a container's snapshot changes the sizes the other commands recorded)."""
    rec = oracle["containerd"]
    at = rec.data["commands"][0]["t_after"]
    out, err, rc = run_analyze(rec.root, at, ["diff", "exited-ok"])
    # /data, the volume's mount point, is in the RW snapshot or not as runc left it.
    assert rc == 0 and out.replace("A /data\n", "") == "A /blob\nA /rwfile\n", err
    out, err, rc = run_analyze(rec.root, at, ["export", "exited-ok", "-o",
                                              str(tmp_path / "e.tar")])
    assert rc == 0, err
    with tarfile.open(tmp_path / "e.tar") as tar:
        assert tar.extractfile("rwfile").read() == b"rw\n"
        assert tar.getmember("blob").size == 20000 and tar.getmember(".dockerenv").isfile()
    out, err, rc = run_analyze(rec.root, at, ["cp", "exited-ok:/rwfile", str(tmp_path / "rw")])
    assert rc == 0 and (tmp_path / "rw").read_bytes() == b"rw\n", err
