"""``docker ps`` rows, as dockerd 20.10 summarises containers and the Docker 28 CLI prints them.

References: moby v20.10 container/view.go (snapshot Command), container/state.go
(State.String), daemon/list.go (refreshImage); docker/cli
cli/command/formatter/container.go (ContainerContext), cli/command/container/list.go.
"""
from __future__ import annotations

from typing import Sequence

from .. import reference as refs
from ..engines.resolve import get_image
from ..errors import DaemonError
from ..goapi.strconv import quote
from ..goapi.time import parse_rfc3339_ns, string_local
from ..goapi.units import human_duration, human_size
from ..ids import short_id
from ..model import Container, Port, Store
from .displayutils import ellipsis
from .jsonfmt import go_json
from .table import render_table


def command_line(ctr: Container) -> str:
    # moby: container/view.go — arguments with spaces are single-quoted.
    if not ctr.args:
        return ctr.path
    args = [f"'{a}'" if " " in a else a for a in ctr.args]
    return f"{ctr.path} {' '.join(args)}"


def _since(stamp: str, now: float) -> str:
    return human_duration(now - parse_rfc3339_ns(stamp) / 1e9)


def displayable_ports(ports: Sequence[Port]) -> str:
    """docker/cli formatter.DisplayablePorts: ranges of consecutive ports, then mappings."""
    groups: dict[str, list[int]] = {}          # key -> [first, last], in creation order
    result: list[str] = []
    mappings: list[str] = []
    for p in sorted(ports, key=lambda p: (p.private_port, p.ip, p.public_port, p.type)):
        key = p.type
        if p.ip:
            if p.public_port != p.private_port:
                host = f"[{p.ip}]" if ":" in p.ip else p.ip
                mappings.append(f"{host}:{p.public_port}->{p.private_port}/{p.type}")
                continue
            key = f"{p.ip}/{p.type}"
        group = groups.get(key)
        if group is None:
            groups[key] = [p.private_port, p.private_port]
        elif p.private_port == group[1] + 1:
            group[1] = p.private_port
        else:
            result.append(_port_group(key, *group))
            groups[key] = [p.private_port, p.private_port]
    result += [_port_group(key, *g) for key, g in groups.items()]
    return ", ".join(result + mappings)


def _port_group(key: str, first: int, last: int) -> str:
    ip, _, kind = key.rpartition("/")
    group = str(first) if first == last else f"{first}-{last}"
    if ip:
        group = f"{ip}:{group}->{group}"
    return f"{group}/{kind}"


def status(ctr: Container, now: float) -> str:
    # moby: container/state.go State.String
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


def list_image(store: Store, ctr: Container) -> str:
    """The Image field of the daemon's summary (daemon/list.go refreshImage)."""
    image = ctr.image
    if image != ctr.image_id:
        try:
            found = get_image(store, image)
        except DaemonError:
            found = None
        if found is None or found.id != ctr.image_id:
            image = ctr.image_id
    return image


def display_image(store: Store, ctr: Container, trunc: bool) -> str:
    image = list_image(store, ctr)
    if not image:
        return "<no image>"
    if trunc:
        if short_id(ctr.image_id) == short_id(image):
            return short_id(image)
        familiar = refs.familiar_without_digest(image)
        if familiar is not None:
            return familiar
    return image


def select(store: Store, all_containers: bool) -> list[Container]:
    ctrs = [c for c in store.containers.values() if all_containers or c.running]
    # daemon/list.go: newest first, by creation time.
    ctrs.sort(key=lambda c: (-parse_rfc3339_ns(c.created), c.id))
    return ctrs


def render_ps(store: Store, ctrs: Sequence[Container], *, quiet: bool, no_trunc: bool,
              fmt: str, now: float) -> str:
    trunc = not no_trunc

    def cid(c: Container) -> str:
        return short_id(c.id) if trunc else c.id

    if quiet:
        return "".join(f"{cid(c)}\n" for c in ctrs)
    rows = []
    for c in ctrs:
        cmd = command_line(c)
        cells = {
            "ID": cid(c),
            "Image": display_image(store, c, trunc),
            "Command": quote(ellipsis(cmd, 20) if trunc else cmd),
            "RunningFor": human_duration(now - parse_rfc3339_ns(c.created) // 1_000_000_000) + " ago",
            "Status": status(c, now),
            "Ports": displayable_ports(c.ports),
            "Names": c.name,
        }
        rows.append((c, cells))
    if fmt == "json":
        return "".join(go_json(_json_row(c, cells)) + "\n" for c, cells in rows)
    header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
    return render_table(header, [[cells[k] for k in keys] for _, cells in rows])


def _json_row(c: Container, cells: dict[str, str]) -> dict[str, str]:
    # The CLI joins labels in Go map order (random); sorted here.
    labels = ",".join(f"{k}={v}" for k, v in sorted(c.labels.items()))
    mounts = ",".join(_mount_name(m) for m in c.mounts)
    local_volumes = sum(1 for m in c.mounts if m.get("Driver") == "local")
    return {
        **cells,
        "CreatedAt": string_local(parse_rfc3339_ns(c.created) // 1_000_000_000),
        "Labels": labels,
        "LocalVolumes": str(local_volumes),
        "Mounts": mounts,
        "Networks": ",".join(sorted(c.networks)),
        "Platform": None,      # the API 1.41 summary has no image platform
        "Size": human_size(0, 3),
        "State": c.state,
    }


def _mount_name(mount: dict) -> str:
    name = mount.get("Name") or mount.get("Source") or ""
    return ellipsis(name, 15)
