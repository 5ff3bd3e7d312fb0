"""Go's text/template, as the docker CLI uses it for ``--format``.

``render('{{.Name}} {{json .Config.Labels}}', data)`` prints what docker would print for
the same data. A faithful subset: fields, variables, pipelines, ``if``/``else if``/
``range``/``with``/``break``/``continue``, trim markers, comments, Go's builtin functions
and Docker's (``json``, ``join``, ``split``, ``upper``, ``lower``, ``title``, ``pad``,
``truncate``); not ``define``/``template``/``block``, ``js`` or complex numbers.

Data model: dicts are Go maps (sorted when printed, ranged or marshalled; a missing key
is ``<no value>``), other objects are Go structs (attributes and methods; a missing
field is an error), lists are slices, None is nil.

Table output follows Docker's formatter: a format starting with ``table`` renders a
header row and aligns columns with :func:`tabwrite`. Pure functions; nothing on disk.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from runtime.cli.gotemplate.gofmt import MISSING, marshal, quote, sprint_value
from runtime.cli.gotemplate.tabwriter import tabwrite
from runtime.errors import InvalidSpec

if TYPE_CHECKING:
    from runtime.cli.gotemplate.parser import ListNode

# The parser, executor and function table are imported when a template is compiled:
# most CLI calls never use --format, and every CLI call pays for what it imports.

__all__ = [
    "MISSING",
    "Template",
    "compile",
    "format_rows",
    "is_table",
    "marshal",
    "quote",
    "render",
    "sprint_value",
    "strip_table",
    "tabwrite",
]

TABLE = "table"


class Template:
    """A parsed template; :meth:`execute` may run many times (once per row)."""

    def __init__(self, text: str, root: ListNode, name: str = "") -> None:
        self.text = text
        self.root = root
        self.name = name

    def execute(self, data: Any, *, header: bool = False) -> str:
        """Render ``data``. ``header=True`` renders a table's header row the way Docker
        does: ``json``, ``upper`` and friends hand their argument back untouched."""
        from runtime.cli.gotemplate.execute import State

        state = State(self.text, self.name, data, header)
        state.walk(data, self.root)
        return "".join(state.out)


def compile(template: str, name: str = "") -> Template:  # noqa: A001 - Go's name for it
    """Parse ``template``; a malformed one raises ``InvalidSpec('template parsing
    error: template: :1: ...')`` as docker reports it."""
    from runtime.cli.gotemplate.functions import FUNCTIONS
    from runtime.cli.gotemplate.parser import ParseError, parse

    try:
        return Template(template, parse(template, FUNCTIONS, name), name)
    except ParseError as e:
        raise InvalidSpec(f"template parsing error: {e}") from e


def render(template: str, data: Any) -> str:
    return compile(template).execute(data)


def is_table(fmt: str) -> bool:
    return fmt.startswith(TABLE)


def strip_table(fmt: str) -> str:
    """Docker's ``preFormat``: drop a leading ``table``, trim spaces, and turn the
    two-character escapes ``\\t`` and ``\\n`` typed on a command line into tab and
    newline. Non-table formats get the same trimming and unescaping."""
    if is_table(fmt):
        fmt = fmt[len(TABLE) :]
    return fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


def format_rows(fmt: str, rows: Iterable[Any], header: Any = None) -> str:
    """Docker's formatter ``Write``: one rendered line per row; for a ``table`` format
    a header row rendered from ``header`` first, then tabwriter alignment."""
    template = compile(strip_table(fmt))
    body = "".join(template.execute(row) + "\n" for row in rows)
    if not is_table(fmt):
        return body
    head = template.execute(header if header is not None else {}, header=True) + "\n"
    return tabwrite(head + body)
