"""The analyst's terminal (issue 10 class 9): what the evidence's text becomes on screen.

The test that counts (``live``) builds an image with BuildKit on dockerd 28.5 — a
heredoc ``RUN`` (newlines in ``created_by``, which Docker prints raw) and labels
holding ESC and a C1 CSI — and compares ``analyze`` with the Docker CLI on a copy of
its root: byte for byte where Docker prints nothing a terminal obeys, and where it
does, Docker's own output with those characters escaped (the documented difference),
plus one warning.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.goapi.json import encode_unescaped, marshal, marshal_indent
from analyzer.render.terminal import escape, escaped_warning
from tests.oracle.build import ImageSpec, busybox_layer, dockerfile_context, save_archive
from tests.oracle.daemon import JUDGES, Daemon
from tests.oracle.record import analyze_args, compare_text, match_over_time, timed

ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=60)
UTF8_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


def _obeyed(c: str) -> bool:
    return (ord(c) < 0x20 and c not in "\n\t") or 0x80 <= ord(c) < 0xa0


@settings(max_examples=200, deadline=None)
@given(ANY_TEXT)
def test_nothing_a_terminal_obeys_is_left(text):
    safe = escape(text)
    safe.text.encode("utf-8")                    # strict: no surrogate left
    assert not any(_obeyed(c) for c in safe.text)
    assert safe.controls == sum(map(_obeyed, text))
    assert safe.text.count("\n") == text.count("\n") and safe.text.count("\t") == text.count("\t")
    if not safe.controls and not safe.bytes_not_utf8:
        assert safe.text == text


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(UTF8_TEXT, UTF8_TEXT, max_size=4))
def test_json_keeps_its_values(labels):
    """Docker's JSON leaves C1 raw; escaped, it is JSON's own \\u escape: the same value."""
    for text in (marshal(labels), marshal_indent([labels]), encode_unescaped(labels),
                 orjson.dumps(labels).decode()):
        safe = escape(text)
        assert safe.bytes_not_utf8 == 0
        value = json.loads(safe.text)
        assert (value[0] if isinstance(value, list) else value) == labels


def test_go_json_writes_a_byte_that_is_not_utf8_as_u_fffd():
    name = b"caf\xe9 \xff\xfe".decode("utf-8", "surrogateescape")
    assert marshal({name: [name]}) == '{"caf\ufffd \ufffd\ufffd":["caf\ufffd \ufffd\ufffd"]}'
    assert encode_unescaped([name]) == '["caf\ufffd \ufffd\ufffd"]'
    assert marshal_indent({"k": name}) == '{\n    "k": "caf\ufffd \ufffd\ufffd"\n}'


def test_escapes_and_the_one_warning():
    text = "a\x1b[2J\rb\x9b\x00\x7f\u00a0\n\tc" + b"\xff".decode("utf-8", "surrogateescape")
    safe = escape(text)
    assert safe.text == "a\\u001b[2J\\u000db\\u009b\\u0000\x7f\u00a0\n\tc\\xff"
    assert (safe.controls, safe.bytes_not_utf8) == (4, 1)
    assert escaped_warning(0, 0) is None
    assert escaped_warning(1, 0) == ("output: the evidence's text is printed with 1 control "
                                     "character as \\u00XX (Docker prints them raw)")
    assert escaped_warning(2, 3) == (
        "output: the evidence's text is printed with 2 control characters as \\u00XX and 3 "
        "bytes that are not UTF-8 as \\xNN (Docker prints them raw)")


# -- against the real daemon ----------------------------------------------------------

# Written as Docker's BuildKit reads it: a heredoc RUN, an ESC and a C1 CSI in labels.
DOCKERFILE = ('FROM base:1\n'
              'LABEL evil="a\x1b[2Jb" c1="x\u009b31my"\n'
              'RUN <<EOT\necho one > /one\necho two >> /one\nEOT\n')
CONTAINER_LABEL = "\x1b]0;pwned\x07"
COMMANDS = [
    ["image", "ls"],
    ["image", "history", "term/evil:1"],
    ["image", "history", "--no-trunc", "term/evil:1"],
    ["image", "history", "--format", "{{.CreatedBy}}", "term/evil:1"],
    ["image", "inspect", "--format", "{{.Config.Labels}}", "term/evil:1"],
    ["image", "inspect", "--format", "{{json .Config.Labels}}", "term/evil:1"],
    ["ps", "-a", "--no-trunc"],
    ["ps", "-a", "--format", "{{.Names}} {{.Labels}}"],
]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> tuple[Path, list[dict], dict[str, int]]:
    tmp = tmp_path_factory.mktemp("terminal")
    with Daemon(judge=JUDGES["dockerd28"]) as d:
        d.run("load", input=save_archive([ImageSpec(
            [busybox_layer()], datetime(2024, 1, 1, tzinfo=timezone.utc), ["base:1"])]))
        d.build(dockerfile_context(tmp / "ctx", DOCKERFILE), "-t", "term/evil:1",
                buildkit=True)
        d.run("create", "--name", "c1", "--label", f"evil={CONTAINER_LABEL}", "term/evil:1",
              "sh", "-c", "printf '\x1b[31m'")
        entries = [timed(d, argv) for argv in COMMANDS]
        created = {i["Id"][7:]: int(datetime.fromisoformat(i["Created"][:19]).replace(
            tzinfo=timezone.utc).timestamp()) for i in d.inspect("image", "base:1", "term/evil:1")}
        root = d.snapshot(tmp / "root")
    return root, entries, created


def test_docker_prints_these_raw(live):
    """What the comparison below stands on: the daemon kept the newlines, the ESC and
    the CSI, and the Docker CLI prints them as they are."""
    _, entries, _ = live
    by_argv = {tuple(e["docker"]): e for e in entries}
    history = by_argv[("image", "history", "--no-trunc", "term/evil:1")]["stdout"]
    assert "echo one > /one\necho two >> /one\n" in history
    assert "\x1b[2J" in history and "\u009b" in history
    labels = by_argv[("image", "inspect", "--format", "{{json .Config.Labels}}",
                      "term/evil:1")]["stdout"]
    assert "\\u001b" in labels and "\u009b" in labels     # Go's JSON: C0 escaped, C1 raw
    assert CONTAINER_LABEL in by_argv[("ps", "-a", "--format", "{{.Names}} {{.Labels}}")]["stdout"]


@pytest.mark.parametrize("index", range(len(COMMANDS)), ids=[" ".join(c) for c in COMMANDS])
def test_as_docker_prints_with_escapes(live, index):
    """Docker's output with what a terminal obeys escaped, newlines as they were, and
    the one warning exactly when something was escaped."""
    root, entries, created = live
    entry = entries[index]
    safe = escape(entry["stdout"])
    warning = escaped_warning(safe.controls, safe.bytes_not_utf8)
    want = {**entry, "stdout": safe.text,
            "stderr": entry["stderr"] + (f"analyze: warning: {warning}\n" if warning else "")}
    args = analyze_args(entry["docker"])
    match_over_time(root, want, args, compare_text(want, created, args[0]))
