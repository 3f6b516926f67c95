"""``docker image history`` on the containerd image store, as dockerd 28.5 builds it.

Rows come from the host platform's config history, newest first; a non-empty step's
size is the usage of the snapshot of the chain up to its layer (0 when that snapshot
is gone); a missing creation time is Unix 0. The first row carries the image's ID,
the next ones those of its classic-builder parents while they are found.

References: moby v28.5.2 daemon/containerd/image_history.go (ImageHistory),
image_children.go (getParentsByBuilderLabel).
"""
from __future__ import annotations

from typing import Callable, Sequence

from ..containerdmodel import Image as Record
from ..goapi.time import ParseError, parse
from ..ids import ChainID, DiffID, chain_id_from_parent
from ..model import Image
from .history import MISSING, HistoryItem
from .containerdlisting import RFC3339NANO
from .containerdrmi import PARENT_LABEL


def _unix(created: object) -> int:
    if not isinstance(created, str) or not created:
        return 0
    try:
        return parse(RFC3339NANO, created, 0) // 1_000_000_000
    except ParseError:
        return 0


def image_history(record: Record, image: Image, records: Sequence[Record],
                  usage: Callable[[ChainID], int | None]) -> list[HistoryItem]:
    """Args:
        usage: Usage(chain ID).Size of the moby namespace's snapshot; None when absent.
    """
    sizes: list[int] = []
    chain: ChainID | None = None
    for diff_id in image.diff_ids:
        chain = chain_id_from_parent(chain, DiffID(diff_id))
        sizes.append(usage(chain) or 0)
    items: list[HistoryItem] = []
    for entry in image.config.get("history") or ():
        if not isinstance(entry, dict):
            continue
        size = 0
        if not entry.get("empty_layer"):
            if not sizes:
                raise ValueError("unable to find the size of the layer")
            size = sizes.pop(0)
        items.append(HistoryItem(MISSING, _unix(entry.get("created")),
                                 entry.get("created_by") or "", size, entry.get("comment") or ""))
    items.reverse()
    current = record
    for i, item in enumerate(items):
        items[i] = HistoryItem(current.target.digest, item.created, item.created_by, item.size,
                               item.comment)
        parent_id = current.labels.get(PARENT_LABEL)
        parents = [r for r in records if parent_id and r.target.digest == parent_id]
        found = None
        for candidate in parents:
            if found is None or PARENT_LABEL in candidate.labels:
                found = candidate
        if found is None:
            break
        current = found
    return items
