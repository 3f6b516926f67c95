"""The timeline of the bundled sample: every line Timesketch's, in order, and a time Go
leaves at zero (a container never started) no event (the oracle checks the times
themselves against dockerd: tests/test_oracle_timeline.py)."""
from __future__ import annotations

import json

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
    assert len(text) == len(events) and "Container Created  container web" in text[-2]
