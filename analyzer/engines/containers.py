"""``docker ps`` as dockerd 20.10 computes it: which containers (the filters, --all,
--last), in which order, and the Image, Command and Status fields of each summary;
dockerd 28.5's words for a bad filter on a root it wrote.

References: moby v20.10 (v28.5.2 for the errors) daemon/list.go (Containers, foldFilter, filterByNameIDMatches,
includeContainerInList, idOrNameFilter, portOp, refreshImage), api/types/filters/parse.go
(Match, ExactMatch), container/view.go (snapshot Command, Health), container/state.go
(State.String).
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

from ..errors import DaemonError, NoSuchContainer
from ..goapi.filters import get_bool_or_default, match_kv_list
from ..goapi.time import parse_rfc3339_ns
from ..goapi.units import human_duration
from ..ids import ImageID
from ..model import Container, Store
from .daemonapi import API_20_10, at_least, invalid_filter
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


PS_FILTERS = frozenset({"ancestor", "before", "exited", "id", "isolation", "label", "name",
                        "status", "health", "since", "volume", "network", "is-task",
                        "publish", "expose"})
STATES = ("created", "running", "paused", "restarting", "removing", "exited", "dead")
HEALTH = ("none", "starting", "healthy", "unhealthy")


def newest_first(ctrs: Iterable[Container]) -> list[Container]:
    """daemon.List()'s order: newest first (ties by ID; the daemon's sort is not stable)."""
    return sorted(ctrs, key=lambda c: (-parse_rfc3339_ns(c.created), c.id))


def match(values: Sequence[str], source: str) -> bool:
    """filters.Args.Match: no values, an exact value, or a value that is a regular
    expression found in ``source`` (a bad expression matches nothing)."""
    if not values or source in values:
        return True
    for pattern in values:
        try:
            if re.search(pattern, source):
                return True
        except re.error:
            continue
    return False


def list_containers(store: Store, filters: Mapping[str, Sequence[str]], all_containers: bool,
                    limit: int = -1, api: str = API_20_10) -> list[Container]:
    """Containers(config): raises DaemonError with the text of the daemon speaking
    ``api`` (engines.daemonapi) for a bad filter."""
    for key in filters:
        if key not in PS_FILTERS:
            raise DaemonError(invalid_filter(api, key))
    docker_23 = at_least(api, "1.42")
    exited = []
    for value in filters.get("exited", ()):
        try:
            exited.append(int(value, 10))
        except ValueError:
            atoi = f'strconv.Atoi: parsing "{value}": invalid syntax'
            raise DaemonError(f"invalid filter 'exited={value}': {atoi}" if docker_23
                              else atoi) from None
    for value in filters.get("status", ()):
        if value not in STATES:
            raise DaemonError(f"invalid filter 'status={value}': invalid value for state "
                              f"({value}): must be one of {', '.join(STATES)}" if docker_23
                              else f"Invalid filter 'status={value}'")
        all_containers = True
    task = filters.get("is-task")
    if docker_23 and task:
        get_bool_or_default("is-task", task)
    elif task and any(v not in ("true", "false", "1", "0") for v in task) or \
            task and len(set(task)) > 1:
        raise DaemonError(f"Invalid filter 'is-task=[{' '.join(task)}]'")
    for value in filters.get("health", ()):
        if value not in HEALTH:
            raise DaemonError(f"invalid filter 'health={value}': invalid value for health "
                              f"({value}): must be one of {', '.join(HEALTH)}" if docker_23
                              else f"Unrecognised filter value for health: {value}")
    before = _id_or_name(store, filters.get("before", ()), docker_23)
    since = _id_or_name(store, filters.get("since", ()), docker_23)
    images = _ancestors(store, filters["ancestor"]) if "ancestor" in filters else None
    ports = {key: _ports(key, filters.get(key, ())) for key in ("publish", "expose")}

    out: list[Container] = []
    for ctr in _candidates(store, filters):
        if before is not None:
            if ctr.id == before:
                before = None
            continue
        if since is not None and ctr.id == since:
            break
        if not ctr.running and not all_containers and limit <= 0:
            continue
        if not _included(store, ctr, filters, exited, images, ports):
            continue
        if 0 < limit == len(out):
            break
        out.append(ctr)
    return out


def _candidates(store: Store, filters: Mapping[str, Sequence[str]]) -> list[Container]:
    """filterByNameIDMatches: with name or id filters, only the containers they name."""
    names, ids = filters.get("name", ()), filters.get("id", ())
    if not names and not ids:
        return newest_first(store.containers.values())
    matches = set()
    for prefix in ids:
        found = [c.id for c in store.containers.values() if c.id.startswith(prefix)]
        if len(found) == 1:
            matches.add(found[0])
    if names:
        for ctr in store.containers.values():
            if ids and ctr.id not in matches:
                continue
            if match(names, "/" + ctr.name) or match(names, ctr.name):
                matches.add(ctr.id)
    return newest_first(store.containers[i] for i in matches)


def _included(store: Store, ctr: Container, filters: Mapping[str, Sequence[str]],
              exited: Sequence[int], images: set[ImageID] | None,
              ports: Mapping[str, set[str]]) -> bool:
    """includeContainerInList, after before/since/--all."""
    if not match(filters.get("name", ()), "/" + ctr.name) and \
            not match(filters.get("name", ()), ctr.name):
        return False
    if not match(filters.get("id", ()), ctr.id):
        return False
    if filters.get("is-task") and filters["is-task"][0] in ("true", "1"):
        return False                     # no swarm tasks on a standalone daemon
    if not match_kv_list(filters.get("label", ()), ctr.labels):
        return False
    if not match(filters.get("isolation", ()), "default"):
        return False
    if exited and not (not ctr.running and ctr.state != "created"
                       and ctr.exit_code in exited):
        return False
    if not match(filters.get("status", ()), ctr.state):
        return False
    health = filters.get("health", ())
    if health and (ctr.health or "none") not in health:
        return False
    if "volume" in filters and not _has_volume(ctr, filters["volume"]):
        return False
    if images is not None and ctr.image_id not in images:
        return False
    if "network" in filters and not set(filters["network"]) & set(ctr.networks):
        return False
    if ports["publish"] or ports["expose"]:
        if not any(f"{p.public_port}/{p.type}" in ports["publish"]
                   or f"{p.private_port}/{p.type}" in ports["expose"] for p in ctr.ports):
            return False
    return True


def get_container(store: Store, prefix_or_name: str) -> Container:
    """The container a full ID, a name or a unique ID prefix means."""
    # moby: daemon/container.go GetContainer (full ID, then name, then a unique prefix)
    found = store.containers.get(prefix_or_name)
    if found is not None:
        return found
    name = prefix_or_name.removeprefix("/")
    for ctr in store.containers.values():
        if ctr.name == name:
            return ctr
    hits = [c for c in store.containers.values()
            if prefix_or_name and c.id.startswith(prefix_or_name)]
    if len(hits) > 1:
        raise DaemonError(f"multiple IDs found with provided prefix: {prefix_or_name}")
    if not hits:
        raise NoSuchContainer(f"No such container: {prefix_or_name}")
    return hits[0]


def _has_volume(ctr: Container, values: Sequence[str]) -> bool:
    names = {m.get("Name") or m.get("Source") for m in ctr.mounts}
    destinations = {m.get("Destination") for m in ctr.mounts if m.get("Destination")}
    return any(v in destinations or v in names for v in values)


def _id_or_name(store: Store, values: Sequence[str], docker_23: bool) -> str | None:
    """idOrNameFilter of the last value: a full ID, else a unique name (not found: the
    view's error, worded by Docker 23+ as ``No such container: VALUE``)."""
    found = None
    for value in values:
        if value in store.containers:
            found = value
            continue
        name = value.removeprefix("/")
        ids = {c.id for c in store.containers.values() if c.name == name}
        if len(ids) != 1:
            raise DaemonError(f"No such container: {value}" if docker_23
                              else f"no such container {value}")
        found = ids.pop()
    return found


def _ancestors(store: Store, values: Sequence[str]) -> set[ImageID]:
    """The images each ancestor names, and all their descendants (missing ones ignored)."""
    out: set[ImageID] = set()
    children = store.children
    for value in values:
        try:
            todo = [get_image(store, value).id]
        except DaemonError:
            continue
        while todo:
            image_id = todo.pop()
            if image_id not in out:
                out.add(image_id)
                todo.extend(children.get(image_id, ()))
    return out


def _ports(key: str, values: Sequence[str]) -> set[str]:
    """portOp: "80", "80/udp", "8000-8010/tcp" as "PORT/PROTO" strings."""
    out = set()
    for value in values:
        if ":" in value:
            raise DaemonError(f"filter for '{key}' should not contain ':': {value}")
        port, _, proto = value.partition("/")
        first, _, last = port.partition("-")
        try:
            start, end = int(first), int(last or first)
        except ValueError:
            raise DaemonError(f"error while looking up for {key} {value}: "
                              f"invalid port range: {port}") from None
        out.update(f"{p}/{proto or 'tcp'}" for p in range(start, end + 1))
    return out
