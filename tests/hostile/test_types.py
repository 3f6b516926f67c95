"""Class 2 of issue 10: well-formed JSON of the wrong type, and numbers out of range.

``{"Repositories": [1]}`` killed every command; a container's ``State.ExitCode`` of
``"x"``, wrong types in image config fields and a huge layer ``size`` crashed or were
shown as if sound. Every field the model reads is checked, type and range, where it is
read: the record is skipped with a warning naming the file and the field, as dockerd
skips what json.Unmarshal refuses, and everything else answers.
"""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from . import (IMAGEDB, LAYERDB, REPOSITORIES, edit_json, image_id, images_using, layer_chain,
               rewrite_config, rows_without, set_field, table_rows, write)


def _ids(text: str) -> set[str]:
    return set(text.split())


@pytest.mark.parametrize("content, field", [
    ('{"Repositories": [1]}', "Repositories"),
    ('{"Repositories": "x"}', "Repositories"),
    ('[1]', ""),
    ('{"Repositories": {"centos": {"centos:latest": 5}}}', "centos:latest"),
    ('{"Repositories": {"centos": [1]}}', "centos"),
])
def test_repositories_of_the_wrong_type(sample_root, damaged, baseline, content, field):
    ev = damaged(sample_root)
    write(ev.path / REPOSITORIES, content)
    ev.seal()
    for args in [("ls", "-a", "-q"), ("df",), ("prune", "-a", "--json"), ("du", "--json"),
                 ("rm", "centos")]:
        want = baseline(sample_root, *args)
        got = ev.run(*args).check(want.rc if args[0] != "rm" else 1)
        assert got.warned(REPOSITORIES, field), got.describe()
        if args[0] == "ls":
            assert _ids(got.out) == _ids(want.out)      # every image, now untagged
    assert "No such image: centos" in got.err


# -- container configs -----------------------------------------------------------------------
CONTAINER_FIELDS = [
    ("State.ExitCode", "x"), ("State.ExitCode", 2**70), ("State.Running", "yes"),
    ("State", "x"), ("State.StartedAt", 5), ("Name", 5), ("ID", 5), ("Created", []),
    ("Args", "x"), ("Path", ["x"]), ("Config.Labels", [1]), ("Config.Labels", {"a": 1}),
    ("Config.Image", {}), ("NetworkSettings.Ports", [1]),
    ("NetworkSettings.Ports", {"80/tcp": [{"HostPort": 8080}]}),
    ("NetworkSettings.Networks", [1]), ("MountPoints", [1]), ("MountPoints", {"/x": {"Name": 5}}),
    ("Image", 7), ("State.Health", {"Status": 1}),
]


CONTAINER_COMMANDS = [("ps", "-a", "--no-trunc"), ("df", "-v"), ("ps", "-a", "--format", "json")]


def _commands(commands: list, case, cases: list) -> list:
    """Every command for the first few cases; the first command for the rest (each
    analyze run costs a second; the reader's check is the same for all)."""
    return commands if case in cases[:3] else commands[:1]


@pytest.mark.parametrize("field, value", CONTAINER_FIELDS,
                         ids=[f"{f}={json.dumps(v)}" for f, v in CONTAINER_FIELDS])
def test_container_config_of_the_wrong_type(daemon_roots, damaged, baseline, field, value):
    source = daemon_roots["basic"]
    ev = damaged(source)
    victim = sorted(os.listdir(ev.path / "containers"))[0]
    config = f"containers/{victim}/config.v2.json"
    edit_json(ev.path / config, lambda doc: set_field(doc, field, value))
    ev.seal()
    for args in _commands(CONTAINER_COMMANDS, (field, value), CONTAINER_FIELDS):
        want = baseline(source, *args)
        got = ev.run(*args).check(want.rc)
        assert got.warned(config, field.split(".")[-1]), got.describe()
        if args[:2] == ("ps", "-a") and "--format" not in args:
            assert victim not in got.out
            assert rows_without(got.out, [victim]) == rows_without(want.out, [victim])


# -- image configs ---------------------------------------------------------------------------
IMAGE_FIELDS = [
    ("architecture", 5), ("os", []), ("created", 5), ("created", "yesterday"),
    ("author", {}), ("history", "x"), ("history", [1]), ("history", [{"created": 5}]),
    ("history", [{"empty_layer": "no"}]), ("history", [{"created_by": ["x"]}]),
    ("config", "x"), ("config.Labels", [1]), ("config.Labels", {"a": 1}), ("config.Cmd", 5),
    ("config.Env", "x"), ("config.Healthcheck", {"Retries": "x"}), ("container_config", 1),
    ("rootfs", "x"), ("rootfs.type", 1), ("variant", 1),
]


