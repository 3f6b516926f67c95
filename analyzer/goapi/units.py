"""docker/go-units: sizes and durations for people.

References: docker/go-units size.go (HumanSizeWithPrecision), duration.go
(HumanDuration).
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
