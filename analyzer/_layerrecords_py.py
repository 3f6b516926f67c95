"""Pure-Python twin of ``_fastdigest.plain_layers`` (_csrc/layerrecords.h says what a
plain layer record is): the same answers, one record at a time."""
from __future__ import annotations

import hashlib
import re

__all__ = ["plain_layers"]

_SPACE = b" \t\n\v\f\r"
_DIGEST = re.compile(rb"sha256:[0-9a-f]{64}")
_NAME = re.compile(rb"[!-.0-~]+")            # printable ASCII but '/'
_SIZE = re.compile(rb"[0-9]{1,18}")


def plain_layers(hexids: list[str], files: list[object], /
                 ) -> list[tuple[str, int, str, str | None] | None]:
    """For each layer directory name, its record (diff_id, diff_size, cache_id, parent)
    when plain, else None; ``files`` holds four per name: diff, size, cache-id, parent."""
    if len(files) != 4 * len(hexids):
        raise ValueError("four files a layer")
    return [_plain(hexid.encode("utf-8", "surrogateescape"), files[4 * i:4 * i + 4])
            for i, hexid in enumerate(hexids)]


def _plain(hexid: bytes, row: list[object]) -> tuple[str, int, str, str | None] | None:
    if any(item is not None and type(item) is not bytes for item in row):
        return None
    diff, size, cache_id, parent = (item if item is None else item.strip(_SPACE) for item in row)
    if diff is None or cache_id is None or len(hexid) != 64:
        return None
    if size and not _SIZE.fullmatch(size):
        return None
    if not _DIGEST.fullmatch(diff) or not _NAME.fullmatch(cache_id) or cache_id in (b".", b".."):
        return None
    if parent and not _DIGEST.fullmatch(parent):
        return None
    chain = hashlib.sha256(parent + b" " + diff).hexdigest().encode() if parent else diff[7:]
    if chain != hexid:
        return None
    return diff.decode(), int(size) if size else 0, cache_id.decode(), parent.decode() if parent else None
