"""``docker network prune``, planned: moby's NetworksPrune on a daemon outside a swarm.

A local network is removed unless it is config-only, created after ``until``,
excluded by the label filters, one of the predefined networks (bridge, host,
none, default), or has endpoints (a running container is attached to it; a
stopped container keeps none). Docker walks the store in its order; here by name.

References: moby v20.10.24 daemon/prune.go (NetworksPrune, localNetworksPrune),
runconfig/hostconfig_unix.go (IsPreDefinedNetwork).
"""
from __future__ import annotations

from typing import Iterable

from ..goapi.filters import new_args
from ..goapi.time import GO_ZERO_UNIX, parse_rfc3339_ns
from ..model import Network
from .daemonapi import API_20_10
from .prune import match_labels, prune_until

ACCEPTED_FILTERS = frozenset({"label", "label!", "until"})
PREDEFINED = frozenset({"bridge", "host", "none", "default"})


def plan_network_prune(networks: Iterable[Network], filters: Iterable[tuple[str, str]],
                       now: float, utc_offset: int | None = None, api: str = API_20_10
                       ) -> tuple[Network, ...]:
    """``docker network prune [--filter K=V]...``: the networks it removes; errors in
    the words of the daemon speaking ``api`` (engines.daemonapi).

    Raises:
        DaemonError: the filters are refused, with the daemon's message.
    """
    args = new_args(filters)
    until_ns = prune_until(args, ACCEPTED_FILTERS, now, utc_offset, api)
    return tuple(sorted((n for n in networks
                         if not n.config_only
                         and (until_ns is None or _created_ns(n) <= until_ns)
                         and match_labels(args, n.labels)
                         and n.name not in PREDEFINED and not n.endpoints),
                        key=lambda n: n.name))


def _created_ns(network: Network) -> int:
    """Its creation time; Go's zero time when the store has none (older stores)."""
    return parse_rfc3339_ns(network.created) if network.created else GO_ZERO_UNIX * 10**9
