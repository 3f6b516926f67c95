"""``docker system df [-v]`` as the Docker 28 CLI prints it.

References: docker/cli cli/command/formatter/disk_usage.go (DiskUsageContext,
verboseWriteTable, the Active/Reclaimable methods), cli/command/system/df.go.
"""
from __future__ import annotations

from .. import reference as refs
from ..engines.containers import command_line, status
from ..engines.diskusage import DiskUsage
from ..goapi.strconv import quote
from ..goapi.time import parse_rfc3339_ns
from ..goapi.units import human_duration, human_size
from ..ids import short_id
from ..model import Store
from .containers import display_image
from .displayutils import ellipsis
from .images import created_since, _is_dangling
from .table import render_table

ACTIVE_STATES = ("running", "paused", "restarting")


def reclaimable_text(reclaimable: int, total: int) -> str:
    """docker/cli system df's RECLAIMABLE cell: the size, and its share of the total."""
    if total > 0:
        # Go's integer division truncates toward zero: on the containerd store the
        # images' reclaimable bytes can be negative ("-3.385e+06B (-68%)").
        share = abs(reclaimable) * 100 // total
        return f"{human_size(reclaimable)} ({-share if reclaimable < 0 else share}%)"
    return human_size(reclaimable)


def builder_size(du: DiskUsage) -> int:
    return sum(r.size for r in du.build_cache if not r.shared)


def render_summary(du: DiskUsage) -> str:
    used = sum(s.size - s.shared_size for s in du.images
               if s.containers != 0 and s.size != -1 and s.shared_size != -1)
    images = ["Images", str(len(du.images)), str(sum(1 for s in du.images if s.containers > 0)),
              human_size(du.layers_size), reclaimable_text(du.layers_size - used, du.layers_size)]
    total_rw = sum(max(c.size_rw or 0, 0) for c in du.containers)
    idle_rw = sum(max(c.size_rw or 0, 0) for c in du.containers
                  if c.container.state not in ACTIVE_STATES)
    containers = ["Containers", str(len(du.containers)),
                  str(sum(1 for c in du.containers if c.container.state in ACTIVE_STATES)),
                  human_size(total_rw), reclaimable_text(idle_rw, total_rw)]
    vol_total = sum(v.size for v in du.volumes if v.size != -1)
    vol_idle = sum(v.size for v in du.volumes if v.size != -1 and v.ref_count == 0)
    volumes = ["Local Volumes", str(len(du.volumes)),
               str(sum(1 for v in du.volumes if v.ref_count > 0)),
               human_size(vol_total), reclaimable_text(vol_idle, vol_total)]
    bsize = builder_size(du)
    in_use = sum(r.size for r in du.build_cache if r.in_use and not r.shared)
    cache = ["Build Cache", str(len(du.build_cache)),
             str(sum(1 for r in du.build_cache if r.in_use)),
             human_size(bsize), human_size(bsize - in_use)]
    return render_table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
                        [images, containers, volumes, cache])


def _rw_size(size_rw: int | None) -> str:
    # devicemapper: the RW layer is a filesystem inside a thin device, which only a
    # daemon that mounts it can measure; say so rather than print a number.
    return "unknown" if size_rw is None else human_size(size_rw, 3)


def render_verbose(store: Store, du: DiskUsage, now: float) -> str:
    out = ["Images space usage:\n\n"]
    rows = []
    for s in du.images:
        repo, tag = "<none>", "<none>"
        if s.repo_tags and not _is_dangling(s):
            repo, tag = refs.split_familiar_tag(s.repo_tags[0]) or (repo, tag)
        shared = "N/A" if s.shared_size == -1 else human_size(s.shared_size)
        unique = "N/A" if s.shared_size == -1 else human_size(s.size - s.shared_size)
        rows.append([repo, tag, short_id(s.id), created_since(s.created, now),
                     human_size(s.size, 3), shared, unique, str(s.containers)])
    out.append(render_table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE",
                             "SHARED SIZE", "UNIQUE SIZE", "CONTAINERS"], rows))
    out.append("\nContainers space usage:\n\n")
    rows = []
    for cu in du.containers:
        c = cu.container
        local = sum(1 for m in c.mounts if m.get("Driver") == "local")
        created = human_duration(now - parse_rfc3339_ns(c.created) // 1_000_000_000) + " ago"
        rows.append([short_id(c.id), display_image(store, c, True),
                     quote(ellipsis(command_line(c), 20)), str(local),
                     _rw_size(cu.size_rw), created, status(c, now), c.name])
    out.append(render_table(["CONTAINER ID", "IMAGE", "COMMAND", "LOCAL VOLUMES", "SIZE",
                             "CREATED", "STATUS", "NAMES"], rows))
    out.append("\nLocal Volumes space usage:\n\n")
    rows = [[v.volume.name, str(v.ref_count), human_size(v.size)]
            for v in sorted(du.volumes, key=lambda v: v.volume.name)]
    out.append(render_table(["VOLUME NAME", "LINKS", "SIZE"], rows))
    out.append(f"\nBuild cache usage: {human_size(builder_size(du))}\n\n")
    rows = []
    # docker/cli df: by LastUsedAt (as times; none first), then by ID.
    records = sorted(du.build_cache, key=lambda r: (
        r.last_used_at is not None,
        parse_rfc3339_ns(r.last_used_at) if r.last_used_at else 0, r.id))
    for r in records:
        last_used = human_duration(now - parse_rfc3339_ns(r.last_used_at) / 1e9) + " ago" \
            if r.last_used_at else ""
        cache_id = short_id(r.id) + ("*" if r.in_use else "")
        rows.append([cache_id, r.cache_type, human_size(r.size, 3),
                     human_duration(now - parse_rfc3339_ns(r.created_at) / 1e9) + " ago",
                     last_used, str(r.usage_count), "true" if r.shared else "false"])
    out.append(render_table(["CACHE ID", "CACHE TYPE", "SIZE", "CREATED", "LAST USED",
                             "USAGE", "SHARED"], rows))
    return "".join(out)
