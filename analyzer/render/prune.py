"""``docker image prune`` as the Docker 28 CLI prints it.

References: docker/cli v28 cli/command/image/prune.go (runPrune).
"""
from __future__ import annotations

from typing import Iterable

from ..engines.rmi import Record
from ..goapi.units import human_size


def format_prune(records: Iterable[Record], space_reclaimed: int) -> str:
    """What ``docker image prune`` prints on stdout (runPrune)."""
    lines = [f"{r.kind.lower()}: {r.value}\n" for r in records]
    head = "Deleted Images:\n" + "".join(lines) + "\n" if lines else ""
    return f"{head}Total reclaimed space: {human_size(space_reclaimed)}\n"
