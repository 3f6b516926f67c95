"""Analyzer's own JSON documents (``reclaim``, ``prune --json``, ``verify``, ``slack``):
one style, one provenance object, one account of damage.

Every document is one line of orjson, keys in the order written here: ``analysis``
first, the command's own fields, then ``complete``, ``damaged`` and ``warnings``.
A string that holds bytes which are not UTF-8 (names on disk, kept by Python as
surrogate escapes) is written with those bytes as ``\\xNN``, and an object field
gets the exact bytes beside it as ``<field>_b64``. The Docker-emulating commands
never come here: they print what Docker prints.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import orjson

from ..goapi.time import format_rfc3339_nano_utc
from ..model import Diagnostic


@dataclass(frozen=True, slots=True)
class Analysis:
    """Where an answer comes from: which analyzer read which evidence, as of when."""
    version: str
    source: str               # the evidence as named on the command line, made absolute
    source_kind: str          # the reader that built the model (the graph driver's name)
    as_of: float              # Unix seconds: the "now" of relative times and filters
    analyzed_at: float        # Unix seconds: when the analysis ran


def document(analysis: Analysis, body: Mapping[str, Any],
             diagnostics: Sequence[Diagnostic]) -> str:
    """One analyzer JSON document, newline-terminated.

    Args:
        analysis: provenance.
        body: the command's own fields, in order.
        diagnostics: what could not be read; any makes the answer incomplete.
    """
    doc = {
        "analysis": {
            "version": analysis.version,
            "source": analysis.source,
            "source_kind": analysis.source_kind,
            "as_of": _rfc3339(analysis.as_of),
            "analyzed_at": _rfc3339(analysis.analyzed_at),
        },
        **body,
        "complete": not diagnostics,
        "damaged": [{"kind": d.kind, "id": d.id, "file": d.source, "reason": d.message}
                    for d in diagnostics],
        "warnings": [str(d) for d in diagnostics],
    }
    return dumps(doc)


def dumps(doc: Any) -> str:
    """Analyzer's JSON style: compact orjson, one line, with non-UTF-8 bytes made visible."""
    try:
        data = orjson.dumps(doc)
    except orjson.JSONEncodeError:
        data = orjson.dumps(_visible(doc))
    return data.decode() + "\n"


def _rfc3339(unix: float) -> str:
    return format_rfc3339_nano_utc(round(unix * 1e6) * 1000)


def _visible(value: Any) -> Any:
    """``value`` with every surrogate-escaped string as ``\\xNN`` text; an object field
    that changed gets its bytes as ``<field>_b64`` beside it."""
    if isinstance(value, str):
        return visible_text(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[visible_text(key)] = _visible(item)
            if isinstance(item, str) and out[visible_text(key)] != item:
                out[f"{visible_text(key)}_b64"] = base64.b64encode(_raw(item)).decode()
        return out
    if isinstance(value, (list, tuple)):
        return [_visible(item) for item in value]
    return value


def visible_text(value: str) -> str:
    """``value`` with the bytes it holds as surrogate escapes written ``\\xNN``."""
    try:
        value.encode()
        return value
    except UnicodeEncodeError:
        return _raw(value).decode("utf-8", "backslashreplace")


def _raw(value: str) -> bytes:
    # Names read from disk carry their bytes as surrogate escapes; a lone surrogate
    # from a JSON escape has no byte of its own and keeps its CESU-8 form.
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogatepass")
