"""Go's ``text/tabwriter`` as Docker configures it for ``table`` formats.

Docker writes tables through ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``: cells are
tab-terminated, a column is as wide as its widest cell plus 3 spaces of padding and at
least 10, the last cell of a line is never padded, and a column's extent is the run of
consecutive lines that have a cell in it (Go's "column blocks").
"""

from __future__ import annotations

from collections.abc import Iterable

MIN_WIDTH = 10
PADDING = 3


def tabwrite(text: str | Iterable[str], min_width: int = MIN_WIDTH, padding: int = PADDING) -> str:
    """Align tab-separated cells. ``text`` is what Docker feeds its tabwriter (rows
    ending in newlines), or a list of rows, each of which then ends with a newline."""
    if not isinstance(text, str):
        text = "".join(row + "\n" for row in text)
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    out: list[str] = []

    def write_lines(start: int, end: int) -> None:
        for line in lines[start:end]:
            cells = []
            for j, cell in enumerate(line):
                if j < len(widths):
                    cell += " " * (widths[j] - len(cell))
                cells.append(cell)
            out.append("".join(cells))

    def format_block(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            # A block of lines that all have a tab-terminated cell in this column.
            write_lines(line0, this)
            line0 = this
            width = min_width
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            format_block(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    format_block(0, len(lines))
    return "\n".join(out)
