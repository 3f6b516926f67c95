"""Go's ``strconv``: Quote, and ParseInt in base 10 as moby's timestamps use it.

References: Go strconv/quote.go (Quote, appendQuotedWith), strconv/atoi.go (ParseInt).
"""
from __future__ import annotations

import re

_INT = re.compile(r"[+-]?[0-9]+")


# Go's appendEscapedRune: the characters with a one-letter escape.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f",
            "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def quote(text: str) -> str:
    """strconv.Quote for the printable text Docker quotes (commands, references)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        escaped = _ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif code < 0x20 or code == 0x7F:
            out.append("\\x%02x" % code)
        elif not ch.isprintable() and code > 0x7F:
            out.append("\\u%04x" % code if code <= 0xFFFF else "\\U%08x" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def parse_int(text: str) -> int:
    """strconv.ParseInt(s, 10, 64): an optional sign, ASCII digits, in int64.

    Raises:
        ValueError: not such an integer.
    """
    if _INT.fullmatch(text) is None:
        raise ValueError(text)
    number = int(text)
    if not -2**63 <= number < 2**63:
        raise ValueError(text)
    return number


def parse_bool(text: str) -> bool:
    """strconv.ParseBool.

    Raises:
        ValueError: Go's text (``strconv.ParseBool: parsing "x": invalid syntax``).
    """
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"strconv.ParseBool: parsing {quote(text)}: invalid syntax")
