"""Numbers and times as the Docker CLI prints them.

References: docker/go-units size.go (HumanSizeWithPrecision), duration.go
(HumanDuration); Go strconv.Quote; docker/cli formatter Ellipsis.
"""
from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(size: float, precision: int = 4) -> str:
    """go-units HumanSizeWithPrecision: decimal units, repeated float division, %g."""
    value = float(size)
    i = 0
    while value >= 1000.0 and i < len(_UNITS) - 1:
        value /= 1000.0
        i += 1
    return "%.*g%s" % (precision, value, _UNITS[i])


def human_duration(seconds: float) -> str:
    """go-units HumanDuration of a duration in seconds."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)      # Go: int(d.Hours() + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def go_quote(text: str) -> str:
    """Go strconv.Quote for the printable text Docker quotes (commands, references)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif code < 0x20 or code == 0x7F:
            out.append("\\x%02x" % code)
        elif not ch.isprintable() and code > 0x7F:
            out.append("\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ellipsis(text: str, max_width: int) -> str:
    """docker/cli formatter.Ellipsis: cut to max_width display columns, ending in '…'."""
    if max_width <= 0:
        return ""
    if _width(text) <= max_width:
        return text
    if max_width == 1:
        return "…"
    out, width = [], 0
    for ch in text:
        w = _char_width(ch)
        if width + w > max_width - 1:
            break
        out.append(ch)
        width += w
    return "".join(out) + "…"


def _char_width(ch: str) -> int:
    import unicodedata
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(_char_width(c) for c in text)
