"""Fixtures of the hostile corpus: pristine roots, read once, and damaged copies of them."""
from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Callable

import pytest

from . import Evidence, Result, analyze, copy_tree, extract_sample, remove_tree


@pytest.fixture(scope="session")
def scratch() -> Path:
    # Not tmp_path: pytest removes old ones with shutil.rmtree, which recurses.
    top = Path(tempfile.mkdtemp(prefix="analyze-hostile-"))
    yield top
    remove_tree(top)


@pytest.fixture(scope="session")
def sample_root(scratch: Path) -> Path:
    return extract_sample(scratch / "sample")


@pytest.fixture(scope="session")
def daemon_roots(oracle) -> dict[str, Path]:
    """The roots the real dockerd made for the oracle tests, by scenario."""
    return {name: rec.root for name, rec in oracle.items()}


@pytest.fixture
def damaged(scratch: Path, request) -> Callable[[Path], Evidence]:
    """A fresh copy of a root, to damage; removed when the test ends."""
    made: list[Path] = []

    def make(source: Path) -> Evidence:
        # A plain name: inspect prints the root's path, JSON-escaped.
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:60]
        dest = scratch / f"{name}-{len(made)}"
        made.append(dest)
        return Evidence(copy_tree(source, dest))
    yield make
    for path in made:
        remove_tree(path)


_BASELINES: dict[tuple[str, tuple[str, ...]], Result] = {}


@pytest.fixture(scope="session")
def baseline() -> Callable[..., Result]:
    """What analyze answers on an undamaged root (each asked once per session)."""
    def get(root: Path, *args: str) -> Result:
        key = (str(root), args)
        if key not in _BASELINES:
            _BASELINES[key] = analyze(root, *args)
        return _BASELINES[key]
    return get
