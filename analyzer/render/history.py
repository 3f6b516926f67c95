"""``docker image history`` as the Docker 28 CLI prints it.

References: docker/cli cli/command/formatter/history.go.
"""
from __future__ import annotations

from ..engines.history import MISSING, HistoryItem
from ..goapi.time import format_rfc3339_local
from ..goapi.units import human_size
from ..ids import short_id
from .displayutils import ellipsis
from .images import created_since
from .table import render_table


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
