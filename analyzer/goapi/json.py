"""Go's ``encoding/json``: JSON as dockerd and the Docker CLI write it.

Go escapes ``<``, ``>`` and ``&`` (HTML-safe) and U+2028/U+2029 inside strings;
these characters never occur outside strings in JSON, so a byte replacement on
orjson's output is exact. A Go string that is not UTF-8 (a name read from disk,
which Python keeps with surrogate escapes) is written with U+FFFD for each byte
that is not, as Go's encoder writes it.
"""
from __future__ import annotations

from typing import Any

import re

import orjson

_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"),
            ("\u2028".encode(), b"\\u2028"), ("\u2029".encode(), b"\\u2029"))


def _escape(data: bytes) -> str:
    for raw, esc in _ESCAPES:
        if raw in data:
            data = data.replace(raw, esc)
    return data.decode()


_NOT_UTF8 = re.compile("[\ud800-\udfff]")


def _dumps(obj: Any, option: int | None = None) -> bytes:
    try:
        return orjson.dumps(obj, option=option)
    except orjson.JSONEncodeError:
        # Surrogates (bytes that were not UTF-8) are the one thing orjson refuses in
        # what these callers hand it; anything else fails again here.
        return orjson.dumps(_replace_invalid(obj), option=option)


def _replace_invalid(value: Any) -> Any:
    """``value`` with every surrogate of every string (keys too) as U+FFFD."""
    if isinstance(value, str):
        return _NOT_UTF8.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_replace_invalid(k): _replace_invalid(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_replace_invalid(v) for v in value]
    return value


def marshal(obj: Any) -> str:
    """Compact, as json.Marshal (keys sorted, as Go sorts map keys)."""
    return _escape(_dumps(obj, orjson.OPT_SORT_KEYS))


def compact(obj: Any) -> str:
    """What json.Compact makes of JSON Go wrote, once parsed: keys in the order read
    (a json.RawMessage keeps them), compact, HTML-escaped."""
    return _escape(_dumps(obj))


def marshal_indent(obj: Any) -> str:
    """Indented with 4 spaces, as the CLI's json.Indent prints inspect output."""
    text = _dumps(obj, orjson.OPT_INDENT_2)
    # orjson indents by two; Docker by four.
    lines = []
    for line in text.split(b"\n"):
        stripped = line.lstrip(b" ")
        lines.append(b" " * (2 * (len(line) - len(stripped))) + stripped)
    return _escape(b"\n".join(lines))


def encode_unescaped(obj: Any) -> str:
    """An Encoder with SetEscapeHTML(false), as moby's WriteJSON sends the daemon's JSON
    (``inspect --format json`` prints it through json.Compact)."""
    return _dumps(obj).decode().replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
