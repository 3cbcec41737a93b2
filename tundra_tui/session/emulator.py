"""One agent's emulated terminal: bytes in, screen rows, dirty rows and scrollback out.

pyte does the screen model; everything around it is here because pyte alone is
unsafe for agent output (research P3-P6, B2-B4, B9):
- bytes are decoded incrementally (a character split across PTY reads still
  renders) with invalid UTF-8 shown as U+FFFD;
- `vtparse.SequenceFilter` feeds pyte only text and whole, validated, bounded
  sequences, and exceptions from pyte are caught per sequence and counted, so
  `feed` never raises and the next output still renders;
- the only replies ever written back are DA, DSR 5 and CPR, in fixed formats;
- the title is capped and sanitized here, because it is the one string this
  layer keeps for the UI; every other accessor returns pyte's text as is and
  the UI sanitizes it.

pyte is also slow (2-5 µs a byte), so line output (text, CR, LF, HT, SGR, EL)
is worked out in bulk by `skim.Skimmer`, leaving pyte's state as pyte would.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from collections.abc import Callable
from itertools import repeat
from operator import attrgetter
from typing import NamedTuple

import pyte
from pyte import modes
from pyte.screens import Char

from tundra_tui.domain.sanitize import visible
from tundra_tui.session.screen import (
    DEFAULT_STYLE,
    Line,
    LineCompactor,
    StoredLine,
    Style,
    TrackedScreen,
    style_of,
)
from tundra_tui.session.skim import Deferred, Skimmer, skimmable
from tundra_tui.session.vtparse import SequenceFilter

_CSI_METHODS = {
    "@": "insert_characters",
    "A": "cursor_up",
    "B": "cursor_down",
    "C": "cursor_forward",
    "D": "cursor_back",
    "E": "cursor_down1",
    "F": "cursor_up1",
    "G": "cursor_to_column",
    "`": "cursor_to_column",
    "H": "cursor_position",
    "f": "cursor_position",
    "J": "erase_in_display",
    "K": "erase_in_line",
    "L": "insert_lines",
    "M": "delete_lines",
    "P": "delete_characters",
    "X": "erase_characters",
    "a": "cursor_forward",
    "d": "cursor_to_line",
    "e": "cursor_down",
    "g": "clear_tab_stop",
    "h": "set_mode",
    "l": "reset_mode",
    "m": "select_graphic_rendition",
    "r": "set_margins",
}
_ESC_METHODS = {
    "D": "index",
    "M": "reverse_index",
    "H": "set_tab_stop",
    "7": "save_cursor",
    "8": "restore_cursor",
    "c": "reset",
}
_ERASE_MODES = {"J": (0, 1, 2), "K": (0, 1, 2)}
_CONTROLS = "\x07\x08\t\n\x0b\x0c\r"
_DEVICE_ATTRIBUTES = b"\x1b[?6c"  # "VT102", as pyte and the Linux console answer.
_STATUS_OK = b"\x1b[0n"
_MAX_ERROR = 200
_DATA = attrgetter("data")
_SKIM_MIN_SEQUENCE = 1024
_SEQUENCE_TAIL = 32
"""Characters of a sequence left open by the last read that are finished one at a time."""
"""Below this sequence cap the filter could drop an SGR the skimmer would apply."""


class CellRun(NamedTuple):
    """Neighbouring characters of one style, for rendering a row with the Line API."""

    text: str
    fg: str
    bg: str
    bold: bool
    italics: bool
    underscore: bool
    reverse: bool


def _cell_run(text: str, style: Style) -> CellRun:
    return CellRun(text, style[0], style[1], style[2], style[3], style[4], style[6])


class Emulator:
    """A headless terminal emulator for one agent's PTY output.

    `reply` receives the bytes a terminal must answer (DA, DSR, CPR) to be
    written back to the PTY; nothing else is ever answered. `max_sequence`
    caps any escape sequence or string, `max_title` the title. With `skim`,
    the line-oriented part of each `feed` is worked out in bulk (see `skim`):
    what scrolls off within it is never drawn, and screen and scrollback come
    out the same as without, so bigger feeds are cheaper.
    """

    def __init__(
        self,
        columns: int,
        rows: int,
        *,
        scrollback: int = 5000,
        reply: Callable[[bytes], None] | None = None,
        max_sequence: int = 64 * 1024,
        max_title: int = 256,
        skim: bool = True,
    ) -> None:
        if columns < 1 or rows < 1:
            raise ValueError("an emulator needs at least one row and one column")
        self.errors = 0
        """Exceptions caught while emulating (pyte's, or a failing `reply`)."""
        self.last_error = ""
        """The most recent of those, sanitized, for logs and the health view."""
        self._reply = reply
        self._max_title = max_title
        self._title = ""
        self._last_graphic = ""
        self._history: deque[StoredLine | Deferred] = deque(maxlen=max(scrollback, 0))
        self._scrolled = 0
        """Lines that ever scrolled off the top, kept or not (numbers history lines for good)."""
        self._compactor = LineCompactor()
        self._screen = TrackedScreen(columns, rows, self._scrolled_off)
        self._stream = pyte.Stream(self._screen)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._filter = SequenceFilter(
            text=self._on_text,
            csi=self._on_csi,
            esc=self._on_esc,
            osc=self._on_osc,
            max_sequence=max_sequence,
        )
        self._csi_handlers: dict[str, Callable[..., object]] = {
            final: getattr(self._screen, name) for final, name in _CSI_METHODS.items()
        }
        self._seen_cursor = self._cursor_state()
        self._long_run = self._long_run_pattern()
        self._skimmer = (
            Skimmer(self._compactor) if skim and max_sequence >= _SKIM_MIN_SEQUENCE else None
        )
        self.skimmed = 0
        """Characters taken by the skimmer rather than pyte (see `skim`)."""
        self._writes = 0
        """Counts what may have changed screen rows: text, most sequences, resets."""
        self._skim_mark = -1

    # ----------------------------------------------------------------- input

    def feed(self, data: bytes) -> None:
        """Emulate a chunk of PTY output. Never raises; failures are counted in `errors`."""
        try:
            text = self._decoder.decode(data)
            if text and self._skimmer is not None:
                if not self._filter.idle:
                    text = self._finish_sequence(text)
                if text and self._filter.idle:
                    text = self._skim(text)
            if text:
                self._filter.feed(text)
        except Exception as exc:  # A bug of ours must not kill the agent's reader either.
            self._filter.reset()
            self._record(exc)

    def resize(self, columns: int, rows: int) -> None:
        """Resize without reflow; rows pushed off the top go to scrollback. Marks all dirty."""
        if columns < 1 or rows < 1:
            raise ValueError("an emulator needs at least one row and one column")
        self._settle()
        self._writes += 1
        self._screen.resize(lines=rows, columns=columns)
        self._screen.dirty.update(range(rows))
        self._long_run = self._long_run_pattern()

    def skip(self) -> None:
        """Output was lost between the last `feed` and the next: drop any partial character
        or sequence, so none is completed with unrelated bytes. The screen stays."""
        self._decoder.reset()
        self._filter.reset()

    def reset(self) -> None:
        """Return to the power-on state, clearing scrollback, title and any partial input.

        The host calls this before replaying a ring's tail to resync a pane.
        """
        self._writes += 1
        self._decoder.reset()
        self._filter.reset()
        if self._skimmer is not None:
            self._skimmer.discard()
        self._screen.reset()
        self._history.clear()
        self._scrolled = 0
        self._title = ""
        self._last_graphic = ""

    # ---------------------------------------------------------------- output

    @property
    def columns(self) -> int:
        return self._screen.columns

    @property
    def rows(self) -> int:
        return self._screen.lines

    @property
    def cursor(self) -> tuple[int, int]:
        """The cursor as `(x, y)`, kept inside the screen."""
        cursor = self._screen.cursor
        return min(cursor.x, self.columns - 1), cursor.y

    @property
    def cursor_visible(self) -> bool:
        return not self._screen.cursor.hidden

    @property
    def title(self) -> str:
        """The last OSC 0/2 title, capped at `max_title` and sanitized."""
        return self._title

    @property
    def alternate_screen(self) -> bool:
        """True while a full-screen program is using the alternate screen."""
        return self._screen.alternate

    @property
    def dropped_sequences(self) -> int:
        """Escape sequences discarded as malformed, unsupported or over the cap."""
        return self._filter.dropped

    def line_text(self, y: int) -> str:
        """Row `y` as text, trailing spaces stripped."""
        return self._line_text(y, self._screen.default_char)

    def _line_text(self, y: int, default: Char) -> str:
        self._settle()
        line = self._screen.buffer.get(y)
        if not line or not 0 <= y < self.rows:
            return ""
        cells = map(line.get, range(self.columns), repeat(default))
        return "".join(map(_DATA, cells)).rstrip()  # in C: detection reads rows often

    def line_cells(self, y: int) -> list[CellRun]:
        """Row `y` as runs of equal style, trailing default blanks omitted (pad to `columns`)."""
        if not 0 <= y < self.rows:
            return []
        self._settle()
        stored = self._compactor.compact(self._screen.buffer.get(y), self.columns)
        return self._expand(stored)

    def text(self) -> str:
        """The whole screen, one line per row, trailing spaces stripped per line."""
        default = self._screen.default_char  # pyte builds a new one per access
        return "\n".join(self._line_text(y, default) for y in range(self.rows))

    def bottom(self, count: int) -> list[str]:
        """The last `count` rows, ignoring blank rows at the very bottom (for state detection)."""
        default = self._screen.default_char  # pyte builds a new one per access
        last = self.rows - 1
        while last >= 0 and not self._line_text(last, default):
            last -= 1
        if count <= 0 or last < 0:
            return []
        return [self._line_text(y, default) for y in range(max(0, last - count + 1), last + 1)]

    @property
    def scrollback_size(self) -> int:
        """Lines held in scrollback, oldest first."""
        return len(self._history)

    @property
    def scrollback_dropped(self) -> int:
        """Lines that scrolled off before scrollback line 0 (no longer kept, or cleared):
        line `i` is the `scrollback_dropped + i`-th ever to scroll off, whatever came since."""
        return max(0, self._scrolled - len(self._history))

    def scrollback_lines(self, start: int, count: int) -> list[list[CellRun]]:
        """Scrollback lines `start` to `start + count` (0 is the oldest) as style runs."""
        return [self._expand(line) for line in self._history_slice(start, count)]

    def scrollback_text(self, start: int, count: int) -> list[str]:
        """Scrollback lines `start` to `start + count` (0 is the oldest) as text."""
        return [line.text for line in self._history_slice(start, count)]

    def take_dirty(self) -> set[int]:
        """Rows changed since the last call, including the old and new cursor rows."""
        screen = self._screen
        rows = self.rows
        dirty = {y for y in screen.dirty if 0 <= y < rows}
        screen.dirty.clear()
        cursor = self._cursor_state()
        if cursor != self._seen_cursor:
            # pyte marks only rows it wrote to; a moved or hidden cursor changes two more.
            dirty.update(y for y in (self._seen_cursor[1], cursor[1]) if 0 <= y < rows)
            self._seen_cursor = cursor
        return dirty

    # ------------------------------------------------------------- internals

    def _finish_sequence(self, text: str) -> str:
        """Feed the filter the rest of a sequence a batch began inside of; return what follows
        it, for the skimmer. A read cut a coloured log mid-SGR about one time in four: sending
        the whole line to pyte instead drew every row the skimmer had left undrawn."""
        feed, filter_ = self._filter.feed, self._filter
        end = min(len(text), _SEQUENCE_TAIL)
        at = 0
        while at < end and not filter_.idle:
            feed(text[at])
            at += 1
        if not filter_.idle:  # a long sequence (a title, a payload): it and its line via pyte
            head = text.find("\n", at) + 1 or len(text)
            feed(text[at:head])
            at = head
        return text[at:]

    def _settle(self) -> None:
        """Draw the rows the skimmer still owes pyte's buffer (see `Skimmer.settle`)."""
        if self._skimmer is not None and self._skimmer.owing:
            self._skimmer.settle(self._screen)

    def _skim(self, text: str) -> str:
        """Apply the line-oriented start of `text` in bulk (see `skim`); return the rest."""
        screen = self._screen
        assert self._skimmer is not None
        if not skimmable(screen):
            return text
        plan = self._skimmer.plan(text, screen)
        if plan is None:
            return text
        self._skimmer.apply(plan, screen, self._history, untouched=self._writes == self._skim_mark)
        self._scrolled += max(0, plan.y0 + plan.advanced - (screen.lines - 1))
        if plan.last_graphic:
            self._last_graphic = plan.last_graphic
        self.skimmed += plan.consumed
        self._writes += 1
        self._skim_mark = self._writes
        return text[plan.consumed :]

    # Each handler that lets pyte at the buffer settles first (see `Skimmer.settle`); a
    # partial sequence left at the end of a batch, or an SGR, does not.

    def _on_text(self, text: str) -> None:
        self._settle()
        self._writes += 1
        try:
            if len(text) > self._long_run_min:
                self._feed_long_text(text)
            else:
                self._stream.feed(text)
            graphic = text.rstrip(_CONTROLS)
            if graphic:
                self._last_graphic = graphic[-1]
        except Exception as exc:
            self._record(exc)

    def _on_csi(self, final: str, params: list[int], private: bool) -> None:
        if final != "m":
            self._settle()
            self._writes += 1
        screen = self._screen
        try:
            if private:
                if final in "hl":
                    screen.set_private_modes(params, on=final == "h")
                return
            if final == "c":
                if params == [0]:
                    self._send(_DEVICE_ATTRIBUTES)
            elif final == "n":
                self._report_status(params)
            elif final == "b":
                if self._last_graphic:
                    repeat = min(max(params[0], 1), self.columns * self.rows)
                    self._stream.feed(self._last_graphic * repeat)
            elif final in "su" and params == [0]:
                (screen.save_cursor if final == "s" else screen.restore_cursor)()
            elif final == "J" and params[0] == 3:
                self._history.clear()  # xterm's "erase saved lines"; the screen stays.
            elif final in _ERASE_MODES and params[0] not in _ERASE_MODES[final]:
                return
            else:
                handler = self._csi_handlers.get(final)
                if handler is not None:
                    handler(*params)
        except Exception as exc:
            self._record(exc)

    def _on_esc(self, intermediates: str, final: str) -> None:
        self._settle()
        self._writes += 1
        try:
            if intermediates == "#" and final == "8":
                self._screen.alignment_display()
            elif intermediates:
                return  # Charset designations: output is UTF-8, pyte's charsets stay off.
            elif final == "E":
                self._screen.carriage_return()
                self._screen.index()
            elif final in _ESC_METHODS:
                getattr(self._screen, _ESC_METHODS[final])()
        except Exception as exc:
            self._record(exc)

    def _on_osc(self, payload: str) -> None:
        code, _, value = payload.partition(";")
        if code in ("0", "2"):
            self._title = visible(value[: self._max_title], single_line=True, limit=self._max_title)

    def _report_status(self, params: list[int]) -> None:
        if params == [5]:
            self._send(_STATUS_OK)
        elif params == [6]:
            screen = self._screen
            x, y = self.cursor
            if modes.DECOM in screen.mode and screen.margins is not None:
                y -= screen.margins.top
            self._send(f"\x1b[{y + 1};{x + 1}R".encode("ascii"))

    def _send(self, data: bytes) -> None:
        if self._reply is None:
            return
        try:
            self._reply(data)
        except Exception as exc:
            self._record(exc)

    def _record(self, exc: Exception) -> None:
        self.errors += 1
        self.last_error = visible(
            f"{type(exc).__name__}: {exc}", single_line=True, limit=_MAX_ERROR
        )

    def _scrolled_off(self, line: Line | None) -> None:
        self._scrolled += 1
        if self._history.maxlen:
            self._history.append(self._compactor.compact(line, self.columns))

    def _cursor_state(self) -> tuple[int, int, bool]:
        cursor = self._screen.cursor
        return cursor.x, cursor.y, bool(cursor.hidden)

    def _history_slice(self, start: int, count: int) -> list[StoredLine]:
        history = self._history
        start = max(start, 0)
        end = min(len(history), start + max(count, 0))
        lines: list[StoredLine] = []
        for index in range(start, end):
            line = history[index]
            if not isinstance(line, StoredLine):  # skimmed, built on first read
                assert self._skimmer is not None
                line = history[index] = self._skimmer.stored(line)
            lines.append(line)
        return lines

    @staticmethod
    def _expand(line: StoredLine) -> list[CellRun]:
        if not line.runs:
            return [_cell_run(line.text, DEFAULT_STYLE)] if line.text else []
        runs: list[CellRun] = []
        offset = 0
        for length, style in line.runs:
            runs.append(_cell_run(line.text[offset : offset + length], style))
            offset += length
        return runs

    # A run of printable ASCII longer than the screen, e.g. a 10 MB line with no
    # newline, would cost pyte seconds per megabyte. Only its last screenful
    # stays visible and only its last `scrollback` lines are kept, so the
    # middle is cut into scrollback lines directly instead of being drawn.

    def _long_run_pattern(self) -> re.Pattern[str]:
        self._long_run_min = self._screen.columns * (self._screen.lines + 1)
        return re.compile(rf"(?<![\x20-\x7e])[\x20-\x7e]{{{self._long_run_min},}}")

    def _feed_long_text(self, text: str) -> None:
        screen = self._screen
        simple = (
            modes.DECAWM in screen.mode
            and modes.IRM not in screen.mode
            and screen.margins is None
            and not screen.charset
        )
        position = 0
        if simple:
            for match in self._long_run.finditer(text):
                self._stream.feed(text[position : match.start()])
                self._draw_long_run(match[0])
                position = match.end()
        self._stream.feed(text[position:] if position else text)

    def _draw_long_run(self, run: str) -> None:
        screen = self._screen
        columns, rows = screen.columns, screen.lines
        # Finish the cursor's row, then fill rows until the cursor is on the last one.
        offset = max(columns - screen.cursor.x, 0)
        screen.draw(run[:offset])
        while screen.cursor.y < rows - 1 and offset < len(run):
            screen.draw(run[offset : offset + columns])
            offset += columns
        lines = -(-(len(run) - offset) // columns)
        if lines <= rows:
            screen.draw(run[offset:])
            return
        # Every row now on screen and all but the last `rows` lines of the rest
        # scroll off; then the last `rows` lines fill the screen from the top.
        middle = lines - rows
        if not screen.alternate and self._history.maxlen:
            for y in range(rows):
                self._scrolled_off(screen.buffer.get(y))
            run_style = self._compactor.intern((columns, style_of(screen.cursor.attrs)))
            self._scrolled += middle
            for index in range(max(0, middle - self._history.maxlen), middle):
                start = offset + index * columns
                self._history.append(self._stored(run[start : start + columns], run_style))
        screen.buffer.clear()
        screen.cursor.x = screen.cursor.y = 0
        screen.draw(run[offset + middle * columns :])
        screen.dirty.update(range(rows))

    @staticmethod
    def _stored(text: str, run: tuple[int, Style]) -> StoredLine:
        if run[1] == DEFAULT_STYLE:
            return StoredLine(text.rstrip(" "), ())
        return StoredLine(text, (run,))
