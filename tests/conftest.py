"""Session fixtures shared by the test modules."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

from tests.oracle import archives, record

# The property and fuzz tests draw new examples on every run where people work, so
# that they keep finding faults; CI (HYPOTHESIS_PROFILE=ci, set by .ci/run) draws the
# same examples every time, so that a merge is judged by the code and not by a dice
# roll. A fault either finds is printed with the example that shows it.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# What the extension runs on when a test does not choose (set_portable puts it back).
DEFAULT_PORTABLE = os.environ.get("ANALYZER_DIGEST_PORTABLE", "") not in ("", "0")


@pytest.fixture(params=["native", "native-portable", "python"])
def backend(request):
    """Every native surface on each backend, as python-zstandard runs its suite once per
    policy: the extension on what the CPU and the kernel offer, the extension on its
    portable paths (set_portable: no SHA-NI, PCLMULQDQ or SSE4.2, walks one name at a
    time), and the pure-Python twins (_native_py, the same names)."""
    from analyzer import _fastdigest, _native_py
    if request.param == "python":
        yield _native_py
        return
    _fastdigest.set_portable(request.param == "native-portable")
    try:
        yield _fastdigest
    finally:
        _fastdigest.set_portable(DEFAULT_PORTABLE)


@pytest.fixture
def loops(backend, monkeypatch):
    """The thin-pool reader and the slack engine on one backend's CRC-32C and leaf loops."""
    from tests import dmfixtures
    dmfixtures.use_loops(backend, monkeypatch)
    return backend


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
