"""Times as Docker writes and reads them.

References: Go time (RFC3339Nano), moby api/types/time/timestamp.go (GetTimestamp).
"""
from __future__ import annotations

from datetime import datetime

# Go's zero time.Time as Unix seconds: what the daemon gives an image with no "created".
GO_ZERO_UNIX = -62135596800


def parse_rfc3339_ns(value: str) -> int:
    """RFC 3339 with up to 9 fractional digits (Go's RFC3339Nano) to Unix nanoseconds."""
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    nanos = 0
    dot = text.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(text) and text[end].isdigit():
            end += 1
        nanos = int(text[dot + 1:end].ljust(9, "0")[:9])
        text = text[:dot] + text[end:]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"no time zone in {value!r}")
    return int(parsed.timestamp()) * 1_000_000_000 + nanos
