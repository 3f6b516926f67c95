"""`analyze history` prints what `docker image history` printed (errors included)."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_command, load_sample_truth, sample_cases


@pytest.mark.parametrize("case", cases("history"), ids=str)
def test_history_matches_docker(oracle, case):
    check_command(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", sample_cases("history"), ids=str)
def test_history_matches_docker_on_sample(case):
    check_command(load_sample_truth(), case.index)
