"""The container list's filters: what moby's daemon/list.go matches, edge by edge (the
oracle checks each filter against dockerd on the basic scenario)."""
from __future__ import annotations

import pytest

from analyzer.engines.containers import _ports, match
from analyzer.errors import DaemonError


@pytest.mark.parametrize("values,source,want", [
    ((), "anything", True),                     # no filter matches everything
    (("exited-ok",), "exited-ok", True),        # exact
    (("exited",), "/exited-ok", True),          # a regular expression, found anywhere
    (("^/exited-o",), "/exited-ok", True),
    (("^exited",), "/exited-ok", False),
    (("[",), "[", True),                        # exact wins before the bad expression
    (("[",), "x[", False),                      # a bad expression matches nothing
])
def test_match_is_filters_args_match(values, source, want):
    assert match(values, source) is want


def test_ports_expand_ranges_and_refuse_host_parts():
    assert _ports("publish", ["80", "8000-8002/udp"]) == {"80/tcp", "8000/udp", "8001/udp",
                                                         "8002/udp"}
    with pytest.raises(DaemonError, match="^filter for 'publish' should not contain ':': 80:80$"):
        _ports("publish", ["80:80"])
