"""Go's ways of turning values into text: ``fmt`` (%v, Sprint, Sprintf), ``strconv.Quote``
and ``encoding/json``.

Python values stand in for Go's: ``dict`` is a map (keys printed sorted), ``list`` and
``tuple`` are slices, ``None`` is nil, dataclasses are structs (fields in order), and
:data:`MISSING` is the invalid value Go returns for a map key that is not there.
Pure functions; nothing on disk.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from decimal import Decimal
from typing import Any


class _Missing:
    """Go's invalid ``reflect.Value``: what ``.Key`` yields on a map without that key."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()


def type_name(value: Any) -> str:
    """The Go type a Python value stands for, as Go's error messages spell it."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    cls = type(value)
    return f"*{cls.__module__.rsplit('.', 1)[-1]}.{cls.__name__}"


def sorted_keys(mapping: dict[Any, Any]) -> list[Any]:
    """Go's fmtsort order: numbers numerically, strings bytewise."""
    try:
        return sorted(mapping)
    except TypeError:
        return sorted(mapping, key=lambda k: (type(k).__name__, str(k)))


def _has_own_str(value: Any) -> bool:
    return type(value).__str__ is not object.__str__ and not dataclasses.is_dataclass(value)


def _shortest(value: float) -> tuple[str, list[int], int]:
    """Sign, shortest round-trip digits and decimal exponent of the first digit."""
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    return ("-" if sign else ""), list(digits), exponent + len(digits) - 1


def _exp_form(sign: str, digits: list[int], exp: int, letter: str = "e") -> str:
    mantissa = str(digits[0])
    if len(digits) > 1:
        mantissa += "." + "".join(map(str, digits[1:]))
    return f"{sign}{mantissa}{letter}{'+' if exp >= 0 else '-'}{abs(exp):02d}"


def format_float(value: float, verb: str = "g", prec: int = -1) -> str:
    """``strconv.FormatFloat`` as fmt uses it; ``prec=-1`` is Go's shortest form."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb in "gG" and prec < 0:
        sign, digits, exp = _shortest(value)
        # Go switches to an exponent at 1e+06 in shortest %g / %v (C's %g would use 1e+16).
        if exp < -4 or exp >= 6:
            return _exp_form(sign, digits, exp, "e" if verb == "g" else "E")
        return format(Decimal(repr(value)).normalize(), "f")
    if verb in "eE" and prec < 0:
        sign, digits, exp = _shortest(value)
        return _exp_form(sign, digits, exp, verb)
    if verb in "fF" and prec < 0:
        return format(Decimal(repr(value)).normalize(), "f")
    return format(value, f".{prec}{verb}")


def sprint_value(value: Any) -> str:
    """Go's ``%v``."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return "[" + " ".join(str(b) for b in value) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(sprint_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{sprint_value(k)}:{sprint_value(value[k])}" for k in sorted_keys(value))
        return "map[" + " ".join(pairs) + "]"
    if _has_own_str(value):
        return str(value)
    if dataclasses.is_dataclass(value):
        fields = dataclasses.fields(value)
        return "{" + " ".join(sprint_value(getattr(value, f.name)) for f in fields) + "}"
    return str(value)


def sprint(*args: Any) -> str:
    """``fmt.Sprint``: a space between operands when neither side is a string."""
    out = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(sprint_value(arg))
    return "".join(out)


def sprintln(*args: Any) -> str:
    return " ".join(sprint_value(a) for a in args) + "\n"


_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", '"': '\\"', "\\": "\\\\"}  # fmt: skip


def quote(text: str) -> str:
    """``strconv.Quote``: printable characters kept, the rest escaped Go-style."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def quote_rune(code: int) -> str:
    ch = chr(code)
    if ch == "'":
        return "'\\''"
    return "'" + quote(ch)[1:-1].replace('\\"', '"') + "'"


# ---------------------------------------------------------------- encoding/json


def json_string(text: str, escape_html: bool = False) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif code < 0x20:
            short = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
            out.append(short.get(ch, f"\\u{code:04x}"))
        elif escape_html and ch in "<>&":
            out.append(f"\\u{code:04x}")
        elif code in (0x2028, 0x2029):
            # Go escapes these even without HTML escaping: JavaScript treats them as newlines.
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")  # invalid UTF-8 becomes U+FFFD, as in Go
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _json_float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"json: unsupported value: {format_float(value)}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = format_float(value, "e")
        # Go trims the exponent's leading zero: 1e-07 -> 1e-7.
        return re.sub(r"e-0(\d)$", r"e-\1", text)
    return format_float(value, "f")


def marshal(value: Any, escape_html: bool = False) -> str:
    """``json.Marshal``, compact. Maps (dicts) have sorted keys; structs
    (dataclasses, or objects with ``marshal_json()``) keep their field order."""
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return json_string(value, escape_html)
    if isinstance(value, (bytes, bytearray)):
        return json_string(base64.b64encode(bytes(value)).decode("ascii"))
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(marshal(v, escape_html) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=str)
        items = (f"{json_string(str(k), escape_html)}:{marshal(value[k], escape_html)}"
                 for k in keys)  # fmt: skip
        return "{" + ",".join(items) + "}"
    if hasattr(value, "marshal_json"):
        return marshal(value.marshal_json(), escape_html)
    if dataclasses.is_dataclass(value):
        fields = [f.name for f in dataclasses.fields(value) if not f.name.startswith("_")]
        items = (f"{json_string(name, escape_html)}:{marshal(getattr(value, name), escape_html)}"
                 for name in fields)  # fmt: skip
        return "{" + ",".join(items) + "}"
    raise ValueError(f"json: unsupported type: {type_name(value)}")
