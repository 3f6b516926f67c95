"""Session fixtures shared by the test modules."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.oracle import archives, record


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


@pytest.fixture(scope="session")
def image_archives(tmp_path_factory) -> archives.Archives:
    """Image archives made once per session by dockerd 20.10 and skopeo (see
    tests/oracle/archives.py), kept in ANALYZER_ORACLE_CACHE when it is set."""
    cache = record.cache_root()
    if cache is None:
        return archives.ensure_recorded(tmp_path_factory.mktemp("archives"))
    return archives.ensure_recorded(record.keyed_cache(cache))
