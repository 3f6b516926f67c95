"""``docker image prune [-a]``, planned: moby's ImagesPrune over the rmi planner.

The candidates are the images without children (dangling mode) or all images
(``-a``), less untagged intermediate images, images newer than ``until`` and
images the label filters exclude. Each candidate is then deleted with ImageDelete,
quietly skipping any error: by its 64-hex ID if it has no references, else
reference by reference (normalized strings, sorted) — in dangling mode only when
none of them is a tag. So an image two tags name loses all but its last tag even
when a container keeps it (moby#36295). The reclaimed space is the sum of the
DiffSize of the deleted layers.

Docker walks the candidates in Go map order (random); here they go in image-ID
order.

References: moby v20.10.24 daemon/images/image_prune.go (ImagesPrune, matchLabels,
getUntilFromPruneFilters), api/types/filters/parse.go (MatchKVList, ExactMatch),
api/types/time/timestamp.go (GetTimestamp, ParseTimestamps), Go time/format.go
(Parse) and time/format.go ParseDuration; docker/cli v28 cli/command/image/prune.go.
"""
from __future__ import annotations

import re
import time
from typing import Iterable, Mapping

from ..errors import DaemonError
from ..gotime import GO_ZERO_UNIX
from ..ids import SHA256_PREFIX, ChainID
from ..model import Image, Store
from ..render.units import go_quote, human_size
from .rmi import Outcome, Plan, Record, RmiState, image_delete

ACCEPTED_FILTERS = ("dangling", "label", "label!", "until")

# Go's zero time.Time (0001-01-01T00:00:00Z), which 20.10 gives an image without
# "created"; v24+ skips such images under an until filter instead.
_ZERO_TIME_NS = GO_ZERO_UNIX * 10**9


def plan_prune(store: Store, all: bool, filters: Iterable[tuple[str, str]], now: float,
               utc_offset: int | None = None,
               build_cache_holds: Iterable[ChainID] = ()) -> tuple[Plan, list[Record], int]:
    """``docker image prune [-a] [--filter K=V]...`` against ``store``, changing nothing.

    Args:
        store: the data root's model.
        all: ``-a``; the CLI sends ``dangling=false`` (else ``dangling=true``).
        filters: the ``--filter`` pairs, as the CLI parsed them.
        now: Unix seconds, the daemon's time.Now() (for ``until``).
        utc_offset: the daemon's local zone offset in seconds east of UTC, for
            ``until`` times without a zone; default this machine's at ``now``.
        build_cache_holds: chain IDs the BuildKit cache holds.

    Returns:
        (plan, the report's records in order, SpaceReclaimed in bytes). The plan's
        ``errors`` is empty: prune skips every failed delete silently.

    Raises:
        DaemonError: the filters are refused, with the daemon's message.
    """
    args = filter_args(filters)
    args.setdefault("dangling", set()).add("false" if all else "true")
    until_ns = _prune_settings(args, now, utc_offset)
    dangling_only = _dangling_only(args)
    state = RmiState(store, tuple(build_cache_holds))
    candidates = [i for i in store.images.values()
                  if not dangling_only or not store.children.get(i.id)]
    top = [i.id for i in candidates if _keep(store, i, args, until_ns)]
    outcomes: list[Outcome] = []
    for image_id in sorted(top):
        refs = state.references(image_id)
        if refs:
            if not dangling_only or not any(not r.is_digest for r in refs):
                # The normalized strings: ImageDelete gets ref.String().
                outcomes.extend(_delete(state, r.normalized) for r in refs)
        else:
            outcomes.append(_delete(state, image_id[len(SHA256_PREFIX):]))
    plan = Plan(tuple(outcomes), (), state)
    records = list(plan.records)
    reclaimed = sum(store.layers[ChainID(r.value)].diff_size for r in records
                    if r.kind == "Deleted" and r.value in store.layers)
    return plan, records, reclaimed


def format_prune(records: Iterable[Record], space_reclaimed: int) -> str:
    """What ``docker image prune`` prints on stdout (docker/cli runPrune)."""
    lines = [f"{r.kind.lower()}: {r.value}\n" for r in records]
    head = "Deleted Images:\n" + "".join(lines) + "\n" if lines else ""
    return f"{head}Total reclaimed space: {human_size(space_reclaimed)}\n"


