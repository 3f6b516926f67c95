"""Go's text/template over Python values: lexer, parser, executor, builtins, and the
fmt printing the executor needs, with Go's error texts.

Values stand for Go values as follows: ``str`` string, ``bool`` bool, ``int`` int,
``float`` float64, ``None`` a nil interface, ``list`` []interface{}, ``dict``
map[string]interface{} (what encoding/json decodes into), :class:`GoSlice` and
:class:`GoMap` slices and maps with a named element type, :class:`GoStruct` a
struct (or a pointer to one), :class:`GoNil` a typed nil pointer, :class:`GoNumber`
a json.Number, and :data:`MISSING` the invalid reflect.Value (a missing map key),
which prints as ``<no value>``. A struct's methods are :class:`GoMethod` values in
its ``methods`` table; functions are :class:`GoFunc`.

References: Go src/text/template/{exec.go,funcs.go,option.go},
src/text/template/parse/{lex.go,parse.go,node.go}, src/fmt/print.go.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .strconv import quote as _quote

__all__ = ["GoFunc", "GoMap", "GoMethod", "GoNil", "GoNumber", "GoSlice", "GoStruct",
           "MISSING", "ExecError", "ParseError", "Template", "TemplateError", "fmt_sprint",
           "fmt_sprintf", "go_type", "parse"]


class TemplateError(Exception):
    """str() is Go's error text, starting with ``template: ``."""


class ParseError(TemplateError):
    pass


class ExecError(TemplateError):
    pass


# -- values ------------------------------------------------------------------------
class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class GoSlice(list):
    """A slice whose element type is known (``[]string``, ``[]int``)."""

    def __init__(self, items=(), elem: str = "string"):
        super().__init__(items)
        self.elem = elem


class GoMap(dict):
    """A map[string]ELEM whose element type is known; ``type_name`` and ``methods``
    for a named map type (docker/cli's ``formatter.SubHeaderContext``)."""

    def __init__(self, items=(), elem: str = "string", type_name: str | None = None,
                 methods: Mapping[str, "GoMethod"] | None = None):
        super().__init__(items)
        self.elem = elem
        self.type_name = type_name
        self.methods = dict(methods or {})


@dataclass(frozen=True)
class GoNumber:
    """json.Number: JSON numbers as decoded with UseNumber, printed as written."""
    text: str


@dataclass(frozen=True)
class GoNil:
    """A nil pointer of a named type (``*container.HealthConfig``)."""
    type_name: str


@dataclass(frozen=True)
class GoMethod:
    fn: Callable[..., Any]
    params: tuple[str, ...] = ()


class GoStruct:
    """A struct value; ``pointer`` makes it a pointer to one (``*formatter.imageContext``).

    ``fields`` keeps Go's field order; ``methods`` are looked up before fields, as
    text/template does. ``json`` returns what encoding/json would write, when the
    type has its own shape (a MarshalJSON method, omitempty fields, renamed keys).
    """

    def __init__(self, type_name: str, fields: Mapping[str, Any] | None = None, *,
                 methods: Mapping[str, GoMethod] | None = None, pointer: bool = False,
                 json: Callable[[], Any] | None = None, json_marshaler: bool = False,
                 embedded: tuple[str, ...] = ()):
        self.type_name = type_name
        self.fields = dict(fields or {})
        self.embedded = embedded
        self.methods = dict(methods or {})
        self.pointer = pointer
        self.json = json
        self.json_marshaler = json_marshaler

    @property
    def go_type(self) -> str:
        return ("*" if self.pointer else "") + self.type_name

    def field(self, name: str) -> Any:
        """A field, or one promoted from an embedded struct; MISSING if none."""
        if name in self.fields:
            return self.fields[name]
        for inner in self.embedded:
            found = self.fields[inner].field(name)
            if found is not MISSING:
                return found
        return MISSING


@dataclass(frozen=True)
class GoFunc:
    """A template function: Go parameter types (``string``, ``int``, ``bool``,
    ``[]string``, ``any``, ``value`` for reflect.Value), an optional variadic
    element type, and whether Go's function also returns an error."""
    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: str | None = None
    name_for_errors: str = ""


def go_type(v: Any) -> str:
    """The Go type name of a value, as reflect prints it in errors."""
    if v is None:
        return "interface {}"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoNumber):
        return "json.Number"
    if isinstance(v, GoNil):
        return v.type_name
    if isinstance(v, GoStruct):
        return v.go_type
    if isinstance(v, GoSlice):
        return "[]" + v.elem
    if isinstance(v, GoMap):
        return v.type_name or "map[string]" + v.elem
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return type(v).__name__


def _assignable(v: Any, typ: str) -> bool:
    if typ in ("any", "value"):
        return True
    return go_type(v) == typ


# -- fmt ---------------------------------------------------------------------------
def _fmt_float(f: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat(f, 'g', -1, 64) as %v prints float64."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    if verb == "f":
        return "%.*f" % (6 if prec < 0 else prec, f)
    if verb in ("e", "E"):
        s = "%.*e" % (6 if prec < 0 else prec, f)
        return s.upper() if verb == "E" else s
    if prec >= 0:
        s = "%.*g" % (max(prec, 1), f)
    else:
        s = repr(f)
        mant, _, exp = s.partition("e")
        digits = mant.replace("-", "").replace(".", "").strip("0") or "0"
        e10 = math.floor(math.log10(abs(f))) if f else 0
        # strconv 'g' with the shortest precision: %e when the exponent is < -4 or >= 6.
        if f and (e10 < -4 or e10 >= 6):
            s = "%.*e" % (max(len(digits) - 1, 0), f)
        else:
            s = ("%.*f" % (max(len(digits) - 1 - e10, 0), f)) if f else "0"
            if "." in s:
                s = s.rstrip("0").rstrip(".")
        return _go_exp(s)
    return _go_exp(s)


def _go_exp(s: str) -> str:
    """Go writes exponents with at least two digits: 1e+06, 1e-07."""
    mant, e, exp = s.partition("e")
    if not e:
        return s
    sign, digits = exp[0], exp[1:].lstrip("0") or "0"
    return f"{mant}e{sign}{digits.zfill(2)}"


def fmt_value(v: Any, depth: int = 0, plus: bool = False) -> str:
    """fmt's %v of one operand (``depth`` > 0 inside a composite)."""
    if v is MISSING:
        return "<no value>" if depth == 0 else "<invalid reflect.Value>"
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _fmt_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, GoNumber):
        return v.text
    if isinstance(v, GoNil):
        return "<nil>"
    if isinstance(v, GoStruct):
        stringer = v.methods.get("String")
        if stringer is not None and not stringer.params:
            return str(stringer.fn())
        if v.pointer and depth > 0:
            # A pointer inside a composite prints as its address, which no analysis
            # can know; Go's own output varies from run to run there.
            return "0xc000010000"
        inner = " ".join((f"{k}:" if plus else "") + fmt_value(x, depth + 1, plus)
                         for k, x in v.fields.items())
        return "{" + inner + "}"
    if isinstance(v, dict):
        items = " ".join(f"{fmt_value(k, depth + 1)}:{fmt_value(v[k], depth + 1, plus)}"
                         for k in sorted(v))
        return "map[" + items + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(fmt_value(x, depth + 1, plus) for x in v) + "]"
    return str(v)


