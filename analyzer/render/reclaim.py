"""``reclaim``: what goes, what stays, and why — a table for people, and the JSON body
``reclaim --json`` and ``prune --json`` share (fields in DESIGN.md)."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..engines.archivereclaim import Blob, BlobReclaim
from ..engines.lastused import LastUse
from ..engines.reclaim import Reclaim
from ..goapi.time import format_rfc3339_nano_utc
from ..goapi.units import human_size
from ..ids import short_id
from ..model import Store
from .table import render_table


def _holder(store: Store, kind: str, ident: str) -> str:
    if kind == "image":
        refs = store.refs(ident)
        name = next((r.familiar for r in refs if not r.is_digest), None)
        return f"image {name} ({short_id(ident)})" if name else f"image {short_id(ident)}"
    if kind == "container":
        ctr = store.containers.get(ident)
        state = f", {ctr.state}" if ctr is not None else ""
        name = f" {ctr.name}" if ctr is not None else ""
        return f"container{name} ({short_id(ident)}{state})"
    if kind == "build-cache":
        return f"build cache {ident}"
    return f"{kind} {short_id(ident)}"


def render_reclaim(store: Store, result: Reclaim, pool: dict | None = None) -> str:
    out = []
    if result.untagged:
        out.append("Untags:   " + ", ".join(result.untagged) + "\n")
    if result.deleted_images:
        out.append("Deletes:  " + ", ".join(short_id(i) for i in result.deleted_images)
                   + f" ({len(result.deleted_images)} image(s), "
                   f"{len(result.deleted_layers)} layer(s))\n")
    rows = [[short_id(l.chain_id), short_id(l.diff_id), l.cache_id[:12],
             human_size(l.bytes), "freed"] for l in result.deleted_layers]
    for h in result.held_layers:
        why = ", ".join(_holder(store, k.kind, k.id) for k in h.held_by[:3])
        if len(h.held_by) > 3:
            why += f", and {len(h.held_by) - 3} more"
        layer = store.layers[h.chain_id]
        rows.append([short_id(h.chain_id), short_id(layer.diff_id), layer.cache_id[:12],
                     human_size(h.bytes), f"kept: {why}"])
    if rows:
        out.append("\n" + render_table(["LAYER", "DIFF ID", "CACHE ID", "ON DISK", "FATE"], rows))
    if result.build_cache_bytes:
        out.append(f"\nThe build cache alone holds {human_size(result.build_cache_bytes)} of the "
                   f"layers kept: `docker builder prune` would free them too.\n")
    if pool is not None:
        out.append(f"\nThin pool frees: {human_size(pool['pool_bytes_freed'])}; the host's data "
                   f"file gives back {human_size(pool['host_bytes_freed'])}; slack afterwards: "
                   f"{human_size(pool['slack_bytes_after'])}\n")
    approx = " (estimated from archive sizes)" if result.estimate else ""
    out.append(f"\nWould free: {human_size(result.bytes_freed)} "
               f"({result.bytes_freed} bytes){approx}\n")
    return "".join(out)


def last_used_json(uses: Mapping[str, LastUse | None], image_ids: Sequence[str]
                   ) -> dict[str, Any]:
    """``last_used``: each removed image's last use (engines/lastused.py), or null when
    the evidence holds none."""
    return {"last_used": {i: None if (u := uses.get(i)) is None else {
        "time": format_rfc3339_nano_utc(u.unix_ns), "evidence": u.evidence, "id": u.id,
        "in_use": u.in_use} for i in image_ids}}


def reclaim_json(result: Reclaim, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The body of ``reclaim --json``; ``extra`` adds the pool's or prune's own fields."""
    return {
        "untagged": list(result.untagged),
        "deleted_images": list(result.deleted_images),
        "deleted_layers": [{"chain_id": l.chain_id, "diff_id": l.diff_id,
                            "cache_id": l.cache_id, "bytes": l.bytes}
                           for l in result.deleted_layers],
        "held_layers": [{"chain_id": h.chain_id, "bytes": h.bytes,
                         "held_by": [{"kind": k.kind, "id": k.id} for k in h.held_by]}
                        for h in result.held_layers],
        "bytes_freed": result.bytes_freed,
        "build_cache_bytes": result.build_cache_bytes,
        "bytes_are_estimate": result.estimate,
        "errors": list(result.errors),
        **(extra or {}),
    }


def _blob_json(blob: Blob) -> dict:
    return {"digest": blob.digest, "path": blob.path, "bytes": blob.bytes}


def archive_reclaim_json(result: BlobReclaim, errors: list[str]) -> dict[str, Any]:
    """The body of ``reclaim --json`` on an image archive: blobs, not layers."""
    return {"untagged": list(result.untagged),
            "deleted_blobs": [_blob_json(b) for b in result.deleted_blobs],
            "held_blobs": [_blob_json(b) for b in result.held_blobs],
            "bytes_freed": result.bytes_freed, "bytes_are_estimate": False,
            "errors": errors}


def render_archive_reclaim(result: BlobReclaim) -> str:
    out = []
    if result.untagged:
        out.append("Untags:   " + ", ".join(result.untagged) + "\n")
    rows = [[b.digest or b.path, human_size(b.bytes), "freed"] for b in result.deleted_blobs]
    rows += [[b.digest or b.path, human_size(b.bytes), "held by another entry"]
             for b in result.held_blobs]
    if rows:
        out.append(render_table(["BLOB", "SIZE", ""], rows))
    out.append(f"Total reclaimed space: {human_size(result.bytes_freed)}\n")
    return "".join(out)
