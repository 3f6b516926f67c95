"""Tables laid out as the Docker CLI's tabwriter lays them out.

docker/cli formatter.Context: tabwriter.NewWriter(out, 10, 1, 3, ' ', 0): each
column but the last is padded to max(10, widest cell + 3); the last cell is
written as it is. The header is printed even with no rows.

References: docker/cli cli/command/formatter/formatter.go (postFormat),
docker/cli internal tabwriter (a fork of text/tabwriter).
"""
from __future__ import annotations

from typing import Sequence

from .displayutils import cell_width

MIN_WIDTH = 10
PADDING = 3


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [list(header), *[list(r) for r in rows]]
    if not lines[0]:
        return ""
    ncols = len(header)
    widths = [0] * ncols
    for line in lines:
        for i, cell in enumerate(line[:-1]):
            widths[i] = max(widths[i], cell_width(cell))
    out = []
    for line in lines:
        parts = []
        for i, cell in enumerate(line):
            if i == ncols - 1:
                parts.append(cell)
            else:
                width = max(MIN_WIDTH, widths[i] + PADDING)
                parts.append(cell + " " * (width - cell_width(cell)))
        out.append("".join(parts) + "\n")
    return "".join(out)
