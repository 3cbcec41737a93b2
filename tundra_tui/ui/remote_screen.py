"""An agent's screen as the daemon streams it: rows of styled runs, kept up to date by deltas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from tundra_tui.daemon.protocol import Run as WireRun
from tundra_tui.daemon.protocol import ScreenEvent
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
    _made: dict[tuple[WireRun, ...], list[Run]] = field(
        default_factory=dict, repr=False, compare=False
    )
    """Rows already made safe, by their runs on the wire: a scrolling screen sends every row
    again each time, most of them rows it sent before, one line higher."""

    def __post_init__(self) -> None:
        if not self.lines:
            self.lines = [[] for _ in range(self.rows)]

    def apply(self, event: ScreenEvent) -> set[int]:
        """Apply one `screen` event; returns the rows that changed.

        The event is typed, but its numbers are still the daemon's: sizes and the cursor
        are clamped, rows out of range skipped, and every run's text made safe to show.
        """
        columns = _clamp(event.size[0], 1, MAX_COLUMNS)
        rows = _clamp(event.size[1], 1, MAX_ROWS)
        changed: set[int] = set()
        if (columns, rows) != (self.columns, self.rows):
            self.columns, self.rows = columns, rows
            self.lines = (self.lines + [[] for _ in range(rows)])[:rows]
            changed = set(range(rows))
        if event.full:
            self.lines = [[] for _ in range(self.rows)]
            changed = set(range(self.rows))
        made = self._made
        if len(made) > 2 * self.rows:
            made.clear()  # mostly rows that scrolled off
        for y, runs in event.rows.items():
            if 0 <= y < self.rows:
                key = tuple(runs)
                line = made.get(key)
                if line is None:
                    line = made[key] = [_run(run) for run in runs]
                self.lines[y] = line  # shared, never changed in place
                changed.add(y)
        cursor = (
            _clamp(event.cursor[0], 0, self.columns - 1),
            _clamp(event.cursor[1], 0, self.rows - 1),
        )
        if cursor != self.cursor:  # both rows redraw: the cursor is drawn into its row
            changed |= {self.cursor[1], cursor[1]} & set(range(self.rows))
            self.cursor = cursor
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


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _run(run: WireRun) -> Run:
    """One run from the wire with its text made safe here (it is what an agent printed)."""
    text, fg, bg, bold, italics, underscore, reverse = run
    return Run(visible(text, single_line=True), fg, bg, bold, italics, underscore, reverse)
