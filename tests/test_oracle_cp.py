"""`analyze cp` makes the tree `docker cp` made (names, types, modes, sizes, link targets,
contents), on every recorded copy."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_cp


@pytest.mark.parametrize("case", cases("cp"), ids=str)
def test_cp_matches_docker(oracle, case):
    check_cp(oracle[case.scenario], case.index)
