"""``analyze slack``: a devicemapper pool's files, what its devices map, and the slack,
as a table and as the body of ``slack --json`` (fields in DESIGN.md)."""
from __future__ import annotations

from typing import Any

from ..engines.slack import DeviceUse, SlackReport
from ..goapi.units import human_size
from ..ids import short_id
from ..model import HostFile
from .table import render_table


def _bytes(n: int) -> str:
    return f"{n} ({human_size(n)})"


def _hash(value: str | None) -> str:
    if value is None:
        return "-"
    if not value:
        return "base"
    # a container's init device is "<mount ID>-init"
    return value[:12] + "-init" if value.endswith("-init") else value[:12]


def _state(d: DeviceUse) -> str:
    if d.orphan:
        return "orphan"
    return "deleted" if d.deleted else "live"


def _used_for(d: DeviceUse) -> str:
    if d.used_for is None:
        return "" if d.orphan else "?"
    kind, ident = d.used_for
    if kind == "base":
        return "base device"
    if kind == "layer":
        return f"layer {short_id(ident)}"
    return f"{kind} {ident[:12]}"


def render_slack(report: SlackReport) -> str:
    lines = []
    for label, f in (("data file", report.data_file), ("metadata file", report.metadata_file)):
        if f is None:
            lines.append(f"{label}: none (not loop-lvm)")
        else:
            lines.append(f"{label}: {f.source}: apparent {_bytes(f.apparent_bytes)}, "
                         f"allocated {_bytes(f.allocated_bytes)}")
    lines.append(f"data block: {report.data_block_bytes} bytes, {report.nr_data_blocks} blocks")
    lines.append(f"mapped by live devices: {_bytes(report.mapped_bytes)}")
    lines.append(f"mapped only by deleted or orphan devices: {_bytes(report.deleted_device_bytes)}")
    lines.append(f"slack (held by the data file, mapped by no device): {_bytes(report.slack_bytes)}")
    rows = [[str(d.device_id), _hash(d.hash),
             human_size(d.mapped_bytes), human_size(d.exclusive_bytes),
             human_size(d.shared_bytes), _state(d) + ("" if d.complete else ", damaged"),
             _used_for(d)]
            for d in report.devices]
    table = render_table(["DEVICE", "HASH", "MAPPED", "EXCLUSIVE", "SHARED", "STATE", "USED FOR"],
                         rows)
    return "\n".join(lines) + "\n\n" + table


def slack_json(report: SlackReport) -> dict[str, Any]:
    """The body of ``slack --json``."""
    return {
        "data_file": _file_json(report.data_file),
        "metadata_file": _file_json(report.metadata_file, report.metadata_used_bytes),
        "data_block_bytes": report.data_block_bytes,
        "nr_data_blocks": report.nr_data_blocks,
        "transaction_id": report.transaction_id,
        "mapped_bytes": report.mapped_bytes,
        "deleted_device_bytes": report.deleted_device_bytes,
        "slack_bytes": report.slack_bytes,
        "devices": [_device_json(d) for d in report.devices],
    }


def _file_json(f: HostFile | None, used: int | None = None) -> dict[str, Any] | None:
    if f is None:
        return None
    out: dict[str, Any] = {"path": f.source, "apparent_bytes": f.apparent_bytes,
                           "allocated_bytes": f.allocated_bytes}
    if used is not None:
        out["used_bytes"] = used        # blocks in use in the metadata space map
    return out


def _device_json(d: DeviceUse) -> dict[str, Any]:
    return {"device_id": d.device_id, "hash": d.hash, "mapped_bytes": d.mapped_bytes,
            "exclusive_bytes": d.exclusive_bytes, "shared_bytes": d.shared_bytes,
            "deleted": d.deleted, "orphan": d.orphan,
            "used_for": None if d.used_for is None else
            {"kind": d.used_for[0], "id": d.used_for[1] or None},
            "complete": d.complete}
