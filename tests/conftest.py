"""Session fixtures shared by the test modules."""
from __future__ import annotations

import compileall
import os
import subprocess
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


# Where a run records when ANALYZER_ORACLE_CACHE is not set: made by the process that
# runs the session (pytest-xdist's controller, or pytest alone), handed to the workers,
# removed at the end; its workers record into it once (record.recording_lock) and share it.
_RUN_DIR = pytest.StashKey[Path]()


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        config.stash[_RUN_DIR] = Path(tempfile.mkdtemp(prefix="oracle-cache-"))
        # The tests start `python -m analyzer` thousands of times (the oracle's cases at
        # each candidate time, the hostile roots): its bytecode is written once here, or
        # under PYTHONDONTWRITEBYTECODE every child compiles every module again (half the
        # CPU of a short command). A module edited later is recompiled, as always.
        compileall.compile_dir(record.REPO / "analyzer", quiet=1)


def pytest_unconfigure(config):
    """The run's directory (the recordings' snapshots of data roots: 1.5 GB in 120,000
    files) is removed by an `rm -rf` of its own that the session does not wait for:
    freeing the blocks is the disk's work (15 to 70 seconds of it on a machine like CI's), which
    nothing after the session needs done."""
    if not hasattr(config, "workerinput"):
        subprocess.Popen(["rm", "-rf", "--", str(config.stash[_RUN_DIR])],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """pytest-xdist: each worker is told the run's directory."""
    node.workerinput["oracle_run_dir"] = str(node.config.stash[_RUN_DIR])


def _oracle_cache(config) -> Path:
    """ANALYZER_ORACLE_CACHE (kept between runs), or this run's directory."""
    if (cache := record.cache_root()) is not None:
        return cache
    if hasattr(config, "workerinput"):
        return Path(config.workerinput["oracle_run_dir"])
    return config.stash[_RUN_DIR]


@pytest.fixture(scope="session")
def oracle(pytestconfig) -> dict[str, record.Recording]:
    """Every oracle scenario recorded once per run with the real dockerd (recordings
    are keyed by a hash of tests/oracle/*.py)."""
    return record.ensure_recorded(_oracle_cache(pytestconfig))


@pytest.fixture(scope="session")
def image_archives(pytestconfig) -> archives.Archives:
    """Image archives made once per run by dockerd 20.10 and skopeo (see
    tests/oracle/archives.py)."""
    return archives.ensure_recorded(record.keyed_cache(_oracle_cache(pytestconfig)))
