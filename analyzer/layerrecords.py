"""The layer store's records checked in bulk, from the backend ``analyzer.native`` chose
(twin: ``_layerrecords_py``): which of a big layer store's records are plain -- what a
sound store holds, taken as they stand -- so that the loader reasons only about the rest.
"""
from __future__ import annotations

from .native import impl

__all__ = ["plain_layers"]

plain_layers = impl.plain_layers
