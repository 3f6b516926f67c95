"""``analyze du``: the data root's bytes and inodes by owner, as a table that reads like
``docker system df`` (with the commands that free what) and as the body of ``du
--json`` (fields in DESIGN.md)."""
from __future__ import annotations

from typing import Any, Mapping

from ..engines.rootusage import FREED_BY, Owned, RootUsage
from ..goapi.units import human_size
from .df import reclaimable_text
from .table import render_table

# Items of each category -v lists, biggest first.
VERBOSE_ITEMS = 10

_TITLES = {
    "image_layers": "Image layers",
    "build_cache": "Build cache",
    "container_layers": "Container layers",
    "container_logs": "Container logs",
    "container_other": "Container files",
    "volumes": "Volumes",
    "containerd_content": "containerd content",
    "containerd_snapshots": "containerd snapshots",
    "devicemapper": "devicemapper",
    "metadata": "Daemon metadata",
    "orphans": "Orphans",
    "other": "Other daemon state",
}


def render_du(usage: RootUsage, verbose: bool) -> str:
    rows = []
    for c in usage.categories:
        freed = reclaimable_text(c.reclaimable_bytes, c.bytes)
        if c.name in FREED_BY and c.reclaimable_bytes:
            freed += f" by {FREED_BY[c.name]}"
        rows.append([_TITLES[c.name], str(c.items), str(c.inodes), human_size(c.bytes), freed])
    reclaimable = sum(c.reclaimable_bytes for c in usage.categories)
    rows.append(["Total", "", str(usage.total_inodes), human_size(usage.total_bytes),
                 reclaimable_text(reclaimable, usage.total_bytes)])
    out = render_table(["CATEGORY", "ITEMS", "INODES", "SIZE", "RECLAIMABLE"], rows)
    if len(usage.roots) > 1:
        out += "".join(f"\n{r.name} root: {human_size(r.bytes)}, {r.inodes} inodes"
                       for r in usage.roots) + "\n"
    if usage.other_filesystems_bytes:
        out += (f"\nOn other filesystems mounted below the root (not counted): "
                f"{human_size(usage.other_filesystems_bytes)}\n")
    if usage.orphans:
        out += "\nOrphans (no docker command removes them):\n"
        out += render_table(["PATH", "SIZE", "INODES", "WHY"],
                            [[_where(o), human_size(o.bytes), str(o.inodes), o.claim.why or ""]
                             for o in usage.orphans])
    if usage.unexplained:
        out += f"\nUnexplained: {human_size(usage.unexplained_bytes)}\n"
        out += render_table(["PATH", "SIZE", "INODES"],
                            [[_where(o), human_size(o.bytes), str(o.inodes)]
                             for o in usage.unexplained])
    if verbose:
        out += _verbose(usage)
    return out


def _where(o: Owned) -> str:
    """A path, with the root it is in when that is not the data root."""
    return o.claim.item if o.claim.root == "data" else f"{o.claim.root}:{o.claim.item}"


def _verbose(usage: RootUsage) -> str:
    out = ""
    for c in usage.categories:
        mine = [o for o in usage.owned if o.claim.category == c.name and o.bytes]
        if not mine or c.name == "orphans":
            continue
        out += f"\n{_TITLES[c.name]} (biggest {min(len(mine), VERBOSE_ITEMS)} of {len(mine)}):\n"
        out += render_table(["ITEM", "SIZE", "INODES", "SHARED", "RECLAIMABLE"],
                            [[o.claim.item, human_size(o.bytes), str(o.inodes),
                              "yes" if o.claim.shared else "no",
                              "yes" if o.claim.reclaimable else "no"]
                             for o in mine[:VERBOSE_ITEMS]])
    return out


def du_json(usage: RootUsage, paths: Mapping[str, str]) -> dict[str, Any]:
    """The body of ``du --json``; ``paths``: each evidence root's path, by name."""
    return {
        "total_bytes": usage.total_bytes,
        "total_inodes": usage.total_inodes,
        "roots": [{"name": r.name, "path": paths.get(r.name), "total_bytes": r.bytes,
                   "total_inodes": r.inodes} for r in usage.roots],
        "other_filesystems_bytes": usage.other_filesystems_bytes,
        "bytes_are_estimate": usage.bytes_are_estimate,
        "categories": [{"name": c.name, "bytes": c.bytes, "inodes": c.inodes,
                        "items": c.items, "reclaimable_bytes": c.reclaimable_bytes,
                        "freed_by": FREED_BY.get(c.name)}
                       for c in usage.categories],
        "orphans": [_path_json(o, why=True) for o in usage.orphans],
        "unexplained_bytes": usage.unexplained_bytes,
        "unexplained": [_path_json(o) for o in usage.unexplained],
        "items": [{"category": o.claim.category, "id": o.claim.item, "root": o.claim.root,
                   "bytes": o.bytes, "inodes": o.inodes, "reclaimable": o.claim.reclaimable,
                   "shared": o.claim.shared}
                  for o in usage.owned if o.claim.category not in (None, "orphans")],
    }


def _path_json(o: Owned, why: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"path": o.claim.item, "root": o.claim.root, "bytes": o.bytes,
                           "inodes": o.inodes}
    if why:
        out["why"] = o.claim.why
    return out
