"""A report that fits a terminal: tables cut into parts of at most ``width`` characters
(each part repeats the column that names the rows), prose wrapped at ``width``. The text
stays markdown; a saved report (``--table FILE``) keeps every table whole."""

from __future__ import annotations

import textwrap

from tabulate import tabulate

#: what ``fubench run`` fits its printed report into
TERMINAL_WIDTH = 120


def table_parts(headers: list[str], body: list[list[str]], width: int | None) -> list[str]:
    """GitHub tables of ``body``: one when it fits ``width`` (or ``width`` is None),
    else the columns cut into consecutive parts that each fit, the first column (the
    row names) repeated in each. A column too wide to fit beside the names still gets a
    part of its own."""
    whole = _github(headers, body)
    if width is None or _width(whole) <= width:
        return [whole]
    parts, group = [], []
    for column in range(1, len(headers)):
        candidate = group + [column]
        if group and _width(_github(*_columns(headers, body, candidate))) > width:
            parts.append(_github(*_columns(headers, body, group)))
            candidate = [column]
        group = candidate
    if group:
        parts.append(_github(*_columns(headers, body, group)))
    return parts


def _columns(
    headers: list[str], body: list[list[str]], columns: list[int]
) -> tuple[list[str], list[list[str]]]:
    keep = [0, *columns]
    return [headers[i] for i in keep], [[row[i] for i in keep] for row in body]


def _github(headers: list[str], body: list[list[str]]) -> str:
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def _width(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def wrap(text: str, width: int | None) -> str:
    """``text`` with every line that is not part of a table wrapped at ``width``; a list
    item's continuation lines are indented under its text, as markdown reads them."""
    if width is None:
        return text
    lines = []
    for line in text.split("\n"):
        if line.startswith("|") or len(line) <= width:
            lines.append(line)
            continue
        indent = "  " if line.startswith("- ") else ""
        lines += textwrap.wrap(
            line,
            width,
            subsequent_indent=indent,
            break_long_words=False,
            break_on_hyphens=False,
        )
    return "\n".join(lines)
