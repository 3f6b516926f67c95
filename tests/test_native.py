"""The native module's face: one policy picks one backend for every surface.

As python-zstandard's tests/test_module_attributes.py does, the two backends are held to
the same names, and the policy (``ANALYZER_DIGEST``) is checked in fresh interpreters.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from analyzer import _fastdigest, _native_py

REPO = Path(__file__).resolve().parents[1]
FRONTS = ("digest", "thinloops", "nativeio", "pathindex", "treeusage", "layerrecords")


def run_python(code: str, **env: str | None) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter; env entries set to None are removed."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO)}
    for key, value in env.items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_backends_export_the_same_names():
    public = {n for n in dir(_fastdigest)
              if not n.startswith("_") and not isinstance(getattr(_fastdigest, n), ModuleType)}
    assert set(_native_py.__all__) == public - {"set_portable"}
    for name in _native_py.__all__:
        assert callable(getattr(_native_py, name))


@pytest.mark.parametrize("policy,expected", [(None, "native"), ("auto", "native"),
                                             ("native", "native"), ("python", "python")])
def test_analyzer_digest_policy(policy, expected):
    result = run_python("import analyzer.native as n; print(n.BACKEND)", ANALYZER_DIGEST=policy)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_unknown_policy_is_an_import_error():
    result = run_python("import analyzer.digest", ANALYZER_DIGEST="fast")
    assert result.returncode != 0
    assert "ImportError: unknown ANALYZER_DIGEST 'fast': use one of auto, native, python" in result.stderr


@pytest.mark.parametrize("policy,module", [("native", "_fastdigest"), ("python", "_native_py")])
def test_every_front_follows_the_policy(policy, module):
    """ANALYZER_DIGEST=python reaches every native path, the metadata reader and verify's
    opener included; the extension is then not even imported."""
    code = f"""
import sys
from analyzer import {", ".join(FRONTS)}, {module} as want
from analyzer.sources.evidence import directory
for front in ({", ".join(FRONTS)}):
    for name in front.__all__:
        if name != "HAVE_OPENAT2":
            assert getattr(front, name) is getattr(want, name), (front.__name__, name)
assert directory._read_files is want.read_files and directory._hash_file_at is want.hash_file_at
print("analyzer._fastdigest" in sys.modules)
"""
    result = run_python(code, ANALYZER_DIGEST=policy)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(policy == "native")


def test_portable_from_environment():
    result = run_python("from analyzer import _fastdigest as f; print(sorted(f.features().items()))",
                        ANALYZER_DIGEST_PORTABLE="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("[('openat2', True), ('pclmul', False), ('sha_ni', False), "
                                     "('sse42', False)]")
