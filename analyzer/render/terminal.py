"""Text from the evidence made safe for the analyst's terminal.

A snapshot from a compromised host can hold escape sequences where Docker keeps
free text (labels, ``created_by``, a container's command): printed raw, ``ESC[2J``
clears the analyst's screen, ``ESC]8;;`` hides a link, ``\\r`` rewrites a line
already shown. Every C0 control but ``\\n`` and ``\\t`` (which Docker prints raw, as
a heredoc ``RUN`` puts newlines in ``created_by``) and every C1 control is written
``\\u00XX``: text in a table still reads, and inside a JSON string it is JSON's own
escape of the same character, so a JSON document keeps its value (Docker's JSON
escapes C0 but leaves C1 raw). Bytes of a name on disk that are not UTF-8 (kept as
surrogate escapes) are written ``\\xNN``, as DESIGN.md writes them in JSON.

Docker prints these characters raw; this is a deliberate difference, seen only
where the evidence holds them, and announced by one warning per command.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# C0 but \t and \n, and C1 (U+0080..U+009F, which a UTF-8 terminal may obey as CSI, OSC...).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x80-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
# str.translate deleting these runs at memory speed on ASCII text, where a regular
# expression walks every character: the test for the usual case, text with nothing to do.
_C0_DELETED = dict.fromkeys(c for c in range(0x20) if chr(c) not in "\t\n")


@dataclass(frozen=True, slots=True)
class Escaped:
    """Text ready to print, and what was escaped to make it so."""
    text: str
    controls: int = 0          # control characters written \\u00XX
    bytes_not_utf8: int = 0    # bytes of names that are not UTF-8, written \\xNN


def escape(text: str) -> Escaped:
    """``text`` with control characters as ``\\u00XX`` and non-UTF-8 bytes as ``\\xNN``."""
    if text.isascii() and len(text.translate(_C0_DELETED)) == len(text):
        return Escaped(text)
    surrogates = len(_SURROGATE.findall(text))
    if surrogates:
        from .analysis import visible_text    # JSON's renderer: no start-up cost for text
        text = visible_text(text)
    text, controls = _CONTROL.subn(lambda m: f"\\u{ord(m.group()):04x}", text)
    return Escaped(text, controls, surrogates)


def escaped_warning(controls: int, bytes_not_utf8: int) -> str | None:
    """The one warning of a command whose output was escaped (None when nothing was)."""
    parts = []
    if controls:
        parts.append(f"{controls} control character{'s' * (controls != 1)} as \\u00XX")
    if bytes_not_utf8:
        parts.append(f"{bytes_not_utf8} byte{'s' * (bytes_not_utf8 != 1)} that "
                     f"{'are' if bytes_not_utf8 != 1 else 'is'} not UTF-8 as \\xNN")
    if not parts:
        return None
    return ("output: the evidence's text is printed with " + " and ".join(parts)
            + " (Docker prints them raw)")
