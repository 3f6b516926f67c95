"""``--format``: docker/cli's formatter over Go templates — ``table``, ``json`` and
custom templates, the functions docker/cli adds to text/template, and its tabwriter.

References: docker/cli v28.2.2 templates/templates.go (basicFunctions,
HeaderFunctions), cli/command/formatter/formatter.go (Format, Context.Write),
cli/command/formatter/tabwriter (elastic tabstops), cli/command/inspect/inspector.go.
"""
from __future__ import annotations

import re
from typing import Any, Sequence

import orjson

from ..goapi.template import (GoFunc, GoMap, GoMethod, GoNumber, GoSlice, GoStruct, MISSING,
                              CallError, ExecError, Template, TemplateError)
from ..goapi.json import marshal
from . import FormatError
from .displayutils import cell_width

TABLE = "table"
JSON = "json"


# -- docker/cli templates.basicFunctions -------------------------------------------
def go_json_encode(v: Any) -> str:
    """json.NewEncoder with SetEscapeHTML(false), as the ``json`` function encodes."""
    return _json_text(v, escape_html=False)


def _json_text(v: Any, escape_html: bool) -> str:
    if isinstance(v, GoStruct) and v.json_marshaler and v.json is not None:
        # A MarshalJSON method: json.Marshal inside it escapes HTML; the encoder keeps that.
        return marshal(v.json())
    text = orjson.dumps(_jsonable(v)).decode()
    if _NUMBER in text:
        text = re.sub(r'"\\u0000N([^"\\]*)\\u0000"', r"\1", text)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if escape_html:
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text


# A json.Number stands in the encoded text as this marker, then as its digits.
_NUMBER = "\\u0000N"


def _jsonable(v: Any) -> Any:
    if v is MISSING or v is None:
        return None
    if isinstance(v, GoNumber):
        return f"\0N{v.text}\0"      # written as its literal digits by _json_text
    if isinstance(v, GoStruct):
        if v.json is not None:
            return v.json()
        return {k: _jsonable(x) for k, x in v.fields.items()}
    if isinstance(v, dict):
        return {k: _jsonable(v[k]) for k in sorted(v)}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _split(s: str, sep: str) -> GoSlice:
    if sep == "":
        return GoSlice(list(s))
    return GoSlice(s.split(sep))


def _join(elems: list, sep: str) -> str:
    return sep.join(elems)


def _title(s: str) -> str:
    """strings.Title: upper-case the first letter of each word (words split at separators)."""
    out, prev_sep = [], True
    for ch in s:
        out.append(ch.upper() if prev_sep and ch.isalpha() else ch)
        prev_sep = not (ch.isalnum() or ch == "_") and (ord(ch) < 0x80 or ch.isspace())
    return "".join(out)


def _pad(source: str, prefix: int, suffix: int) -> str:
    if source == "":
        return source
    return " " * max(prefix, 0) + source + " " * max(suffix, 0)


def _truncate(source: str, length: int) -> str:
    data = source.encode()
    if len(data) < length:
        return source
    if length < 0:
        raise CallError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode(errors="replace")


BASIC_FUNCTIONS: dict[str, GoFunc] = {
    "json": GoFunc(go_json_encode, ("any",)),
    "split": GoFunc(_split, ("string", "string")),
    "join": GoFunc(_join, ("[]string", "string")),
    "title": GoFunc(_title, ("string",)),
    "lower": GoFunc(str.lower, ("string",)),
    "upper": GoFunc(str.upper, ("string",)),
    "pad": GoFunc(_pad, ("string", "int", "int")),
    "truncate": GoFunc(_truncate, ("string", "int")),
}


def _same(v: str, *_: Any) -> str:
    return v


# Header rows keep the column names as they are (pad is not replaced: it aligns).
HEADER_FUNCTIONS: dict[str, GoFunc] = {
    "json": GoFunc(_same, ("string",)),
    "split": GoFunc(_same, ("string", "string")),
    "join": GoFunc(_same, ("string", "string")),
    "title": GoFunc(_same, ("string",)),
    "lower": GoFunc(_same, ("string",)),
    "upper": GoFunc(_same, ("string",)),
    "truncate": GoFunc(_same, ("string", "int")),
}


