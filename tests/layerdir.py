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
from typing import BinaryIO, Iterable, Iterator

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


def layer_tar(diff: Path, out: BinaryIO | None = None, form: int = tarfile.USTAR_FORMAT
              ) -> bytes:
    """The layer's tar, ustar, from what is on disk: returned, or written to out. PAX:
    each member with an mtime record (a time ustar cannot hold)."""
    buf = out if out is not None else io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=form) as tf:
        for name in _members(diff):
            info = tf.gettarinfo(str(diff / name), arcname=name)
            info.uname = info.gname = ""
            if form == tarfile.PAX_FORMAT:
                info.mtime += 0.5
            if info.isreg():
                with open(diff / name, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)
    return b"" if out is not None else buf.getvalue()


def tar_split_lines(tar: bytes | Iterable[bytes]) -> bytes:
    """The tar-split of a tar, line for line as Go writes it."""
    return b"".join(_tar_split_lines([tar] if isinstance(tar, bytes) else tar))


def _tar_split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    position = 0

    def line(entry: dict) -> bytes:
        nonlocal position
        entry["position"] = position
        position += 1
        return orjson.dumps(entry) + b"\n"

    for run, entry, _ in split_tar(chunks, "t"):
        # tar-split cuts a run where Go's reader reads: each header block, each padding.
        for start in range(0, len(run), BLOCK):
            yield line({"type": 2, "payload": base64.b64encode(run[start:start + BLOCK]).decode()})
        if entry is not None:
            file_entry: dict = {"type": 1, "name": entry.name}
            if entry.size:
                file_entry["size"] = entry.size
            file_entry["payload"] = (base64.b64encode(entry.crc.to_bytes(8, "big")).decode()
                                     if entry.crc is not None else None)
            yield line(file_entry)


def write_layer(root: Path, files: dict[str, bytes], dirs: Iterable[str] = ()) -> Layer:
    """A data root at root holding one overlay2 layer of these files (and directories)."""
    diff = root / diff_dir("overlay2", CACHE_ID)
    diff.mkdir(parents=True)
    for d in dirs:
        (diff / d).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (diff / name).parent.mkdir(parents=True, exist_ok=True)
        (diff / name).write_bytes(data)
    return store_layer(root)


def store_layer(root: Path) -> Layer:
    """The layer store's entry for the layer whose files are in root's diff directory:
    its tar made (in a file beside, streamed) and split, as dockerd does on extraction."""
    diff = root / diff_dir("overlay2", CACHE_ID)
    tar_path = root / "layer.tar"
    with open(tar_path, "w+b") as tar:
        layer_tar(diff, tar)
        size = tar.tell()
        tar.seek(0)
        digest = hashlib.sha256()
        while chunk := tar.read(1 << 20):
            digest.update(chunk)
        diff_id = DiffID("sha256:" + digest.hexdigest())
        tar.seek(0)
        store = root / "image" / "overlay2" / "layerdb" / "sha256" / diff_id[7:]
        store.mkdir(parents=True)
        with gzip.open(store / "tar-split.json.gz", "wb", compresslevel=1) as out:
            for line in _tar_split_lines(iter(lambda: tar.read(1 << 20), b"")):
                out.write(line)
    tar_path.unlink()
    (store / "size").write_text(str(size))
    return layer_of(root)


def layer_of(root: Path) -> Layer:
    """The layer store_layer stored at root."""
    store = root / "image" / "overlay2" / "layerdb" / "sha256"
    (name,) = os.listdir(store)
    diff_id = DiffID("sha256:" + name)
    return Layer(ChainID(diff_id), diff_id, None, CacheID(CACHE_ID),
                 int((store / name / "size").read_text()), f"image/overlay2/layerdb/sha256/{name}")
