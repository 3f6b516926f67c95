"""The timeline of the bundled sample: every line Timesketch's, in order, and a time Go
leaves at zero (a container never started) no event (the oracle checks the times
themselves against dockerd: tests/test_oracle_timeline.py)."""
from __future__ import annotations

import json
import os

from tests.hostile import SAMPLE_ARCHIVE, analyze


def test_sample_timeline_in_order_without_zero_times():
    got = analyze(SAMPLE_ARCHIVE, "timeline", "--json").check(0)
    events = [json.loads(line) for line in got.out.splitlines()]
    assert events and all(e["message"] and e["datetime"] and e["timestamp_desc"]
                          for e in events)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    kinds = {(e["timestamp_desc"], e.get("container_id", "")[:12]) for e in events}
    assert {("Container Created", "7dc838d5105e"), ("Container Created", "14b5a9d53381")} <= kinds
    assert not any(desc in ("Container Started", "Container Finished") for desc, _ in kinds)
    text = analyze(SAMPLE_ARCHIVE, "timeline").check(0).out.splitlines()
    assert len(text) == len(events)
    web = next(i for i, line in enumerate(text) if "Container Created  container web" in line)
    # Its image's last use is its creation: the same time, the next line.
    assert text[web + 1].startswith(text[web].split()[0] + "  Image Last Used  image "
                                    "8417cf5aed6d") and "container created 7dc838d5105e" \
        in text[web + 1]


def test_log_spans_read_both_ends_only(tmp_path):
    from analyzer.sources import containerlogs
    from analyzer.sources.evidence import open_root
    ids = ["a" * 64, "b" * 64, "c" * 64, "d" * 64]
    for ctr in ids:
        (tmp_path / "containers" / ctr).mkdir(parents=True)
    line = b'{"log":"%s\\n","stream":"stdout","time":"2026-01-0%dT00:00:00.5Z"}\n'
    big = b"x" * (2 * containerlogs.WINDOW)
    (tmp_path / "containers" / ids[0] / f"{ids[0]}-json.log").write_bytes(
        line % (b"first", 1) + line % (big, 2) + line % (b"last", 3))
    (tmp_path / "containers" / ids[1] / f"{ids[1]}-json.log").write_bytes(line % (b"only", 4))
    (tmp_path / "containers" / ids[2] / f"{ids[2]}-json.log").write_bytes(b"")
    os.mkfifo(tmp_path / "containers" / ids[3] / f"{ids[3]}-json.log")
    spans, problems = containerlogs.log_spans(open_root(str(tmp_path)), ids)
    assert spans == {ids[0]: ("2026-01-01T00:00:00.5Z", "2026-01-03T00:00:00.5Z"),
                     ids[1]: ("2026-01-04T00:00:00.5Z", "2026-01-04T00:00:00.5Z")}
    assert [p.source for p in problems] == [f"containers/{ids[3]}/{ids[3]}-json.log"]


def test_system_prune_json_gives_each_removed_image_its_last_use_before_the_prune():
    """system prune removes the stopped containers first; their times are still the
    evidence of their images' last use, as the timeline has it."""
    events = [json.loads(line) for line in
              analyze(SAMPLE_ARCHIVE, "timeline", "--json").check(0).out.splitlines()]
    uses = {e["image_id"]: e["timestamp"] for e in events
            if e["timestamp_desc"] == "Image Last Used"}
    doc = json.loads(analyze(SAMPLE_ARCHIVE, "system", "prune", "-a", "--json").check(0).out)
    last = doc["last_used"]
    assert sorted(last) == sorted(doc["deleted_images"])
    assert {i for i, u in last.items() if u} == set(doc["deleted_images"]) & set(uses)
    for image_id, use in last.items():
        if use and use["evidence"].startswith("container_"):
            assert use["id"] in doc["deleted_containers"]
    assert any(u and u["evidence"] == "container_created" for u in last.values())
    assert {i: _micros(u["time"]) for i, u in last.items() if u} == \
        {i: uses[i] for i, u in last.items() if u}


def _micros(stamp: str) -> int:
    from datetime import datetime
    head, _, frac = stamp.rstrip("Z").partition(".")
    whole = datetime.fromisoformat(head + "+00:00").timestamp()
    return int(whole) * 1_000_000 + int((frac + "000000")[:6])
