"""Template functions: Go's builtins (``eq``, ``index``, ``len``, ``printf`` ...) and the
ones Docker adds for ``--format`` (``json``, ``join``, ``split``, ``upper``, ``lower``,
``title``, ``pad``, ``truncate``).

Each function is declared with Go-like parameter kinds so that a wrong argument fails with
Go's words (``wrong type for value; expected string; got int``). ``and`` and ``or`` are
listed here but short-circuit in the executor, as they do in Go.
"""

from __future__ import annotations

import html as html_module
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtime.cli.gotemplate.gofmt import (
    MISSING,
    marshal,
    sprint,
    sprint_value,
    sprintln,
    type_name,
)
from runtime.cli.gotemplate.printf import sprintf


class CallError(Exception):
    """A function failed; the executor reports ``error calling <name>: <message>``."""


class ArgTypeError(Exception):
    """An argument has the wrong Go type; reported as is."""


@dataclass(frozen=True)
class Function:
    call: Callable[..., Any]
    params: tuple[str, ...] = ()
    variadic: str | None = None


def truth(value: Any) -> bool:
    """Go's ``isTrue``: zero values and empty containers are false; structs are true."""
    if value is None or value is MISSING:
        return False
    if isinstance(value, (bool, int, float)):
        return bool(value)
    if isinstance(value, (str, bytes, list, tuple, dict)):
        return len(value) > 0
    return True


def convert(kind: str, value: Any) -> Any:
    """Go's ``validateType`` for one parameter kind."""
    if kind == "any":
        return None if value is MISSING else value
    expected = {"string": "string", "int": "int", "[]string": "[]string"}[kind]
    if value is MISSING:
        raise ArgTypeError(f"invalid value; expected {expected}")
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "[]string" and isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value):
            return list(value)
    if value is None:
        raise ArgTypeError(f"cannot assign nil to {expected}")
    raise ArgTypeError(f"wrong type for value; expected {expected}; got {type_name(value)}")


# ----------------------------------------------------------------------- comparisons


def _basic_kind(value: Any) -> str:
    if value is None or value is MISSING:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def eq(first: Any, *others: Any) -> bool:
    if not others:
        raise CallError("missing argument for comparison")
    k1 = _basic_kind(first)
    for other in others:
        k2 = _basic_kind(other)
        if k1 != k2:
            if k1 != "invalid" and k2 != "invalid":
                raise CallError("incompatible types for comparison")
            equal = False
        elif k1 == "other":
            for value in (first, other):
                if isinstance(value, (list, tuple, dict)):
                    raise CallError(
                        f"non-comparable type {sprint_value(value)}: {type_name(value)}"
                    )
            equal = first is other or first == other
        else:
            equal = k1 == "invalid" or first == other
        if equal:
            return True
    return False


def ne(first: Any, second: Any) -> bool:
    return not eq(first, second)


def lt(first: Any, second: Any) -> bool:
    k1, k2 = _basic_kind(first), _basic_kind(second)
    if k1 in ("bool", "invalid", "other") or k2 in ("bool", "invalid", "other"):
        raise CallError("invalid type for comparison")
    if k1 != k2:
        raise CallError("incompatible types for comparison")
    return bool(first < second)


def le(first: Any, second: Any) -> bool:
    return lt(first, second) or eq(first, second)


def gt(first: Any, second: Any) -> bool:
    return not le(first, second)


def ge(first: Any, second: Any) -> bool:
    return not lt(first, second)


def not_(value: Any) -> bool:
    return not truth(value)


# --------------------------------------------------------------------- collections


def _zero_of_values(mapping: dict[Any, Any]) -> Any:
    """The zero value ``index`` returns for an absent key.

    Go returns the zero of the map's element type; a Python dict has none, so guess it
    from the values: all strings (labels, options, and an empty map) -> "", otherwise
    Go's map[string]interface{} behaviour, which prints ``<no value>``.
    """
    values = list(mapping.values())
    if all(isinstance(v, str) for v in values):
        return ""
    return MISSING


