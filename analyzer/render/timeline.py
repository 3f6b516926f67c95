"""The timeline as the analyst reads it, and as JSON lines Timesketch imports.

Each JSON line is one event with Timesketch's required fields — ``message``,
``datetime`` (ISO 8601, UTC), ``timestamp_desc`` — its ``timestamp`` in microseconds,
and the IDs of the objects it is about.

References: Timesketch docs, "Import from JSON or CSV" (required fields).
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from ..engines.timeline import Event
from ..goapi.time import format_rfc3339_nano_utc
from .analysis import dumps


def render_timeline(events: Sequence[Event]) -> str:
    """One line per event: when (RFC 3339, UTC), what happened, and to what."""
    return "".join(f"{format_rfc3339_nano_utc(e.unix_ns)}  {e.timestamp_desc}  {e.message}\n"
                   for e in events)


def render_timeline_json(events: Sequence[Event]) -> str:
    """JSON lines, one event each, in time order."""
    return "".join(dumps(event_json(e)) for e in events)


def event_json(event: Event) -> dict:
    """One event with Timesketch's fields and the IDs of what it is about."""
    return {"message": event.message, "datetime": _iso8601(event.unix_ns),
            "timestamp": event.unix_ns // 1000, "timestamp_desc": event.timestamp_desc,
            **event.ids}


def _iso8601(unix_ns: int) -> str:
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    when = datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=nanos // 1000)
    return when.isoformat()
