"""``docker ps`` rows, as the Docker 28 CLI prints the daemon's container summaries.

References: docker/cli cli/command/formatter/container.go (ContainerContext,
DisplayablePorts), cli/command/container/list.go.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from .. import reference as refs
from ..engines.changes import Change
from ..engines.containers import command_line, list_image, status
from ..goapi.json import marshal
from ..goapi.strconv import quote
from ..goapi.template import GoMethod, GoNil
from ..goapi.time import parse_rfc3339_ns, string_local
from ..goapi.units import human_duration, human_size
from ..ids import short_id
from ..model import Container, Port, Store
from .displayutils import ellipsis
from .table import render_table


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


DEFAULT_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}"
                 "\t{{.Ports}}\t{{.Names}}")
HEADER = {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
          "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
          "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS",
          "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS",
          "Platform": "PLATFORM"}
# What ContainerContext's getters return for the zero container.Summary, which the CLI
# runs a custom format on first to see whether it asks for .Size.
_ZERO_VALUES = {"ID": "", "Names": "", "Image": "<no image>", "Command": '""',
                "CreatedAt": "1970-01-01 00:00:00 +0000 UTC", "Ports": "", "State": "",
                "Status": "", "Labels": "", "Mounts": "", "LocalVolumes": "0", "Networks": "",
                "Platform": GoNil("*formatter.Platform")}


def format_needs_size(fmt: str, now: float) -> bool:
    """buildContainerListOptions: parse the format and run it once on an empty
    container; True when it called .Size. Raises FormatError worded as the CLI."""
    from .formatter import FormatError, context, parse
    from ..goapi.template import ExecError, TemplateError
    try:
        tmpl = parse(fmt)
    except TemplateError as exc:
        raise FormatError(f"failed to parse template: {exc}") from None
    used = []

    def size() -> str:
        used.append(True)
        return "0B"
    values = dict(_ZERO_VALUES, RunningFor=human_duration(now) + " ago")
    probe = context("formatter.ContainerContext", values,
                    {"Size": GoMethod(size), "Label": GoMethod(lambda name: "", ("string",))})
    probe.json = lambda: {**values, "Size": size()}     # MarshalJSON calls every getter
    try:
        tmpl.execute(probe)
    except ExecError as exc:
        raise FormatError(f"failed to execute template: {exc}") from None
    return bool(used)


def container_size(size_rw: int | None, size_root_fs: int) -> str:
    """ContainerContext.Size: "2B (virtual 21.5MB)"; unknown where only a running
    daemon could measure the RW layer (devicemapper)."""
    rw = "unknown" if size_rw is None else human_size(size_rw, 3)
    return f"{rw} (virtual {human_size(size_root_fs, 3)})" if size_root_fs > 0 else rw


def render_ps(store: Store, ctrs: Sequence[Container], *, quiet: bool, no_trunc: bool,
              fmt: str, now: float,
              sizes: Mapping[str, tuple[int | None, int]] | None = None) -> str:
    """NewContainerFormat and ContainerWrite: ``table`` (with a SIZE column when sizes
    were asked for), ``json``, or a template; -q prints IDs whatever the format.
    ``sizes``: (SizeRw, SizeRootFs) by container ID, when the daemon would have measured them."""
    from .formatter import context, header_context, write
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
        size = container_size(*sizes[c.id]) if sizes is not None else human_size(0, 3)
        rows.append((c, cells, _json_row(c, cells, size, trunc)))
    if fmt == "json":
        return "".join(marshal(values) + "\n" for _, _, values in rows)
    if fmt == "table" and sizes is None:
        header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        keys = ["ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"]
        return render_table(header, [[cells[k] for k in keys] for _, cells, _ in rows])
    if fmt == "table":
        fmt = DEFAULT_TABLE + "\\t{{.Size}}"
    contexts = [context("formatter.ContainerContext", values,
                        {"Label": GoMethod(lambda name, c=c: c.labels.get(name, ""), ("string",)),
                         "Platform": GoMethod(lambda: GoNil("*formatter.Platform"))})
                for c, _, values in rows]
    return write(fmt, contexts, header_context(HEADER))


def _json_row(c: Container, cells: dict[str, str], size: str, trunc: bool) -> dict[str, str]:
    # The CLI joins labels in Go map order (random); sorted here.
    labels = ",".join(f"{k}={v}" for k, v in sorted(c.labels.items()))
    mounts = ",".join(_mount_name(m, trunc) for m in c.mounts)
    local_volumes = sum(1 for m in c.mounts if m.get("Driver") == "local")
    return {
        **cells,
        "CreatedAt": string_local(parse_rfc3339_ns(c.created) // 1_000_000_000),
        "Labels": labels,
        "LocalVolumes": str(local_volumes),
        "Mounts": mounts,
        "Networks": ",".join(sorted(c.networks)),
        # dockerd 20.10's summary has no image platform; 28.5's has it on the containerd store
        "Platform": c.platform,
        "Size": size,
        "State": c.state,
    }


def _mount_name(mount: dict, trunc: bool) -> str:
    name = mount.get("Name") or mount.get("Source") or ""
    return ellipsis(name, 15) if trunc else name


def render_changes(changes: Sequence[Change]) -> str:
    """``docker diff``: one ``KIND PATH`` line per change. A name's bytes that are not
    UTF-8 reach the CLI as U+FFFD, as Go's JSON encoder writes them."""
    return "".join(f"{c.kind} {_go_string(c.path)}\n" for c in changes)


def _go_string(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
