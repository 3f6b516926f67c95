"""`analyze verify` on the drivers whose image layers are full copies of their parents' trees
(vfs; legacy overlay, whose root/ hard-links its parent's), on roots the real dockerd 20.10
made. A layer's tar-split names only its own changes, so judging its directory against it
called every file of the parent "added": a layer that Docker holds intact was reported
tampered with. Until verify tells the parent's files from the layer's own, such a layer is
``unverifiable`` with the reason, never a false ``mismatch``; a base layer is judged in full.
"""
from __future__ import annotations

import json

import pytest

from tests.oracle.record import run_analyze


@pytest.mark.parametrize("name,driver", [("vfs", "vfs"), ("overlay", "overlay")])
def test_full_copy_layers_are_never_judged_added(oracle, name, driver):
    root = oracle[name].root
    out, err, rc = run_analyze(root, 0, ["verify", "--json"])
    assert "Traceback" not in err and rc in (0, 1), err
    layers = json.loads(out)["layers"]
    layerdb = root / "image" / driver / "layerdb" / "sha256"
    has_parent = {x["chain_id"]: (layerdb / x["chain_id"][7:] / "parent").exists()
                  for x in layers}
    assert any(has_parent.values()) and not all(has_parent.values())   # both kinds judged
    for layer in layers:
        assert not any(b["reason"] == "added" for b in layer["bad_files"]), layer
        if has_parent[layer["chain_id"]]:
            assert layer["status"] == "unverifiable", layer
            assert "full copy of the parent layer's files" in layer["reason"], layer
        else:
            assert layer["status"] == "ok", layer
