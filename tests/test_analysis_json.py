"""Analyzer's own JSON: one style, the ``analysis`` provenance, ``complete``/``damaged``,
and names that are not UTF-8 (DESIGN.md "Output")."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tarfile

from analyzer import __version__
from analyzer.goapi.time import format_rfc3339_nano_utc
from analyzer.model import Diagnostic
from analyzer.render.analysis import Analysis, document, dumps

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "examples", "sample-root.tar.gz")
ANALYSIS = Analysis("1.2.3", "/evidence/root", "overlay2", 1_700_000_000.5, 1_700_000_100.0)


def test_document_envelope_in_order():
    damage = Diagnostic("image/overlay2/imagedb/content/sha256/ab", "not valid JSON",
                        kind="image", id="sha256:ab")
    doc = json.loads(document(ANALYSIS, {"bytes_freed": 7}, [damage]))
    assert list(doc) == ["analysis", "bytes_freed", "complete", "damaged", "warnings"]
    assert doc["analysis"] == {"version": "1.2.3", "source": "/evidence/root",
                               "source_kind": "overlay2", "as_of": "2023-11-14T22:13:20.5Z",
                               "analyzed_at": "2023-11-14T22:15:00Z"}
    assert doc["complete"] is False
    assert doc["damaged"] == [{"kind": "image", "id": "sha256:ab",
                               "file": "image/overlay2/imagedb/content/sha256/ab",
                               "reason": "not valid JSON"}]
    assert doc["warnings"] == ["image/overlay2/imagedb/content/sha256/ab: not valid JSON"]
    assert json.loads(document(ANALYSIS, {}, []))["complete"] is True


def test_names_that_are_not_utf8_are_escaped_with_their_bytes_beside():
    raw = b"app/caf\xc3\xa9-\xff.txt"
    name = raw.decode("utf-8", "surrogateescape")
    text = dumps({"files": [{"path": name, "reason": "changed"}], "note": [name]})
    assert text.endswith("\n") and "\n" not in text[:-1]
    doc = json.loads(text)
    assert doc["files"] == [{"path": "app/caf\xe9-\\xff.txt",
                             "path_b64": base64.b64encode(raw).decode(), "reason": "changed"}]
    assert doc["note"] == ["app/caf\xe9-\\xff.txt"]
    assert json.loads(dumps({"path": "caf\xe9"})) == {"path": "caf\xe9"}     # UTF-8 stays as is


def test_rfc3339_nano_utc():
    assert format_rfc3339_nano_utc(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339_nano_utc(1_700_000_000_123_000_000) == "2023-11-14T22:13:20.123Z"
    assert format_rfc3339_nano_utc(-1) == "1969-12-31T23:59:59.999999999Z"


def test_reclaim_json_carries_the_analysis():
    proc = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", SAMPLE,
                           "--as-of", "2024-01-02T03:04:05Z", "reclaim", "--json", "centos"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    analysis = doc["analysis"]
    assert (analysis["version"], analysis["source"], analysis["source_kind"],
            analysis["as_of"]) == (__version__, SAMPLE, "overlay2", "2024-01-02T03:04:05Z")
    assert analysis["analyzed_at"].endswith("Z")
    assert doc["complete"] is True and doc["damaged"] == [] and doc["warnings"] == []
    assert doc["deleted_images"] and doc["bytes_freed"] > 0


def test_damage_names_the_object_it_costs(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(SAMPLE) as tf:
        tf.extractall(root, filter="fully_trusted")
    content = "image/overlay2/imagedb/content/sha256"
    hexid = "101e3148c7a08e2f5e6f20c12df9ab7e9af55348df3229dc0a17d7ecf7990c5f"  # docker:latest
    (root / content / hexid).write_bytes(b"{}")
    proc = subprocess.run([sys.executable, "-m", "analyzer", "--data-root", str(root),
                           "reclaim", "--json", "centos"],
                          cwd=REPO, capture_output=True, text=True, check=False)
    doc = json.loads(proc.stdout)
    assert doc["complete"] is False
    image = next(d for d in doc["damaged"] if d["kind"] == "image")
    assert (image["id"], image["file"]) == (f"sha256:{hexid}", f"{content}/{hexid}")
    assert image["reason"].startswith("config digest mismatch")
    assert {(d["kind"], d["id"]) for d in doc["damaged"]} >= {("reference", "docker:latest")}
    assert doc["deleted_images"]                     # the rest still answers
