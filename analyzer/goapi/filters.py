"""moby's ``api/types/filters``: filter arguments and the label match.

References: moby v20.10 api/types/filters/parse.go (Args, NewArgs, MatchKVList), v28.5.2
(GetBoolOrDefault) and errors.go (invalidFilter).
"""
from __future__ import annotations

from typing import Collection, Iterable, Mapping, Sequence

from ..errors import DaemonError

Args = dict[str, set[str]]


def new_args(pairs: Iterable[tuple[str, str]]) -> Args:
    """filters.NewArgs(KeyValuePair...): each key's set of values."""
    args: Args = {}
    for key, value in pairs:
        args.setdefault(key, set()).add(value)
    return args


def match_kv_list(values: Collection[str], labels: Mapping[str, str]) -> bool:
    """Args.MatchKVList: each ``key`` or ``key=value`` is in the labels."""
    if not values:
        return True
    if not labels:
        return False
    for value in values:
        key, sep, want = value.partition("=")
        if key not in labels or (sep and labels[key] != want):
            return False
    return True


def get_bool_or_default(key: str, values: Sequence[str]) -> bool:
    """Args.GetBoolOrDefault of a filter that is set: true for 1/true, false for
    0/false; neither or both is ``invalid filter 'KEY=[VALUES]'``."""
    false = any(v in ("0", "false") for v in values)
    true = any(v in ("1", "true") for v in values)
    if false == true:
        raise DaemonError(f"invalid filter '{key}=[{' '.join(values)}]'")
    return true