def filter_args(pairs: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """filters.Args: each key's set of values."""
    args: dict[str, set[str]] = {}
    for key, value in pairs:
        args.setdefault(key, set()).add(value)
    return args


def _delete(state: RmiState, name: str) -> Outcome:
    try:
        return Outcome(name, tuple(image_delete(state, name, force=False, prune=True)))
    except DaemonError as error:                   # imageDeleteFailed: skipped
        return Outcome(name, (), error)


def _prune_settings(args: Mapping[str, set[str]], now: float,
                    utc_offset: int | None) -> int | None:
    for key in sorted(args):                        # Go map order; sorted here
        if key not in ACCEPTED_FILTERS:
            raise DaemonError(f"Invalid filter '{key}'")
    # ImagesPrune refuses a dangling filter with none of true/1/false/0, which the CLI's
    # own dangling=true|false never lets happen.
    if "until" not in args:
        return None
    values = args["until"]
    if len(values) > 1:
        raise DaemonError("more than one until filter specified")
    if utc_offset is None:
        utc_offset = time.localtime(now).tm_gmtoff
    stamp = get_timestamp(next(iter(values)), round(now * 1e9), utc_offset)
    seconds, nanos = parse_timestamps(stamp)
    return seconds * 10**9 + nanos


def _dangling_only(args: Mapping[str, set[str]]) -> bool:
    # 20.10 ImagesPrune: any false-ish value wins (ExactMatch over the value set).
    return not args.get("dangling", set()) & {"false", "0"}


def _keep(store: Store, image: Image, args: Mapping[str, set[str]], until_ns: int | None) -> bool:
    if not store.refs(image.id) and store.children.get(image.id):
        return False                                # an intermediate image
    if until_ns is not None and _created_ns(image) > until_ns:
        return False
    return not image.has_config or match_labels(args, image.labels)


def _created_ns(image: Image) -> int:
    return _ZERO_TIME_NS if image.created is None else image.created_ns


def match_labels(args: Mapping[str, set[str]], labels: Mapping[str, str]) -> bool:
    """matchLabels: every ``label`` matches; not every ``label!`` matches (so
    several ``label!`` values exclude only an image matching all of them)."""
    if not match_kv_list(args.get("label", set()), labels):
        return False
    return not ("label!" in args and match_kv_list(args["label!"], labels))


def match_kv_list(values: set[str], labels: Mapping[str, str]) -> bool:
    """filters.Args.MatchKVList: each ``key`` or ``key=value`` is in the labels."""
    if not values:
        return True
    if not labels:
        return False
    for value in values:
        key, sep, want = value.partition("=")
        if key not in labels or (sep and labels[key] != want):
            return False
    return True


# -- GetTimestamp ---------------------------------------------------------------------

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
    duration = go_parse_duration(value)
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
        stamp = go_time_parse(layout, value, utc_offset if in_location else 0)
    except GoParseError as error:
        if "-" in value:
            raise DaemonError(str(error)) from None
        try:
            parse_timestamps(value)
        except ValueError:
            raise DaemonError(
                f"failed to parse value as time or duration: {go_quote(value)}") from None
        return value                            # already Unix seconds
    seconds, nanos = divmod(stamp, 10**9)
    return f"{seconds}.{nanos:09d}"


def parse_timestamps(value: str) -> tuple[int, int]:
    """parseTimestamp: ``seconds[.fraction]`` to (seconds, nanoseconds).

    Raises:
        ValueError: not two Go integers.
    """
    whole, dot, fraction = value.partition(".")
    seconds = _go_parse_int(whole)
    if not dot:
        return seconds, 0
    nanos = _go_parse_int(fraction)
    return seconds, int(float(nanos) * 10.0 ** (9 - len(fraction)))


def _go_parse_int(text: str) -> int:
    # strconv.ParseInt(s, 10, 64): an optional sign, ASCII digits, in int64.
    if re.fullmatch(r"[+-]?[0-9]+", text) is None:
        raise ValueError(text)
    number = int(text)
    if not -2**63 <= number < 2**63:
        raise ValueError(text)
    return number


_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6,
                   "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DIGITS = re.compile(r"[0-9]*")


def go_parse_duration(text: str) -> int | None:
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


class GoParseError(ValueError):
    """Go time.ParseError; ``str()`` is Go's text."""


def _time_quote(text: str) -> str:
    # Go time.quote: non-ASCII and control bytes as \xNN, '"' and '\' escaped.
    out = []
    for ch in text:
        if ch < " " or ch >= "\x80":
            out.extend(f"\\x{b:02x}" for b in ch.encode())
        else:
            out.append("\\" + ch if ch in '"\\' else ch)
    return '"' + "".join(out) + '"'


_STD = re.compile(r"(2006|Z07:00|\.999999999|01|02|15|04|05)")


def go_time_parse(layout: str, value: str, default_offset: int) -> int:
    """Go 1.19 time.Parse / ParseInLocation(FixedZone) for GetTimestamp's layouts, in
    Unix nanoseconds. (Go 1.20 added zone-offset range checks and reports the
    element before it was consumed; dockerd 20.10 is built with Go 1.19.)

    Raises:
        GoParseError: with Go's message.
    """
    def cannot(value_elem: str, layout_elem: str) -> GoParseError:
        return GoParseError(f"parsing time {_time_quote(value)} as {_time_quote(layout)}: "
                            f"cannot parse {_time_quote(value_elem)} as {_time_quote(layout_elem)}")

    def out_of_range(what: str) -> GoParseError:
        return GoParseError(f"parsing time {_time_quote(value)}: {what} out of range")

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
            year, rest = _go_atoi(rest[:4]), rest[4:]
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
            sign, hours, minutes, rest = rest[0], _go_atoi(rest[1:3]), _go_atoi(rest[4:6]), rest[6:]
            if hours is None or minutes is None or sign not in "+-":
                raise cannot(rest, std)
            offset = (hours * 60 + minutes) * 60 * (1 if sign == "+" else -1)
    if rest:
        raise GoParseError(f"parsing time {_time_quote(value)}: extra text: {_time_quote(rest)}")
    year, month, day = fields["2006"], fields["01"], fields["02"]
    if not 1 <= day <= _days_in(month, year):
        raise out_of_range("day")
    seconds = (_days_from_civil(year, month, day) * 86400 + fields["15"] * 3600
               + fields["04"] * 60 + fields["05"] - offset)
    return seconds * 10**9 + nanos


def _go_atoi(text: str) -> int | None:
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
