"""`analyze timeline --json` holds the times the real daemon reported (image Created as
`docker image inspect` gives it, container CreatedAt as `docker ps` does), and every
line has Timesketch's fields."""
from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.oracle.record import run_analyze, scenarios

GO_ZERO_UNIX = -62135596800
TIMESKETCH = {"message": str, "datetime": str, "timestamp": int, "timestamp_desc": str}


def _events(rec) -> list[dict]:
    out, err, rc = run_analyze(rec.root, rec.data["commands"][0]["t_after"],
                               ["timeline", "--json"])
    assert rc == 0 and "Traceback" not in err, err
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("name", [s.name for s in scenarios()])
def test_timeline_has_the_daemons_times(oracle, name):
    rec = oracle[name]
    events = _events(rec)
    for event in events:
        assert {k: type(event.get(k)) for k in TIMESKETCH} == TIMESKETCH, event
        assert datetime.fromisoformat(event["datetime"]).timestamp() \
            == pytest.approx(event["timestamp"] / 1e6, abs=1e-6)
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    created = {e["image_id"][7:]: e["timestamp"] // 10**6 for e in events
               if e["timestamp_desc"] == "Image Created"}
    assert created == {i: t for i, t in rec.created.items() if t != GO_ZERO_UNIX}
    ps = next(c for c in rec.data["commands"] if c["docker"] == ["ps", "-a", "--format", "json"])
    want = {row["ID"]: int(datetime.strptime(row["CreatedAt"], "%Y-%m-%d %H:%M:%S %z %Z")
                           .timestamp()) for row in map(json.loads, ps["stdout"].splitlines())}
    got = {e["container_id"][:12]: e["timestamp"] // 10**6 for e in events
           if e["timestamp_desc"] == "Container Created"}
    assert got == want
