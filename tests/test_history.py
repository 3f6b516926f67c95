"""``history`` of an image whose config lists more non-empty history entries than
layers: dockerd's ImageHistory refuses it with a plain error (HTTP 500), which the
Docker CLI prints as an error response and exits 1 — never a traceback."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tarfile

import pytest

from analyzer.engines.history import MISSING, image_history
from analyzer.errors import DaemonError
from tests.test_rmi import D1, D2, StoreBuilder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "examples", "sample-root.tar.gz")
MESSAGE = "too many non-empty layers in History section"


def _with_history(history: list[dict]):
    b = StoreBuilder()
    image_id = b.image("aaaa", [D1, D2], ["a:1"])
    store = b.build()
    image = store.images[image_id]
    return store, dataclasses.replace(image, config={**image.config, "history": history})


def test_history_sizes_non_empty_entries_by_their_layer():
    store, image = _with_history([{"created_by": "ADD a"},
                                  {"created_by": "ENV x", "empty_layer": True},
                                  {"created_by": "RUN b"}])
    items = image_history(store, image)
    assert [(i.id, i.created_by, i.size) for i in items] == [
        (image.id, "RUN b", 1001), (MISSING, "ENV x", 0), (MISSING, "ADD a", 1000)]


def test_too_many_non_empty_entries_is_the_daemons_error():
    store, image = _with_history([{"created_by": "ADD a"}, {"created_by": "RUN b"},
                                  {"created_by": "RUN c"}])
    with pytest.raises(DaemonError) as info:
        image_history(store, image)
    assert str(info.value) == MESSAGE


def test_cli_prints_the_error_response_and_exits_1(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(root, filter="fully_trusted")
    content = root / "image" / "overlay2" / "imagedb" / "content" / "sha256"
    # An image with the same layers as a real one, and one history entry too many.
    config = json.loads(next(content.iterdir()).read_bytes())
    config["history"] = list(config.get("history") or ()) + [{"created_by": "RUN extra"}]
    data = json.dumps(config).encode()
    image_hex = hashlib.sha256(data).hexdigest()
    (content / image_hex).write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root),
                           "history", image_hex[:12]],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert (proc.stdout, proc.stderr, proc.returncode) == (
        "", f"Error response from daemon: {MESSAGE}\n", 1)
