"""``volumes/metadata.db``: each volume's driver, labels and options, as the daemon's
volume store keeps them beside the local driver's directories.

References: moby v20.10 volume/service/db.go (volumeBucketName, volumeMetadata,
getMeta), volume/service/store.go (restore).
"""
from __future__ import annotations

from typing import Callable, Mapping, NamedTuple

import orjson

from ..errors import EvidenceError, MalformedError
from ..goapi import unmarshal
from . import layout, mobytypes
from .bbolt import BoltDB, read_db_file
from .evidence import EvidenceRoot

BUCKET = "volumes"


class VolumeMetadata(NamedTuple):
    driver: str
    labels: Mapping[str, str]
    options: Mapping[str, str]


def read_volume_metadata(root: EvidenceRoot, warn: Callable[[str, str], None]
                         ) -> dict[str, VolumeMetadata]:
    """Each volume's metadata by name; what cannot be read is warned of (``warn(file,
    reason)``) and left out, so that volume reads as having no labels or options."""
    rel = layout.VOLUMES_METADATA_DB
    try:
        data = read_db_file(root, rel)
        if data is None:
            return {}
        bucket = BoltDB(data, rel).bucket(BUCKET)
        entries = list(bucket.items()) if bucket is not None else []
    except (EvidenceError, MalformedError) as exc:
        warn(rel, f"{exc.reason}; volumes' labels and options not read")
        return {}
    out: dict[str, VolumeMetadata] = {}
    for key, value in entries:
        if not value:
            continue                   # a nested bucket, or getMeta's empty value
        name = key.decode("utf-8", "surrogateescape")
        try:
            doc = orjson.loads(value)
            unmarshal.check(doc, mobytypes.VOLUME_METADATA)
        except (orjson.JSONDecodeError, unmarshal.Mismatch) as exc:
            warn(rel, f"volume {name!r}: not valid volume metadata ({exc}); its labels "
                      "and options not read")
            continue
        out[name] = VolumeMetadata(doc.get("Driver") or "", doc.get("Labels") or {},
                                   doc.get("Options") or {})
    return out
