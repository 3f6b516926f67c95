"""The thin-pool loops, from the backend ``analyzer.native`` chose: CRC-32C of metadata
blocks and bulk accounting over mapping-tree leaves (twin: ``_thin_py``)."""
from __future__ import annotations

from .native import impl

__all__ = ["crc32c", "thin_count_eq", "thin_keys_ok", "thin_mark", "thin_tally"]

crc32c = impl.crc32c
thin_keys_ok = impl.thin_keys_ok
thin_tally = impl.thin_tally
thin_count_eq = impl.thin_count_eq
thin_mark = impl.thin_mark
