"""`analyze export` writes the members `docker export` wrote (names, types, modes, owners,
sizes, link targets, contents; no mtimes), for containers and for an image (compared
with a container created from it: the init layer is made as the daemon makes it)."""
from __future__ import annotations

import pytest

from tests.oracle.record import cases, check_export

# A recorded export of a container that never ran, and the image it was created from.
CREATED_FROM = {"untouched": "changes/base:1"}


@pytest.mark.parametrize("case", cases("export"), ids=str)
def test_export_matches_docker(oracle, case):
    check_export(oracle[case.scenario], case.index)


@pytest.mark.parametrize("case", [c for c in cases("export") if c.template[1] in CREATED_FROM],
                         ids=str)
def test_image_export_is_a_new_containers(oracle, case):
    check_export(oracle[case.scenario], case.index, CREATED_FROM[case.template[1]])