def parse(text: str) -> Template:
    """templates.Parse: raises TemplateError with Go's text."""
    return Template(text, BASIC_FUNCTIONS)


# -- formatter.Format / Context ----------------------------------------------------
def is_table(fmt: str) -> bool:
    return fmt.startswith(TABLE)


def template_text(fmt: str) -> str:
    """Context.preFormat: drop ``table``, ``json`` means ``{{json .}}``, trim spaces,
    and the two-character ``\\t`` and ``\\n`` become a tab and a newline."""
    text = fmt
    if is_table(fmt):
        text = text[len(TABLE):]
    elif fmt == JSON:
        text = "{{json .}}"
    text = text.strip(" ")
    return text.replace("\\t", "\t").replace("\\n", "\n")


def header_context(columns: dict[str, str]) -> GoMap:
    """formatter.SubHeaderContext: column names by field, with its Label method."""
    def label(name: str) -> str:
        last = name.split(".")[-1]
        return last.replace("-", " ").replace("_", " ")
    return GoMap(columns, type_name="formatter.SubHeaderContext",
                 methods={"Label": GoMethod(label, ("string",))})


def write(fmt: str, rows: Sequence[Any], header: GoMap) -> str:
    """formatter.Context.Write: each row through the template, then the header and a
    tabwriter for tables. Raises FormatError as the CLI words it."""
    try:
        tmpl = parse(template_text(fmt))
    except TemplateError as exc:
        raise FormatError(f"template parsing error: {exc}") from None
    body = []
    for row in rows:
        try:
            body.append(tmpl.execute(row) + "\n")
        except ExecError as exc:
            raise FormatError(f"template parsing error: {exc}") from None
    if not is_table(fmt):
        return "".join(body)
    try:
        head = tmpl.with_funcs(HEADER_FUNCTIONS).execute(header)
    except ExecError as exc:
        # The CLI ignores the header's error and prints what was written before it.
        head = exc.partial  # type: ignore[attr-defined]
    return tabwrite(head + "\n" + "".join(body))


def context(type_name: str, values: dict[str, Any],
            extra: dict[str, GoMethod] | None = None) -> GoStruct:
    """A formatter context (``*formatter.imageContext``): getters that return the
    precomputed ``values``, and a MarshalJSON that writes them all."""
    table = {name: GoMethod(lambda v=value: v) for name, value in values.items()}
    table["FullHeader"] = GoMethod(lambda: MISSING)
    table.update(extra or {})
    return GoStruct(type_name, methods=table, pointer=True, json=lambda: values,
                    json_marshaler=True)


# -- tabwriter ---------------------------------------------------------------------
MIN_WIDTH = 10
PADDING = 3


def tabwrite(text: str, minwidth: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """tabwriter.NewWriter(out, 10, 1, 3, ' ', 0) then Flush: tab-terminated cells are
    aligned in column blocks (consecutive lines that have that column); the last cell
    of a line is not part of a column."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []
    _format(lines, 0, len(lines), [], out, minwidth, padding)
    return "\n".join(out)


def _format(lines: list[list[str]], line0: int, line1: int, widths: list[int],
            out: list[str], minwidth: int, padding: int) -> None:
    column = len(widths)
    this = line0
    while this < line1:
        if column >= len(lines[this]) - 1:
            this += 1
            continue
        _write_lines(lines, line0, this, widths, out)
        line0 = this
        width = minwidth
        while this < line1 and column < len(lines[this]) - 1:
            width = max(width, cell_width(lines[this][column]) + padding)
            this += 1
        _format(lines, line0, this, widths + [width], out, minwidth, padding)
        line0 = this
    _write_lines(lines, line0, line1, widths, out)


def _write_lines(lines: list[list[str]], line0: int, line1: int, widths: list[int],
                 out: list[str]) -> None:
    for cells in lines[line0:line1]:
        last = len(cells) - 1
        out.append("".join(cell + " " * (widths[j] - cell_width(cell)) if j < last else cell
                           for j, cell in enumerate(cells)))
