"""`tables`: convert, summarise and sort CSV and Markdown tables, so a model does not have to
line up pipes, count columns or add up numbers by hand. Standard library only.

Build: `cargo xtask guest tables` (-> target/plugins/tables.wasm).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import statistics
from typing import Literal, TypedDict

from capsule_sdk import InvalidArguments, ToolError, exports, tool

Format = Literal["auto", "csv", "markdown"]
Align = Literal["auto", "left", "center", "right", "none"]


@dataclasses.dataclass
class Table:
    """A parsed table: a header, rows of the same width, and Markdown column alignments."""

    header: list[str]
    rows: list[list[str]]
    align: list[str | None]


# --- Parsing --------------------------------------------------------------------------------

_SEPARATOR_CELL = re.compile(r"^:?-+:?$")
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _delimiter(value: str) -> str:
    if value in ("\\t", "tab", "TAB"):
        return "\t"
    if len(value) != 1 or value in '\r\n"':
        raise InvalidArguments(
            f'delimiter must be one character such as ",", ";" or "\\t" (tab), got {value!r}'
        )
    return value


def parse_csv(text: str, delimiter: str = ",", header: bool = True) -> Table:
    """Parses CSV text; every row must have as many cells as the first one."""
    delimiter = _delimiter(delimiter)
    try:
        rows = [
            row for row in csv.reader(io.StringIO(text), delimiter=delimiter, strict=True) if row
        ]
    except csv.Error as error:
        raise ToolError(f"malformed CSV: {error}") from None
    if not rows:
        raise ToolError("the CSV has no rows")
    width = len(rows[0])
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise ToolError(
                f"malformed CSV: row {number} has {len(row)} cells but row 1 has {width}; "
                f"quote cells that contain the delimiter {delimiter!r}"
            )
    if header:
        head, body = rows[0], rows[1:]
    else:
        head, body = [f"Column {i}" for i in range(1, width + 1)], rows
    return Table([c.strip() for c in head], body, [None] * width)


def _split_row(line: str) -> list[str]:
    """The cells of one Markdown table row; `\\|` is a literal pipe."""
    line = line.strip()
    cells, cell, i = [], [], 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line) and line[i + 1] == "|":
            cell.append("|")
            i += 2
            continue
        if char == "|":
            cells.append("".join(cell))
            cell = []
        else:
            cell.append(char)
        i += 1
    cells.append("".join(cell))
    if line.startswith("|"):
        cells = cells[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        cells = cells[:-1]
    return [c.strip() for c in cells]


def _is_separator(cells: list[str]) -> bool:
    return bool(cells) and all(_SEPARATOR_CELL.match(c.replace(" ", "")) for c in cells)


def parse_markdown(text: str) -> Table:
    """Parses the first Markdown (GFM) table in `text`: a header row, a separator row such as
    `|---|:--:|`, then body rows until a blank or non-table line."""
    lines = text.splitlines()
    for start in range(len(lines) - 1):
        if "|" not in lines[start]:
            continue
        header = _split_row(lines[start])
        separator = _split_row(lines[start + 1])
        if not _is_separator(separator):
            continue
        if len(separator) != len(header):
            raise ToolError(
                f"malformed Markdown table: the header (line {start + 1}) has {len(header)} "
                f"cells but the separator row below it has {len(separator)}"
            )
        align = [_alignment(c.replace(" ", "")) for c in separator]
        rows = []
        for number in range(start + 2, len(lines)):
            line = lines[number]
            if not line.strip() or "|" not in line:
                break
            cells = _split_row(line)
            if len(cells) != len(header):
                raise ToolError(
                    f"malformed Markdown table: line {number + 1} has {len(cells)} cells but "
                    f"the header has {len(header)}"
                )
            rows.append([c.replace("<br>", "\n") for c in cells])
        return Table(header, rows, align)
    raise ToolError(
        "no Markdown table found: expected a header row like `| a | b |` directly followed "
        "by a separator row like `|---|---|`"
    )


def _alignment(cell: str) -> str | None:
    if cell.startswith(":") and cell.endswith(":"):
        return "center"
    if cell.endswith(":"):
        return "right"
    if cell.startswith(":"):
        return "left"
    return None


def _detect(text: str, fmt: Format) -> Literal["csv", "markdown"]:
    if fmt != "auto":
        return fmt
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and lines[0].lstrip().startswith("|"):
        return "markdown"
    if len(lines) > 1 and "|" in lines[0] and _is_separator(_split_row(lines[1])):
        return "markdown"
    return "csv"


def parse(text: str, fmt: Format, delimiter: str) -> tuple[Table, Literal["csv", "markdown"]]:
    """Parses `text` as CSV or Markdown (`auto`: Markdown when it starts with a pipe row)."""
    kind = _detect(text, fmt)
    table = parse_markdown(text) if kind == "markdown" else parse_csv(text, delimiter)
    return table, kind


def number(cell: str) -> float | None:
    """The value of a numeric cell ("3", "-2.5", "1e3", "1,234.5"), or None."""
    cell = cell.strip()
    if _NUMBER.match(cell):
        return float(cell)
    if _THOUSANDS.match(cell):
        return float(cell.replace(",", ""))
    return None


# --- Rendering ------------------------------------------------------------------------------


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")


def _is_numeric_column(table: Table, column: int) -> bool:
    cells = [row[column] for row in table.rows if row[column].strip()]
    return bool(cells) and all(number(c) is not None for c in cells)


def render_markdown(table: Table) -> str:
    """The table as padded GFM Markdown."""
    header = [_escape(c) for c in table.header]
    rows = [[_escape(c) for c in row] for row in table.rows]
    widths = [max([3, len(header[i])] + [len(r[i]) for r in rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = []
        for i, cell in enumerate(cells):
            if table.align[i] == "right":
                padded.append(cell.rjust(widths[i]))
            elif table.align[i] == "center":
                padded.append(cell.center(widths[i]))
            else:
                padded.append(cell.ljust(widths[i]))
        return "| " + " | ".join(padded) + " |"

    marks = []
    for i, align in enumerate(table.align):
        dashes = "-" * widths[i]
        if align == "left":
            dashes = ":" + dashes[1:]
        elif align == "right":
            dashes = dashes[1:] + ":"
        elif align == "center":
            dashes = ":" + dashes[2:] + ":"
        marks.append(dashes)
    return "\n".join([line(header), "| " + " | ".join(marks) + " |"] + [line(r) for r in rows])


def render_csv(table: Table, delimiter: str = ",") -> str:
    """The table as CSV with a header row (cells quoted only when needed)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=_delimiter(delimiter), lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return out.getvalue()


