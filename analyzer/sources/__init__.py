"""Readers of evidence: one module per format, found by what a root holds.

A source is a module with ``KIND``, ``detect(roots)`` and ``read(roots, found)``
(the :class:`Source` protocol below) and one line in ``registry.SOURCES``. It
reads only through the evidence roots it is given, by name (``layout.DATA_ROOT``
is the data root; a containerd root comes beside it), and builds the model.

References: fox-it dissect.target loaders (detect, then map); go-containerregistry
pkg/v1/{layout,tarball,remote} (one package per source behind one interface).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, NamedTuple, Protocol

from ..model import Diagnostic, Store

if TYPE_CHECKING:
    from .evidence import EvidenceRoot

# The evidence roots of one analysis by name, each its own boundary.
Roots = Mapping[str, "EvidenceRoot"]


class Detected(NamedTuple):
    """What a source found in the roots, and what it chose there."""
    kind: str                                # the source's KIND: "graphdriver"
    format: str                              # what exactly: the graph driver's name
    notes: tuple[Diagnostic, ...] = ()       # choices worth a warning


class Source(Protocol):
    """One evidence format: the registry asks each in turn, by content."""
    KIND: str

    def detect(self, roots: Roots) -> Detected | None:
        """What this source finds in the roots, or None when they hold none of it."""

    def read(self, roots: Roots, found: Detected) -> Store:
        """The model, read tolerantly: damage becomes ``Store.diagnostics``."""
