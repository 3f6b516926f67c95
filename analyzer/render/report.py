"""``analyze report``: one self-contained JSON document of a whole analysis, for a case
file — provenance, inventory, verification, timeline — in analyzer's JSON style.

Fields, after ``analysis``: ``inventory`` (``images``: ``id``, ``tags``, ``created``,
``size``, ``layers`` (chain IDs, top first); ``containers``: ``id``, ``name``,
``image_id``, ``image``, ``created``, ``state``, ``exit_code``; ``volumes``: names),
``verify`` (the body of ``verify --json``, or null with ``--no-verify`` or where the
source cannot be verified), ``du`` (the body of ``du --json``; null for an image
archive), ``timeline`` (the events of ``timeline --json``), then
``complete``, ``damaged`` and ``warnings``.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..engines.timeline import Event
from ..model import Store
from .timeline import event_json


def report_body(store: Store, verify: dict[str, Any] | None, du: dict[str, Any] | None,
                events: Sequence[Event]) -> dict[str, Any]:
    return {
        "inventory": {
            "images": [{"id": image.id, "tags": [r.familiar for r in store.refs(image.id)],
                        "created": image.created, "size": store.image_size(image),
                        "layers": [layer.chain_id for layer in store.chain(image.top_layer)]}
                       for image in sorted(store.images.values(), key=lambda i: i.id)],
            "containers": [{"id": c.id, "name": c.name, "image_id": c.image_id,
                            "image": c.image, "created": c.created, "state": c.state,
                            "exit_code": c.exit_code}
                           for c in sorted(store.containers.values(), key=lambda c: c.id)],
            "volumes": sorted(v.name for v in store.volumes),
        },
        "verify": verify,
        "du": du,
        "timeline": [event_json(e) for e in events],
    }

