"""Go's text/template and docker/cli's formatter, edge by edge (texts as Go 1.24 and the
Docker 28.2 client print them; the oracle checks the everyday forms against the client)."""
from __future__ import annotations

import pytest

from analyzer.goapi.template import (GoMap, GoMethod, GoNil, GoNumber, GoSlice, GoStruct, MISSING,
                                     ExecError, ParseError, Template, fmt_sprint, fmt_sprintf)
from analyzer.render.formatter import (BASIC_FUNCTIONS, FormatError, context, header_context,
                                       tabwrite, template_text, write)
from analyzer.render.inspect_format import (duration_string, go_time_string, inspect_format,
                                            raw_value, typed)


def run(text: str, data=None, missingkey_error: bool = False) -> str:
    tmpl = Template(text, BASIC_FUNCTIONS)
    if missingkey_error:
        tmpl = tmpl.option_missingkey_error()
    return tmpl.execute(data)


@pytest.mark.parametrize("text,data,want", [
    ("{{.A}}-{{.B.C}}", {"A": "x", "B": {"C": 1}}, "x-1"),
    ("{{.Nope}}", {}, "<no value>"),
    ("{{.A}}", {"A": None}, "<no value>"),            # nil interface{} is dug out
    ("{{.M}}", {"M": {"b": 2, "a": [1, "x"]}}, "map[a:[1 x] b:2]"),
    ("{{range $i, $e := .L}}{{$i}}={{$e}};{{end}}", {"L": ["a", "b"]}, "0=a;1=b;"),
    ("{{range .M}}{{.}}{{end}}", {"M": {"b": "2", "a": "1"}}, "12"),
    ("{{range .L}}x{{else}}empty{{end}}", {"L": []}, "empty"),
    ("{{range 3}}{{.}}{{end}}", None, "012"),
    ("{{range .L}}{{if eq . 2}}{{break}}{{end}}{{.}}{{end}}", {"L": [1, 2, 3]}, "1"),
    ("{{range .L}}{{if eq . 2}}{{continue}}{{end}}{{.}}{{end}}", {"L": [1, 2, 3]}, "13"),
    ("{{if .A}}y{{else if .B}}b{{else}}n{{end}}", {"A": "", "B": [0]}, "b"),
    ("{{with .A}}[{{.}}]{{else}}none{{end}}", {"A": 0}, "none"),
    ("{{$x := 1}}{{$x = 2}}{{$x}}", None, "2"),
    ("{{- \"a\" -}}  {{- \"b\"}} ", None, "ab "),
    ("a{{/* c */}}b", None, "ab"),
    ("{{\"\\t\"}}|{{`raw\\t`}}|{{'a'}}", None, "\t|raw\\t|97"),
    ("{{1e6}} {{1.5}} {{0x10}} {{-3}}", None, "1e+06 1.5 16 -3"),
    ("{{and 1 0 2}} {{or 0 \"\" \"z\"}} {{not 0}}", None, "0 z true"),
    ("{{len \"héllo\"}} {{index \"abc\" 1}} {{slice \"abcdef\" 1 3}}", None, "6 98 bc"),
    ("{{index .M \"k\"}}|{{index .G \"k\"}}", {"M": {}, "G": GoMap({}, "string")}, "<no value>|"),
    ("{{eq .A \"x\" \"y\"}} {{ne 1 2}} {{lt 1 2}} {{ge \"b\" \"a\"}} {{eq .Nope \"x\"}}",
     {"A": "y"}, "true true true true false"),
    ("{{print 1 2 \"a\" 3}}|{{println 1 \"a\"}}|", None, "1 2a3|1 a\n|"),
    ("{{printf \"%5s|%-4d|%q|%x|%v|%t|%05d|%.2f\" \"ab\" 7 \"q\" 255 .L true 42 3.14159}}",
     {"L": ["a"]}, "   ab|7   |\"q\"|ff|[a]|true|00042|3.14"),
    ("{{printf \"%d\" \"s\"}} {{printf \"%s\"}} {{printf \"x\" 1}}", None,
     "%!d(string=s) %!s(MISSING) x%!(EXTRA int=1)"),
    ("{{.A | printf \"%s!\" | upper}}", {"A": "x"}, "X!"),
    ("{{(split .A \",\")}}", {"A": "a,b"}, "[a b]"),
    ("{{join (split .A \",\") \"+\"}} {{title \"hello wor-ld\"}} {{pad \"x\" 1 2}}|{{pad \"\" 3 3}}|",
     {"A": "a,b"}, "a+b Hello Wor-Ld  x  ||"),
    ("{{truncate \"abcdef\" 3}} {{truncate \"ab\" 3}} {{lower \"AB\"}}", None, "abc ab ab"),
    ("{{json .}}", {"b": "<x>", "a": [1, None]}, '{"a":[1,null],"b":"<x>"}'),
    ("{{json .N}} {{.N}}", {"N": GoNumber("1.50")}, "1.50 1.50"),
    ("{{.S}} {{.S.F}} {{.P}} {{.S.Embedded}}",
     {"S": GoStruct("t", {"F": "f", "In": GoStruct("u", {"Embedded": 3})}, embedded=("In",)),
      "P": GoNil("*t")}, "{f {3}} f <nil> 3"),
    ("{{.S.M \"a\"}}", {"S": GoStruct("t", methods={"M": GoMethod(lambda a: a * 2, ("string",))})},
     "aa"),
])
def test_executes_as_go(text, data, want):
    assert run(text, data) == want


