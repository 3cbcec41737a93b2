"""Line output in bulk: what scrolls off within a batch is never drawn cell by cell.

pyte costs 2-5 µs per byte of coloured line output (a test log, a build), most
of it drawing cells and shifting rows that scroll away a moment later. The
`Skimmer` takes the longest line-oriented start of a batch (printable text,
CR, LF, HT, SGR and EL in the primary screen with autowrap on, no scroll
margins, insert and newline modes off) and works out its effect with a row
model of its own instead:

- a plain line (text and SGRs ended by CR LF that fits a row, the common case;
  CR CR LF too) is taken whole and goes to scrollback as it came with the style it started
  in (`Deferred`), turned into text and style runs only when read; other lines
  go through a row model, and only rows scrollback keeps are stored;
- the rows left on screen are written into pyte's buffer cell by cell, the
  cursor is put where it ends and its style is the SGR state there (every
  SGR goes through pyte's own `select_graphic_rendition`, so it is exact).

The model follows pyte's `draw`, `linefeed`, `tab` and `erase_in_line` to the
cell (wrap pending at the last column, wide characters with their stub cell,
erased cells in the cursor's style), so the screen, the cursor and the
scrollback come out as pyte would leave them; tests/test_emulator.py checks
that against plain pyte on random coloured output cut at random places. What
the model does not cover (a combining or zero-width character, any other
control or sequence) ends the skim there and goes to pyte.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter

import pyte
from pyte import modes
from pyte.screens import Char, StaticDefaultDict, wcwidth

from tundra_tui.session.screen import (
    BLANK_LINE,
    DEFAULT_STYLE,
    Line,
    LineCompactor,
    StoredLine,
    Style,
    TrackedScreen,
    style_of,
)
from tundra_tui.session.vtparse import clean_text

MIN_LINES = 4
"""Batches that cannot advance this many rows go to pyte: too little for a second path."""
_TOKEN = re.compile(
    r"([^\x00-\x1f\x7f-\x9f]++)"  # 1: text
    r"|\x1b\[([\d;]*+)m"  # 2: SGR
    r"|(\r\n)|(\n)|(\r)|(\t)"  # 3-6
    r"|\x1b\[([012]?)K"  # 7: EL
)
_TEXT, _SGR, _CRLF, _LF, _CR, _TAB, _EL = range(1, 8)
_PLAIN_SPLIT = re.compile(r"\x1b\[(?:([\d;]*+)m|0?K)")
"""Splits a plain line into text and SGR bodies (None for an EL)."""
_VALID_SGR = re.compile(r"\d{0,16}(?:;\d{0,16}){0,31}")
"""What vtparse passes on (its `_PARAMS`), kept short enough for any sequence cap we allow."""
_CACHE_LIMIT = 512
"""Entries per lookup table, per emulator: coloured output repeats a few SGRs, and a
stream of ever new 24-bit colours must not grow tables without bound (each is cleared
when full)."""
_STYLES_LIMIT = 64
"""Styles whose pyte cells are kept, per emulator (each holds up to a few hundred)."""
_Cell = tuple[str, Style]
_STYLE = itemgetter(1)
_BLANK: _Cell = (" ", DEFAULT_STYLE)


Deferred = tuple[str, Style]
"""A scrollback row kept as `(line, style)`: a plain line, one row wide, as it came (text,
SGRs, default-style ELs), drawn from column 0 of a blank row in `style`. `Skimmer.stored`
builds it. A plain tuple, because one is made per skimmed line; it costs about what the
built row does."""


def skimmable(screen: TrackedScreen) -> bool:
    """True if line output on `screen` behaves as the skimmer models it."""
    mode = screen.mode
    return (
        not screen.alternate
        and screen.margins is None
        and not screen.charset
        and modes.DECAWM in mode
        and modes.IRM not in mode
        and modes.LNM not in mode
    )


class _Row:
    """One screen row being written: style runs while text only appends, cells otherwise."""

    __slots__ = ("cells", "styles", "texts", "width")

    def __init__(self, cells: list[_Cell] | None = None) -> None:
        self.texts: list[str] = []
        self.styles: list[Style] = []
        self.cells = cells
        self.width = 0

    @classmethod
    def of(cls, line: Line | None, columns: int) -> _Row | None:
        """A row holding what pyte's `line` shows; None for a blank one."""
        if not line:
            return None
        count = min(columns, max(line) + 1)
        return cls([(char.data, style_of(char)) for char in map(line.__getitem__, range(count))])

    def to_cells(self) -> list[_Cell]:
        """Switch to one entry per cell (overwrites need it) and return them."""
        cells: list[_Cell] = []
        for text, style in zip(self.texts, self.styles, strict=True):
            cells.extend((char, style) for char in text)
        self.texts, self.styles, self.cells = [], [], cells
        return cells

    def draw(self, text: str, style: Style, x: int) -> None:
        """Write narrow characters from column `x` (they fit the row)."""
        cells = self.cells
        if cells is None:
            if x >= self.width:
                if x > self.width:
                    self.texts.append(" " * (x - self.width))
                    self.styles.append(DEFAULT_STYLE)
                self.texts.append(text)
                self.styles.append(style)
                self.width = x + len(text)
                return
            cells = self.to_cells()
        if x > len(cells):
            cells.extend([_BLANK] * (x - len(cells)))
        cells[x : x + len(text)] = [(char, style) for char in text]

    def draw_char(self, char: str, width: int, style: Style, x: int, columns: int) -> None:
        """Write one character of `width` cells at `x`, as pyte's `draw` does."""
        cells = self.cells if self.cells is not None else self.to_cells()
        if x > len(cells):
            cells.extend([_BLANK] * (x - len(cells)))
        cells[x : x + 1] = [(char, style)]
        if width == 2 and x + 1 < columns:
            cells[x + 1 : x + 2] = [("", style)]

    def erase(self, how: int, x: int, style: Style, columns: int) -> None:
        """EL: erase to the end (0), to the cursor (1) or all (2), in the cursor's style.

        Erased cells in the default style are left out: stored lines drop trailing
        default blanks, and a gap reads as default blanks, so it is the same row.
        """
        if how == 2 and style == DEFAULT_STYLE:
            self.texts, self.styles, self.cells, self.width = [], [], None, 0
            return
        cells = self.cells if self.cells is not None else self.to_cells()
        if how == 0:
            del cells[x:]
            if style != DEFAULT_STYLE and x < columns:
                cells.extend([_BLANK] * (x - len(cells)))
                cells.extend([(" ", style)] * (columns - x))
            return
        end = min(x + 1, columns) if how == 1 else columns
        if end > len(cells):
            cells.extend([_BLANK] * (end - len(cells)))
        cells[:end] = [(" ", style)] * end

    def stored(self, columns: int, intern: LineCompactor) -> StoredLine:
        """The row as scrollback, as `LineCompactor.compact` would store pyte's cells."""
        texts: list[str] = []
        styles: list[Style] = []
        if self.cells is None:
            for text, style in zip(self.texts, self.styles, strict=True):
                if styles and styles[-1] == style:
                    texts[-1] += text
                else:
                    texts.append(text)
                    styles.append(style)
        else:
            for style, group in groupby(self.cells[:columns], _STYLE):
                piece = "".join(char for char, _ in group)  # wide characters' stubs are ""
                if piece:
                    texts.append(piece)
                    styles.append(style)
        if not texts:
            return BLANK_LINE
        if styles[-1] == DEFAULT_STYLE:
            trimmed = texts[-1].rstrip(" ")
            if trimmed:
                texts[-1] = trimmed
            else:
                texts.pop()
                styles.pop()
        text = "".join(texts)
        if all(style == DEFAULT_STYLE for style in styles):
            return StoredLine(text, ())
        runs = (
            intern.intern((len(piece), style)) for piece, style in zip(texts, styles, strict=True)
        )
        return StoredLine(text, tuple(runs))


