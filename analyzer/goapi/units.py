"""docker/go-units: sizes and durations for people.

References: docker/go-units size.go (HumanSizeWithPrecision, RAMInBytes, parseSize, as
docker/cli v28.2.2 vendors it), duration.go (HumanDuration).
"""
from __future__ import annotations

import re

from .strconv import quote

_BINARY = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
# What strconv.ParseFloat takes of what parseSize hands it: decimal, an exponent.
_GO_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

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


def ram_in_bytes(text: str) -> int:
    """go-units RAMInBytes: "20k", "1.5 MiB", "300" in bytes (binary units).

    Raises:
        ValueError: Go's message ("invalid size: 'x'", "invalid suffix: 'x'", or
            strconv.ParseFloat's).
    """
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep == -1:
        raise ValueError(f"invalid size: '{text}'")
    num, suffix = (text[:sep + 1], text[sep + 1:]) if text[sep] != " " else \
        (text[:sep], text[sep + 1:])
    if not _GO_FLOAT.fullmatch(num):
        raise ValueError(f"strconv.ParseFloat: parsing {quote(num)}: invalid syntax")
    size = float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if not suffix:
        return int(size)
    lower = suffix.lower()
    if len(suffix) > 3 or lower[0] == "b" and len(lower) > 1 or \
            lower[0] != "b" and (lower[0] not in _BINARY or lower[1:] not in ("", "b", "ib")):
        raise ValueError(f"invalid suffix: '{lower if len(suffix) <= 3 else suffix}'")
    return int(size * _BINARY.get(lower[0], 1))