def fmt_sprint(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out = []
    prev_string = True
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(fmt_value(a))
        prev_string = is_string
    return "".join(out)


def fmt_sprintln(*args: Any) -> str:
    return " ".join(fmt_value(a) for a in args) + "\n"


def fmt_sprintf(fmt: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use: %v %+v %s %q %d %x %X %o %b %c %t %f
    %e %g %T %%, with flags, width and precision; Go's %!verb(type=value) otherwise."""
    out: list[str] = []
    i, n, argi = 0, len(fmt), 0
    while i < n:
        ch = fmt[i]
        if ch != "%":
            j = fmt.find("%", i)
            j = n if j == -1 else j
            out.append(fmt[i:j])
            i = j
            continue
        i += 1
        flags = ""
        while i < n and fmt[i] in "+-# 0":
            flags += fmt[i]
            i += 1
        width = ""
        while i < n and fmt[i].isdigit():
            width += fmt[i]
            i += 1
        prec = None
        if i < n and fmt[i] == ".":
            i += 1
            p = ""
            while i < n and fmt[i].isdigit():
                p += fmt[i]
                i += 1
            prec = int(p or 0)
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_pad(_format_one(verb, flags, prec, arg), width, flags))
    if argi < len(args):
        extra = ", ".join(f"{go_type(a)}={fmt_value(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(s: str, width: str, flags: str) -> str:
    if not width:
        return s
    w = int(width)
    if len(s) >= w:
        return s
    if "-" in flags:
        return s + " " * (w - len(s))
    if "0" in flags and s[:1] in "-+" and s[1:2].isdigit():
        return s[0] + "0" * (w - len(s)) + s[1:]
    if "0" in flags and s[:1].isdigit():
        return "0" * (w - len(s)) + s
    return " " * (w - len(s)) + s


def _bad_verb(verb: str, arg: Any) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={fmt_value(arg)})"


def _format_one(verb: str, flags: str, prec: int | None, arg: Any) -> str:
    if verb == "T":
        return "<nil>" if arg is None else go_type(arg)
    if verb == "v":
        if isinstance(arg, float) and prec is not None:
            return _fmt_float(arg, "g", prec)
        return fmt_value(arg, plus="+" in flags) if not isinstance(arg, str) else arg
    if isinstance(arg, bool):
        return ("true" if arg else "false") if verb == "t" else _bad_verb(verb, arg)
    if isinstance(arg, int):
        sign = "+" if "+" in flags and arg >= 0 else ""
        if verb == "d":
            return sign + str(arg)
        if verb in "xXob":
            base = {"x": "x", "X": "X", "o": "o", "b": "b"}[verb]
            digits = format(abs(arg), base)
            prefix = ("0x" if verb == "x" else "0X" if verb == "X" else "0" if verb == "o"
                      else "") if "#" in flags else ""
            return ("-" if arg < 0 else sign) + prefix + digits
        if verb == "c":
            return chr(arg)
        if verb == "q":
            return "'" + chr(arg) + "'"
        if verb in "feEgG":
            return _fmt_float(float(arg), verb.lower(), -1 if prec is None else prec) \
                if verb in "fe" else _bad_verb(verb, arg)
        return _bad_verb(verb, arg)
    if isinstance(arg, float):
        if verb in "feEgG":
            s = _fmt_float(arg, verb if verb != "G" else "g", -1 if prec is None else prec)
            return ("+" if "+" in flags and arg >= 0 else "") + s
        return _bad_verb(verb, arg)
    if isinstance(arg, str) or isinstance(arg, GoNumber):
        s = arg if isinstance(arg, str) else arg.text
        if verb == "s":
            return s if prec is None else s[:prec]
        if verb == "q":
            return _quote(s if prec is None else s[:prec])
        if verb in "xX":
            h = s.encode().hex()
            return h.upper() if verb == "X" else h
        if isinstance(arg, GoNumber) and verb == "d":
            return _bad_verb(verb, arg)
        return _bad_verb(verb, arg)
    if verb == "s" and isinstance(arg, (list, tuple)):
        return "[" + " ".join(_format_one("s", flags, prec, x) for x in arg) + "]"
    if verb == "s" or verb == "d":
        if isinstance(arg, (GoStruct, dict, list, tuple)) or arg is MISSING:
            return fmt_value(arg)
    if arg is None:
        return f"%!{verb}(<nil>)"
    return _bad_verb(verb, arg)


# -- lexer -------------------------------------------------------------------------
# Item kinds, after parse/lex.go.
ERROR, BOOL, CHAR, CHARCONST, COMPLEX, ASSIGN, DECLARE, EOF, FIELD, IDENT, LDELIM, \
    LPAREN, NUMBER, PIPE, RAWSTRING, RDELIM, RPAREN, SPACE, STRING, TEXT, VARIABLE, \
    KEYWORD, DOT, NIL = range(24)
KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
            "template", "with"}


@dataclass
class Item:
    kind: int
    pos: int
    val: str
    line: int


def _is_space(c: str) -> bool:
    return c in " \t\r\n"


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdigit()