def index(item: Any, *indexes: Any) -> Any:
    for key in indexes:
        if item is None or item is MISSING:
            raise CallError("index of untyped nil")
        if isinstance(item, (list, tuple, str, bytes)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise CallError(f"cannot index slice/array with type {type_name(key)}")
            seq = item.encode() if isinstance(item, str) else item
            if not 0 <= key < len(seq):
                raise CallError(f"index out of range: {key}")
            item = seq[key]
        elif isinstance(item, dict):
            item = item[key] if key in item else _zero_of_values(item)
        else:
            raise CallError(f"can't index item of type {type_name(item)}")
    return item


def slice_(item: Any, *indexes: int) -> Any:
    if item is None or item is MISSING:
        raise CallError("slice of untyped nil")
    if not isinstance(item, (list, tuple, str)):
        raise CallError(f"can't slice item of type {type_name(item)}")
    if len(indexes) > 3 or (len(indexes) == 3 and isinstance(item, str)):
        raise CallError(f"too many slice indexes: {len(indexes)}")
    bounds = [0, len(item)]
    for i, value in enumerate(indexes[:2]):
        if not 0 <= value <= len(item):
            raise CallError(f"index out of range: {value}")
        bounds[i] = value
    if bounds[0] > bounds[1]:
        raise CallError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    return item[bounds[0] : bounds[1]]


def length(item: Any) -> int:
    if item is None or item is MISSING:
        raise CallError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode())  # Go counts bytes
    if isinstance(item, (list, tuple, dict, bytes)):
        return len(item)
    raise CallError(f"len of type {type_name(item)}")


def call(fn: Any, *args: Any) -> Any:
    if not callable(fn):
        raise CallError(f"non-function of type {type_name(fn)}")
    return fn(*args)


# ---------------------------------------------------------------------- text output


def _joined(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(*args)


def html(*args: Any) -> str:
    text = html_module.escape(_joined(args), quote=False)
    return text.replace("'", "&#39;").replace('"', "&#34;").replace("\0", "\ufffd")


def urlquery(*args: Any) -> str:
    return urllib.parse.quote_plus(_joined(args), safe="")


def title(text: str) -> str:
    """Go's deprecated ``strings.Title``, which Docker still uses."""

    def separator(ch: str) -> bool:
        if ord(ch) < 0x80:
            return not (ch.isalnum() or ch == "_")
        if unicodedata.category(ch)[0] in "LN":
            return False
        return ch.isspace()

    out = []
    previous = " "
    for ch in text:
        out.append(ch.upper() if separator(previous) else ch)
        previous = ch
    return "".join(out)


def split(text: str, sep: str) -> list[str]:
    return list(text) if sep == "" else text.split(sep)


def json(value: Any) -> str:
    # Docker ignores the encoder's error and prints whatever it buffered: nothing.
    try:
        return marshal(value, escape_html=False)
    except ValueError:
        return ""


def pad(text: str, prefix: int, suffix: int) -> str:
    return " " * prefix + text + " " * suffix if text else text


def truncate(text: str, size: int) -> str:
    return text if len(text) < size else text[:size]


FUNCTIONS: dict[str, Function] = {
    "and": Function(lambda *a: a[-1], ("any",), "any"),
    "or": Function(lambda *a: a[-1], ("any",), "any"),
    "not": Function(not_, ("any",)),
    "eq": Function(eq, ("any",), "any"),
    "ne": Function(ne, ("any", "any")),
    "lt": Function(lt, ("any", "any")),
    "le": Function(le, ("any", "any")),
    "gt": Function(gt, ("any", "any")),
    "ge": Function(ge, ("any", "any")),
    "index": Function(index, ("any",), "any"),
    "slice": Function(slice_, ("any",), "int"),
    "len": Function(length, ("any",)),
    "call": Function(call, ("any",), "any"),
    "print": Function(sprint, (), "any"),
    "println": Function(sprintln, (), "any"),
    "printf": Function(sprintf, ("string",), "any"),
    "html": Function(html, (), "any"),
    "urlquery": Function(urlquery, (), "any"),
    # Docker's additions (cli/templates/templates.go).
    "json": Function(json, ("any",)),
    "split": Function(split, ("string", "string")),
    "join": Function(lambda items, sep: sep.join(items), ("[]string", "string")),
    "title": Function(title, ("string",)),
    "lower": Function(lambda s: s.lower(), ("string",)),
    "upper": Function(lambda s: s.upper(), ("string",)),
    "pad": Function(pad, ("string", "int", "int")),
    "truncate": Function(truncate, ("string", "int")),
}

# Docker renders a table's header row through the same template with these functions
# replaced by ones that hand back the header text untouched.
HEADER_PASSTHROUGH = frozenset({"json", "split", "join", "title", "lower", "upper", "pad",
                                "truncate"})  # fmt: skip
