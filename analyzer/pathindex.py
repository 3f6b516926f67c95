"""The compact path index verify keeps a layer's directory in, from the backend
``analyzer.native`` chose (twin: ``_pathindex_py``)."""
from __future__ import annotations

from .native import impl

__all__ = ["PathIndex", "walk_index"]

PathIndex = impl.PathIndex
walk_index = impl.walk_index
