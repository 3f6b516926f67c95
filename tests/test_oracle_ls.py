"""`analyze ls` prints what `docker image ls` printed, on every oracle scenario."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_command, load_sample_truth, problems, sample_cases


@pytest.mark.parametrize("case", cases("ls"), ids=str)
def test_ls_matches_docker(oracle, case):
    check_command(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", sample_cases("ls"), ids=str)
def test_ls_matches_docker_on_sample(case):
    check_command(load_sample_truth(), case.index)


def test_recordings_are_sound(oracle):
    """The harness itself: commands ran as written, snapshots exist, comparisons accept
    Docker's own output, and the rm sequences are as long as they should be."""
    found = [p for rec in oracle.values() for p in problems(rec)]
    found += problems(load_sample_truth())
    assert not found, "\n".join(found)
    assert sum(len(rec.data["rm"]) for rec in oracle.values()) >= 45
