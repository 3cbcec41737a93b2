"""A screen's colour sidecar: our emulator's style runs re-rendered as SGR-coloured text.

The version matrix (issue 14) keeps each capture's plain text, which the detector reads,
and beside it ``<name>.ansi``: the same rows with their colours, so ``cat x.ansi`` in a
terminal shows the screen as it was. Stripping every CSI sequence (``strip``) gives the
``.txt`` back exactly; the recorder checks that before it writes a sidecar.

pyte keeps 16 colours by name and turns 256-colour indices into hex; a hex in the xterm
cube or grey ramp (indices 16-255) is written back as ``38;5;n``, any other hex as
truecolour. Dim, blink and strikethrough are not rendered (pyte drops dim; the emulator's
``CellRun`` carries neither of the others).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pyte.graphics import FG_BG_256

from tundra_tui.session.emulator import CellRun

RESET = "\x1b[0m"
CSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NAMES = ("black", "red", "green", "brown", "blue", "magenta", "cyan", "white")
_INDEX_256 = {hex_: index for index, hex_ in enumerate(FG_BG_256) if index >= 16}
_HEX = re.compile(r"[0-9a-f]{6}")

Cell = tuple[str, CellRun]
"""One character and the run it came from (only the run's style is read)."""


def _colour(value: str, base: int) -> list[str]:
    """SGR parameters for fg (``base`` 30) or bg (40); pyte's names, or hex."""
    if value == "default":
        return []
    name = value.removeprefix("bright")
    if name == "bfightmagenta":  # pyte's own spelling of background 105
        name, value = "magenta", "brightmagenta"
    if name in _NAMES:
        return [str(base + (60 if value.startswith("bright") else 0) + _NAMES.index(name))]
    if _HEX.fullmatch(value):
        if value in _INDEX_256:
            return [str(base + 8), "5", str(_INDEX_256[value])]
        return [str(base + 8), "2", *(str(int(value[i : i + 2], 16)) for i in (0, 2, 4))]
    return []


def sgr(run: CellRun) -> str:
    """The SGR that sets exactly ``run``'s style from a reset state ("" for the default)."""
    params = [
        *(["1"] if run.bold else []),
        *(["3"] if run.italics else []),
        *(["4"] if run.underscore else []),
        *(["7"] if run.reverse else []),
        *_colour(run.fg, 30),
        *_colour(run.bg, 40),
    ]
    return f"\x1b[{';'.join(params)}m" if params else ""


def _style(run: CellRun) -> tuple[object, ...]:
    return tuple(run[1:])


def cells(runs: Sequence[CellRun]) -> list[Cell]:
    """A row's runs as one entry per character."""
    return [(char, run) for run in runs for char in run.text]


def replace(row: list[Cell], old: str, new: str) -> list[Cell]:
    """``str.replace`` on a row of cells; the new text takes the style of the old's first
    character (the recorder hides temp paths and ports this way)."""
    text = "".join(char for char, _ in row)
    out: list[Cell] = []
    position = 0
    while old and (found := text.find(old, position)) >= 0:
        out.extend(row[position:found])
        out.extend((char, row[found][1]) for char in new)
        position = found + len(old)
    out.extend(row[position:])
    return out


def render_row(row: Sequence[Cell]) -> str:
    """One row as SGR-coloured text ending in a reset. Trailing blanks are not written as
    spaces (the ``.txt`` drops them): a coloured tail is painted by ECH (``CSI n X``, which
    erases with the current background without moving the cursor)."""
    text = "".join(char for char, _ in row)
    kept = len(text.rstrip())  # as the .txt strips: Claude's prompt ends in U+00A0
    parts: list[str] = []
    current: tuple[object, ...] | None = None
    styled = False  # a non-default SGR is in force
    for char, run in row[:kept]:
        if _style(run) != current:
            code = sgr(run)
            parts.append((RESET if styled else "") + code)
            current, styled = _style(run), bool(code)
        parts.append(char)
    tail, at, start = row[kept:], 0, 0
    while start < len(tail):
        end = start
        while end < len(tail) and _style(tail[end][1]) == _style(tail[start][1]):
            end += 1
        code = sgr(tail[start][1])
        if code:
            move = f"\x1b[{start - at}C" if start > at else ""
            parts.append(f"{RESET if styled else ''}{move}{code}\x1b[{end - start}X")
            at, styled = start, True
        start = end
    return "".join(parts) + RESET


def render(rows: Sequence[Sequence[Cell]]) -> str:
    """Rows as the sidecar's text: one line per row, trailing blank rows dropped."""
    lines = [render_row(row) for row in rows]
    while lines and not strip(lines[-1]):
        lines.pop()
    return "".join(line + "\n" for line in lines)


def strip(text: str) -> str:
    """The plain text of a sidecar (every CSI sequence removed)."""
    return CSI.sub("", text)
