"""Rendering rules of the Docker CLI that the oracle roots do not reach."""
from __future__ import annotations

from analyzer.goapi.strconv import quote
from analyzer.goapi.units import human_duration, human_size
from analyzer.model import Port
from analyzer.render.containers import displayable_ports
from analyzer.render.displayutils import ellipsis
from analyzer.render.table import render_table
from analyzer.sources.graphdriver import _ports


def test_ports_group_and_map_as_docker_cli():
    # docker/cli formatter.DisplayablePorts: consecutive ports grouped per key in the
    # order the keys first appear; a group broken by a gap is emitted at once.
    assert displayable_ports([Port(80, "tcp"), Port(81, "tcp"), Port(443, "tcp"),
                              Port(53, "udp")]) == "80-81/tcp, 53/udp, 443/tcp"
    assert displayable_ports([Port(80, "tcp", 8080, "0.0.0.0"), Port(80, "tcp", 8080, "::")]) \
        == "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
    assert displayable_ports([Port(80, "tcp", 80, "0.0.0.0"), Port(81, "tcp", 81, "0.0.0.0")]) \
        == "0.0.0.0:80-81->80-81/tcp"
    assert displayable_ports([]) == ""


def test_ports_read_from_network_settings():
    ports = _ports({"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None,
                    "bogus": None})
    assert sorted(ports, key=lambda p: p.private_port) == [
        Port(53, "udp"), Port(80, "tcp", 8080, "0.0.0.0")]


def test_units_boundaries():
    assert [human_size(n, 3) for n in (0, 999, 1000, 1234, 999_500)] == \
        ["0B", "999B", "1kB", "1.23kB", "1e+03kB"]
    assert human_size(999_999) == "1000kB"
    cases = {0.5: "Less than a second", 1: "1 second", 59: "59 seconds", 60: "About a minute",
             89 * 60: "About an hour", 90 * 60: "2 hours", 47.5 * 3600: "2 days",
             14 * 86400: "2 weeks", 60 * 86400: "2 months", 730 * 86400: "2 years"}
    assert {k: human_duration(k) for k in cases} == cases


def test_quote_ellipsis_and_table():
    assert quote('sh -c "x"\t\x01') == '"sh -c \\"x\\"\\t\\x01"'
    assert ellipsis("redis-server --appendonly yes", 20) == "redis-server --appe…"
    assert render_table(["REPOSITORY", "TAG"], []) == "REPOSITORY   TAG\n"
    assert render_table(["A", "B", "C"], [["x", "yy", "z"]]) == \
        "A         B         C\nx         yy        z\n"


def test_history_times_without_human_are_rfc3339_in_the_local_zone(monkeypatch):
    import time
    from analyzer.goapi.time import format_rfc3339_local
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    assert format_rfc3339_local(1704164645) == "2024-01-02T03:04:05Z"
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert format_rfc3339_local(1704164645) == "2024-01-02T04:04:05+01:00"
    finally:
        monkeypatch.setenv("TZ", "UTC")
        time.tzset()
