"""Every dated event the evidence holds, in time order: the analyst's timeline.

What the store records, and nothing guessed: an image's creation (its config) and each
history step's, when a tag last moved an image (``lastUpdated``), a container's
creation, last start and last finish, each image's last use (engines/lastused.py),
each health check the daemon kept (the last
five: State.Health.Log), the first and last line of its json-file log,
and a build cache record's creation and last use. A time Go leaves at its zero value ("0001-01-01T00:00:00Z": never) is no event;
a time that cannot be read is named, not guessed.

References: moby image/store.go (SetLastUpdated), container/state.go (StartedAt,
FinishedAt), daemon/health.go (handleProbeResult, maxLogEntries), api/types/container
(Created), buildkit cache/metadata (CreatedAt,
LastUsedAt); Timesketch's JSON import fields (message, datetime, timestamp_desc).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, NamedTuple

from ..goapi.time import parse_rfc3339_ns
from ..ids import short_id
from ..model import Diagnostic, Store

if TYPE_CHECKING:
    from .lastused import LastUse

GO_ZERO = "0001-01-01T00:00:00Z"


class Event(NamedTuple):
    unix_ns: int
    timestamp_desc: str         # what happened, in Timesketch's words: "Image Created"
    message: str
    ids: Mapping[str, str]      # the objects it is about: image_id, container_id, ...


def timeline(store: Store, log_spans: Mapping[str, tuple[str | None, str | None]],
             last_uses: Mapping[str, "LastUse | None"] | None = None
             ) -> tuple[list[Event], list[Diagnostic]]:
    """The events of a store and of its containers' logs (first and last line's time,
    by container ID), and each image's last use (by image ID), oldest first (ties in a
    stable order), and the times that could not be read."""
    events: list[Event] = []
    problems: list[Diagnostic] = []

    def add(stamp: str | None, desc: str, message: str, source: str,
            ids: Mapping[str, str]) -> None:
        if not stamp or stamp == GO_ZERO:
            return
        try:
            when = parse_rfc3339_ns(stamp)
        except ValueError:
            problems.append(Diagnostic(source, f"{desc}: not an RFC 3339 time: {stamp!r}"))
            return
        events.append(Event(when, desc, message, ids))

    for image in store.images.values():
        names = ", ".join(r.familiar for r in store.refs(image.id)) or "<none>"
        ids = {"image_id": image.id}
        add(image.created, "Image Created", f"image {short_id(image.id)} ({names}) created",
            image.source, ids)
        add(image.last_updated, "Image Tagged", f"image {short_id(image.id)} ({names}) "
            "tagged or pulled last", image.source, ids)
        use = (last_uses or {}).get(image.id)
        if use is not None:
            events.append(Event(use.unix_ns, "Image Last Used",
                                f"image {short_id(image.id)} ({names}) used last: "
                                f"{use.evidence.replace('_', ' ')} {short_id(use.id)}"
                                + (" (in use)" if use.in_use else ""), ids))
        history = image.config.get("history")
        for step in history if isinstance(history, list) else ():
            if isinstance(step, dict) and isinstance(step.get("created"), str):
                add(step["created"], "Image History Step",
                    f"image {short_id(image.id)} step: {step.get('created_by', '')}",
                    image.source, ids)
    for ctr in store.containers.values():
        ids = {"container_id": ctr.id, "image_id": ctr.image_id}
        label = f"container {ctr.name} ({short_id(ctr.id)}, image {ctr.image})"
        add(ctr.created, "Container Created", f"{label} created", ctr.source, ids)
        add(ctr.started_at, "Container Started", f"{label} started", ctr.source, ids)
        add(ctr.finished_at, "Container Finished",
            f"{label} finished with exit code {ctr.exit_code}", ctr.source, ids)
        for check in ctr.health_log:
            add(check.start, "Container Health Check", f"{label} health check exited "
                f"{check.exit_code}{_took(check.start, check.end)}: "
                f"{_first_line(check.output)}", ctr.source, ids)
        first, last = log_spans.get(ctr.id, (None, None))
        add(first, "Container Log First Line", f"{label} logged its first line",
            ctr.source, ids)
        add(last, "Container Log Last Line", f"{label} logged its last line",
            ctr.source, ids)
    for record in store.build_cache:
        ids = {"build_cache_id": record.id}
        label = f"build cache {record.id} ({record.description or record.cache_type})"
        add(record.created_at, "Build Cache Created", f"{label} created", record.source, ids)
        add(record.last_used_at, "Build Cache Used",
            f"{label} used last ({record.usage_count} uses)", record.source, ids)
    events.sort(key=lambda e: (e.unix_ns, e.timestamp_desc, e.message))
    return events, problems


def _took(start: str, end: str) -> str:
    """How long a check ran, when both its times read (End is checked on its own)."""
    try:
        return f" after {(parse_rfc3339_ns(end) - parse_rfc3339_ns(start)) / 1e6:.0f} ms"
    except ValueError:
        return ""


def _first_line(output: str, limit: int = 200) -> str:
    """A check's output as one line of a timeline (the rest is in the evidence)."""
    line = output.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[:limit] + "..."
