"""Printing for the command line: aligned tables for people, JSON for scripts.

Every cell passes through the sanitizer, because bead titles, mail and agent
names can carry escape sequences that would otherwise act on the terminal.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

from rich.cells import cell_len, set_cell_size

from tundra_tui.domain.sanitize import visible
from tundra_tui.output_json import dump_json as dump_json


def cell(value: object, limit: int | None = None) -> str:
    """One table cell: untrusted text made visible and kept to one line."""
    if value is None:
        return ""
    return visible(str(value), single_line=True, limit=limit)


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    flex: int | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print an aligned table. Column `flex` shrinks to fit a terminal's width."""
    out = stream or sys.stdout
    body = [[cell(value) for value in row] for row in rows]
    columns = len(headers) or max((len(row) for row in body), default=0)
    widths = [cell_len(h) for h in headers] or [0] * columns
    for row in body:
        for index, text in enumerate(row):
            widths[index] = max(widths[index], cell_len(text))
    if flex is not None and out.isatty():
        room = (
            shutil.get_terminal_size().columns
            - (sum(widths) - widths[flex])
            - 2 * (len(widths) - 1)
        )
        widths[flex] = max(min(widths[flex], room), cell_len(headers[flex]), 10)
    for row in [list(headers), *body] if headers else body:
        padded = [_fit(text, widths[i]) for i, text in enumerate(row)]
        print("  ".join(padded).rstrip(), file=out)


def _fit(text: str, width: int) -> str:
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…"
    return set_cell_size(text, width)


def key_values(pairs: Iterable[tuple[str, object]], stream: TextIO | None = None) -> None:
    """Print `key  value` lines with the keys aligned; values are sanitized."""
    items = [(key, "" if value is None else str(value)) for key, value in pairs]
    width = max((len(key) for key, _ in items), default=0)
    for key, value in items:
        lines = visible(value).split("\n") or [""]
        print(f"{key:<{width}}  {lines[0]}", file=stream or sys.stdout)
        for line in lines[1:]:
            print(f"{'':<{width}}  {line}", file=stream or sys.stdout)
