"""moby's ``api/types/time`` (imported there as ``timetypes``): the timestamps of
``--filter until=`` and ``--since``.

References: moby v20.10 api/types/time/timestamp.go (GetTimestamp, ParseTimestamps).
"""
from __future__ import annotations

from ..errors import DaemonError
from .strconv import parse_int, quote
from .time import ParseError, parse, parse_duration

_NANO_LOCAL = "2006-01-02T15:04:05.999999999"
_RFC3339_NANO = "2006-01-02T15:04:05.999999999Z07:00"
_RFC3339 = "2006-01-02T15:04:05Z07:00"
_RFC3339_LOCAL = "2006-01-02T15:04:05"


def get_timestamp(value: str, now_ns: int, utc_offset: int) -> str:
    """GetTimestamp: a duration before now, an RFC 3339-like time, or Unix seconds,
    as ``seconds[.nanoseconds]``.

    Raises:
        DaemonError: Go's time-parse error when the value contains ``-``, else
            ``failed to parse value as time or duration: "VALUE"``.
    """
    duration = parse_duration(value)
    if value != "0" and duration is not None:
        return str((now_ns - duration) // 10**9)
    in_location = not (any(c in value for c in "zZ+") or value.count("-") == 3)
    if "." in value:
        layout = _NANO_LOCAL if in_location else _RFC3339_NANO
    elif "T" in value:
        colons = value.count(":")
        if not in_location and not any(c in value for c in "zZ") and colons > 0:
            colons -= 1                         # the zone's own colon
        layouts = (("2006-01-02T15", "2006-01-02T15:04", _RFC3339_LOCAL) if in_location else
                   ("2006-01-02T15Z07:00", "2006-01-02T15:04Z07:00", _RFC3339))
        layout = layouts[min(colons, 2)]
    else:
        layout = "2006-01-02" if in_location else "2006-01-02Z07:00"
    try:
        stamp = parse(layout, value, utc_offset if in_location else 0)
    except ParseError as error:
        if "-" in value:
            raise DaemonError(str(error)) from None
        try:
            parse_timestamps(value)
        except ValueError:
            raise DaemonError(
                f"failed to parse value as time or duration: {quote(value)}") from None
        return value                            # already Unix seconds
    seconds, nanos = divmod(stamp, 10**9)
    return f"{seconds}.{nanos:09d}"


def parse_timestamps(value: str) -> tuple[int, int]:
    """parseTimestamp: ``seconds[.fraction]`` to (seconds, nanoseconds).

    Raises:
        ValueError: not two Go integers.
    """
    whole, dot, fraction = value.partition(".")
    seconds = parse_int(whole)
    if not dot:
        return seconds, 0
    nanos = parse_int(fraction)
    return seconds, int(float(nanos) * 10.0 ** (9 - len(fraction)))


def timestamp_ns(value: str, now: float, utc_offset: int) -> int:
    """GetTimestamp then ParseTimestamps, as filters' ``until`` uses them: Unix nanoseconds.

    Raises:
        DaemonError: as get_timestamp.
    """
    seconds, nanos = parse_timestamps(get_timestamp(value, round(now * 1e9), utc_offset))
    return seconds * 10**9 + nanos
