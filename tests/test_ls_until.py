"""``ls -f until=`` (dockerd 25+): images created before a time, one bound with before=."""
from __future__ import annotations

from tests.oracle.record import load_sample_truth, run_analyze


def _created(root, ref: str) -> str:
    out, err, rc = run_analyze(root, 0, ["inspect", "-f", "{{.Created}}", ref])
    assert rc == 0, err
    return out.strip()


def test_until_is_before_at_that_time():
    rec = load_sample_truth()
    now = rec.data["commands"][0]["t_after"]
    images = run_analyze(rec.root, now, ["ls", "-q", "--no-trunc"])[0].split()
    assert len(images) > 2
    middle = images[len(images) // 2]
    created = _created(rec.root, middle)
    by_before = run_analyze(rec.root, now, ["ls", "-f", f"before={middle}"])
    by_until = run_analyze(rec.root, now, ["ls", "-f", f"until={created}"])
    assert by_until == by_before


def test_until_errors_as_the_daemon():
    rec = load_sample_truth()
    out, err, rc = run_analyze(rec.root, 0, ["ls", "-f", "until=yesterday"])
    assert (out, err, rc) == ("", 'Error response from daemon: failed to parse value as time '
                                  'or duration: "yesterday"\n', 1)
