"""``analyze owner``: what a path or ID belongs to, for the analyst and as JSON."""
from __future__ import annotations

from typing import Any

from ..engines.owner import Owners
from ..model import Store


def owner_body(store: Store, query: str, found: Owners) -> dict[str, Any]:
    """The JSON fields: what matched, then the layers, images, containers and volumes."""
    layers = [store.layers[c] for c in sorted(found.layers)]
    return {
        "query": query,
        "matched": [{"kind": k, "id": i} for k, i in found.matched],
        "layers": [{"chain_id": la.chain_id, "diff_id": la.diff_id, "cache_id": la.cache_id}
                   for la in layers],
        "images": [{"id": i, "tags": [r.familiar for r in store.refs(i)]}
                   for i in sorted(found.images)],
        "containers": [{"id": c, "name": store.containers[c].name,
                        "image_id": store.containers[c].image_id}
                       for c in sorted(found.containers) if c in store.containers],
        "volumes": sorted(found.volumes),
    }


def render_owner(body: dict[str, Any]) -> str:
    lines = [f"matched    {m['kind']} {m['id']}" for m in body["matched"]]
    lines += [f"layer      {la['chain_id']} (diff {la['diff_id']}, cache {la['cache_id']})"
              for la in body["layers"]]
    lines += [f"image      {im['id']} {' '.join(im['tags']) or '<none>'}"
              for im in body["images"]]
    lines += [f"container  {c['id']} {c['name']}" for c in body["containers"]]
    lines += [f"volume     {v}" for v in body["volumes"]]
    return "".join(f"{line}\n" for line in lines)