_Done = _Row | StoredLine | Deferred | None
"""A finished row of a batch: a row model, a plain line (built or deferred), or blank."""


@dataclass(frozen=True, slots=True)
class Plan:
    """The effect of the first `consumed` characters of a batch, worked out by `plan`."""

    consumed: int
    y0: int
    """The cursor's row when the batch began: the first row the batch wrote."""
    done: list[_Done]
    """Rows the batch finished, from `y0` on."""
    row: _Row | None
    """The cursor's row at the end (None: blank)."""
    x: int
    """The cursor's column at the end (`columns` while a wrap is pending)."""
    style: Style
    """The SGR state at the end."""
    last_graphic: str
    """The last printable character, or empty (for `CSI b`)."""

    @property
    def advanced(self) -> int:
        """Rows the cursor moved down, counting those that scrolled the screen."""
        return len(self.done)


class _Chars(dict[str, Char]):
    """pyte `Char`s of one style by their text, made on first use."""

    def __init__(self, style: Style) -> None:
        super().__init__()
        self.style = style

    def __missing__(self, data: str) -> Char:
        char = self[data] = Char(data, *self.style)
        return char


class Skimmer:
    """Skims line output for one emulator; keeps the SGR and width lookups it learns."""

    def __init__(self, compactor: LineCompactor) -> None:
        self._compactor = compactor
        self._sgr: dict[tuple[Style, str], Style] = {}
        self._folds: dict[tuple[Style, tuple[str | None, ...]], tuple[Style, ...] | None] = {}
        self._narrow: dict[str, bool] = {}
        self._chars: dict[Style, _Chars] = {}
        self._drawn: dict[int, tuple[Line, _Done]] = {}
        """Screen row -> the line `apply` wrote there and what it showed."""
        self._owed: dict[int, _Done] = {}
        """Screen row -> what it shows, not drawn into pyte's buffer yet (see `settle`)."""
        self._scratch = pyte.Screen(1, 1)

    def discard(self) -> None:
        """The screen was reset: forget the rows owed to it."""
        self._owed.clear()
        self._drawn.clear()

    @property
    def owing(self) -> bool:
        """Some rows are not drawn yet: `settle` before anything else reads or writes the
        screen's buffer."""
        return bool(self._owed)

    def settle(self, screen: TrackedScreen, rows: Iterable[int] | None = None) -> None:
        """Draw the owed rows (or those of `rows` that are owed) into pyte's buffer.

        `apply` leaves the rows a batch wrote undrawn: the next batch mostly scrolls them off
        or writes them again, and a step of an agent nobody watches then costs only its
        bytes, not a whole screen of cells, so steps can be short. Whoever reads the
        screen, or feeds pyte, settles first (the emulator does).
        """
        owed = self._owed
        if not owed:
            return
        default = screen.default_char  # a pyte property that builds a new Char each time
        buffer = screen.buffer
        for y in list(owed) if rows is None else [y for y in rows if y in owed]:
            entry = owed.pop(y)
            line = self._line(entry, default)
            if line is not None:
                buffer[y] = line
                self._drawn[y] = (line, entry)

    # ---- planning ----------------------------------------------------------------------------

    def plan(self, text: str, screen: TrackedScreen) -> Plan | None:
        """The effect of the line-oriented start of `text` (which starts between sequences)
        on `screen`, or None when it is too short to be worth it."""
        columns, rows = screen.columns, screen.lines
        if text.count("\n") + len(text) // columns < MIN_LINES:
            return None
        cursor = screen.cursor
        y0 = cursor.y
        if self._owed:
            self.settle(screen, range(y0, rows))  # the rows this batch may write into
        buffer = screen.buffer
        tabstops = sorted(screen.tabstops)
        x = cursor.x
        style = style_of(cursor.attrs)
        graphic = ""
        done: list[_Done] = []
        v = y0
        row = _Row.of(buffer.get(y0), columns)
        position, end = 0, len(text)
        while position < end:
            if row is None and x == 0:
                # Whole lines of text and SGRs ended by CR LF, the common case, at once.
                after, v, style, last = self._plain_lines(text, position, style, v, screen, done)
                if after != position:
                    position = after
                    graphic = last or graphic
                    row = _Row.of(buffer.get(v), columns) if v < rows else None
                    continue
            token = _TOKEN.match(text, position)
            if token is None:
                break
            kind = token.lastindex
            if kind == _TEXT:
                piece = token[_TEXT]
                wide = False
                if not piece.isascii():
                    piece = clean_text(piece)
                    widths = {wcwidth(char) for char in set(piece)}
                    if not widths <= {1, 2}:
                        break  # a character pyte would drop or combine: leave it to pyte
                    wide = 2 in widths
                if piece:
                    graphic = piece[-1]
                if wide:
                    for char in piece:
                        if x == columns:
                            done.append(row)
                            v += 1
                            row = _Row.of(buffer.get(v), columns) if v < rows else None
                            x = 0
                        if row is None:
                            row = _Row()
                        width = wcwidth(char)
                        row.draw_char(char, width, style, x, columns)
                        x = min(x + width, columns)
                    position = token.end()
                    continue
                offset, length = 0, len(piece)
                while offset < length:
                    if x == columns:
                        done.append(row)
                        v += 1
                        row = _Row.of(buffer.get(v), columns) if v < rows else None
                        x = 0
                    if x == 0 and length - offset > columns:
                        # Whole rows, each wrapping into the next (a long line): in bulk.
                        full = (length - offset - 1) // columns
                        done += self._full_rows(piece, offset, full, style, columns)
                        v += full
                        offset += full * columns
                        row = _Row.of(buffer.get(v), columns) if v < rows else None
                    if row is None:
                        row = _Row()
                    room = columns - x
                    row.draw(piece[offset : offset + room], style, x)
                    x += min(room, length - offset)
                    offset += room
            elif kind == _SGR:
                changed = self._after_sgr(style, token[_SGR])
                if changed is None:
                    break
                style = changed
            elif kind in (_CRLF, _LF):
                if kind == _CRLF:
                    x = 0
                done.append(row)
                v += 1
                row = _Row.of(buffer.get(v), columns) if v < rows else None
            elif kind == _CR:
                x = 0
            elif kind == _TAB:
                x = next((stop for stop in tabstops if stop > x), columns - 1)
            else:
                if row is None:
                    row = _Row()
                row.erase(int(token[_EL] or 0), x, style, columns)
            position = token.end()
        if not done:
            return None
        return Plan(position, y0, done, row, x, style, graphic)

    def _plain_lines(
        self,
        text: str,
        position: int,
        style: Style,
        v: int,
        screen: TrackedScreen,
        done: list[_Done],
    ) -> tuple[int, int, Style, str]:
        """Take the plain lines at `position`, each drawn from column 0 of a blank row in
        the style the last left (one row each: text and SGRs ended by CR LF); add them to
        `done`. Returns where they end, the virtual row and style after them, and their
        last character. Stops at a line that is not plain, and when the next row is one
        still on screen (it may hold text: the row model's)."""
        columns, rows = screen.columns, screen.lines
        find, split, styles_of, append = text.find, _PLAIN_SPLIT.split, self._styles, done.append
        graphic = ""
        while True:
            newline = find("\n", position)
            if newline <= position or text[newline - 1] != "\r":
                break
            # CRs before the LF do nothing more than one does (a program writing CR LF in
            # cooked mode, with ONLCR, sends CR CR LF).
            line = text[position:newline].rstrip("\r")
            if "\x1b" in line:
                parts = split(line)
                styles = styles_of(style, tuple(parts[1::2]))
                if styles is None:
                    break
                visible = "".join(parts[::2])
                after = styles[-1]
            else:
                visible, after = line, style
            if len(visible) > columns or not visible.isprintable():
                break  # it wraps (maybe into rows still on screen), or a control or other
            if not visible.isascii() and not self._all_narrow(visible):
                break
            if visible is line and style == DEFAULT_STYLE:
                append(StoredLine(line.rstrip(" "), ()))
            else:
                append((line, style))
            style = after
            graphic = visible[-1] if visible else graphic
            position = newline + 1
            v += 1
            if v < rows:
                break
        return position, v, style, graphic

    def _parse(self, line: str, style: Style) -> tuple[list[str], tuple[Style, ...] | None, str]:
        """A plain line's text pieces, the style of each (None if not plain) and its text."""
        if "\x1b" not in line:
            return [line], (style,), line
        parts = _PLAIN_SPLIT.split(line)
        texts = parts[::2]
        return texts, self._styles(style, tuple(parts[1::2])), "".join(texts)

    def stored(self, row: Deferred) -> StoredLine:
        """Build a deferred scrollback row."""
        texts, styles, visible = self._parse(*row)
        assert styles is not None  # it was plain when deferred
        return self._stored_plain(visible, texts, styles)

    def _stored_plain(
        self, visible: str, texts: list[str], styles: tuple[Style, ...]
    ) -> StoredLine:
        """A one-row plain line as `LineCompactor.compact` would store pyte's cells."""
        lengths: list[int] = []
        kept: list[Style] = []
        previous = None
        for length, style in zip(map(len, texts), styles, strict=True):
            if length:
                if style is previous or style == previous:
                    lengths[-1] += length
                else:
                    lengths.append(length)
                    kept.append(style)
                    previous = style
        if not kept:
            return BLANK_LINE
        text = visible
        if kept[-1] == DEFAULT_STYLE:
            blanks = min(len(visible) - len(visible.rstrip(" ")), lengths[-1])
            text = visible[: len(visible) - blanks]
            lengths[-1] -= blanks
            if not lengths[-1]:
                lengths.pop()
                kept.pop()
        if kept.count(DEFAULT_STYLE) == len(kept):
            return StoredLine(text, ())
        return StoredLine(text, self._compactor.intern_all(list(zip(lengths, kept, strict=True))))

    def _full_rows(
        self, text: str, offset: int, count: int, style: Style, columns: int
    ) -> list[_Done]:
        """`count` rows filled from `text[offset:]`, one slice each."""
        slices = (
            text[start : start + columns]
            for start in range(offset, offset + count * columns, columns)
        )
        if style == DEFAULT_STYLE:
            return [StoredLine(piece.rstrip(" "), ()) for piece in slices]
        runs = (self._compactor.intern((columns, style)),)
        return [StoredLine(piece, runs) for piece in slices]

    # ---- applying ----------------------------------------------------------------------------

    def apply(
        self,
        plan: Plan,
        screen: TrackedScreen,
        history: deque[StoredLine | Deferred],
        *,
        untouched: bool,
    ) -> None:
        """Put `plan`'s effect on `screen`; append the rows it scrolls off to `history`.

        `untouched` says pyte changed no row since the last `apply`: rows it wrote
        then and scrolls off now are stored from what they were made of, unread. The
        rows the batch wrote are owed, not drawn (see `settle`).
        """
        columns, rows = screen.columns, screen.lines
        y0, done = plan.y0, plan.done
        end = y0 + plan.advanced
        scrolled = max(0, end - (rows - 1))
        old = dict(screen.buffer)
        drawn = self._drawn if untouched else {}
        owed = self._owed
        assert untouched or not owed, "pyte wrote to a screen with rows owed"
        # Rows that scrolled off, in order: the untouched ones above the batch's first row,
        # then its own; only as many as the history keeps are built.
        first = max(0, scrolled - (history.maxlen or 0))
        for w in range(first, scrolled):
            if w >= y0:
                history.append(self._history_row(done[w - y0], columns))
                continue
            if w in owed:
                history.append(self._history_row(owed[w], columns))
                continue
            line = old.get(w)
            known = drawn.get(w)
            if known is not None and known[0] is line:
                history.append(self._history_row(known[1], columns))
            else:
                history.append(self._compactor.compact(line, columns))
        buffer = screen.buffer
        buffer.clear()
        now: dict[int, tuple[Line, _Done]] = {}
        still: dict[int, _Done] = {}
        for y in range(rows):
            w = y + scrolled
            if w < y0 or w > end:
                # Untouched: above the batch, or below the cursor.
                if w in owed:
                    still[y] = owed[w]
                    continue
                line = old.get(w)
                known = drawn.get(w)
                if line and known is not None and known[0] is line:
                    now[y] = known
                if line:
                    buffer[y] = line
            else:
                entry = done[w - y0] if w < end else plan.row
                if entry is not None:
                    still[y] = entry
        self._drawn = now
        self._owed = still
        cursor = screen.cursor
        cursor.x, cursor.y = plan.x, end - scrolled
        cursor.attrs = Char(" ", *plan.style)
        screen.dirty.update(range(rows) if scrolled else range(y0, end + 1))

    def _history_row(self, entry: _Done, columns: int) -> StoredLine | Deferred:
        if entry is None:
            return BLANK_LINE
        if isinstance(entry, _Row):
            return entry.stored(columns, self._compactor)
        return entry

    def _runs(self, entry: _Done) -> list[tuple[str, Style]]:
        """A finished row from column 0: runs of narrow text in one style, or its cells."""
        if entry is None:
            return []
        if isinstance(entry, _Row):
            if entry.cells is not None:
                return entry.cells
            return list(zip(entry.texts, entry.styles, strict=True))
        if not isinstance(entry, StoredLine):
            texts, styles, _ = self._parse(*entry)
            assert styles is not None  # it was plain when deferred
            return [(text, style) for text, style in zip(texts, styles, strict=True) if text]
        if not entry.runs:
            return [(entry.text, DEFAULT_STYLE)] if entry.text else []
        runs: list[tuple[str, Style]] = []
        offset = 0
        for length, style in entry.runs:
            runs.append((entry.text[offset : offset + length], style))
            offset += length
        return runs

    def _line(self, entry: _Done, default: Char) -> Line | None:
        """A pyte line showing `entry`, or None for a blank one."""
        runs = self._runs(entry)
        if not runs:
            return None
        line: Line = StaticDefaultDict(default)
        if isinstance(entry, _Row) and entry.cells is not None:
            # One cell each: a character, maybe with combining marks, or a wide one's stub "".
            line.update(enumerate(self._charset(style)[data] for data, style in runs))
            return line
        x = 0
        for text, style in runs:  # narrow characters: one cell each
            chars = self._charset(style)
            line.update(zip(range(x, x + len(text)), map(chars.__getitem__, text), strict=True))
            x += len(text)
        return line

    def _charset(self, style: Style) -> _Chars:
        chars = self._chars.get(style)
        if chars is None:
            if len(self._chars) >= _STYLES_LIMIT:
                self._chars.clear()
            chars = self._chars[style] = _Chars(style)
        return chars

    # ---- lookups -----------------------------------------------------------------------------

    def _styles(self, style: Style, bodies: tuple[str | None, ...]) -> tuple[Style, ...] | None:
        """The style of each text piece of a plain line split at its SGRs (None in
        `bodies` is an EL), the first being `style`; None if the line erases in a style
        other than the default (the row would not be plain text) or an SGR is invalid."""
        key = (style, bodies)
        if key in self._folds:
            return self._folds[key]
        styles: list[Style] | None = [style]
        for body in bodies:
            assert styles is not None
            now = styles[-1]
            after = (
                (now if now == DEFAULT_STYLE else None)
                if body is None
                else self._after_sgr(now, body)
            )
            if after is None:
                styles = None
                break
            styles.append(after)
        result = tuple(styles) if styles is not None else None
        if len(self._folds) >= _CACHE_LIMIT:
            self._folds.clear()
        self._folds[key] = result
        return result

    def _all_narrow(self, text: str) -> bool:
        """True if every character of `text` is one cell wide and kept by vtparse."""
        narrow = self._narrow
        for char in set(text):
            ok = narrow.get(char)
            if ok is None:
                if len(narrow) >= _CACHE_LIMIT:
                    narrow.clear()
                ok = narrow[char] = char.isascii() or (
                    wcwidth(char) == 1 and clean_text(char) == char
                )
            if not ok:
                return False
        return True

    def _after_sgr(self, style: Style, body: str) -> Style | None:
        """The style after `CSI body m`, as pyte computes it; None if we would not apply it."""
        key = (style, body)
        after = self._sgr.get(key)
        if after is None:
            if _VALID_SGR.fullmatch(body) is None:
                return None
            scratch = self._scratch
            scratch.cursor.attrs = Char(" ", *style)
            params = [min(int(p), 9999) if p else 0 for p in body.split(";")]
            try:
                scratch.select_graphic_rendition(*params)
            except Exception:
                return None
            if len(self._sgr) >= _CACHE_LIMIT:
                self._sgr.clear()
            after = self._sgr[key] = style_of(scratch.cursor.attrs)
        return after
