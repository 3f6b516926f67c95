"""`analyze rm|prune` against `docker image rm|prune`, run in sequence on the oracle's
scenarios: each case has the snapshot taken just before Docker ran it.

- the output: byte-identical stdout and stderr and the same exit status (prune's
  "Deleted Images:" lines as a multiset: Docker walks a Go map);
- the bytes: `reclaim ... --json` / `prune ... --json` `bytes_freed` within one
  filesystem block of what `du -s -B1` of the live root lost.
"""
from __future__ import annotations

import pytest

from tests.oracle.record import (check_rm_bytes, check_rm_output, load_sample_truth, rm_cases,
                                 sample_rm_cases)


@pytest.mark.parametrize("case", rm_cases(), ids=str)
def test_rm_output_matches_docker(oracle, case):
    check_rm_output(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", rm_cases(priced=True), ids=str)
def test_rm_bytes_freed_match_du(oracle, case):
    check_rm_bytes(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", sample_rm_cases(), ids=str)
def test_rm_output_matches_docker_on_sample(case):
    check_rm_output(load_sample_truth(), case.index)


@pytest.mark.parametrize("case", sample_rm_cases(), ids=str)
def test_rm_bytes_freed_match_du_on_sample(case):
    check_rm_bytes(load_sample_truth(), case.index)
