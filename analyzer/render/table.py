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
    lines = [header, *rows]
    if not header:
        return ""
    last = len(header) - 1
    # Each cell's width once (10,000 rows at scale): for its column's, then its padding.
    widths = [[cell_width(cell) for cell in line] for line in lines]
    columns = [0] * last
    for line_widths in widths:
        for i, w in enumerate(line_widths[:-1]):      # a line's last cell widens nothing
            if w > columns[i]:
                columns[i] = w
    pads = [max(MIN_WIDTH, w + PADDING) for w in columns]
    out = []
    for line, line_widths in zip(lines, widths):
        out.append("".join([cell if i == last else cell + " " * (pads[i] - w)
                            for i, (cell, w) in enumerate(zip(line, line_widths))]) + "\n")
    return "".join(out)