class _Lexer:
    """parse/lex.go: the whole input lexed into a list of items at once."""

    def __init__(self, text: str):
        self.text = text
        self.items: list[Item] = []
        self.pos = 0
        self.start = 0
        self.line = 1
        self.start_line = 1
        self.paren_depth = 0
        self._run()

    def emit(self, kind: int, val: str | None = None) -> None:
        v = self.text[self.start:self.pos] if val is None else val
        self.items.append(Item(kind, self.start, v, self.start_line))
        self.start = self.pos
        self.start_line = self.line

    def error(self, msg: str) -> None:
        self.items.append(Item(ERROR, self.start, msg, self.start_line))
        self.items.append(Item(EOF, self.pos, "", self.line))
        raise _LexDone

    def ignore(self) -> None:
        self.line += self.text.count("\n", self.start, self.pos)
        self.start = self.pos
        self.start_line = self.line

    def peek(self, k: int = 0) -> str:
        p = self.pos + k
        return self.text[p] if p < len(self.text) else ""

    def _run(self) -> None:
        try:
            while True:
                if not self._lex_text():
                    break
                self._lex_action()
        except _LexDone:
            pass

    def _lex_text(self) -> bool:
        """Text up to the next "{{" (trimmed before "{{- "); False at EOF."""
        i = self.text.find("{{", self.pos)
        if i == -1:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.line += self.text.count("\n", self.start, self.pos)
                self.emit(TEXT)
            self.items.append(Item(EOF, self.pos, "", self.line))
            return False
        trim = self.text.startswith("{{- ", i) or self.text.startswith("{{-\t", i) or \
            self.text.startswith("{{-\r", i) or self.text.startswith("{{-\n", i)
        self.pos = i
        end = i
        if trim:
            while end > self.start and _is_space(self.text[end - 1]):
                end -= 1
        if end > self.start:
            self.line += self.text.count("\n", self.start, i)
            self.items.append(Item(TEXT, self.start, self.text[self.start:end], self.start_line))
            self.start_line = self.line
        self.start = i
        return True

    def _at_right_delim(self) -> tuple[bool, bool]:
        t, p = self.text, self.pos
        if t.startswith("}}", p):
            return True, False
        if p + 2 < len(t) + 1 and t[p:p + 1] in (" ", "\t", "\r", "\n") and \
                t.startswith("-}}", p + 1):
            return True, True
        return False, False

    def _lex_action(self) -> None:
        trim = self.text.startswith("{{-", self.pos) and _is_space(self.peek(3))
        self.pos += 2
        if self.text.startswith("/*", self.pos + (2 if trim else 0)):
            if trim:
                self.pos += 2
            self._lex_comment(trim)
            return
        self.emit(LDELIM)
        if trim:
            self.pos += 2
            self.ignore()
        self.paren_depth = 0
        while True:
            at, trim_right = self._at_right_delim()
            if at and self.paren_depth > 0:
                self.error("unclosed left paren")
            if at:
                if trim_right:
                    self.pos += 1
                    self.ignore()
                    self.pos += 3
                    self.emit(RDELIM, "}}")
                    while self.pos < len(self.text) and _is_space(self.text[self.pos]):
                        self.pos += 1
                    self.ignore()
                else:
                    self.pos += 2
                    self.emit(RDELIM)
                return
            c = self.peek()
            if c == "":
                self.error("unclosed action")
            if _is_space(c):
                # A space before "-}}" belongs to the delimiter.
                while _is_space(self.peek()) and not self._at_right_delim()[1]:
                    if self.peek() == "\n":
                        self.line += 1
                    self.pos += 1
                if self._at_right_delim()[1] and self.pos == self.start:
                    continue
                self.emit(SPACE)
                continue
            self.pos += 1
            if c == "=":
                self.emit(ASSIGN)
            elif c == ":":
                if self.peek() != "=":
                    self.error("expected :=")
                self.pos += 1
                self.emit(DECLARE)
            elif c == "|":
                self.emit(PIPE)
            elif c == '"':
                self._lex_quote()
            elif c == "`":
                j = self.text.find("`", self.pos)
                if j == -1:
                    self.error("unterminated raw quoted string")
                self.line += self.text.count("\n", self.pos, j)
                self.pos = j + 1
                self.emit(RAWSTRING)
            elif c == "$":
                self._lex_field_or_variable(VARIABLE)
            elif c == "'":
                self._lex_char()
            elif c == ".":
                if self.peek().isdigit():
                    self.pos -= 1
                    self._lex_number()
                elif self.peek() and _is_alnum(self.peek()):
                    self._lex_field_or_variable(FIELD)
                else:
                    self.emit(DOT)
            elif c in "+-" or c.isdigit():
                self.pos -= 1
                self._lex_number()
            elif _is_alnum(c):
                while self.peek() and _is_alnum(self.peek()):
                    self.pos += 1
                word = self.text[self.start:self.pos]
                if not self._at_terminator():
                    self.error(f"bad character {_rune(self.peek())}")
                if word in KEYWORDS:
                    self.emit(NIL if word == "nil" else KEYWORD)
                elif word in ("true", "false"):
                    self.emit(BOOL)
                else:
                    self.emit(IDENT)
            elif c == "(":
                self.paren_depth += 1
                self.emit(LPAREN)
            elif c == ")":
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    self.error("unexpected right paren")
                self.emit(RPAREN)
            elif ord(c) <= 0x7F and c.isprintable():
                self.emit(CHAR)
            else:
                self.error(f"unrecognized character in action: {_rune(c)}")

    def _lex_comment(self, trim_left: bool) -> None:
        self.pos += 2
        j = self.text.find("*/", self.pos)
        if j == -1:
            self.error("unclosed comment")
        self.pos = j + 2
        at, trim_right = self._at_right_delim()
        if not at:
            self.error("comment ends before closing delimiter")
        self.pos += 3 if trim_right else 2
        if trim_right:
            while self.pos < len(self.text) and _is_space(self.text[self.pos]):
                self.pos += 1
        self.ignore()

    def _at_terminator(self) -> bool:
        c = self.peek()
        if c == "" or _is_space(c) or c in ".,|:)(":
            return True
        return self.text.startswith("}}", self.pos)

    def _lex_field_or_variable(self, kind: int) -> None:
        if self._at_terminator():
            if kind == VARIABLE:
                self.emit(VARIABLE)
            else:
                self.emit(DOT)
            return
        while self.peek() and _is_alnum(self.peek()):
            self.pos += 1
        if not self._at_terminator():
            self.error(f"bad character {_rune(self.peek())}")
        self.emit(kind)

    def _lex_quote(self) -> None:
        while True:
            c = self.peek()
            if c == "\\":
                self.pos += 1
                if self.peek() in ("", "\n"):
                    self.error("unterminated quoted string")
            elif c in ("", "\n"):
                self.error("unterminated quoted string")
            elif c == '"':
                self.pos += 1
                break
            self.pos += 1
        self.emit(STRING)

    def _lex_char(self) -> None:
        while True:
            c = self.peek()
            if c == "\\":
                self.pos += 1
                if self.peek() in ("", "\n"):
                    self.error("unterminated character constant")
            elif c in ("", "\n"):
                self.error("unterminated character constant")
            elif c == "'":
                self.pos += 1
                break
            self.pos += 1
        self.emit(CHARCONST)

    def _lex_number(self) -> None:
        start = self.pos
        if self.peek() in "+-":
            self.pos += 1
        digits = "0123456789_"
        if self.peek() == "0" and self.peek(1) in ("x", "X", "o", "O", "b", "B"):
            self.pos += 2
            digits = {"x": "0123456789abcdefABCDEF_", "o": "01234567_",
                      "b": "01_"}[self.text[self.pos - 1].lower()]
        while self.peek() and self.peek() in digits:
            self.pos += 1
        if self.peek() == ".":
            self.pos += 1
            while self.peek() and self.peek() in digits:
                self.pos += 1
        if self.peek() and self.peek() in ("eEpP" if "a" in digits else "eE"):
            self.pos += 1
            if self.peek() in ("+", "-"):
                self.pos += 1
            while self.peek().isdigit() or self.peek() == "_":
                self.pos += 1
        if self.peek() == "i":
            self.pos += 1
        if self.peek() and _is_alnum(self.peek()):
            self.pos += 1
            self.error(f"bad number syntax: {_quote(self.text[start:self.pos])}")
        self.emit(NUMBER)