IMAGE_COMMANDS = [("ls", "-a"), ("ls", "--format", "json"), ("history", "redis:alpine"),
                  ("inspect", "nginx:latest"), ("prune", "-a", "--filter", "label=x"), ("verify",)]


@pytest.mark.parametrize("field, value", IMAGE_FIELDS,
                         ids=[f"{f}={json.dumps(v)}" for f, v in IMAGE_FIELDS])
def test_image_config_of_the_wrong_type(sample_root, damaged, baseline, field, value):
    ev = damaged(sample_root)
    old = image_id(sample_root, "centos:latest")[7:]
    new = rewrite_config(ev.path, old, lambda doc: set_field(doc, field, value))
    config = f"{IMAGEDB}/content/sha256/{new}"
    ev.seal()
    for args in _commands(IMAGE_COMMANDS, (field, value), IMAGE_FIELDS):
        want = baseline(sample_root, *args)
        got = ev.run(*args).check(1 if args == ("verify",) else want.rc)
        assert got.warned(config, field.split(".")[-1]), got.describe()
        if args == ("ls", "-a"):
            assert new[:12] not in got.out
            assert rows_without(got.out, [old]) == rows_without(want.out, [old])
        elif args[0] in ("history", "inspect"):
            assert got.out == want.out
    if (field, value) in IMAGE_FIELDS[:3]:
        assert ev.run("history", "centos:latest").check(1).err.startswith("analyze: warning")


# -- layer store files -----------------------------------------------------------------------
SIZES = ["99999999999999999999999", "-5", "1e3", "0x10", " 12 7"]
SIZE_COMMANDS = [("ls",), ("df",), ("prune", "-a", "--json"), ("reclaim", "--json", "redis:alpine")]


@pytest.mark.parametrize("size", SIZES)
def test_layer_size_out_of_range(sample_root, damaged, baseline, size):
    ev = damaged(sample_root)
    layer = layer_chain(sample_root, "centos:latest")[-1]
    users = images_using(sample_root, layer)
    write(ev.path / LAYERDB / layer / "size", size)
    ev.seal()
    for args in SIZE_COMMANDS if size == SIZES[0] else SIZE_COMMANDS[:1]:
        want = baseline(sample_root, *args)
        got = ev.run(*args).check(want.rc)
        assert got.warned(f"{LAYERDB}/{layer}/size"), got.describe()
        if args == ("ls",):
            assert rows_without(got.out, users) == rows_without(want.out, users)
            assert not any(u[:12] in got.out for u in users)
        if "--json" in args:
            assert max(_ints(json.loads(got.out))) < 2**63


