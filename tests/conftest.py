"""Session fixtures shared by the test modules."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.oracle import record


@pytest.fixture(scope="session")
def oracle() -> dict[str, record.Recording]:
    """Every oracle scenario recorded once per session with the real dockerd.

    With ANALYZER_ORACLE_CACHE set, recordings are kept there between runs (keyed by a
    hash of tests/oracle/*.py); otherwise they live in a temporary directory.
    """
    cache = record.cache_root()
    if cache is not None:
        yield record.ensure_recorded(cache)
        return
    with tempfile.TemporaryDirectory(prefix="oracle-cache-") as tmp:
        yield record.ensure_recorded(Path(tmp))
