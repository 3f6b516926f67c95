"""What a data root tells of the daemon that wrote it.

References: moby v23.0.0 daemon/daemon.go (loadOrCreateID: ``engine-id``, which
v20.10 does not write).
"""
from __future__ import annotations

from . import layout
from .evidence import EvidenceRoot


def written_by_docker_23(root: EvidenceRoot) -> bool:
    """Docker 23 or later has started on this root: it holds ``engine-id``."""
    return root.lstat(layout.ENGINE_ID) is not None
