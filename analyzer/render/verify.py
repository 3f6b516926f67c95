"""verify's answer: a table for people, the body of ``verify --json``, a progress bar on stderr.

Paths are bytes on disk, kept as surrogate-escaped strings; a path that is not UTF-8
is shown with its undecodable bytes as ``\\xNN`` in the table (as the terminal shows
every such name: render/terminal.py), and in JSON as render/analysis.py writes every
such name (``path`` with ``\\xNN``, ``path_b64``).
"""
from __future__ import annotations

import threading
import time
from typing import Any, TextIO

from ..engines.verify import BadFile, ImageResult, LayerResult, VerifyReport
from ..goapi.units import human_size
from ..ids import short_id
from .table import render_table


def verify_json(report: VerifyReport) -> dict[str, Any]:
    """The body of ``verify --json``."""
    return {
        "ok": report.ok,
        "images": [_image_json(i) for i in report.images],
        "layers": [_layer_json(lr) for lr in report.layers],
        "bytes_hashed": report.bytes_hashed,
    }


def _image_json(image: ImageResult) -> dict[str, Any]:
    doc = {"id": image.id, "config_ok": image.config_ok, "layers_ok": image.layers_ok,
           "layers": list(image.chain), "problems": list(image.problems)}
    if image.manifest_ok is not None:
        doc["manifest_ok"] = image.manifest_ok
    if image.unverifiable:
        doc["unverifiable"] = [{"snapshot": u.snapshot, "directory": u.directory,
                                "files": list(u.files), "reason": u.reason}
                               for u in image.unverifiable]
    return doc


def _layer_json(layer: LayerResult) -> dict[str, Any]:
    return {"chain_id": layer.chain_id, "diff_id": layer.diff_id, "cache_id": layer.cache_id,
            "status": layer.status, "fault": layer.fault, "reason": layer.reason,
            "computed_diff_id": layer.computed_diff_id, "bytes_hashed": layer.bytes_hashed,
            "files_checked": layer.files_checked,
            "bad_files": [_bad_json(b) for b in layer.bad_files],
            "compressed_digests": list(layer.compressed_digests),
            **({"blob": {"digest": layer.blob.digest, "media_type": layer.blob.media_type,
                         "compressed_ok": layer.blob.compressed_ok}} if layer.blob else {})}


def _bad_json(bad: BadFile) -> dict[str, Any]:
    return {"path": bad.path, "reason": bad.reason, "detail": bad.detail}


def render_report(report: VerifyReport, quiet: bool = False) -> str:
    """Images, then layers, each bad file under its layer; quiet shows only what is wrong."""
    images = [i for i in report.images if not (quiet and i.ok)]
    layers = [lr for lr in report.layers if not (quiet and lr.ok)]
    out = []
    if images:
        rows = [[short_id(i.id), _word(i.config_ok), _word(i.layers_ok)] for i in images]
        out.append(render_table(["IMAGE ID", "CONFIG", "LAYERS"], rows))
        for image in images:
            out.extend(f"  {short_id(image.id)}: {p}\n" for p in image.problems)
            out.extend(f"  {short_id(image.id)}: unverifiable: snapshot {u.snapshot} "
                       f"({', '.join(u.files) or 'no entries'}): {u.reason}\n"
                       for u in image.unverifiable)
    if layers:
        if out:
            out.append("\n")
        rows = [[short_id(lr.chain_id), short_id(lr.diff_id), lr.status, lr.fault or "",
                 human_size(lr.bytes_hashed)] for lr in layers]
        table = render_table(["LAYER", "DIFF ID", "STATUS", "FAULT", "HASHED"], rows)
        lines = table.splitlines(keepends=True)
        out.append(lines[0])
        for line, layer in zip(lines[1:], layers):
            out.append(line)
            out.extend(_layer_details(layer))
    if not quiet or not report.ok:
        out.append(_summary(report))
    return "".join(out)


def _word(ok: bool) -> str:
    return "ok" if ok else "mismatch"


def _layer_details(layer: LayerResult) -> list[str]:
    lines = []
    if layer.reason:
        lines.append(f"  {layer.reason}\n")
    width = max((len(b.reason) for b in layer.bad_files), default=0)
    for bad in layer.bad_files:
        lines.append(f"  {bad.reason:<{width}}  {bad.path or '.'}: {bad.detail}\n")
    return lines


def _summary(report: VerifyReport) -> str:
    bad_layers = sum(not lr.ok for lr in report.layers)
    bad_images = sum(not i.ok for i in report.images)
    files = sum(len(lr.bad_files) for lr in report.layers)
    if report.ok:
        return (f"\nverified {len(report.images)} image(s), {len(report.layers)} layer(s), "
                f"{human_size(report.bytes_hashed)} hashed: all ok\n")
    return (f"\n{bad_images} of {len(report.images)} image(s) and {bad_layers} of "
            f"{len(report.layers)} layer(s) failed verification; {files} file(s) differ\n")


class ProgressBar:
    """Bytes hashed of the expected total, rate and ETA, redrawn at most 10 times a second.

    Called from the worker threads with each count of content bytes hashed.
    """

    def __init__(self, total: int, stream: TextIO, interval: float = 0.1):
        self.total = max(total, 1)
        self.stream = stream
        self.interval = interval
        self.done = 0
        self.start = time.monotonic()
        self._drawn = 0.0
        self._lock = threading.Lock()

    def __call__(self, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
            now = time.monotonic()
            if now - self._drawn >= self.interval:
                self._drawn = now
                self.stream.write("\r" + self.line(now) + "\x1b[K")
                self.stream.flush()

    def line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        fraction = min(self.done / self.total, 1.0)
        width = 24
        filled = int(width * fraction)
        eta = (self.total - self.done) / rate if rate > 0 and self.done < self.total else 0
        return (f"verifying [{'=' * filled}{' ' * (width - filled)}] {fraction:4.0%} "
                f"{human_size(self.done)}/{human_size(self.total)} "
                f"{human_size(rate)}/s ETA {int(eta) // 60}:{int(eta) % 60:02d}")

    def close(self) -> None:
        with self._lock:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
