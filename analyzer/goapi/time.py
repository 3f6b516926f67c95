"""Go's ``time`` package: Parse as dockerd 20.10's Go 1.19 has it, ParseDuration,
RFC3339Nano, and the two ways the CLI formats a Unix time.

References: Go 1.19 time/format.go (Parse, Format, parseNanoseconds, quote, Time.String),
time/format.go ParseDuration (leadingInt, leadingFraction), time/time.go (IsZero).
"""
from __future__ import annotations

import re
import time as _systime
from datetime import datetime, timezone

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


def format_rfc3339_local(unix: int) -> str:
    """time.Unix(x, 0).Format(time.RFC3339) in the local zone ("Z" for UTC)."""
    if unix == GO_ZERO_UNIX:
        return "0001-01-01T00:00:00Z"
    text = datetime.fromtimestamp(unix).astimezone().isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def format_rfc3339_nano_utc(unix_ns: int) -> str:
    """time.Unix(0, ns).UTC().Format(time.RFC3339Nano): trailing zeros of the fraction dropped."""
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return text + f".{nanos:09d}".rstrip("0").rstrip(".") + "Z"


def string_local(unix: int) -> str:
    """time.Unix(x, 0).String() in the local zone: ``2006-01-02 15:04:05 -0700 MST``."""
    if unix == GO_ZERO_UNIX:
        return "0001-01-01 00:00:00 +0000 UTC"
    t = _systime.localtime(unix)
    return _systime.strftime("%Y-%m-%d %H:%M:%S %z ", t) + (t.tm_zone or "")


_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6,
                   "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DIGITS = re.compile(r"[0-9]*")


def parse_duration(text: str) -> int | None:
    """Go time.ParseDuration in nanoseconds, or None where Go fails."""
    s, negative = text, False
    if s[:1] in ("-", "+"):
        negative, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            return None
        digits = _DIGITS.match(s).group()
        s = s[len(digits):]
        whole = int(digits or "0")
        if whole >= 2**63:
            return None
        fraction, scale, post = 0, 1.0, False
        if s.startswith("."):
            decimals = _DIGITS.match(s, 1).group()
            s = s[1 + len(decimals):]
            post = bool(decimals)
            for d in decimals:                  # leadingFraction drops what overflows
                if fraction > (2**63 - 1) // 10:
                    break
                fraction, scale = fraction * 10 + int(d), scale * 10
        if not digits and not post:
            return None
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        unit = _DURATION_UNITS.get(s[:i]) if i else None
        if unit is None:
            return None
        s = s[i:]
        if whole > 2**63 // unit:
            return None
        whole *= unit
        if fraction:
            whole += int(float(fraction) * (float(unit) / scale))
        total += whole
        if whole > 2**63 or total > 2**63:
            return None
    if negative:
        return -total
    return None if total > 2**63 - 1 else total


class ParseError(ValueError):
    """Go time.ParseError; ``str()`` is Go's text."""


def _quote(text: str) -> str:
    # Go time.quote: non-ASCII and control bytes as \xNN, '"' and '\' escaped.
    out = []
    for ch in text:
        if ch < " " or ch >= "\x80":
            out.extend(f"\\x{b:02x}" for b in ch.encode())
        else:
            out.append("\\" + ch if ch in '"\\' else ch)
    return '"' + "".join(out) + '"'


_STD = re.compile(r"(2006|Z07:00|\.999999999|01|02|15|04|05)")

# The shape every writer of RFC 3339 gives a time, fields in range but for the day's
# upper bound. Parse(RFC3339) accepts each string this matches whose day the month has,
# so a check of validity (a few per image config, ten thousands at scale) need not walk
# the layout; what does not match goes the whole way, for Go's verdict.
_RFC3339_PLAIN = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T"
                            r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                            r"(?:[.,][0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})")


def is_rfc3339(value: str) -> bool:
    """Whether Go's time.Parse(time.RFC3339, value) succeeds."""
    plain = _RFC3339_PLAIN.fullmatch(value)
    if plain is not None and (plain.group(2) <= "28" or int(plain.group(2)) <= _days_in(
            int(plain.group(1)), int(value[:4]))):
        return True
    try:
        parse("2006-01-02T15:04:05Z07:00", value, 0)
    except ValueError:
        return False
    return True


