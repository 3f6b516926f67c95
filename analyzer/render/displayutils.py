"""Text cut to display columns, as the Docker CLI's formatter does.

References: docker/cli cli/command/formatter/displayutils.go (Ellipsis, charWidth),
cli/command/formatter/tabwriter/tabwriter.go (updateWidth: go-runewidth's StringWidth).
"""
from __future__ import annotations

import re
import unicodedata

# What go-runewidth counts zero wide before its tables: C0, DEL, C1 and the soft hyphen.
_NONPRINT = re.compile("[\x00-\x1f\x7f-\x9f\xad]")


def ellipsis(text: str, max_width: int) -> str:
    """docker/cli formatter.Ellipsis: cut to max_width display columns, ending in '…'."""
    if max_width <= 0:
        return ""
    if width(text) <= max_width:
        return text
    if max_width == 1:
        return "…"
    out, used = [], 0
    for ch in text:
        w = _char_width(ch)
        if used + w > max_width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def width(text: str) -> int:
    """Display columns of ``text``: wide East Asian characters count two, combining ones none."""
    if text.isascii():
        return len(text)
    return sum(_char_width(c) for c in text)


def cell_width(text: str) -> int:
    """Columns the Docker CLI's tabwriter gives a cell (go-runewidth): as :func:`width`,
    but control characters take none — an ESC in a label does not widen its column."""
    if text.isascii() and text.isprintable():
        return len(text)
    return width(_NONPRINT.sub("", text))
