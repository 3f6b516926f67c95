"""``docker ps`` as dockerd 20.10 computes it: which containers, in which order,
and the Image, Command and Status fields of each summary.

References: moby v20.10 daemon/list.go (reduceContainers, refreshImage),
container/view.go (snapshot Command), container/state.go (State.String).
"""
from __future__ import annotations

from ..errors import DaemonError
from ..goapi.time import parse_rfc3339_ns
from ..goapi.units import human_duration
from ..model import Container, Store
from .resolve import get_image


def list_image(store: Store, ctr: Container) -> str:
    """The Image field of the daemon's summary (daemon/list.go refreshImage): the name
    the container was created from while it still names the same image, else the ID."""
    image = ctr.image
    if image != ctr.image_id:
        try:
            found = get_image(store, image)
        except DaemonError:
            found = None
        if found is None or found.id != ctr.image_id:
            image = ctr.image_id
    return image


def select(store: Store, all_containers: bool) -> list[Container]:
    """The containers ``docker ps [-a]`` lists: running ones (all with ``-a``), newest first."""
    ctrs = [c for c in store.containers.values() if all_containers or c.running]
    # daemon/list.go: newest first, by creation time.
    ctrs.sort(key=lambda c: (-parse_rfc3339_ns(c.created), c.id))
    return ctrs


def command_line(ctr: Container) -> str:
    """The summary's Command (container/view.go): arguments with spaces single-quoted."""
    if not ctr.args:
        return ctr.path
    args = [f"'{a}'" if " " in a else a for a in ctr.args]
    return f"{ctr.path} {' '.join(args)}"


def _since(stamp: str, now: float) -> str:
    return human_duration(now - parse_rfc3339_ns(stamp) / 1e9)


def status(ctr: Container, now: float) -> str:
    """The summary's Status (container/state.go State.String) as of ``now``."""
    if ctr.running:
        if ctr.paused:
            return f"Up {_since(ctr.started_at, now)} (Paused)"
        if ctr.restarting:
            return f"Restarting ({ctr.exit_code}) {_since(ctr.finished_at, now)} ago"
        if ctr.health:
            health = "health: starting" if ctr.health == "starting" else ctr.health
            return f"Up {_since(ctr.started_at, now)} ({health})"
        return f"Up {_since(ctr.started_at, now)}"
    if ctr.removal_in_progress:
        return "Removal In Progress"
    if ctr.dead:
        return "Dead"
    if _is_zero(ctr.started_at):
        return "Created"
    if _is_zero(ctr.finished_at):
        return ""
    return f"Exited ({ctr.exit_code}) {_since(ctr.finished_at, now)} ago"


def _is_zero(stamp: str) -> bool:
    return not stamp or stamp.startswith("0001-01-01T00:00:00")
