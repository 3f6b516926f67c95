"""The bytes a tree holds on disk, as du counts them and as a removal frees them, from
the backend ``analyzer.native`` chose (twin: ``_treeusage_py``): one walk of each tree
(_csrc/walk.c, the walker verify's path index uses too) into a table of its inodes."""
from __future__ import annotations

from .native import impl

__all__ = ["TreeUsage", "attribute", "freed_bytes", "walk_usage"]

TreeUsage = impl.TreeUsage
attribute = impl.attribute
freed_bytes = impl.freed_bytes
walk_usage = impl.walk_usage
