"""`analyze df [-v]` prints what `docker system df [-v]` printed, byte for byte
(local volume sizes and build cache included; only rows of images created in the
same second may come in another order, as Docker's own order is random there)."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_command, load_sample_truth, sample_cases


@pytest.mark.parametrize("case", cases("df"), ids=str)
def test_df_matches_docker(oracle, case):
    check_command(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", sample_cases("df"), ids=str)
def test_df_matches_docker_on_sample(case):
    check_command(load_sample_truth(), case.index)
