"""`analyze timeline --json` holds the times the real daemon reported (image Created as
`docker image inspect` gives it, a container's Created and its health checks as `docker
container inspect` does), and every line has Timesketch's fields."""
from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from tests.oracle.record import run_analyze, scenarios
from tests.oracle.scenarios import SCENARIOS, populate_changes

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
    want = {c["Id"]: _micros(c["Created"]) for c in rec.data["containers"].values()}
    got = {e["container_id"]: e["timestamp"] for e in events
           if e["timestamp_desc"] == "Container Created"}
    assert got == want


def _micros(rfc3339: str) -> int:
    """An RFC 3339 time with up to nanoseconds, as the daemon writes it, in microseconds."""
    whole, _, rest = rfc3339.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    return int(seconds) * 10**6 + int((rest + "000000")[:6])


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS.values()
                                  if s.populate is populate_changes])
def test_health_checks_are_the_daemons(oracle, name):
    """Each check the daemon kept (State.Health.Log, dockerd 20.10 and 28.5, graph
    drivers and the containerd store) is one event at its Start, with its exit code."""
    rec = oracle[name]
    want = {(c["Id"], _micros(check["Start"]), check["ExitCode"], check["Output"].strip())
            for c in rec.data["containers"].values()
            for check in (c["State"].get("Health") or {}).get("Log") or ()}
    assert len(want) >= 6
    check = re.compile(r" health check exited (-?\d+)(?: after \d+ ms)?: (.*)\Z", re.S)
    got = {(e["container_id"], e["timestamp"], int(m.group(1)), m.group(2))
           for e in _events(rec) if e["timestamp_desc"] == "Container Health Check"
           for m in [check.search(e["message"])]}
    assert got == want


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS.values()
                                  if s.populate is populate_changes])
def test_last_use_is_the_daemons_latest_container_time(oracle, name):
    """An image whose containers are its latest evidence of use was last used at the
    latest Created/StartedAt/FinishedAt `docker container inspect` gave them;
    ``reclaim --json`` gives each image it removes its last use (an image only loaded
    and never run: its tag time on the containerd store, none on a graph driver's)."""
    rec = oracle[name]
    want: dict[str, int] = {}
    for c in rec.data["containers"].values():
        for stamp in (c["Created"], c["State"]["StartedAt"], c["State"]["FinishedAt"]):
            if not stamp.startswith("0001-"):
                want[c["Image"]] = max(want.get(c["Image"], 0), _micros(stamp))
    got = {e["image_id"]: e["timestamp"] for e in _events(rec)
           if e["timestamp_desc"] == "Image Last Used"}
    assert want and {i: got.get(i) for i in want} == want
    out, err, rc = run_analyze(rec.root, rec.data["commands"][0]["t_after"],
                               ["reclaim", "--json", "changes/note:1"])
    assert rc == 0, err
    doc = json.loads(out)
    (image_id,) = doc["deleted_images"]
    use = doc["last_used"][image_id]
    if name == "changes-containerd":
        assert use["evidence"] == "tagged" and use["id"] == image_id and not use["in_use"]
        assert _micros(use["time"]) == got[image_id] < min(want.values())
    else:
        assert use is None and image_id not in got
