"""A pyte `Screen` with compact scrollback, an alternate screen and sane resizing.

`pyte.HistoryScreen` keeps every scrolled-off cell as a `Char` namedtuple and
costs 60-170 MiB per agent at 5,000 lines, and its `__getattribute__` hook
makes it about 3x slower (research perf §1, §6). This screen instead hands
each line that scrolls off the top to a callback, which stores it as text plus
style runs. It also adds what pyte lacks and agents use: the alternate screen
(full-screen programs restore the shell screen on exit) and a resize that keeps
the cursor's row on screen instead of clamping the cursor onto other text.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Callable
from itertools import groupby
from typing import Any, NamedTuple

import pyte
from pyte.screens import Char, Margins, StaticDefaultDict

Line = StaticDefaultDict[int, Char]
Style = tuple[str, str, bool, bool, bool, bool, bool, bool]
"""A cell's look: fg, bg, bold, italics, underscore, strikethrough, reverse, blink."""
Run = tuple[int, Style]

DEFAULT_STYLE: Style = ("default", "default", False, False, False, False, False, False)
_STYLE_OF = operator.itemgetter(1, 2, 3, 4, 5, 6, 7, 8)
_DATA_OF = operator.attrgetter("data")
_INTERN_LIMIT = 4096
_ALT_SCREEN_MODES = frozenset({47, 1047, 1049})


class StoredLine(NamedTuple):
    """A line of scrollback: its text (trailing default blanks dropped) and style runs.

    `runs` are `(length, style)` pairs covering `text`; empty means all default.
    Styles and runs are interned, so a line costs little more than its text.
    """

    text: str
    runs: tuple[Run, ...]


BLANK_LINE = StoredLine("", ())


def style_of(char: Char) -> Style:
    """The style part of a pyte `Char`."""
    style: Style = _STYLE_OF(char)
    return style


class LineCompactor:
    """Turns pyte lines into `StoredLine`s, sharing equal styles and runs."""

    def __init__(self) -> None:
        self._runs: dict[Run, Run] = {}

    def compact(self, line: Line | None, columns: int) -> StoredLine:
        """Compact one screen line, `columns` cells wide."""
        if not line:
            return BLANK_LINE
        cells = [line[x] for x in range(min(columns, max(line) + 1))]
        texts: list[str] = []
        runs: list[Run] = []
        for style, group in groupby(cells, _STYLE_OF):
            piece = "".join(map(_DATA_OF, group))  # Wide-character stubs are "".
            if piece:
                texts.append(piece)
                runs.append((len(piece), style))
        if runs and runs[-1][1] == DEFAULT_STYLE:
            trimmed = texts[-1].rstrip(" ")
            if trimmed:
                texts[-1] = trimmed
                runs[-1] = (len(trimmed), DEFAULT_STYLE)
            else:
                texts.pop()
                runs.pop()
        if all(style == DEFAULT_STYLE for _, style in runs):
            return StoredLine("".join(texts), ())
        return StoredLine("".join(texts), tuple(map(self.intern, runs)))

    def intern_all(self, runs: list[Run]) -> tuple[Run, ...]:
        """The shared copies of `runs` (`intern` for many, with the loop in C)."""
        if len(self._runs) >= _INTERN_LIMIT:
            self._runs.clear()
        return tuple(map(self._runs.setdefault, runs, runs))

    def intern(self, run: Run) -> Run:
        """Return the shared copy of `run`."""
        shared = self._runs.get(run)
        if shared is None:
            if len(self._runs) >= _INTERN_LIMIT:
                # Lines already stored keep their runs alive; only sharing resets.
                self._runs.clear()
            shared = self._runs[run] = run
        return shared


class TrackedScreen(pyte.Screen):
    """A `pyte.Screen` that reports lines leaving the top and supports the alternate screen."""

    def __init__(
        self, columns: int, lines: int, on_scroll_off: Callable[[Line | None], None]
    ) -> None:
        self._on_scroll_off = on_scroll_off
        self._main: tuple[Any, Any] | None = None
        super().__init__(columns, lines)

    @property
    def alternate(self) -> bool:
        """True while a full-screen program has the alternate screen."""
        return self._main is not None

    def reset(self) -> None:
        self._main = None
        super().reset()

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        # Only a region that starts at the top edge scrolls lines off the screen;
        # the alternate screen has no scrollback, as in xterm and tmux.
        if self.cursor.y == bottom and top == 0 and self._main is None:
            self._on_scroll_off(self.buffer.get(0))
        super().index()

    def set_private_modes(self, modes: list[int], *, on: bool) -> None:
        """Apply `CSI ? ... h/l`, handling the modes pyte lacks or gets wrong for us."""
        rest: list[int] = []
        for mode in modes:
            if mode in _ALT_SCREEN_MODES:
                self._switch_screen(on, cursor=mode == 1049)
            elif mode == 1048:
                (self.save_cursor if on else self.restore_cursor)()
            elif mode != 3:  # DECCOLM would resize us to 132 columns; the PTY owns the size.
                rest.append(mode)
        if rest:
            (self.set_mode if on else self.reset_mode)(*rest, private=True)

    def _switch_screen(self, alternate: bool, *, cursor: bool) -> None:
        if alternate == (self._main is not None):
            return
        if alternate:
            if cursor:
                self.save_cursor()
            self._main = (self.buffer, self.margins)
            self.buffer = defaultdict(lambda: StaticDefaultDict[int, Char](self.default_char))
        else:
            assert self._main is not None
            self.buffer, self.margins = self._main
            self._main = None
            if cursor:
                self.restore_cursor()
        self.dirty.update(range(self.lines))

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize without reflow, keeping the cursor's row and pushing rows above into history."""
        lines = lines or self.lines
        columns = columns or self.columns
        if (lines, columns) == (self.lines, self.columns):
            return
        buffers = [self.buffer] if self._main is None else [self.buffer, self._main[0]]
        if lines < self.lines:
            drop = max(0, self.cursor.y + 1 - lines)
            for buffer in buffers:
                old = dict(buffer)
                buffer.clear()
                if buffer is self.buffer and self._main is None:
                    for y in range(drop):
                        self._on_scroll_off(old.get(y))
                for y, row in old.items():
                    if drop <= y < drop + lines:
                        buffer[y - drop] = row
            self.cursor.y -= drop
        if columns < self.columns:
            for buffer in buffers:
                for row in buffer.values():
                    for x in [x for x in row if x >= columns]:
                        del row[x]
        old_columns = self.columns
        self.lines, self.columns = lines, columns
        self.margins = None
        if self._main is not None:
            self._main = (self._main[0], None)
        self.tabstops = {t for t in self.tabstops if t < columns} | set(
            range(-(-old_columns // 8) * 8, columns, 8)
        )
        # A cursor parked past the last column (a pending wrap) stays so if it still fits.
        if self.cursor.x > columns or (self.cursor.x == columns and columns < old_columns):
            self.cursor.x = columns - 1
        self.cursor.y = min(self.cursor.y, lines - 1)
        self.dirty.update(range(lines))
