"""The oracle's own comparison rules: what they forgive and what they do not."""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from tests.oracle import record
from tests.oracle.daemon import AddressPool, Daemon
from tests.oracle.record import _row_by_row

TABLE = "ID   CREATED\n{a}\n{b}\n"


def test_a_row_rendered_a_second_later_is_docker_own_clock():
    want = TABLE.format(a="aa   15 seconds ago", b="bb   16 seconds ago")
    at_15 = (TABLE.format(a="aa   15 seconds ago", b="bb   15 seconds ago"), "", 0)
    at_16 = (TABLE.format(a="aa   16 seconds ago", b="bb   16 seconds ago"), "", 0)
    assert _row_by_row(want, [at_15, at_16])[0] == want


def test_a_row_no_candidate_time_printed_still_differs():
    want = TABLE.format(a="aa   15 seconds ago", b="bb   17 seconds ago")
    at_15 = (TABLE.format(a="aa   15 seconds ago", b="bb   15 seconds ago"), "", 0)
    at_16 = (TABLE.format(a="aa   16 seconds ago", b="bb   16 seconds ago"), "", 0)
    assert _row_by_row(want, [at_15, at_16])[0] != want


def test_outputs_with_another_exit_status_are_not_mixed_in():
    want = TABLE.format(a="aa   15 seconds ago", b="bb   16 seconds ago")
    at_15 = (TABLE.format(a="aa   15 seconds ago", b="bb   15 seconds ago"), "", 0)
    failed = (TABLE.format(a="aa   16 seconds ago", b="bb   16 seconds ago"), "boom", 1)
    assert _row_by_row(want, [at_15, failed])[0] != want


def test_two_cells_of_one_row_rendered_a_second_apart():
    row = "ID   {c}   {u}"
    want = "H\n" + row.format(c="15 seconds ago", u="16 seconds ago") + "\n"
    at_15 = ("H\n" + row.format(c="15 seconds ago", u="15 seconds ago") + "\n", "", 0)
    at_16 = ("H\n" + row.format(c="16 seconds ago", u="16 seconds ago") + "\n", "", 0)
    assert _row_by_row(want, [at_15, at_16])[0] == want
    wrong = "H\n" + row.format(c="15 seconds ago", u="17 seconds ago") + "\n"
    assert _row_by_row(wrong, [at_15, at_16])[0] != wrong


def test_two_fields_of_one_json_line_rendered_a_second_apart():
    # docker ps -a --format json: RunningFor and Status are formatted at their own instants.
    row = '{{"RunningFor":"19 seconds ago","Size":"0B","Status":"Exited (0) {s} seconds ago"}}'
    want = row.format(s=18) + "\n"
    at_17 = (row.format(s=17) + "\n", "", 0)
    at_18 = (row.format(s=18).replace("19 seconds", "20 seconds") + "\n", "", 0)
    assert _row_by_row(want, [at_17, at_18])[0] == want
    wrong = row.format(s=19) + "\n"
    assert _row_by_row(wrong, [at_17, at_18])[0] != wrong


def _uptimes(starts: list[float], t: float) -> str:
    """`docker ps`'s table at ``t`` for containers started at ``starts``: one cell each
    that only grows with time, as every time-dependent cell does."""
    return "ID   STATUS\n" + "".join(f"c{n}   Up {int(t - s)} seconds\n"
                                     for n, s in enumerate(starts))


def _every_candidate(want: str, starts: list[float], times: list[float]) -> bool:
    """The verdict of running analyze at each candidate time: one output as Docker's, or
    each of Docker's cells printed so at one of them."""
    outputs = [(_uptimes(starts, t), "", 0) for t in times]
    return (want, "", 0) in outputs or _row_by_row(want, list(dict.fromkeys(outputs)))[0] == want


@settings(max_examples=300, deadline=None)
@given(t_before=st.floats(1e9, 2e9), took=st.floats(0, 15),
       starts=st.lists(st.floats(1, 100), min_size=1, max_size=6),
       seen=st.lists(st.floats(0, 1), min_size=6, max_size=6), off=st.integers(-1, 1))
