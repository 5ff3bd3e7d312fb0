"""Go's ``fmt.Sprintf`` for the template ``printf`` function.

Verbs: ``%v %s %q %d %t %f %F %e %E %g %G %x %X %o %O %b %c %U %%``, flags ``-+# 0``,
width and precision (``*`` too). Mistakes print the way Go prints them
(``%!d(string=abc)``, ``%!s(MISSING)``, ``%!(EXTRA int=1)``) rather than raising.
"""

from __future__ import annotations

import re
from typing import Any

from runtime.cli.gotemplate.gofmt import (
    format_float,
    quote,
    quote_rune,
    sprint_value,
    type_name,
)

_SPEC = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d*))?(.?)", re.DOTALL)


class _BadVerb(Exception):
    pass


def _bad(verb: str, value: Any) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(value)}={sprint_value(value)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_body(value: int, verb: str, prec: int | None, flags: str) -> str:
    sign = "-" if value < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
    magnitude = abs(value)
    if verb == "d":
        digits = str(magnitude)
    elif verb in "xX":
        digits = format(magnitude, verb)
        if "#" in flags:
            digits = "0" + verb + digits
    elif verb == "o":
        digits = format(magnitude, "o")
        if "#" in flags:
            digits = "0" + digits
    elif verb == "O":
        digits = "0o" + format(magnitude, "o")
    else:  # "b"
        digits = format(magnitude, "b")
    if prec is not None and len(digits) < prec:
        digits = "0" * (prec - len(digits)) + digits
    return sign + digits


def _format_one(verb: str, value: Any, flags: str, prec: int | None) -> str:
    """One operand; containers get the verb applied to each element, as in Go."""
    if isinstance(value, (list, tuple)) and verb not in "vqxX":
        return "[" + " ".join(_format_one(verb, v, flags, prec) for v in value) + "]"
    if isinstance(value, dict) and verb != "v":
        items = (f"{_format_one(verb, k, flags, prec)}:{_format_one(verb, value[k], flags, prec)}"
                 for k in sorted(value, key=str))  # fmt: skip
        return "map[" + " ".join(items) + "]"
    if verb == "v":
        if isinstance(value, float) and prec is not None:
            return format_float(value, "g", prec)
        return sprint_value(value)
    if verb == "s":
        if value is None or isinstance(value, (bool, int, float)):
            raise _BadVerb
        text = sprint_value(value)
        return text if prec is None else text[:prec]
    if verb == "q":
        if isinstance(value, str):
            return quote(value)
        if _is_int(value):
            return quote_rune(value)
        raise _BadVerb
    if verb == "t":
        if isinstance(value, bool):
            return "true" if value else "false"
        raise _BadVerb
    if verb in "fFeEgG":
        if not isinstance(value, float):
            raise _BadVerb
        body = format_float(value, verb, prec if prec is not None else (-1 if verb in "gG" else 6))
        if value >= 0 and ("+" in flags or " " in flags):
            body = ("+" if "+" in flags else " ") + body
        return body
    if verb in "xX" and isinstance(value, str):
        return value.encode().hex() if verb == "x" else value.encode().hex().upper()
    if verb in "dxXoObcU":
        if not _is_int(value):
            raise _BadVerb
        if verb == "c":
            return chr(value)
        if verb == "U":
            return f"U+{value:04X}"
        return _int_body(value, verb, prec, flags)
    raise _BadVerb


def _pad(body: str, width: int | None, flags: str, numeric: bool) -> str:
    if width is None or len(body) >= width:
        return body
    fill = width - len(body)
    if "-" in flags:
        return body + " " * fill
    if "0" in flags:
        if numeric and body[:1] in ("+", "-", " "):
            return body[0] + "0" * fill + body[1:]
        return "0" * fill + body
    return " " * fill + body


def sprintf(fmt: str, *args: Any) -> str:
    out: list[str] = []
    argi = 0
    pos = 0
    while True:
        start = fmt.find("%", pos)
        if start < 0:
            out.append(fmt[pos:])
            break
        out.append(fmt[pos:start])
        match = _SPEC.match(fmt, start)
        assert match is not None  # "%" alone matches with an empty verb
        flags, width_text, prec_text, verb = match.groups()
        pos = match.end()
        if verb == "%":
            out.append("%")
            continue
        if verb == "":
            out.append("%!(NOVERB)")
            break
        width: int | None = None
        prec: int | None = None
        if width_text == "*":
            if argi < len(args) and _is_int(args[argi]):
                width = args[argi]
                if width < 0:
                    flags, width = flags + "-", -width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        elif width_text:
            width = int(width_text)
        if prec_text == "*":
            if argi < len(args) and _is_int(args[argi]):
                prec = args[argi]
            else:
                out.append("%!(BADPREC)")
            argi += 1
        elif prec_text is not None:
            prec = int(prec_text) if prec_text else 0
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[argi]
        argi += 1
        try:
            body = _format_one(verb, value, flags, prec)
        except _BadVerb:
            out.append(_bad(verb, value))
            continue
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        out.append(_pad(body, width, flags, numeric))
    if argi < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{type_name(a)}={sprint_value(a)}" for a in args[argi:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)
