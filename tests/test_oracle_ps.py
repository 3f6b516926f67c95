"""`analyze ps` prints what `docker ps` printed, on every oracle scenario."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_command, load_sample_truth, sample_cases


@pytest.mark.parametrize("case", cases("ps"), ids=str)
def test_ps_matches_docker(oracle, case):
    check_command(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", sample_cases("ps"), ids=str)
def test_ps_matches_docker_on_sample(case):
    check_command(load_sample_truth(), case.index)
