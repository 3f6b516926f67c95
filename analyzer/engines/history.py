"""``docker image history`` as dockerd 20.10 builds it: one item per history entry,
newest first, each non-empty one sized by its layer's DiffSize.

References: moby v20.10 daemon/images/image_history.go (ImageHistory).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DaemonError
from ..goapi.time import GO_ZERO_UNIX, parse_rfc3339_ns
from ..ids import ChainID, chain_id_from_parent
from ..model import Image, Store

# The ID of an item no image of the parent chain stands for.
MISSING = "<missing>"


@dataclass(frozen=True, slots=True)
class HistoryItem:
    id: str
    created: int
    created_by: str
    size: int
    comment: str


def image_history(store: Store, image: Image) -> list[HistoryItem]:
    """Newest first; the image's own ID on the first row, then its parents' IDs.

    Raises:
        DaemonError: the config lists more non-empty history entries than diff IDs,
            with dockerd's message (a plain error: the CLI gets a 500 and exits 1).
    """
    items: list[HistoryItem] = []
    chain: ChainID | None = None
    layer_no = 0
    for entry in image.config.get("history") or ():
        size = 0
        if not entry.get("empty_layer"):
            if layer_no >= len(image.diff_ids):
                raise DaemonError("too many non-empty layers in History section")
            chain = chain_id_from_parent(chain, image.diff_ids[layer_no])
            layer = store.layers.get(chain)
            size = layer.diff_size if layer is not None else 0
            layer_no += 1
        created = entry.get("created")
        items.append(HistoryItem(MISSING, _unix(created), entry.get("created_by") or "",
                                 size, entry.get("comment") or ""))
    items.reverse()
    # Fill in the IDs of the image and its parents, top down.
    for i, (item, current) in enumerate(zip(items, store.ancestry(image))):
        items[i] = HistoryItem(current.id, item.created, item.created_by, item.size, item.comment)
    return items


def _unix(created: object) -> int:
    if not isinstance(created, str) or not created:
        return GO_ZERO_UNIX
    return parse_rfc3339_ns(created) // 1_000_000_000
