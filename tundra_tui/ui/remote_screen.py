"""An agent's screen as the daemon streams it: rows of styled runs, kept up to date by deltas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tundra_tui.domain.sanitize import visible

MAX_COLUMNS = 1000
MAX_ROWS = 500
"""A hostile or broken daemon message cannot make us allocate an enormous screen."""


class Run(NamedTuple):
    """Neighbouring characters of one style (text already made safe to show)."""

    text: str
    fg: str
    bg: str
    bold: bool
    italics: bool
    underscore: bool
    reverse: bool


@dataclass
class RemoteScreen:
    """The latest rows, cursor and size of one agent's terminal, and which rows changed."""

    columns: int = 80
    rows: int = 24
    cursor: tuple[int, int] = (0, 0)
    lines: list[list[Run]] = field(default_factory=list)
    dirty: set[int] = field(default_factory=set)
    version: int = 0
    """Bumped by every applied message, so a view can tell it has something new."""

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = [[] for _ in range(self.rows)]

    def apply(self, message: dict[str, Any]) -> set[int]:
        """Apply one `screen` event; returns the rows that changed."""
        size = message.get("size")
        changed: set[int] = set()
        if isinstance(size, list) and len(size) == 2:
            columns = _clamp(size[0], 1, MAX_COLUMNS, self.columns)
            rows = _clamp(size[1], 1, MAX_ROWS, self.rows)
            if (columns, rows) != (self.columns, self.rows):
                self.columns, self.rows = columns, rows
                self.lines = (self.lines + [[] for _ in range(rows)])[:rows]
                changed = set(range(rows))
        if message.get("full"):
            self.lines = [[] for _ in range(self.rows)]
            changed = set(range(self.rows))
        rows_in = message.get("rows")
        if isinstance(rows_in, dict):
            for key, runs in rows_in.items():
                try:
                    y = int(key)
                except (TypeError, ValueError):
                    continue
                if 0 <= y < self.rows and isinstance(runs, list):
                    self.lines[y] = [r for r in map(_run, runs) if r is not None]
                    changed.add(y)
        cursor = message.get("cursor")
        if isinstance(cursor, list) and len(cursor) == 2:
            old = self.cursor[1]
            self.cursor = (
                _clamp(cursor[0], 0, self.columns - 1, 0),
                _clamp(cursor[1], 0, self.rows - 1, 0),
            )
            changed |= {old, self.cursor[1]} & set(range(self.rows))
        self.dirty |= changed
        self.version += 1
        return changed

    def take_dirty(self) -> set[int]:
        """The rows changed since the last call (for redrawing only those)."""
        dirty, self.dirty = self.dirty, set()
        return dirty

    @classmethod
    def from_text(cls, text: str, columns: int = 80, rows: int = 24) -> RemoteScreen:
        """A plain screen from stored text (an agent's last screen when it is not running)."""
        screen = cls(columns=columns, rows=rows)
        for y, line in enumerate(text.splitlines()[-rows:]):
            screen.lines[y] = [
                Run(visible(line, single_line=True), "default", "default", *(False,) * 4)
            ]
        screen.dirty = set(range(rows))
        return screen


def _clamp(value: Any, low: int, high: int, default: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        return default
    return max(low, min(high, value))


def _run(raw: Any) -> Run | None:
    """One run from the wire, or None when it is malformed; its text is made safe here."""
    if not isinstance(raw, list) or len(raw) != 7 or not isinstance(raw[0], str):
        return None
    fg, bg = raw[1], raw[2]
    return Run(
        visible(raw[0], single_line=True),
        fg if isinstance(fg, str) else "default",
        bg if isinstance(bg, str) else "default",
        *(bool(flag) for flag in raw[3:7]),
    )