# --- Tools ----------------------------------------------------------------------------------


@tool(title="CSV to Markdown table", read_only=True, idempotent=True)
def csv_to_markdown(
    csv: str,
    delimiter: str = ",",
    header: bool = True,
    align: Align = "auto",
) -> str:
    """Convert CSV text into a padded GitHub-flavoured Markdown table. Cells containing `|`
    are escaped and line breaks inside quoted cells become `<br>`. Every row must have the
    same number of cells.

    Args:
        csv: The CSV text; quoted cells ("a, b") may contain the delimiter and line breaks.
        delimiter: The cell separator: one character such as "," or ";", or "\\t" for tab.
        header: Whether the first row holds the column names; if false they are "Column 1"...
        align: Column alignment: "auto" right-aligns columns whose cells are all numbers,
            "none" writes plain `---` separators.
    """
    table = parse_csv(csv, delimiter, header)
    width = len(table.header)
    if align == "auto":
        table.align = ["right" if _is_numeric_column(table, i) else None for i in range(width)]
    else:
        table.align = [None if align == "none" else align] * width
    return render_markdown(table)


@tool(title="Markdown table to CSV", read_only=True, idempotent=True)
def markdown_to_csv(markdown: str, delimiter: str = ",") -> str:
    """Convert the first Markdown table found in the text into CSV (header row first). Text
    around the table is ignored, `\\|` becomes `|` and `<br>` a line break inside a quoted
    cell.

    Args:
        markdown: Text containing a GFM table: a header row, a separator row such as
            `|---|:---:|`, then the body rows.
        delimiter: The CSV cell separator: one character such as "," or ";", or "\\t" for tab.
    """
    return render_csv(parse_markdown(markdown), delimiter)