def _ints(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _ints(v)
    elif isinstance(value, list):
        for v in value:
            yield from _ints(v)


# -- Go's rules, unit by unit ----------------------------------------------------------------
def test_unmarshal_keeps_go_rules():
    from analyzer.goapi.unmarshal import (INT, STRING, TIME, ListOf, MapOf, Mismatch, Struct,
                                          check)
    shape = Struct({"ExitCode": INT, "Labels": MapOf(STRING), "Args": ListOf(STRING),
                    "History": ListOf(Struct({"Created": TIME, "Env": MapOf(ListOf(INT))}))})
    check({"exitcode": 3, "Labels": None, "Args": ["a"], "Other": [1, {}]}, shape)
    check(None, shape)                                  # null keeps the zero value
    for bad, field in [({"EXITCODE": 1.0}, "ExitCode"), ({"ExitCode": 2**63}, "ExitCode"),
                       ({"ExitCode": True}, "ExitCode"), ({"Labels": {"a": 1}}, "Labels.a"),
                       ({"Args": "x"}, "Args"), ({"Args": ["a", 2]}, "Args[1]"), ([], ""),
                       ({"history": [{}, {"created": "today"}]}, "History[1].Created"),
                       ({"History": [{"Env": {"a": [1, -2**63 - 1]}}]}, "History[0].Env.a[1]")]:
        with pytest.raises(Mismatch) as err:
            check(bad, shape)
        assert err.value.field == field
    deep: list = []
    for _ in range(5000):                               # no repr of evidence-deep values
        deep = [deep]
    with pytest.raises(Mismatch):
        check({"Labels": deep}, shape)


# RFC 3339 times field by field: (what Go's layout takes, what it may not). A time is drawn
# sound but for a field or two, so that each way of being wrong meets the fast path.
_TIME_FIELDS = [
    (["2024", "0000", "9999", "1900", "2000"], ["202", "+024", "20x4"]),
    (["-"], ["/", ""]),
    (["01", "02", "04", "12"], ["00", "13", "2", "1a"]),
    (["-"], [":"]),
    (["01", "28", "29", "30", "31"], ["32", "00", "9", "3"]),
    (["T"], ["t", " "]),
    (["00", "23", "9"], ["24", "5a", ""]),
    ([":"], ["-"]),
    (["00", "59"], ["60", "7", "5"]),
    ([":"], [".", ""]),
    (["00", "59"], ["60", "1", "6"]),
    (["", ".5", ",123", ".123456789123"], [".", ".Z", "\u0663", ".1.2"]),
    (["Z", "+01:00", "-23:59", "+99:99"], ["z", "+0100", "+1a:00", "", "Zx", "+01:0"]),
]


@st.composite
def _rfc3339ish(draw):
    spoilt = draw(st.sets(st.integers(0, len(_TIME_FIELDS) - 1), max_size=2))
    return "".join(draw(st.sampled_from(bad if i in spoilt else good))
                   for i, (good, bad) in enumerate(_TIME_FIELDS))


@settings(max_examples=500)           # enough to meet each spoilt field
@given(_rfc3339ish())
def test_rfc3339_check_agrees_with_parse(value):
    """is_rfc3339's fast path accepts only what Go's time.Parse(time.RFC3339) accepts
    (parse is the spec: a twin of Go 1.19's), and refuses nothing it accepts."""
    from analyzer.goapi.time import ParseError, is_rfc3339, parse
    try:
        parse("2006-01-02T15:04:05Z07:00", value, 0)
        accepted = True
    except ParseError:
        accepted = False
    assert is_rfc3339(value) == accepted, value


def test_rfc3339_check_knows_each_month():
    from analyzer.goapi.time import is_rfc3339
    assert is_rfc3339("2024-02-29T00:00:00Z") and not is_rfc3339("2023-02-29T00:00:00Z")
    assert is_rfc3339("2000-02-29T00:00:00Z") and not is_rfc3339("1900-02-29T00:00:00Z")
    assert is_rfc3339("2023-04-30T23:59:59.999+02:00") and not is_rfc3339("2023-04-31T00:00:00Z")
    assert is_rfc3339("2023-12-31T00:00:00Z") and not is_rfc3339("2023-12-31T00:00:00")


def test_history_longer_than_the_layers(sample_root, damaged, baseline):
    """Well-formed and well-typed, but more non-empty history entries than layers: dockerd
    answers history with an error (500), and everything else as before."""
    ev = damaged(sample_root)
    old = image_id(sample_root, "centos:latest")[7:]
    new = rewrite_config(ev.path, old, lambda doc: doc.__setitem__("history", [{}, {}, {}]))
    ev.seal()
    got = ev.run("history", "centos:latest").check(1)
    assert got.err == "Error response from daemon: too many non-empty layers in History section\n"
    want = baseline(sample_root, "ls")
    got = ev.run("ls").check()
    assert rows_without(got.out, [old, new]) == rows_without(want.out, [old, new])


@pytest.mark.parametrize("content,field", [
    ('{"device_id": "3"}', "device_id"), ('{"device_id": 3, "size": -1}', "size"),
    ('{"device_id": 3, "deleted": 1}', "deleted"), ('{"device_id": 3.5}', "device_id"),
    ('{"transaction_id": 18446744073709551616}', "transaction_id")])
def test_devicemapper_device_metadata_of_the_wrong_type(content, field):
    """metadata/<hash> is checked by goapi/unmarshal as loadMetadata's json.Unmarshal would
    (a null keeps the zero value; a negative uint64 or a float is refused), naming the field."""
    from analyzer.errors import MalformedError
    from analyzer.sources.devicemapper import parse_dev_info
    with pytest.raises(MalformedError) as err:
        parse_dev_info(content.encode(), "h", "devicemapper/metadata/h")
    assert err.value.path == "devicemapper/metadata/h"
    assert err.value.reason.startswith(f"{field}: "), err.value.reason
    info = parse_dev_info(b'{"device_id": 7, "size": null, "deleted": true}', "h", "m")
    assert (info.device_id, info.size, info.transaction_id, info.deleted) == (7, 0, 0, True)
