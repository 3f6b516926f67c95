"""``docker image history``, as dockerd 20.10 builds it and the Docker 28 CLI prints it.

References: moby v20.10 daemon/images/image_history.go (ImageHistory);
docker/cli cli/command/formatter/history.go.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..goapi.time import GO_ZERO_UNIX, format_rfc3339_local, parse_rfc3339_ns
from ..goapi.units import human_size
from ..ids import ChainID, chain_id_from_parent, short_id
from ..model import Image, Store
from .displayutils import ellipsis
from .images import created_since
from .table import render_table

MISSING = "<missing>"


@dataclass(frozen=True, slots=True)
class HistoryItem:
    id: str
    created: int
    created_by: str
    size: int
    comment: str


def image_history(store: Store, image: Image) -> list[HistoryItem]:
    """Newest first; the image's own ID on the first row, then its parents' IDs."""
    items: list[HistoryItem] = []
    chain: ChainID | None = None
    layer_no = 0
    for entry in image.config.get("history") or ():
        size = 0
        if not entry.get("empty_layer"):
            if layer_no >= len(image.diff_ids):
                raise ValueError("too many non-empty layers in History section")
            chain = chain_id_from_parent(chain, image.diff_ids[layer_no])
            layer = store.layers.get(chain)
            size = layer.diff_size if layer is not None else 0
            layer_no += 1
        created = entry.get("created")
        items.append(HistoryItem(MISSING, _unix(created), entry.get("created_by") or "",
                                 size, entry.get("comment") or ""))
    items.reverse()
    # Fill in the IDs of the image and its parents, top down.
    current: Image | None = image
    for i, item in enumerate(items):
        if current is None:
            break
        items[i] = HistoryItem(current.id, item.created, item.created_by, item.size, item.comment)
        current = store.images.get(current.parent) if current.parent else None
    return items


def _unix(created: object) -> int:
    if not isinstance(created, str) or not created:
        return GO_ZERO_UNIX
    return parse_rfc3339_ns(created) // 1_000_000_000


def render_history(items: list[HistoryItem], *, human: bool, no_trunc: bool, quiet: bool,
                   now: float) -> str:
    def hid(item: HistoryItem) -> str:
        return item.id if no_trunc or item.id == MISSING else short_id(item.id)

    if quiet:
        return "".join(f"{hid(i)}\n" for i in items)
    rows = []
    for item in items:
        if human:
            created = created_since(item.created, now) or "N/A"
            size = human_size(item.size, 3)
        else:
            created = format_rfc3339_local(item.created)
            size = str(item.size)
        created_by = item.created_by.replace("\t", " ")
        if not no_trunc:
            created_by = ellipsis(created_by, 45)
        rows.append([hid(item), created, created_by, size, item.comment])
    return render_table(["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"], rows)
