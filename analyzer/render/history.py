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


# docker/cli: created times up to this one are shown as N/A by the human format.
EPOCH_2000 = 946684800
HEADER = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
          "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}


def _context_values(item: HistoryItem, human: bool, trunc: bool, now: float) -> dict[str, str]:
    """docker/cli historyContext's getters."""
    created_at = format_rfc3339_local(item.created)
    if not human:
        since = created_at
    elif item.created <= EPOCH_2000:
        since = "N/A"
    else:
        since = created_since(item.created, now)
    created_by = item.created_by.replace("\t", " ")
    return {
        "Comment": item.comment,
        "CreatedAt": created_at,
        "CreatedBy": ellipsis(created_by, 45) if trunc else created_by,
        "CreatedSince": since,
        "ID": short_id(item.id) if trunc and item.id != MISSING else item.id,
        "Size": human_size(item.size, 3) if human else str(item.size),
    }


DEFAULT_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
NON_HUMAN_TABLE = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"


def render_history(items: list[HistoryItem], *, human: bool, no_trunc: bool, quiet: bool,
                   now: float, fmt: str = "table") -> str:
    """NewHistoryFormat: ``table`` is the default table (IDs with -q, times as RFC 3339
    with -H=false); any other format is a template, where -q does not apply."""
    from .formatter import context, header_context, write
    if fmt == "table":
        fmt = "{{.ID}}" if quiet else DEFAULT_TABLE if human else NON_HUMAN_TABLE
    rows = [context("image.historyContext", _context_values(item, human, not no_trunc, now))
            for item in items]
    return write(fmt, rows, header_context(HEADER))
