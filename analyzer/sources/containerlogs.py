"""When a container's log begins and ends: the times of the first and last lines of
its json-file log, read from both ends of the file only (a log may be gigabytes).

References: moby daemon/logger/jsonfilelog (jsonlog.JSONLogs: one JSON object per line,
``{"log": ..., "stream": ..., "time": RFC 3339 nano}``).
"""
from __future__ import annotations

import os
from typing import Iterable

import orjson

from ..errors import EvidenceError
from ..model import Diagnostic
from . import layout
from .evidence import EvidenceRoot

# How much of each end is read: a line longer than this is not dated.
WINDOW = 64 * 1024


def log_spans(root: EvidenceRoot, container_ids: Iterable[str]
              ) -> tuple[dict[str, tuple[str | None, str | None]], list[Diagnostic]]:
    """(first line's time, last line's time) of each container's json-file log that
    exists, and what could not be read."""
    spans: dict[str, tuple[str | None, str | None]] = {}
    problems: list[Diagnostic] = []
    for ctr_id in container_ids:
        rel = layout.container_json_log(ctr_id)
        st = root.lstat(rel)
        if st is not None and not st.is_reg:
            problems.append(Diagnostic(rel, "not a regular file; not read", "container",
                                       ctr_id))
            continue
        if st is None or st.size == 0:
            continue
        try:
            head, tail = _ends(root, rel, st.size)
        except EvidenceError as exc:
            problems.append(Diagnostic(exc.path, exc.reason, "container", ctr_id))
            continue
        first = head.split(b"\n", 1)[0] if b"\n" in head else None
        lines = tail.rstrip(b"\n").rsplit(b"\n", 1)
        last = lines[-1] if len(lines) == 2 or len(tail) == st.size else None
        spans[ctr_id] = (_time(first), _time(last))
    return spans, problems


def _ends(root: EvidenceRoot, rel: str, size: int) -> tuple[bytes, bytes]:
    fd, offset, length = root.content(rel)
    try:
        end = offset + (length if length >= 0 else size)
        return (os.pread(fd, min(WINDOW, end - offset), offset),
                os.pread(fd, min(WINDOW, end - offset), max(offset, end - WINDOW)))
    except OSError as exc:
        raise EvidenceError(rel, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def _time(line: bytes | None) -> str | None:
    if not line:
        return None
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    stamp = entry.get("time") if isinstance(entry, dict) else None
    return stamp if isinstance(stamp, str) else None
