"""`image ls`, `history`, `inspect` and `image prune` on the containerd image store, as
ContainerdImages answers them, against what the Docker 28 CLI printed over dockerd 28.5
(the `containerd` oracle scenario), compared as the oracle compares `analyze`'s output.
"""
from __future__ import annotations

import json

import pytest

from analyzer.containerdservice import ContainerdImages, locate
from analyzer.render.prune import format_prune
from analyzer.errors import DaemonError
from analyzer.goapi.opts import parse_filters
from analyzer.render.containerdinspect import inspect_image
from analyzer.render.history import render_history
from analyzer.render.images import render_images
from analyzer.goapi.json import marshal_indent
from analyzer.sources.evidence import open_root
from tests.oracle.record import (analyze_args, cases, compare_inspect, compare_rm,
                                 compare_text, rm_cases, time_candidates)

VIEWS = [c for kind in ("ls", "history", "inspect") for c in cases(kind, containerd_store=True)]
PRUNES = [c for c in rm_cases(containerd_store=True) if c.template[1] == "prune"]


def _options(args: list[str], filter_flags=("-f", "--filter")
             ) -> tuple[set[str], list[str], list[str]]:
    """(flags, filter values, positional arguments) of an analyze argument list."""
    flags, filters, positional = set(), [], []
    it = iter(args)
    for arg in it:
        if arg in filter_flags or arg == "--format":
            value = next(it)
            (filters if arg != "--format" else positional).append(
                value if arg != "--format" else f"--format={value}")
        elif arg.startswith("-"):
            flags.add(arg)
        else:
            positional.append(arg)
    return flags, filters, positional


def _answer(images: ContainerdImages, args: list[str], now: float) -> tuple[str, str, int]:
    kind, rest = args[0], args[1:]
    flags, filters, positional = _options(rest)
    fmt = next((p.split("=", 1)[1] for p in positional if p.startswith("--format=")), "table")
    names = [p for p in positional if not p.startswith("--format=")]
    try:
        if kind == "ls":
            parsed = parse_filters(filters)
            if names:
                parsed.setdefault("reference", []).append(names[0])
            summaries = images.images(parsed, "-a" in flags, int(now * 1e9))
            return render_images(summaries, quiet="-q" in flags, digests="--digests" in flags,
                                 no_trunc="--no-trunc" in flags, fmt=fmt, now=now), "", 0
        if kind == "history":
            items = images.history(names[0])
            return render_history(items, human=True, no_trunc="--no-trunc" in flags,
                                  quiet="-q" in flags, now=now), "", 0
        found, errors = [], []
        for name in names:
            try:
                found.append(inspect_image(*images.inspect(name)))
            except DaemonError as exc:
                errors.append(f"Error response from daemon: {exc}\n")
        return marshal_indent(found) + "\n", "".join(errors), int(bool(errors))
    except DaemonError as exc:
        return "", f"Error response from daemon: {exc}\n", 1


def _images(data_root: str) -> ContainerdImages:
    images = locate(data_root, open_root(data_root))
    assert images is not None
    return images


def _match(entry: dict, produce, compare) -> None:
    closest = None
    for as_of in time_candidates(entry["t_before"], entry["t_after"]):
        diff = compare(*produce(as_of))
        if diff is None:
            return
        closest = closest or diff
    pytest.fail(closest, pytrace=False)


@pytest.mark.parametrize("case", VIEWS, ids=str)
def test_view_matches_dockerd28(oracle, case):
    rec = oracle[case.scenario]
    entry = rec.data["commands"][case.index]
    args = analyze_args(entry["docker"])
    images = _images(str(rec.root))
    if args[0] == "inspect":
        compare = compare_inspect(entry, rec.data["live_root"], rec.root)
    else:
        compare = compare_text(entry, rec.created, args[0])
    _match(entry, lambda now: _answer(images, args, now), compare)
    assert not images.diagnostics


@pytest.mark.parametrize("case", PRUNES, ids=str)
def test_prune_matches_dockerd28_and_du(oracle, case):
    rec = oracle[case.scenario]
    entry = rec.data["rm"][case.index]
    images = _images(str(rec.rm_root(entry)))
    flags, filters, _ = _options(analyze_args(entry["docker"])[1:], ("--filter",))

    def produce(now: float) -> tuple[str, str, int]:
        plan = images.plan_prune(parse_filters(filters), "-a" in flags, int(now * 1e9))
        return format_prune(plan.lines, plan.space_reclaimed), "", 0
    _match(entry, produce, compare_rm(entry))
    plan = images.plan_prune(parse_filters(filters), "-a" in flags, int(entry["t_after"] * 1e9))
    lost = entry["du_before"] - entry["du_after"]
    assert abs(images.prune_freed_bytes(plan) - lost) <= 4096


def test_inspect_json_is_what_the_cli_prints(oracle):
    """The whole object, key for key, for an image with annotations and a build comment."""
    rec = oracle["containerd"]
    entry = next(c for c in rec.data["commands"] if c["docker"] == ["image", "inspect",
                                                                     "bk/app:1"])
    images = _images(str(rec.root))
    got = inspect_image(*images.inspect("bk/app:1"))
    want = json.loads(entry["stdout"])[0]
    assert {k: got[k] for k in want} == want
