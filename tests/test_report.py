"""`analyze report`: one JSON document with the fields render/report.py documents (du's
and timeline's the same as those commands give), its
sha256 printed, and never written into the evidence or over an existing file."""
from __future__ import annotations

import hashlib
import json

from tests.hostile import SAMPLE_ARCHIVE, analyze

ANALYSIS = {"version", "source", "source_kind", "as_of", "analyzed_at"}
IMAGE = {"id", "tags", "created", "size", "layers"}
CONTAINER = {"id", "name", "image_id", "image", "created", "state", "exit_code"}


def test_report_holds_the_documented_fields_and_prints_its_digest(tmp_path):
    out = tmp_path / "case.json"
    got = analyze(SAMPLE_ARCHIVE, "report", "-o", str(out)).check(0)
    data = out.read_bytes()
    assert got.out == f"sha256:{hashlib.sha256(data).hexdigest()}  {out}\n"
    doc = json.loads(data.decode().replace(str(SAMPLE_ARCHIVE), "<root>"))   # as analyze() does
    assert list(doc) == ["analysis", "inventory", "verify", "du", "timeline", "complete",
                         "damaged", "warnings"]
    assert set(doc["analysis"]) == ANALYSIS
    inventory = doc["inventory"]
    assert inventory["images"] and all(set(i) == IMAGE for i in inventory["images"])
    assert {c["name"]: c["state"] for c in inventory["containers"]} == {"web": "created",
                                                                        "cache": "created"}
    assert all(set(c) == CONTAINER for c in inventory["containers"])
    assert doc["verify"]["ok"] is True and doc["verify"]["layers"]
    du = json.loads(analyze(SAMPLE_ARCHIVE, "du", "--json").check(0).out)
    assert doc["du"] == {k: v for k, v in du.items()
                         if k not in ("analysis", "complete", "damaged", "warnings")}
    assert doc["timeline"] == [json.loads(line) for line in
                               analyze(SAMPLE_ARCHIVE, "timeline", "--json").check(0)
                               .out.splitlines()]
    # Never over an existing file; --no-verify leaves verify out.
    assert "File exists" in analyze(SAMPLE_ARCHIVE, "report", "-o", str(out)).check(2).err
    quick = tmp_path / "quick.json"
    analyze(SAMPLE_ARCHIVE, "report", "--no-verify", "-o", str(quick)).check(0)
    assert json.loads(quick.read_bytes())["verify"] is None


def test_report_refuses_the_evidence(tmp_path):
    got = analyze(SAMPLE_ARCHIVE, "report", "-o", str(SAMPLE_ARCHIVE)).check(2)
    assert "inside the evidence" in got.err