def test_the_candidate_times_are_judged_as_if_each_was_run(t_before, took, starts, seen, off):
    """match_over_time runs analyze at a few candidate times (bisection where outputs
    differ) and passes exactly when running it at every candidate would have: Docker's
    rows rendered at instants inside the command (one row perhaps a second off)."""
    t_after = t_before + took
    starts = [t_before - s for s in starts]
    rows = [_uptimes([s], t_before + took * f).split("\n")[1] for s, f in zip(starts, seen)]
    if off:     # a cell a second off the command's end: printed by some candidate, or not
        rows[0] = f"c0   Up {int(t_after - starts[0]) + off} seconds"
    want = "ID   STATUS\n" + "".join(f"{r}\n" for r in rows)
    runs = []

    def run_analyze(root, as_of, args):
        runs.append(as_of)
        return _uptimes(starts, as_of), "", 0

    entry = {"t_before": t_before, "t_after": t_after, "stdout": want}
    with mock.patch.object(record, "run_analyze", run_analyze):
        try:
            record.match_over_time(Path("/nonexistent"), entry, ["ps"],
                                   lambda out, err, rc: None if out == want else "differs")
            passed = True
        except pytest.fail.Exception:
            passed = False
    assert passed == _every_candidate(want, starts, record.time_candidates(t_before, t_after))
    assert len(runs) == len(set(runs))


def test_an_output_that_does_not_change_over_the_command_is_run_once():
    runs = []

    def run_analyze(root, as_of, args):
        runs.append(as_of)
        return "CONTAINER ID   IMAGE\n", "", 0

    entry = {"t_before": 1e9 + 0.3, "t_after": 1e9 + 9.6, "stdout": "CONTAINER ID   IMAGE\n"}
    with mock.patch.object(record, "run_analyze", run_analyze):
        record.match_over_time(Path("/nonexistent"), entry, ["ps"],
                               lambda out, err, rc: None if out == entry["stdout"] else "x")
    assert runs == [1e9 + 9.6]


def _bridges_in(network) -> list[str]:
    out = subprocess.run(["ip", "-j", "addr", "show", "type", "bridge"], check=True,
                         capture_output=True, text=True).stdout
    return [link["ifname"] for link in json.loads(out or "[]")
            if any(a.get("family") == "inet" and ipaddress.ip_address(a["local"]) in network
                   for a in link.get("addr_info", ()))]


def test_each_daemon_takes_networks_from_its_own_pool_and_leaves_no_bridge():
    with Daemon() as a, Daemon() as b:
        pools = a.pool.network, b.pool.network
        assert pools[0] != pools[1]
        for d, pool in zip((a, b), pools):
            d.run("network", "create", "n1")
            subnet = d.inspect("network", "n1")[0]["IPAM"]["Config"][0]["Subnet"]
            assert ipaddress.ip_network(subnet).subnet_of(pool)
            assert len(_bridges_in(pool)) == 1
        # A daemon killed outright cannot remove its bridges: stopping still does.
        a.proc.kill()
        a.proc.wait(timeout=60)
    assert _bridges_in(pools[0]) == [] and _bridges_in(pools[1]) == []


def test_a_pool_sweeps_its_own_bridges_and_no_other():
    pool = AddressPool()
    made = {"br-oraclemine": f"{pool.network[257]}/24", "br-oracleother": "10.127.250.1/24"}
    try:
        for name, address in made.items():
            subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", address, "dev", name], check=True)
        pool.release()
        assert _bridges_in(pool.network) == []
        assert _bridges_in(ipaddress.ip_network("10.127.250.0/24")) == ["br-oracleother"]
    finally:
        pool.release()
        for name in made:
            subprocess.run(["ip", "link", "delete", name], capture_output=True)


def test_two_recorders_sharing_a_cache_record_each_scenario_once(tmp_path, monkeypatch):
    """pytest-xdist's workers share one cache: the second waits for the first and loads
    what it recorded, instead of starting the scenario's daemon again."""
    recorded = []

    def fake_record(scenario, base):
        recorded.append(scenario.name)
        time.sleep(0.5)   # long enough that the second recorder arrives meanwhile
        (base / f"{scenario.name}.json").write_text(json.dumps({"scenario": scenario.name}))

    monkeypatch.setattr(record, "record_scenario", fake_record)
    got = []
    recorders = [threading.Thread(target=lambda: got.append(
        record.ensure_recorded(tmp_path, ["basic"]))) for _ in range(2)]
    for t in recorders:
        t.start()
    for t in recorders:
        t.join(timeout=120)
    assert recorded == ["basic"]
    assert [recs["basic"].name for recs in got] == ["basic", "basic"]
