"""A layer as dockerd stores one, made in a test: its files in ``overlay2/<cache>/diff``
and the tar-split of their tar in the layer store, in the JSON lines Go's tar-split
writes (a segment line per header or padding, ``"payload":null`` and no ``size`` where
Go leaves them out), so that verify finds it sound.

Used by tests/test_tarsplit_scan.py and benchmarks/bench_smallfiles.py.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Iterable

import orjson

from analyzer.ids import CacheID, ChainID, DiffID
from analyzer.model import Layer
from analyzer.sources.layout import diff_dir
from analyzer.sources.tarsplit import BLOCK, split_tar

CACHE_ID = "c0ffee"


def _members(diff: Path) -> Iterable[str]:
    """Every entry below diff, parents first, in sorted order (as a tar lists them)."""
    for top, dirs, files in os.walk(diff):
        dirs.sort()
        rel = os.path.relpath(top, diff)
        for name in sorted(dirs + files):
            yield name if rel == "." else f"{rel}/{name}"


def layer_tar(diff: Path) -> bytes:
    """The layer's tar, ustar, from what is on disk."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name in _members(diff):
            info = tf.gettarinfo(str(diff / name), arcname=name)
            info.uname = info.gname = ""
            if info.isreg():
                with open(diff / name, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)
    return out.getvalue()


def tar_split_lines(tar: bytes) -> bytes:
    """The tar-split of a tar, line for line as Go writes it."""
    lines, position = [], 0

    def line(entry: dict) -> None:
        nonlocal position
        entry["position"] = position
        position += 1
        lines.append(orjson.dumps(entry))

    for run, entry, _ in split_tar([tar], "t"):
        # tar-split cuts a run where Go's reader reads: each header block, each padding.
        for start in range(0, len(run), BLOCK):
            line({"type": 2, "payload": base64.b64encode(run[start:start + BLOCK]).decode()})
        if entry is not None:
            file_entry: dict = {"type": 1, "name": entry.name}
            if entry.size:
                file_entry["size"] = entry.size
            file_entry["payload"] = (base64.b64encode(entry.crc.to_bytes(8, "big")).decode()
                                     if entry.crc is not None else None)
            line(file_entry)
    return b"".join(line + b"\n" for line in lines)


def write_layer(root: Path, files: dict[str, bytes], dirs: Iterable[str] = ()) -> Layer:
    """A data root at root holding one overlay2 layer of these files (and directories)."""
    diff = root / diff_dir("overlay2", CACHE_ID)
    diff.mkdir(parents=True)
    for d in dirs:
        (diff / d).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (diff / name).parent.mkdir(parents=True, exist_ok=True)
        (diff / name).write_bytes(data)
    tar = layer_tar(diff)
    diff_id = DiffID("sha256:" + hashlib.sha256(tar).hexdigest())
    store = root / "image" / "overlay2" / "layerdb" / "sha256" / diff_id[7:]
    store.mkdir(parents=True)
    (store / "tar-split.json.gz").write_bytes(gzip.compress(tar_split_lines(tar), 1))
    return Layer(ChainID(diff_id), diff_id, None, CacheID(CACHE_ID), len(tar),
                 f"image/overlay2/layerdb/sha256/{diff_id[7:]}")
