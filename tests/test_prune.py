"""The prune planner against moby's ImagesPrune (research notes §6, §9 case 10)."""
from __future__ import annotations

import pytest

from analyzer.engines.prune import match_labels, plan_prune
from analyzer.engines.rmi import Record
from analyzer.errors import DaemonError
from analyzer.goapi.time import parse_duration
from analyzer.goapi.timetypes import get_timestamp
from analyzer.render.prune import format_prune
from tests.test_rmi import C1, C2, C3, D1, D2, D3, DIGEST, StoreBuilder, diff

NOW = 1_700_000_000.0          # 2023-11-14T22:13:20Z


def prune(store, all=False, filters=(), **kw) -> str:
    _, records, space = plan_prune(store, all, filters, now=NOW, utc_offset=0, **kw)
    return format_prune(records, space)


def case10(second_tag: bool = False):
    b = StoreBuilder()
    busybox = b.image("1bb0", [D1], ["busybox:latest"] + (["zz:1"] if second_tag else []),
                      size=4_261_550)
    alpine = b.image("2a10", [diff("a")], ["alpine:latest"], size=7_790_000)
    b.container("0123", busybox)
    return b.build(), busybox, alpine


def test_nothing_dangling() -> None:
    store, _, _ = case10()
    assert prune(store) == "Total reclaimed space: 0B\n"


def test_all_keeps_the_image_a_container_uses() -> None:
    store, _, alpine = case10()
    assert prune(store, all=True) == (
        "Deleted Images:\n"
        "untagged: alpine:latest\n"
        f"deleted: {alpine}\n"
        f"deleted: {diff('a')}\n"
        "\n"
        "Total reclaimed space: 7.79MB\n")


def test_all_untags_all_but_the_last_reference_of_a_used_image() -> None:
    # moby#36295: ImageDelete per reference; only the last one hits the conflict.
    store, busybox, alpine = case10(second_tag=True)
    plan, records, space = plan_prune(store, True, (), NOW)
    assert records[0] == Record("Untagged", "busybox:latest")
    assert [r.familiar for r in plan.state.references(busybox)] == ["zz:1"]
    assert space == 7_790_000


def test_dangling_images_and_their_parents() -> None:
    b = StoreBuilder()
    base = b.image("b000", [D1], ["busybox:latest"])
    i1 = b.image("1111", [D1, D2], parent=base)
    i2 = b.image("2222", [D1, D2, D3], parent=i1, size=10)
    b.image("3333", [diff("e")], ["kept:1"])
    assert prune(b.build()) == (
        "Deleted Images:\n"
        f"deleted: {i2}\n"
        f"deleted: {C3}\n"
        f"deleted: {i1}\n"
        f"deleted: {C2}\n"
        "\n"
        "Total reclaimed space: 1.013kB\n")      # C3 (10 + 2) and C2 (1000 + 1)


def test_digest_only_images_are_dangling() -> None:
    b = StoreBuilder()
    other = "sha256:" + "e" * 64
    image = b.image("aaaa", [D1], [f"a@{DIGEST}", f"a@{other}"])
    used = b.image("bbbb", [D2], [f"b@{DIGEST}"])
    b.container("0123", used)
    out = prune(b.build())
    assert out == ("Deleted Images:\n"
                   f"untagged: a@{DIGEST}\n"
                   f"untagged: a@{other}\n"
                   f"deleted: {image}\n"
                   f"deleted: {C1}\n"
                   "\n"
                   "Total reclaimed space: 1kB\n")


def test_intermediate_images_are_not_candidates() -> None:
    b = StoreBuilder()
    i1 = b.image("1111", [D1])
    b.image("2222", [D1, D2], ["app:1"], parent=i1)
    plan, records, _ = plan_prune(b.build(), True, (), NOW)
    assert [o.argument for o in plan.outcomes] == ["docker.io/library/app:1"]
    assert records[-2:] == [Record("Deleted", i1), Record("Deleted", C1)]


def test_failures_are_skipped_silently() -> None:
    b = StoreBuilder()
    image = b.image("aaaa", [D1])
    b.container("0123", image, running=True)
    plan, records, space = plan_prune(b.build(), False, (), NOW)
    assert (records, space, plan.errors) == ([], 0, ())
    assert plan.outcomes[0].error is not None


def test_until() -> None:
    b = StoreBuilder()
    old = b.image("aaaa", [D1], created="2023-11-13T00:00:00Z")
    edge = b.image("bbbb", [D2], created="2023-11-14T21:13:20Z")
    b.image("cccc", [D3], created="2023-11-14T21:13:20.000000001Z")
    undated = b.image("dddd", [diff("e")], created=None)
    plan, _, _ = plan_prune(b.build(), False, [("until", "1h")], now=NOW)
    # Created == until is pruned; 20.10 reads a missing "created" as year 1.
    assert set(plan.deleted_images) == {old, edge, undated}


@pytest.mark.parametrize("filters,kept", [
    ([("label", "a")], {"none", "b"}),
    ([("label", "a=1")], {"none", "a2", "b"}),
    ([("label!", "a")], {"a1", "a2"}),
    ([("label!", "a"), ("label!", "b")], {"a1"}),
    ([("label", "a"), ("label!", "a=1")], {"none", "b", "a1"}),
])
def test_labels(filters: list, kept: set[str]) -> None:
    b = StoreBuilder()
    ids = {"none": b.image("0000", [D1], labels=None),
           "a1": b.image("a100", [D2], labels={"a": "1", "b": "x"}),
           "a2": b.image("a200", [D3], labels={"a": "2"}),
           "b": b.image("b000", [diff("e")], labels={"b": ""}),
           "noconfig": b.image("c000", [diff("f")], config=False)}
    plan, _, _ = plan_prune(b.build(), False, filters, now=NOW)
    assert {k for k, v in ids.items() if v not in plan.deleted_images} == kept


