"""docker/cli's ``opts``: the ``--filter`` flag as the CLI parses it before asking the daemon.

References: docker/cli opts/opts.go (FilterOpt.Set).
"""
from __future__ import annotations

from typing import Sequence


class BadFilter(Exception):
    """A filter the CLI itself rejects, before asking the daemon."""


def parse_filters(args: Sequence[str]) -> dict[str, list[str]]:
    """FilterOpt.Set for each value: NAME=VALUE, name lowercased, both trimmed.

    Raises:
        BadFilter: a value without ``=``, with the CLI's message.
    """
    out: dict[str, list[str]] = {}
    for arg in args:
        if "=" not in arg:
            raise BadFilter("bad format of filter (expected name=value)")
        name, value = arg.split("=", 1)
        out.setdefault(name.strip().lower(), []).append(value.strip())
    return out