@pytest.mark.parametrize("text,message", [
    ("{{.ID", "template: :1: unclosed action"),
    ("{{.ID}", "template: :1: bad character U+007D '}'"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{foo}}", 'template: :1: function "foo" not defined'),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{if .X}}", "template: :1: unexpected EOF"),
    ("{{(.A}}", "template: :1: unclosed left paren"),
    ("{{.A)}}", "template: :1: unexpected right paren"),
    ("{{.A | 3}}", "template: :1: non executable command in pipeline stage 2"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{}}", "template: :1: missing value for command"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("a\n{{.B", "template: :2: unclosed action"),
])
def test_parse_errors_as_go(text, message):
    with pytest.raises(ParseError) as exc:
        Template(text, BASIC_FUNCTIONS)
    assert str(exc.value) == message


@pytest.mark.parametrize("text,data,message", [
    ("{{.A.B}}", {"A": "s"}, 'template: :1:4: executing "" at <.A.B>: '
                             "can't evaluate field B in type string"),
    ("{{index .L 5}}", {"L": ["a"]}, 'template: :1:2: executing "" at <index .L 5>: '
                                     "error calling index: index out of range: 5"),
    ("{{.Nope}}", {}, 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'),
    ("x\n {{printf 3}}", {}, 'template: :2:10: executing "" at <3>: expected string; found 3'),
    ("{{join .S \",\"}}", {"S": "x"}, 'template: :1:7: executing "" at <.S>: '
                                      "wrong type for value; expected []string; got string"),
    ("{{.A 1}}", {"A": "x"}, 'template: :1:2: executing "" at <.A>: '
                             "A is not a method but has arguments"),
    ("{{range .A}}{{end}}", {"A": "s"}, 'template: :1:8: executing "" at <.A>: '
                                        "range can't iterate over s"),
    ("{{eq .A 1}}", {"A": "s"}, 'template: :1:2: executing "" at <eq .A 1>: '
                                "error calling eq: incompatible types for comparison"),
    ("{{.P.F}}", {"P": GoNil("*t")}, 'template: :1:4: executing "" at <.P.F>: '
                                     "nil pointer evaluating *t.F"),
])
def test_exec_errors_as_go(text, data, message):
    with pytest.raises(ExecError) as exc:
        run(text, data, missingkey_error=True)
    assert str(exc.value) == message


def test_fmt_prints_values_as_go():
    assert fmt_sprint(GoSlice(["a"]), 1, "x", True, False) == "[a] 1xtrue false"
    assert fmt_sprint(GoStruct("t", {"A": GoStruct("u", {}, pointer=True)})) == "{0xc000010000}"
    assert fmt_sprintf("%v|%+v", GoStruct("t", {"A": 1}), GoStruct("t", {"A": 1})) == "{1}|{A:1}"
    assert fmt_sprint(MISSING) == "<no value>"


def test_table_header_ignores_its_error_and_keeps_what_it_wrote():
    """docker image ls --format 'table {{.Repository}}\\t{{json .}}': the header's json gets
    the header map and fails; the CLI prints what came before."""
    row = context("formatter.imageContext", {"Repository": "busybox"})
    out = write("table {{.Repository}}\\t{{json .}}", [row],
                header_context({"Repository": "REPOSITORY"}))
    assert out == 'REPOSITORY   \nbusybox      {"Repository":"busybox"}\n'


def test_template_errors_are_worded_as_the_cli():
    with pytest.raises(FormatError, match="^template parsing error: template: :1: unclosed action$"):
        write("{{.ID", [], header_context({}))


def test_format_text_as_docker_prefilters_it():
    assert template_text("table {{.A}}\\t{{.B}}\\n") == "{{.A}}\t{{.B}}\n"
    assert template_text("json") == "{{json .}}"
    assert template_text("  {{.A}} ") == "{{.A}}"


def test_tabwriter_aligns_column_blocks():
    assert tabwrite("a\tb\tc\nlonger-cell\tb\tc\nx\n1\t2\n") == (
        "a             b         c\nlonger-cell   b         c\nx\n1         2\n")
    assert tabwrite("") == ""


def test_inspect_runs_typed_then_raw():
    obj = {"Id": "sha256:1", "RepoTags": ["a:1"], "RepoDigests": [], "Config": {
        "Env": ["X=1"], "Cmd": None, "Labels": {"b": "2", "a": "1"}, "Hostname": "h"},
        "Size": 5, "RootFS": {"Type": "layers", "Layers": ["sha256:2"]},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}}
    # .ID is the typed struct's field, .Id only the raw JSON's key.
    assert inspect_format("{{.ID}} {{.Size}}|{{.Id}} {{.Size}}", [obj])[2] == 1
    assert inspect_format("{{.ID}} {{.Size}}", [obj]) == ("sha256:1 5\n", [], 0)
    assert inspect_format("{{.Id}} {{.Size}}", [obj]) == ("sha256:1 5\n", [], 0)
    out, errors, code = inspect_format("{{json .Config}} {{.Config}} {{.Metadata}}", [obj])
    assert out == ('{"Env":["X=1"],"Labels":{"a":"1","b":"2"}} '
                   "{{ map[] [X=1] [] [] map[]  map[a:1 b:2]  false} {<nil> [] []}} "
                   "{0001-01-01 00:00:00 +0000 UTC}\n")
    out, errors, code = inspect_format("{{.Foo}}", [obj, RuntimeError("Error response: x")])
    assert (out, code) == ("\n", 1)
    assert errors == ['template parsing error: template: :1:2: executing "" at <.Foo>: '
                      'map has no entry for key "Foo"', "Error response: x"]
    assert inspect_format("{{.Id", [obj]) == (
        "", ["template parsing error: template: :1: unclosed action"], 64)


def test_typed_and_raw_values():
    assert typed(None, "*container.Config") == GoNil("*container.Config")
    assert raw_value({"a": 1.5, "b": [1]}) == {"a": GoNumber("1.5"), "b": [GoNumber("1")]}


@pytest.mark.parametrize("ns,want", [(0, "0s"), (30 * 10**9, "30s"), (90 * 10**9, "1m30s"),
                                     (1_500_000_000, "1.5s"), (5 * 10**8, "500ms"),
                                     (3600 * 10**9, "1h0m0s"), (1500, "1.5µs"), (-2 * 10**9, "-2s")])
def test_duration_string(ns, want):
    assert duration_string(ns) == want


def test_time_string():
    assert go_time_string("0001-01-01T00:00:00Z") == "0001-01-01 00:00:00 +0000 UTC"
    assert go_time_string("2025-03-01T09:15:00.5Z") == "2025-03-01 09:15:00.5 +0000 UTC"
    assert go_time_string("2025-03-01T09:15:00+01:00") == "2025-03-01 09:15:00 +0100 +0100"
