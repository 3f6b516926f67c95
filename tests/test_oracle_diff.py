"""`analyze diff` prints what `docker diff` printed, on every recorded container."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_command


@pytest.mark.parametrize("case", cases("diff"), ids=str)
def test_diff_matches_docker(oracle, case):
    check_command(oracle[case.scenario], case.index)