def test_match_labels_ands_label_bang() -> None:
    args = {"label!": {"a", "b"}}
    assert match_labels(args, {"a": "1"}) and not match_labels(args, {"a": "1", "b": "2"})
    assert match_labels(args, {})


@pytest.mark.parametrize("filters,message", [
    ([("foo", "bar")], "Invalid filter 'foo'"),
    ([("until", "1"), ("until", "2")], "more than one until filter specified"),
    ([("until", "abc")], 'failed to parse value as time or duration: "abc"'),
    ([("until", "2023-13-01")], 'parsing time "2023-13-01": month out of range'),
])
def test_refused_filters(filters: list, message: str) -> None:
    with pytest.raises(DaemonError) as info:
        plan_prune(StoreBuilder().build(), False, filters, now=NOW)
    assert str(info.value) == message


def test_dangling_filter_values() -> None:
    b = StoreBuilder()
    b.image("aaaa", [D1], ["a:1"])
    # The CLI's dangling=true plus a user's dangling=false: 20.10 lets false win.
    plan, _, _ = plan_prune(b.build(), False, [("dangling", "false")], now=NOW)
    assert plan.deleted_images


@pytest.mark.parametrize("value,expected", [
    ("10m", "1699999400"), ("24h", "1699913600"), ("1h30m", "1699994600"), ("-1h", "1700003600"),
    ("0", "0"), ("1700000000", "1700000000"), ("1700000000.5", "1700000000.5"), ("+5", "+5"),
    ("2023-11-14", "1699916400.000000000"),                        # local, UTC+1
    ("2023-11-14T22:13", "1699996380.000000000"),
    ("2023-11-14T22:13:20Z", "1700000000.000000000"),
    ("2023-11-14T22:13:20.5+01:00", "1699996400.500000000"),
    ("2023-11-14T22:13:20,5", "1699996400.500000000"),
    ("2023-11-14Z", "1699920000.000000000"),
    ("2023-11-14T22:13:20+25:00", "1699910000.000000000"),         # Go 1.19: no range check
])
def test_get_timestamp(value: str, expected: str) -> None:
    assert get_timestamp(value, int(NOW) * 10**9, 3600) == expected


@pytest.mark.parametrize("value,message", [
    # Each checked against dockerd 20.10.24 (Go 1.19).
    ("2023-x-01", 'parsing time "2023-x-01" as "2006-01-02": cannot parse "x-01" as "01"'),
    ("2a23-01-01", 'parsing time "2a23-01-01" as "2006-01-02": cannot parse "-01-01" as "2006"'),
    ("-1x", 'parsing time "-1x" as "2006-01-02": cannot parse "-1x" as "2006"'),
    ("2023-02-30", 'parsing time "2023-02-30": day out of range'),
    ("2023-11-14T22:60", 'parsing time "2023-11-14T22:60": minute out of range'),
    ("2023-11-14T2x", 'parsing time "2023-11-14T2x": extra text: "x"'),
    ("2023-11-14T22:13:20.1234567891",
     'parsing time "2023-11-14T22:13:20.1234567891": extra text: "1"'),
    ("2023-11-14T22:13:20z", 'parsing time "2023-11-14T22:13:20z" as '
                             '"2006-01-02T15:04:05Z07:00": cannot parse "z" as "Z07:00"'),
    ("2023-11-14T22:13:20+2x:00", 'parsing time "2023-11-14T22:13:20+2x:00" as '
                                  '"2006-01-02T15:04:05Z07:00": cannot parse "" as "Z07:00"'),
    ("2023-11-14T22:13:20+0100", 'parsing time "2023-11-14T22:13:20+0100" as '
                                 '"2006-01-02T15:04Z07:00": cannot parse ":20+0100" as "Z07:00"'),
    ("1.2.3", 'failed to parse value as time or duration: "1.2.3"'),
])
def test_get_timestamp_errors(value: str, message: str) -> None:
    with pytest.raises(DaemonError) as info:
        get_timestamp(value, int(NOW) * 10**9, 0)
    assert str(info.value) == message


@pytest.mark.parametrize("text,ns", [
    ("1h", 3600 * 10**9), ("1.5h", 5400 * 10**9), ("1h30m", 5400 * 10**9), ("-2s", -2 * 10**9),
    ("300ms", 3 * 10**8), ("1µs", 1000), (".5s", 5 * 10**8), ("0", 0),
    ("", None), ("1", None), ("1x", None), (".s", None), ("1h-1m", None),
])
def test_go_parse_duration(text: str, ns: int | None) -> None:
    assert parse_duration(text) == ns


def test_format_prune() -> None:
    assert format_prune([], 0) == "Total reclaimed space: 0B\n"
    assert format_prune([Record("Untagged", "a:1"), Record("Deleted", "sha256:x")], 999_500) == (
        "Deleted Images:\nuntagged: a:1\ndeleted: sha256:x\n\nTotal reclaimed space: 999.5kB\n")