class _LexDone(Exception):
    pass


def _rune(c: str) -> str:
    """fmt's %#U of a rune: U+0021 '!'."""
    if not c:
        return "U+FFFD"
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


# -- parse tree ----------------------------------------------------------------------
@dataclass
class Node:
    pos: int

    def __str__(self) -> str:  # pragma: no cover - every node overrides it
        raise NotImplementedError


@dataclass
class TextNode(Node):
    text: str

    def __str__(self) -> str:
        return _quote(self.text)


@dataclass
class FieldNode(Node):
    ident: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.ident)


@dataclass
class VariableNode(Node):
    ident: list[str]

    def __str__(self) -> str:
        return ".".join(self.ident)


@dataclass
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass
class NumberNode(Node):
    text: str
    is_int: bool = False
    is_float: bool = False
    int_value: int = 0
    float_value: float = 0.0

    def __str__(self) -> str:
        return self.text


@dataclass
class StringNode(Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class ChainNode(Node):
    node: Node
    fields: list[str]

    def __str__(self) -> str:
        inner = str(self.node)
        if isinstance(self.node, PipeNode):
            inner = "(" + inner + ")"
        return inner + "".join("." + f for f in self.fields)


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        out = []
        for a in self.args:
            s = str(a)
            out.append("(" + s + ")" if isinstance(a, PipeNode) else s)
        return " ".join(out)


@dataclass
class PipeNode(Node):
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)
    is_assign: bool = False

    def __str__(self) -> str:
        s = ""
        if self.decl:
            s = ", ".join(str(d) for d in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


@dataclass
class ActionNode(Node):
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)

    def __str__(self) -> str:
        return "".join(str(n) for n in self.nodes)


@dataclass
class BranchNode(Node):
    kind: str                      # "if", "range", "with"
    pipe: PipeNode
    list: ListNode
    else_list: ListNode | None

    def __str__(self) -> str:
        s = "{{" + self.kind + " " + str(self.pipe) + "}}" + str(self.list)
        if self.else_list is not None:
            s += "{{else}}" + str(self.else_list)
        return s + "{{end}}"


@dataclass
class BreakNode(Node):
    def __str__(self) -> str:
        return "{{break}}"


@dataclass
class ContinueNode(Node):
    def __str__(self) -> str:
        return "{{continue}}"


@dataclass
class TemplateNode(Node):
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        if self.pipe is None:
            return "{{template " + _quote(self.name) + "}}"
        return "{{template " + _quote(self.name) + " " + str(self.pipe) + "}}"


@dataclass
class _End(Node):
    def __str__(self) -> str:
        return "{{end}}"


@dataclass
class _Else(Node):
    def __str__(self) -> str:
        return "{{else}}"


