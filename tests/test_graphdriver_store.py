"""The graph-driver store read as dockerd loads it, whether the layer store's files are
read in a thread beside the image configs' or after them: the same model and the same
warnings in the same order (layers, images, references)."""
from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from analyzer.sources import graphdriver
from analyzer.sources.evidence import DirectoryRoot, open_root

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-root.tar.gz"
MONGO = "sha256:44c94531a898953e69de73e9ef26aa4f1d94fc5ed4e18c43c177e8b6933a45e8"


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    """The sample root with something wrong in each store."""
    top = tmp_path_factory.mktemp("damaged-root")
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(top, filter="tar")
    store = top / "image/overlay2"
    doc = json.loads((store / "repositories.json").read_text())
    repos = doc["Repositories"]
    repos["broken"] = 5
    repos["mongo"].update({"mongo:BAD TAG": MONGO, "mongo:gone": "sha256:" + "0" * 64,
                           "mongo:num": 7, "notmongo:x": MONGO})
    (store / "repositories.json").write_text(json.dumps(doc))
    images = sorted(os.listdir(store / "imagedb/content/sha256"))
    config = store / "imagedb/content/sha256" / images[0]
    config.write_bytes(b" " + config.read_bytes())                    # digest mismatch
    meta = store / "imagedb/metadata/sha256"
    (meta / images[1]).mkdir(parents=True, exist_ok=True)
    (meta / images[1] / "parent").write_text("nonsense")               # not an image ID
    unreadable = meta / images[2] / "lastUpdated"
    unreadable.unlink(missing_ok=True)
    unreadable.mkdir(parents=True)                                     # cannot be read
    layers = sorted(os.listdir(store / "layerdb/sha256"))
    shutil.rmtree(store / "layerdb/sha256" / layers[3])                # a chain broken
    (store / "layerdb/sha256" / layers[5] / "size").write_text("abc")  # a layer skipped
    return top


def _read(root: Path, beside: bool, monkeypatch) -> graphdriver.Store:
    evidence = open_root(str(root))
    assert isinstance(evidence, DirectoryRoot)
    monkeypatch.setattr(evidence, "reads_beside", beside)
    return graphdriver.read_graphdriver_store(evidence, "overlay2")


def test_beside_or_after_the_same_store_and_warnings(damaged, monkeypatch):
    beside, whole = _read(damaged, True, monkeypatch), _read(damaged, False, monkeypatch)
    assert beside == whole
    kinds = [d.source.split("/")[2] for d in beside.diagnostics]
    # dockerd's order of loading: the layer store, the image store, the references.
    assert kinds == sorted(kinds, key=["layerdb", "imagedb", "repositories.json"].index)
    assert kinds.count("layerdb") >= 1 and kinds.count("imagedb") == 4
    messages = [d.message for d in beside.diagnostics if d.source.endswith("repositories.json")]
    assert messages[-1] == "repository 'broken' is not an object"
    assert MONGO in beside.images
    assert [m.partition(" ")[0] for m in messages if "names an image not in" in m][-2:] == \
        ["mongo:gone", "mongo:num"]
    assert "mongo:BAD TAG: invalid reference format" in messages
    assert any(m.startswith("notmongo:x: ") for m in messages)