class ColumnStats(TypedDict):
    """Summary of one column.

    Attributes:
        name: The column's header.
        values: Non-empty cells.
        numeric: Cells that are numbers ("3", "-2.5", "1e3", "1,234.5").
        sum: Sum of the numeric cells, or null when there are none.
        min: Smallest numeric cell, or null.
        max: Largest numeric cell, or null.
        mean: Arithmetic mean of the numeric cells, or null.
        median: Median of the numeric cells, or null.
    """

    name: str
    values: int
    numeric: int
    sum: float | None
    min: float | None
    max: float | None
    mean: float | None
    median: float | None


class TableStats(TypedDict):
    """Per-column summary of a table.

    Attributes:
        rows: Body rows (the header not counted).
        columns: One summary per column, in table order.
    """

    rows: int
    columns: list[ColumnStats]


@tool(title="Table statistics", read_only=True, idempotent=True)
def table_stats(table: str, format: Format = "auto", delimiter: str = ",") -> TableStats:
    """Summarise each column of a CSV or Markdown table: how many cells are filled and
    numeric, and the sum, min, max, mean and median of the numeric ones. Use it instead of
    adding up a column by eye.

    Args:
        table: The table as CSV (first row = header) or as a Markdown table.
        format: "csv", "markdown", or "auto" (Markdown when the text starts with a `|` row).
        delimiter: The CSV cell separator ("\\t" for tab); ignored for Markdown.
    """
    parsed, _ = parse(table, format, delimiter)
    columns: list[ColumnStats] = []
    for i, name in enumerate(parsed.header):
        cells = [row[i] for row in parsed.rows if row[i].strip()]
        numbers = [n for n in (number(c) for c in cells) if n is not None]
        columns.append(
            ColumnStats(
                name=name,
                values=len(cells),
                numeric=len(numbers),
                sum=_round(sum(numbers)) if numbers else None,
                min=min(numbers) if numbers else None,
                max=max(numbers) if numbers else None,
                mean=_round(statistics.fmean(numbers)) if numbers else None,
                median=statistics.median(numbers) if numbers else None,
            )
        )
    return TableStats(rows=len(parsed.rows), columns=columns)


def _round(value: float) -> float:
    """Hides float noise such as 0.30000000000000004."""
    return round(value, 10)


@tool(title="Sort a table", read_only=True, idempotent=True)
def sort_table(
    table: str,
    column: str,
    descending: bool = False,
    numeric: bool | None = None,
    format: Format = "auto",
    delimiter: str = ",",
) -> str:
    """Sort the rows of a CSV or Markdown table by one column and return the table in the
    same format. Empty cells sort last. The sort is stable, so sorting by a second key first
    and then by the main key gives a two-level order.

    Args:
        table: The table as CSV (first row = header) or as a Markdown table.
        column: The header of the column to sort by (case-insensitive), or its 1-based
            position such as "2".
        descending: Largest (or last in alphabetical order) first.
        numeric: Compare as numbers; by default, when every non-empty cell of the column is
            a number.
        format: "csv", "markdown", or "auto" (Markdown when the text starts with a `|` row).
        delimiter: The CSV cell separator ("\\t" for tab); ignored for Markdown.
    """
    parsed, kind = parse(table, format, delimiter)
    index = _column_index(parsed, column)
    if numeric is None:
        numeric = _is_numeric_column(parsed, index)
    filled = [r for r in parsed.rows if r[index].strip()]
    empty = [r for r in parsed.rows if not r[index].strip()]
    if numeric:
        bad = [r[index] for r in filled if number(r[index]) is None]
        if bad:
            raise InvalidArguments(
                f"column {parsed.header[index]!r} has cells that are not numbers "
                f"(e.g. {bad[0]!r}); leave `numeric` out to sort it as text"
            )
        filled.sort(key=lambda r: number(r[index]), reverse=descending)
    else:
        filled.sort(key=lambda r: r[index].casefold(), reverse=descending)
    parsed.rows = filled + empty
    if kind == "markdown":
        return render_markdown(parsed)
    return render_csv(parsed, delimiter)


def _column_index(table: Table, column: str) -> int:
    for i, name in enumerate(table.header):
        if name == column:
            return i
    for i, name in enumerate(table.header):
        if name.casefold() == column.strip().casefold():
            return i
    if column.strip().isdigit() and 1 <= int(column) <= len(table.header):
        return int(column) - 1
    names = ", ".join(repr(h) for h in table.header)
    raise InvalidArguments(f"no column {column!r}; the columns are {names}")


Tools = exports()
