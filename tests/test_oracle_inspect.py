"""`analyze inspect` prints a JSON array holding every key and value that
`docker image inspect` printed (extra keys allowed), with Docker's stderr and exit
status. GraphDriver paths name the snapshot instead of the daemon's data root;
keys exempt from the comparison are listed, with the reason, in
``record.INSPECT_EXEMPT``."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_command


@pytest.mark.parametrize("case", cases("inspect"), ids=str)
def test_inspect_matches_docker(oracle, case):
    check_command(oracle[case.scenario], case.index)
