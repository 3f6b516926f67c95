"""`analyze export` writes the members `docker export` wrote (names, types, modes, owners,
sizes, link targets, contents; no mtimes), for containers and for an image (compared
with a container created from it: the init layer is made as the daemon makes it)."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from tests.oracle.record import cases, check_export, run_analyze, tar_members

# A recorded export of a container that never ran, and the image it was created from.
CREATED_FROM = {"untouched": "changes/base:1"}


@pytest.mark.parametrize("case", cases("export"), ids=str)
def test_export_matches_docker(oracle, case):
    check_export(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", [c for c in cases("export") if c.template[1] in CREATED_FROM],
                         ids=str)
def test_image_export_is_a_new_containers(oracle, case):
    check_export(oracle[case.scenario], case.index, CREATED_FROM[case.template[1]])


@pytest.mark.parametrize("name", ["changes", "changes28"])
def test_type_bits_follow_the_flag(oracle, name):
    """dockerd 20.10 ("changes") wrote the file type bits into tar modes, 28.5
    ("changes28") permission bits only; ``--type-bits`` overrides what the root says."""
    rec = oracle[name]
    entry = next(c for c in rec.data["commands"] if c["docker"] == ["export", "changer"])
    flag = "off" if name == "changes" else "on"
    with tempfile.TemporaryDirectory(prefix="analyze-export-") as tmp:
        out = Path(tmp, "out.tar")
        _, err, rc = run_analyze(rec.root, entry["t_after"], ["export", "changer", "-o",
                                                              str(out), "--type-bits", flag])
        assert rc == 0, err
        got = tar_members(out.read_bytes())
    # A member line: name, type, mode, ...; the type bits are the mode's digits above 0o7777.
    mode = re.compile(r"^(\S+ \S+ )(\d+)", re.M)

    def permissions(members: str) -> str:
        return mode.sub(lambda m: m.group(1) + f"{int(m.group(2), 8) & 0o7777:o}", members)
    assert got != entry["stdout"] and permissions(got) == permissions(entry["stdout"])