# -- parser ------------------------------------------------------------------------
class _Parser:
    """parse/parse.go: recursive descent with Go's error texts."""

    def __init__(self, text: str, funcs: Mapping[str, Any], name: str = ""):
        self.items = _Lexer(text).items
        self.i = 0
        self.funcs = funcs
        self.name = name
        self.vars = ["$"]
        self.range_depth = 0
        self.templates: dict[str, ListNode] = {}
        self.last = self.items[0]

    def next(self) -> Item:
        it = self.items[self.i]
        self.last = it
        if it.kind != EOF:
            self.i += 1
        return it

    def backup(self, n: int = 1) -> None:
        self.i -= n

    def peek(self) -> Item:
        return self.items[self.i]

    def next_non_space(self) -> Item:
        while True:
            it = self.next()
            if it.kind != SPACE:
                return it

    def peek_non_space(self) -> Item:
        j = self.i
        while self.items[j].kind == SPACE:
            j += 1
        return self.items[j]

    def errorf(self, msg: str) -> None:
        raise ParseError(f"template: {self.name}:{self.last.line}: {msg}")

    def unexpected(self, it: Item, context: str) -> None:
        if it.kind == ERROR:
            self.errorf(it.val)
        self.errorf(f"unexpected {_item_str(it)} in {context}")

    def expect(self, kind: int, context: str) -> Item:
        it = self.next_non_space()
        if it.kind != kind:
            self.unexpected(it, context)
        return it

    def parse(self) -> ListNode:
        root = ListNode(self.peek().pos)
        while self.peek().kind != EOF:
            if self.peek().kind == LDELIM:
                save = self.i
                self.next()
                it = self.next_non_space()
                if it.kind == KEYWORD and it.val == "define":
                    self._definition()
                    continue
                self.i = save
            n = self._text_or_action()
            if isinstance(n, (_End, _Else)):
                self.errorf(f"unexpected {n}")
            root.nodes.append(n)
        return root

    def _definition(self) -> None:
        context = "define clause"
        it = self.next_non_space()
        if it.kind not in (STRING, RAWSTRING):
            self.unexpected(it, context)
        name = _unquote(it.val, self)
        self.expect(RDELIM, context)
        body, end = self._item_list()
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.templates[name] = body

    def _item_list(self) -> tuple[ListNode, Node]:
        lst = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != EOF:
            n = self._text_or_action()
            if isinstance(n, (_End, _Else)):
                return lst, n
            lst.nodes.append(n)
        self.errorf("unexpected EOF")
        raise AssertionError

    def _text_or_action(self) -> Node:
        it = self.next_non_space()
        if it.kind == TEXT:
            return TextNode(it.pos, it.val)
        if it.kind == LDELIM:
            return self._action()
        self.unexpected(it, "input")
        raise AssertionError

    def _action(self) -> Node:
        it = self.next_non_space()
        if it.kind == KEYWORD:
            kw = it.val
            if kw == "else":
                return self._else()
            if kw == "end":
                return _End(self.expect(RDELIM, "end").pos)
            if kw in ("if", "range", "with"):
                return self._control(kw)
            if kw == "template":
                return self._template()
            if kw == "block":
                self.errorf("block is not supported")
            if kw in ("break", "continue"):
                if self.range_depth == 0:
                    self.errorf(f"{{{{{kw}}}}} outside {{{{range}}}}")
                self.expect(RDELIM, kw)
                return BreakNode(it.pos) if kw == "break" else ContinueNode(it.pos)
        self.backup()
        tok = self.peek()
        return ActionNode(tok.pos, self._pipeline("command", RDELIM))

    def _else(self) -> Node:
        p = self.peek_non_space()
        if p.kind == KEYWORD and p.val in ("if", "with"):
            return _Else(p.pos)
        it = self.expect(RDELIM, "else")
        return _Else(it.pos)

    def _control(self, kind: str) -> Node:
        mark = len(self.vars)
        pipe = self._pipeline(kind, RDELIM)
        if kind == "range":
            self.range_depth += 1
        body, nxt = self._item_list()
        if kind == "range":
            self.range_depth -= 1
        else_list = None
        if isinstance(nxt, _Else):
            p = self.peek_non_space()
            if kind in ("if", "with") and p.kind == KEYWORD and p.val == kind:
                self.next_non_space()
                else_list = ListNode(nxt.pos, [self._control(kind)])
            else:
                else_list, nxt = self._item_list()
                if not isinstance(nxt, _End):
                    self.errorf(f"expected end; found {nxt}")
        del self.vars[mark:]
        return BranchNode(pipe.pos, kind, pipe, body, else_list)

    def _template(self) -> Node:
        context = "template clause"
        it = self.next_non_space()
        if it.kind not in (STRING, RAWSTRING):
            self.unexpected(it, context)
        name = _unquote(it.val, self)
        pipe = None
        if self.next_non_space().kind != RDELIM:
            self.backup()
            pipe = self._pipeline(context, RDELIM)
        return TemplateNode(it.pos, name, pipe)

    def _pipeline(self, context: str, end: int) -> PipeNode:
        tok = self.peek_non_space()
        pipe = PipeNode(tok.pos)
        while True:
            v = self.peek_non_space()
            if v.kind != VARIABLE:
                break
            save = self.i
            self.next_non_space()
            nxt = self.peek_non_space()
            if nxt.kind in (ASSIGN, DECLARE):
                pipe.is_assign = nxt.kind == ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                break
            if nxt.kind == CHAR and nxt.val == ",":
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in (VARIABLE, RDELIM, RPAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            self.i = save
            break
        while True:
            it = self.next_non_space()
            if it.kind in (RDELIM, RPAREN):
                self._check_pipeline(pipe, context)
                if it.kind == RPAREN:
                    self.backup()
                return pipe
            if it.kind in (BOOL, CHARCONST, COMPLEX, DOT, FIELD, IDENT, NUMBER, NIL,
                           RAWSTRING, STRING, VARIABLE, LPAREN):
                self.backup()
                pipe.cmds.append(self._command())
            else:
                self.unexpected(it, context)

    def _check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if isinstance(c.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def _command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self._operand()
            if operand is not None:
                cmd.args.append(operand)
            it = self.next()
            if it.kind == SPACE:
                continue
            if it.kind == ERROR:
                self.errorf(it.val)
            if it.kind in (RDELIM, RPAREN):
                self.backup()
            elif it.kind != PIPE:
                self.errorf(f"unexpected {_item_str(it)} in operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def _operand(self) -> Node | None:
        node = self._term()
        if node is None:
            return None
        if self.peek().kind == FIELD:
            pos = self.peek().pos
            fields = []
            while self.peek().kind == FIELD:
                fields.append(self.next().val[1:])
            # Go gives the joined node the position of the first added field.
            if isinstance(node, FieldNode):
                return FieldNode(pos, node.ident + fields)
            if isinstance(node, VariableNode):
                return VariableNode(pos, node.ident + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                self.errorf(f"unexpected . after term {_quote(str(node))}")
            return ChainNode(pos, node, fields)
        return node

    def _term(self) -> Node | None:
        it = self.next_non_space()
        k = it.kind
        if k == ERROR:
            self.errorf(it.val)
        if k == IDENT:
            if it.val not in self.funcs:
                self.errorf(f'function "{it.val}" not defined')
            return IdentifierNode(it.pos, it.val)
        if k == DOT:
            return DotNode(it.pos)
        if k == NIL:
            return NilNode(it.pos)
        if k == VARIABLE:
            parts = it.val.split(".")
            if parts[0] not in self.vars:
                self.errorf(f'undefined variable "{parts[0]}"')
            return VariableNode(it.pos, parts)
        if k == FIELD:
            return FieldNode(it.pos, [it.val[1:]])
        if k == BOOL:
            return BoolNode(it.pos, it.val == "true")
        if k in (CHARCONST, NUMBER):
            return self._number(it)
        if k == LPAREN:
            pipe = self._pipeline("parenthesized pipeline", RPAREN)
            tok = self.next()
            if tok.kind != RPAREN:
                self.errorf(f"unclosed right paren: unexpected {_item_str(tok)}")
            return pipe
        if k in (STRING, RAWSTRING):
            return StringNode(it.pos, it.val, _unquote(it.val, self))
        self.backup()
        return None

    def _number(self, it: Item) -> NumberNode:
        text = it.val
        if it.kind == CHARCONST:
            ch = _unquote('"' + text[1:-1].replace('"', '\\"') + '"', self) \
                if text[1:2] == "\\" else text[1:-1]
            if len(ch) != 1:
                self.errorf(f"malformed character constant: {text}")
            c = ord(ch)
            return NumberNode(it.pos, text, True, True, c, float(c))
        if text.endswith("i"):
            self.errorf(f"complex numbers are not supported: {text}")
        clean = text.replace("_", "")
        try:
            v = int(clean, 0) if not (clean.lstrip("+-").startswith("0")
                                      and clean.lstrip("+-")[1:2].isdigit()) \
                else int(clean, 8)
            return NumberNode(it.pos, text, True, True, v, float(v))
        except ValueError:
            pass
        try:
            f = float.fromhex(clean) if clean.lower().lstrip("+-").startswith("0x") \
                else float(clean)
        except ValueError:
            self.errorf(f"illegal number syntax: {_quote(text)}")
        node = NumberNode(it.pos, text, False, True, 0, f)
        if f == int(f) and not math.isinf(f):
            node.is_int, node.int_value = True, int(f)
        return node


def _item_str(it: Item) -> str:
    if it.kind == EOF:
        return "EOF"
    if it.kind == ERROR:
        return it.val
    if it.kind in (KEYWORD, NIL):
        return f"<{it.val}>"
    if len(it.val) > 10:
        return _quote(it.val[:10]) + "..."
    return _quote(it.val)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"'}


def _unquote(q: str, parser: _Parser) -> str:
    """strconv.Unquote of a "..." or `...` literal."""
    if q.startswith("`"):
        return q[1:-1]
    body, out, i = q[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
            i += 2
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            hexd = body[i + 2:i + 2 + n]
            if len(hexd) != n or any(h not in "0123456789abcdefABCDEF" for h in hexd):
                parser.errorf("invalid syntax")
            out.append(chr(int(hexd, 16)))
            i += 2 + n
        elif e in "01234567":
            octd = body[i + 1:i + 4]
            if len(octd) != 3 or any(h not in "01234567" for h in octd):
                parser.errorf("invalid syntax")
            out.append(chr(int(octd, 8)))
            i += 4
        else:
            parser.errorf("invalid syntax")
    return "".join(out)


# -- executor ----------------------------------------------------------------------
class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Template:
    """A parsed template; ``execute`` returns the text or raises :class:`ExecError`
    (``partial`` holds what was written before the error, as Go leaves it in the writer)."""

    def __init__(self, text: str, funcs: Mapping[str, GoFunc], name: str = "",
                 missingkey_error: bool = False):
        self.text = text
        self.name = name
        self.funcs = {**BUILTINS, **funcs}
        parser = _Parser(text, self.funcs, name)
        self.root = parser.parse()
        self.templates = parser.templates
        self.missingkey_error = missingkey_error

    def with_funcs(self, funcs: Mapping[str, GoFunc]) -> "Template":
        """The same tree with some functions replaced (Template.Funcs after Parse)."""
        clone = object.__new__(Template)
        clone.__dict__.update(self.__dict__)
        clone.funcs = {**self.funcs, **funcs}
        return clone

    def option_missingkey_error(self) -> "Template":
        clone = self.with_funcs({})
        clone.missingkey_error = True
        return clone

    def execute(self, data: Any) -> str:
        state = _State(self, data)
        try:
            state.walk(data, self.root)
        except ExecError as exc:
            exc.partial = "".join(state.out)  # type: ignore[attr-defined]
            raise
        return "".join(state.out)


def parse(text: str, funcs: Mapping[str, GoFunc], name: str = "") -> Template:
    return Template(text, funcs, name)


class _State:
    def __init__(self, tmpl: Template, data: Any):
        self.tmpl = tmpl
        self.out: list[str] = []
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.node: Node | None = None
        self.depth = 0

    # errors
    def errorf(self, msg: str) -> None:
        name = self.tmpl.name
        if self.node is None:
            raise ExecError(f"template: {name}: {msg}")
        text = self.tmpl.text[:self.node.pos]
        nl = text.rfind("\n")
        col = self.node.pos if nl == -1 else self.node.pos - nl - 1
        line = 1 + text.count("\n")
        raise ExecError(f'template: {name}:{line}:{col}: executing {_quote(name)} at '
                        f'<{self.node}>: {msg}')

    def at(self, node: Node) -> None:
        self.node = node

    # variables
    def var_value(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.errorf(f"undefined variable: {name}")

    # walking
    def walk(self, dot: Any, node: Node) -> None:
        self.at(node)
        if isinstance(node, ActionNode):
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, val)
        elif isinstance(node, TextNode):
            self.out.append(node.text)
        elif isinstance(node, ListNode):
            for n in node.nodes:
                self.walk(dot, n)
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(node, dot)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        elif isinstance(node, TemplateNode):
            body = self.tmpl.templates.get(node.name)
            if body is None:
                self.errorf(f"template {_quote(node.name)} not defined")
            if self.depth >= 10000:
                self.errorf("exceeded maximum template depth (100000)")
            new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe else None
            saved = self.vars
            self.vars = [("$", new_dot)]
            self.depth += 1
            try:
                self.walk(new_dot, body)
            finally:
                self.depth -= 1
                self.vars = saved
        else:
            self.errorf(f"unknown node: {node}")

    def walk_if_or_with(self, node: BranchNode, dot: Any) -> None:
        mark = len(self.vars)
        try:
            val = self.eval_pipeline(dot, node.pipe)
            truth = is_true(val)
            if truth is None:
                self.errorf(f"if/with can't use {fmt_value(val)}")
            if truth:
                self.walk(val if node.kind == "with" else dot, node.list)
            elif node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: BranchNode) -> None:
        self.at(node)
        mark = len(self.vars)
        try:
            val = _indirect(self.eval_pipeline(dot, node.pipe))
            inner_mark = len(self.vars)

            def one(index: Any, elem: Any) -> bool:
                if node.pipe.decl:
                    self.vars[-1] = (self.vars[-1][0], elem)
                if len(node.pipe.decl) > 1:
                    self.vars[-2] = (self.vars[-2][0], index)
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                except _Break:
                    return False
                finally:
                    del self.vars[inner_mark:]
                return True

            if isinstance(val, (list, tuple)) and not isinstance(val, str):
                if val:
                    for i, e in enumerate(val):
                        if not one(i, e):
                            break
                    return
            elif isinstance(val, GoStruct) and "__iter__" in val.methods:
                self.errorf(f"range can't iterate over {fmt_value(val)}")
            elif isinstance(val, dict):
                if val:
                    for k in sorted(val):
                        if not one(k, val[k]):
                            break
                    return
            elif isinstance(val, int) and not isinstance(val, bool):
                if val > 0:
                    for i in range(val):
                        if not one(i, i):
                            break
                    return
            elif val is MISSING or val is None or isinstance(val, GoNil):
                pass
            else:
                self.errorf(f"range can't iterate over {fmt_value(val)}")
            if node.else_list is not None:
                self.walk(dot, node.else_list)
        finally:
            del self.vars[mark:]

    # evaluation
    def eval_pipeline(self, dot: Any, pipe: PipeNode | None) -> Any:
        if pipe is None:
            return MISSING
        self.at(pipe)
        value: Any = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                # A nil interface{} is dug out to the invalid value (prints <no value>).
                value = MISSING
        for v in pipe.decl:
            if pipe.is_assign:
                self.set_var(v.ident[0], value)
            else:
                self.vars.append((v.ident[0], value))
        return value

    def not_a_function(self, args: Sequence[Node], final: Any) -> None:
        if len(args) > 1 or final is not _NO_FINAL:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return self.ideal_constant(first)
        if isinstance(first, StringNode):
            return first.text
        self.errorf(f"can't evaluate command {_quote(str(first))}")

    def ideal_constant(self, n: NumberNode) -> Any:
        self.at(n)
        if not n.is_int or (any(c in n.text for c in ".eEpP")
                            and not n.text.lower().lstrip("+-").startswith("0x")
                            and not n.text.startswith("'")):
            return n.float_value
        if not -(1 << 63) <= n.int_value < (1 << 63):
            self.errorf(f"{n.text} overflows int")
        return n.int_value

    def eval_chain(self, dot: Any, chain: ChainNode, args: Sequence[Node], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        pipe = self.eval_arg(dot, "any", chain.node)
        return self.eval_field_chain(dot, pipe, chain, chain.fields, args, final)

    def eval_variable(self, dot: Any, var: VariableNode, args: Sequence[Node], final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.ident[0])
        if len(var.ident) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.ident[1:], args, final)

    def eval_field_chain(self, dot: Any, receiver: Any, node: Node, ident: Sequence[str],
                         args: Sequence[Node], final: Any) -> Any:
        for name in ident[:-1]:
            receiver = self.eval_field(dot, name, node, (), _NO_FINAL, receiver)
        return self.eval_field(dot, ident[-1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: Node, args: Sequence[Node], final: Any,
                   receiver: Any) -> Any:
        if receiver is MISSING:
            if self.tmpl.missingkey_error:
                self.errorf(f"nil data; no entry for key {_quote(name)}")
            return MISSING
        if receiver is None:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        has_args = len(args) > 1 or final is not _NO_FINAL
        method = getattr(receiver, "methods", {}).get(name)
        if method is not None:
            return self.eval_call(dot, GoFunc(method.fn, method.params), node, name,
                                  args, final)
        if isinstance(receiver, GoStruct):
            value = receiver.field(name)
            if value is not MISSING:
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                return value
        elif isinstance(receiver, GoNil):
            self.errorf(f"nil pointer evaluating {receiver.type_name}.{name}")
        elif isinstance(receiver, dict):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            if self.tmpl.missingkey_error:
                self.errorf(f"map has no entry for key {_quote(name)}")
            return MISSING
        self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")

    def eval_function(self, dot: Any, ident: IdentifierNode, cmd: Node, args: Sequence[Node],
                      final: Any) -> Any:
        self.at(ident)
        fn = self.tmpl.funcs.get(ident.name)
        if fn is None:
            self.errorf(f"{_quote(ident.name)} is not a defined function")
        if fn.fn in (_and, _or):
            return self.eval_and_or(dot, fn.fn is _and, cmd, args, final)
        return self.eval_call(dot, fn, cmd, ident.name, args, final)

    def eval_and_or(self, dot: Any, is_and: bool, cmd: Node, args: Sequence[Node],
                    final: Any) -> Any:
        """and/or evaluate their arguments lazily (Go 1.18)."""
        argv = list(args[1:])
        n = len(argv) + (final is not _NO_FINAL)
        if n < 1:
            self.errorf(f"wrong number of args for {'and' if is_and else 'or'}: "
                        f"want at least 1 got 0")
        value: Any = MISSING
        for a in argv:
            value = self.eval_arg(dot, "value", a)
            truth = is_true(value)
            if truth is None:
                self.at(cmd)
                self.errorf(f"error calling {'and' if is_and else 'or'}: "
                            f"can't give argument to non-function")
            if truth != is_and:
                return value
        if final is not _NO_FINAL:
            value = final
        return value

    def eval_call(self, dot: Any, fn: GoFunc, node: Node, name: str, args: Sequence[Node],
                  final: Any) -> Any:
        argnodes = list(args[1:]) if args else []
        num_in = len(argnodes) + (final is not _NO_FINAL)
        nfixed = len(fn.params)
        if fn.variadic is not None:
            if num_in < nfixed:
                self.errorf(f"wrong number of args for {name}: want at least {nfixed} "
                            f"got {len(argnodes)}")
        elif num_in != nfixed:
            self.errorf(f"wrong number of args for {name}: want {nfixed} got {num_in}")
        argv = []
        i = 0
        while i < nfixed and i < len(argnodes):
            argv.append(self.eval_arg(dot, fn.params[i], argnodes[i]))
            i += 1
        while i < len(argnodes):
            argv.append(self.eval_arg(dot, fn.variadic or "any", argnodes[i]))
            i += 1
        if final is not _NO_FINAL:
            typ = fn.params[num_in - 1] if num_in - 1 < nfixed else (fn.variadic or "any")
            argv.append(self.validate_type(final, typ))
        try:
            return fn.fn(*argv)
        except _CallError as exc:
            self.at(node)
            self.errorf(f"error calling {name}: {exc}")

    def validate_type(self, value: Any, typ: str) -> Any:
        if value is MISSING:
            if typ == "value":
                return MISSING
            if typ in ("any", "[]string") or typ.startswith(("*", "map[", "[]")):
                return None if typ == "any" else GoSlice([], typ[2:]) \
                    if typ.startswith("[]") else None
            self.errorf(f"invalid value; expected {typ}")
        if not _assignable(value, typ):
            self.errorf(f"wrong type for value; expected {typ}; got {go_type(value)}")
        return value

    def eval_arg(self, dot: Any, typ: str, n: Node) -> Any:
        self.at(n)
        if isinstance(n, DotNode):
            return self.validate_type(dot, typ)
        if isinstance(n, NilNode):
            if typ in ("any", "value") or typ.startswith(("[]", "map[", "*")):
                return None
            self.errorf(f"cannot assign nil to {typ}")
        if isinstance(n, FieldNode):
            return self.validate_type(
                self.eval_field_chain(dot, dot, n, n.ident, [n], _NO_FINAL), typ)
        if isinstance(n, VariableNode):
            return self.validate_type(self.eval_variable(dot, n, (), _NO_FINAL), typ)
        if isinstance(n, PipeNode):
            return self.validate_type(self.eval_pipeline(dot, n), typ)
        if isinstance(n, IdentifierNode):
            return self.validate_type(self.eval_function(dot, n, n, (), _NO_FINAL), typ)
        if isinstance(n, ChainNode):
            return self.validate_type(self.eval_chain(dot, n, (), _NO_FINAL), typ)
        if typ == "bool":
            if isinstance(n, BoolNode):
                return n.value
            self.errorf(f"expected bool; found {n}")
        if typ == "int":
            if isinstance(n, NumberNode) and n.is_int:
                return n.int_value
            self.errorf(f"expected integer; found {n}")
        if typ == "string":
            if isinstance(n, StringNode):
                return n.text
            self.errorf(f"expected string; found {n}")
        if typ in ("any", "value"):
            if isinstance(n, BoolNode):
                return n.value
            if isinstance(n, NumberNode):
                return self.ideal_constant(n)
            if isinstance(n, StringNode):
                return n.text
        self.errorf(f"can't handle {n} for arg of type {typ}")

    def print_value(self, node: Node, v: Any) -> None:
        self.at(node)
        self.out.append(fmt_value(v))


_NO_FINAL: Any = object()


def is_true(v: Any) -> bool | None:
    """text/template's truth: not the zero value of its type; None when it has none."""
    if v is MISSING or v is None or isinstance(v, GoNil):
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) > 0
    if isinstance(v, GoNumber):
        return len(v.text) > 0
    if isinstance(v, GoStruct):
        return True
    return None


def _indirect(v: Any) -> Any:
    return v


# -- builtins (funcs.go) -------------------------------------------------------------
class _CallError(Exception):
    """An error a template function returns; the executor wraps it in ``error calling``."""


def _and(*args: Any) -> Any:  # evaluated lazily by the executor
    raise AssertionError


def _or(*args: Any) -> Any:
    raise AssertionError


def _not(v: Any) -> bool:
    return not is_true(v)


def _len(v: Any) -> int:
    if v is MISSING or v is None:
        raise _CallError("len of nil pointer")
    if isinstance(v, (str, list, tuple, dict)):
        return len(v.encode()) if isinstance(v, str) else len(v)
    raise _CallError(f"len of type {go_type(v)}")


def _index_of(v: Any, i: Any, cap: int) -> int:
    if not isinstance(i, int) or isinstance(i, bool):
        raise _CallError(f"cannot index slice/array with type {go_type(i)}")
    if i < 0 or i >= cap:
        raise _CallError(f"index out of range: {i}")
    return i


def _index(item: Any, *indexes: Any) -> Any:
    v = item
    if v is MISSING or v is None:
        raise _CallError("index of untyped nil")
    for idx in indexes:
        if v is None or v is MISSING:
            raise _CallError("index of nil pointer")
        if isinstance(v, str):
            v = v.encode()[_index_of(v, idx, len(v.encode()))]
        elif isinstance(v, (list, tuple)):
            v = v[_index_of(v, idx, len(v))]
        elif isinstance(v, dict):
            if not isinstance(idx, str):
                if idx is MISSING or idx is None:
                    raise _CallError("value is nil; should be of type string")
                raise _CallError(f"value has type {go_type(idx)}; should be string")
            if idx in v:
                v = v[idx]
            elif isinstance(v, GoMap):
                v = "" if v.elem == "string" else MISSING
            else:
                v = MISSING
        else:
            raise _CallError(f"can't index item of type {go_type(v)}")
    return v


def _slice(item: Any, *indexes: Any) -> Any:
    if item is MISSING or item is None:
        raise _CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise _CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise _CallError("cannot 3-index slice a string")
        data = item.encode()
        cap = len(data)
    elif isinstance(item, (list, tuple)):
        data, cap = item, len(item)
    else:
        raise _CallError(f"can't slice item of type {go_type(item)}")
    idx = [0, len(data)]
    for i, x in enumerate(indexes[:2]):
        idx[i] = _index_of(data, x, cap + 1)
    if idx[0] > idx[1]:
        raise _CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    out = data[idx[0]:idx[1]]
    if isinstance(item, str):
        return out.decode(errors="replace")
    return GoSlice(out, item.elem) if isinstance(item, GoSlice) else list(out)


def _basic_kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    if isinstance(v, str):
        return "string"
    if isinstance(v, GoNumber):
        return "string"
    return "invalid"


def _eq(arg1: Any, *arg2: Any) -> bool:
    """funcs.go eq: true if arg1 equals any of arg2; a missing value equals nothing
    of another kind, without error."""
    if not arg2:
        raise _CallError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if k1 != "invalid" and k2 != "invalid":
                raise _CallError("incompatible types for comparison")
            if _is_nilish(arg1) or _is_nilish(arg):
                continue
            raise _CallError("incompatible types for comparison")
        if k1 == "invalid":
            if _is_nilish(arg1) and _is_nilish(arg):
                return True
            if _is_nilish(arg1) or _is_nilish(arg):
                continue
            raise _CallError("invalid type for comparison")
        a = arg1.text if isinstance(arg1, GoNumber) else arg1
        b = arg.text if isinstance(arg, GoNumber) else arg
        if a == b:
            return True
    return False


def _is_nilish(v: Any) -> bool:
    return v is MISSING or v is None or isinstance(v, GoNil)


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _lt(a: Any, b: Any) -> bool:
    ka, kb = _basic_kind(a), _basic_kind(b)
    if ka in ("invalid", "bool") or kb in ("invalid", "bool"):
        raise _CallError("invalid type for comparison")
    if ka != kb:
        raise _CallError("incompatible types for comparison")
    return a < b


def _le(a: Any, b: Any) -> bool:
    return _lt(a, b) or _eq(a, b)


def _gt(a: Any, b: Any) -> bool:
    return not _le(a, b)


def _ge(a: Any, b: Any) -> bool:
    return not _lt(a, b)


def _print(*args: Any) -> str:
    return fmt_sprint(*args)


def _printf(fmt: str, *args: Any) -> str:
    return fmt_sprintf(fmt, *args)


def _println(*args: Any) -> str:
    return fmt_sprintln(*args)


def _eval_args(args: Sequence[Any]) -> str:
    """funcs.go evalArgs: one string argument as it is, otherwise fmt.Sprint."""
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return fmt_sprint(*args)


def _html(*args: Any) -> str:
    s = _eval_args(args)
    return (s.replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&#34;").replace("\0", "\uFFFD"))


def _js(*args: Any) -> str:
    s = _eval_args(args)
    out = []
    for ch in s:
        if ch in "\\'\"<>&=":
            out.append({"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E",
                        "&": "\\u0026", "=": "\\u003D"}[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04X" % ord(ch))
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    from urllib.parse import quote_plus
    return quote_plus(_eval_args(args), safe="-_.~")


def _call(fn: Any, *args: Any) -> Any:
    raise _CallError(f"non-function {fmt_value(fn)} of type {go_type(fn)}")


BUILTINS: dict[str, GoFunc] = {
    "and": GoFunc(_and, ("value",), "value"),
    "or": GoFunc(_or, ("value",), "value"),
    "not": GoFunc(_not, ("value",)),
    "len": GoFunc(_len, ("value",)),
    "index": GoFunc(_index, ("value",), "value"),
    "slice": GoFunc(_slice, ("value",), "value"),
    "eq": GoFunc(_eq, ("value",), "value"),
    "ne": GoFunc(_ne, ("value", "value")),
    "lt": GoFunc(_lt, ("value", "value")),
    "le": GoFunc(_le, ("value", "value")),
    "gt": GoFunc(_gt, ("value", "value")),
    "ge": GoFunc(_ge, ("value", "value")),
    "print": GoFunc(_print, (), "any"),
    "printf": GoFunc(_printf, ("string",), "any"),
    "println": GoFunc(_println, (), "any"),
    "html": GoFunc(_html, (), "any"),
    "js": GoFunc(_js, (), "any"),
    "urlquery": GoFunc(_urlquery, (), "any"),
    "call": GoFunc(_call, ("value",), "value"),
}

CallError = _CallError