def parse(layout: str, value: str, default_offset: int) -> int:
    """Go 1.19 time.Parse / ParseInLocation(FixedZone) for GetTimestamp's layouts, in
    Unix nanoseconds. (Go 1.20 added zone-offset range checks and reports the
    element before it was consumed; dockerd 20.10 is built with Go 1.19.)

    Raises:
        ParseError: with Go's message.
    """
    def cannot(value_elem: str, layout_elem: str) -> ParseError:
        return ParseError(f"parsing time {_quote(value)} as {_quote(layout)}: "
                            f"cannot parse {_quote(value_elem)} as {_quote(layout_elem)}")

    def out_of_range(what: str) -> ParseError:
        return ParseError(f"parsing time {_quote(value)}: {what} out of range")

    fields = {"2006": 0, "01": 0, "02": 0, "15": 0, "04": 0, "05": 0}
    nanos, offset = 0, default_offset
    parts = _STD.split(layout)                  # literal, std, literal, std, ..., literal
    rest = value
    for n in range(0, len(parts), 2):
        literal = parts[n]
        for ch in literal:
            if not rest or rest[0] != ch:
                raise cannot(rest, literal)
            rest = rest[1:]
        if n + 1 == len(parts):
            break
        std = parts[n + 1]
        if std == "2006":
            if len(rest) < 4 or not "0" <= rest[0] <= "9":
                raise cannot(rest, std)
            year, rest = _atoi(rest[:4]), rest[4:]
            if year is None:
                raise cannot(rest, std)
            fields[std] = year
        elif std in fields:
            number, rest = _getnum(rest, fixed=std != "15")
            if number is None:
                raise cannot(rest, std)
            fields[std] = number
            limit = {"01": (1, 12, "month"), "15": (0, 23, "hour"), "04": (0, 59, "minute"),
                     "05": (0, 59, "second")}.get(std)
            if limit and not limit[0] <= number <= limit[1]:
                raise out_of_range(limit[2])
            if std == "05" and parts[n + 3:n + 4] != [".999999999"] and _fraction_follows(rest):
                nanos, rest = _nanoseconds(rest, None)
        elif std == ".999999999":
            if _fraction_follows(rest):
                nanos, rest = _nanoseconds(rest, 9)
        elif rest.startswith("Z"):              # Z07:00
            offset, rest = 0, rest[1:]
        else:
            if len(rest) < 6 or rest[3] != ":":
                raise cannot(rest, std)
            sign, hours, minutes, rest = rest[0], _atoi(rest[1:3]), _atoi(rest[4:6]), rest[6:]
            if hours is None or minutes is None or sign not in "+-":
                raise cannot(rest, std)
            offset = (hours * 60 + minutes) * 60 * (1 if sign == "+" else -1)
    if rest:
        raise ParseError(f"parsing time {_quote(value)}: extra text: {_quote(rest)}")
    year, month, day = fields["2006"], fields["01"], fields["02"]
    if not 1 <= day <= _days_in(month, year):
        raise out_of_range("day")
    seconds = (_days_from_civil(year, month, day) * 86400 + fields["15"] * 3600
               + fields["04"] * 60 + fields["05"] - offset)
    return seconds * 10**9 + nanos


def _atoi(text: str) -> int | None:
    # time.atoi: an optional sign and digits (leadingInt of "" is 0).
    match = re.fullmatch(r"([+-]?)([0-9]*)", text)
    if match is None:
        return None
    number = int(match.group(2) or "0")
    return -number if match.group(1) == "-" else number


def _getnum(text: str, fixed: bool) -> tuple[int | None, str]:
    def digit(i: int) -> bool:
        return len(text) > i and "0" <= text[i] <= "9"
    if not digit(0):
        return None, text
    if not digit(1):
        return (None, text) if fixed else (int(text[0]), text[1:])
    return int(text[:2]), text[2:]


def _fraction_follows(text: str) -> bool:
    return len(text) >= 2 and text[0] in ".," and "0" <= text[1] <= "9"


def _nanoseconds(text: str, most: int | None) -> tuple[int, str]:
    # Go 1.19 parseNanoseconds: the first nine digits count; after seconds all the
    # digits are consumed, for .999999999 at most nine.
    end = 1
    while end < len(text) and "0" <= text[end] <= "9" and (most is None or end <= most):
        end += 1
    return int(text[1:min(end, 10)].ljust(9, "0")), text[end:]


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    # Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant).
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
