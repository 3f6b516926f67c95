"""``reclaim --json`` and ``prune --json`` on the containerd image store (DESIGN.md):
the blobs and snapshots containerd's collector deletes, what keeps the others, bytes."""
from __future__ import annotations

from typing import Sequence

from ..engines.containerdreclaim import Held, Reclaim


def deletions_json(result: Reclaim | None) -> dict:
    """The blobs and snapshots a prune's collection deletes (none when none ran)."""
    return {"deleted_blobs": [{"digest": d, "bytes": b} for d, b in result.deleted_blobs]
            if result else [],
            "deleted_snapshots": [{"key": k, "bytes": b} for k, b in result.deleted_snapshots]
            if result else []}


def _held(items: Sequence[Held], key: str) -> list[dict]:
    return [{key: h.id, "bytes": h.bytes,
             "held_by": [{"kind": k.kind, "id": k.id, "namespace": k.namespace}
                         for k in h.held_by]} for h in items]


def reclaim_json(result: Reclaim, extra: dict | None = None) -> dict:
    """The command's own fields; render/analysis.py adds provenance and damage."""
    return {
        "untagged": list(result.untagged),
        "deleted_images": list(result.deleted_images),
        **deletions_json(result),
        "held_blobs": _held(result.held_blobs, "digest"),
        "held_snapshots": _held(result.held_snapshots, "key"),
        "bytes_freed": result.bytes_freed,
        "bytes_are_estimate": False,
        "errors": list(result.errors),
        **(extra or {}),
    }


def render_reclaim(result: Reclaim) -> str:
    """The text form: what rm prints, then what the collector deletes and keeps."""
    lines = [f"Untagged: {ref}" for ref in result.untagged]
    lines += [f"Deleted: {image}" for image in result.deleted_images]
    lines += [f"blob {d} {b} B deleted" for d, b in result.deleted_blobs]
    lines += [f"snapshot {k} {b} B deleted" for k, b in result.deleted_snapshots]
    for kind, items in (("blob", result.held_blobs), ("snapshot", result.held_snapshots)):
        for h in items:
            holders = ", ".join(f"{k.kind} {k.namespace}/{k.id}" for k in h.held_by)
            lines.append(f"{kind} {h.id} {h.bytes} B kept by {holders}")
    lines.append(f"Total freed: {result.bytes_freed} B")
    return "".join(f"{line}\n" for line in lines)
