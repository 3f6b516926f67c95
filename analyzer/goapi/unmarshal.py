"""encoding/json's ``Unmarshal`` type rules: would Go decode this value into that type?

dockerd decodes each of its files into Go structs. A value of the wrong JSON type, an
integer out of its Go type's range, or a time that is not RFC 3339 makes Unmarshal
fail, and the daemon skips the record (an image, a container). Readers describe the
fields the model reads with the types below and check a parsed document before using
it, so that such a record is skipped with the field named, not met later as a crash.

Go's rules kept: ``null`` decodes into anything (the zero value stays); object keys
match struct fields case-insensitively; keys no field names are ignored; a number
decodes into an integer only when its literal is an integer in range.

References: Go 1.19 encoding/json/decode.go (literalStore, object: field lookup by
bytes.EqualFold), time/time.go (Time.UnmarshalJSON: RFC 3339).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union

from .time import is_rfc3339


# Where a check is, as (where its container is, key or index), () at the top: a pair
# costs less than the text of the path, which only a mismatch needs (_path).
At = Union[tuple[()], tuple["At", Union[str, int]]]


class Mismatch(ValueError):
    """What Unmarshal refuses: ``field`` is where (``State.ExitCode``, ``history[2]``)."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class GoType:
    name = "value"

    def check(self, value: Any, at: At) -> None:
        raise NotImplementedError


class _Scalar(GoType):
    def __init__(self, name: str, kinds: tuple[type, ...]):
        self.name = name
        self._kinds = kinds

    def check(self, value: Any, at: At) -> None:
        if type(value) in self._kinds:          # what orjson gives: the types themselves
            return
        if value is not None and (isinstance(value, bool) != (bool in self._kinds)
                                  or not isinstance(value, self._kinds)):
            raise _wrong(value, self, at)


class _Int(GoType):
    def __init__(self, name: str, low: int, high: int):
        self.name = name
        self._low, self._high = low, high

    def check(self, value: Any, at: At) -> None:
        if value is None or type(value) is int and self._low <= value <= self._high:
            return
        # orjson reads 1e3, 1.0 and integers past 64 bits as floats: Go refuses all three.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _wrong(value, self, at)
        if not self._low <= value <= self._high:
            raise Mismatch(_path(at), f"{value} overflows {self.name}")


class _Time(GoType):
    name = "time.Time"

    def __init__(self) -> None:
        # Times already found sound: an image's history repeats its created time in
        # entry after entry (93,000 checks at 10,000 images, a tenth of them distinct).
        self._sound: set[str] = set()

    def check(self, value: Any, at: At) -> None:
        if value is None or type(value) is str and value in self._sound:
            return
        if not isinstance(value, str):
            raise _wrong(value, self, at)
        if not is_rfc3339(value):
            raise Mismatch(_path(at), f"{_show(value)} is not an RFC 3339 time")
        self._sound.add(value)


class _Any(GoType):
    name = "interface{}"

    def check(self, value: Any, at: At) -> None:
        pass


@dataclass(frozen=True)
class ListOf(GoType):
    item: GoType

    @property
    def name(self) -> str:            # type: ignore[override]
        return f"[]{self.item.name}"

    def check(self, value: Any, at: At) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            raise _wrong(value, self, at)
        kinds = self.item._kinds if isinstance(self.item, _Scalar) else ()
        for i, item in enumerate(value):
            if type(item) not in kinds:       # as Struct.check: a scalar passes here
                self.item.check(item, (at, i))


@dataclass(frozen=True)
class MapOf(GoType):
    item: GoType

    @property
    def name(self) -> str:            # type: ignore[override]
        return f"map[string]{self.item.name}"

    def check(self, value: Any, at: At) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise _wrong(value, self, at)
        for key, item in value.items():
            self.item.check(item, (at, key))


class Struct(GoType):
    """A Go struct: its fields by JSON name; keys match them case-insensitively."""
    name = "struct"

    def __init__(self, fields: Mapping[str, GoType], name: str = "struct"):
        self.name = name
        self._fields = dict(fields)
        self._folded = {k.lower(): (k, t) for k, t in fields.items()}
        # The JSON types that pass a scalar field as they stand, looked up here rather
        # than in a call per field (a config has ~20 of them; 10,000 configs at once).
        self._plain = {k: t._kinds for k, t in fields.items() if isinstance(t, _Scalar)}

    def check(self, value: Any, at: At) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise _wrong(value, self, at)
        plain = self._plain
        for key, item in value.items():
            if type(item) in plain.get(key, ()):
                continue
            found = self._fields.get(key)
            name = key
            if found is None:
                name, found = self._folded.get(key.lower(), (key, None))
            if found is not None:
                found.check(item, (at, name))


class _StrSlice(GoType):
    """moby strslice.StrSlice: a string, or a list of strings."""
    name = "strslice.StrSlice"

    def check(self, value: Any, at: At) -> None:
        if not isinstance(value, str):
            ListOf(STRING).check(value, at)


STRING = _Scalar("string", (str,))
BOOL = _Scalar("bool", (bool,))
INT = INT64 = _Int("int64", -2**63, 2**63 - 1)
UINT16 = _Int("uint16", 0, 2**16 - 1)
UINT64 = _Int("uint64", 0, 2**64 - 1)
TIME = _Time()
ANY = _Any()
STRSLICE = _StrSlice()
EMPTY_STRUCT = Struct({}, "struct {}")


def check(value: Any, shape: GoType) -> None:
    """Raises Mismatch where Go's Unmarshal of value into shape would fail."""
    shape.check(value, ())


def _path(at: At) -> str:
    """``State.ExitCode``, ``history[2].created``: the path as Go's errors name it."""
    keys: list[str | int] = []
    while at:
        at, key = at
        keys.append(key)
    text = ""
    for key in reversed(keys):
        text = f"{text}[{key}]" if type(key) is int else f"{text}.{key}" if text else key
    return text


def _wrong(value: Any, want: GoType, at: At) -> Mismatch:
    return Mismatch(_path(at), f"cannot unmarshal {_json_kind(value)} {_show(value)} into "
                               f"Go value of type {want.name}")


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _show(value: Any) -> str:
    # Never repr a container: its depth is the evidence's to choose.
    if isinstance(value, (list, dict)):
        return "[...]" if isinstance(value, list) else "{...}"
    if isinstance(value, str) and len(value) > 40:
        return repr(value[:37]) + "..."
    return repr(value)


def field(obj: Mapping[str, Any], name: str) -> Any:
    """What encoding/json decodes into the struct field ``name``: the key as written,
    else any key equal to it case-folded (Go's decoder matches names that way)."""
    if name in obj:
        return obj[name]
    lower = name.lower()
    return next((value for key, value in obj.items() if key.lower() == lower), None)
