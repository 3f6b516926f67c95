"""Which backend serves every native surface: the extension, or its pure-Python twins.

One policy for every surface (digests, thin-pool loops, bulk reading, the path index,
the layer store's records), as python-zstandard's ``PYTHON_ZSTANDARD_IMPORT_POLICY`` is:
``ANALYZER_DIGEST`` is read once, at import -- ``auto`` (default: the extension if it is
built, else the twins), ``native`` or ``python``; anything else raises ImportError.
``impl`` is the module chosen, ``_fastdigest`` or ``_native_py``: both export the same
names (see ``_fastdigest.pyi``). The fronts ``digest``, ``thinloops``, ``nativeio``,
``pathindex``, ``treeusage`` and ``layerrecords`` take theirs from it; code imports the
fronts, never a backend.
"""
from __future__ import annotations

import os
from types import ModuleType

__all__ = ["BACKEND", "POLICIES", "features", "impl"]

POLICIES = ("auto", "native", "python")


def _choose(policy: str) -> tuple[ModuleType, str]:
    if policy not in POLICIES:
        raise ImportError(f"unknown ANALYZER_DIGEST {policy!r}: use one of {', '.join(POLICIES)}")
    if policy != "python":
        try:
            from analyzer import _fastdigest
            return _fastdigest, "native"
        except ImportError:
            if policy == "native":
                raise
    from analyzer import _native_py
    return _native_py, "python"


impl, BACKEND = _choose(os.environ.get("ANALYZER_DIGEST", "auto"))
features = impl.features
