"""Colours and styles of an agent's screen runs as Rich styles (plain Python, no Textual).

pyte names colours the way the VT100 did ("brown" is yellow); 256-colour and 24-bit
colours arrive as 6-digit hex. Styles are shared by every run with the same attributes,
in a cache with a fixed bound.
"""

from __future__ import annotations

from rich.color import Color, ColorParseError
from rich.style import Style

from tundra_tui.ui.remote_screen import Run

MAX_CACHED_STYLES = 4096
"""Distinct run styles remembered; a screen full of 24-bit colours cannot grow it further."""

_ANSI = frozenset({"black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"})
_styles: dict[tuple[str, str, bool, bool, bool, bool], Style] = {}


def rich_color(name: str) -> Color | None:
    """A pyte colour name (or 6-digit hex) as a Rich colour; None means the theme's default.

    Named colours stay ANSI colours, so they follow the terminal's palette in 16 colours.
    """
    if not name or name == "default":
        return None
    base = name.removeprefix("bright")
    base = "yellow" if base == "brown" else base
    if base in _ANSI:
        return Color.parse(f"bright_{base}" if name.startswith("bright") else base)
    if len(name) == 6:
        try:
            return Color.parse(f"#{name}")
        except ColorParseError:
            return None
    return None


def run_style(run: Run) -> Style:
    """The Rich style of one run, shared by every run with the same attributes."""
    key = (run.fg, run.bg, run.bold, run.italics, run.underscore, run.reverse)
    style = _styles.get(key)
    if style is None:
        if len(_styles) >= MAX_CACHED_STYLES:
            _styles.clear()
        style = _styles[key] = Style(
            color=rich_color(run.fg),
            bgcolor=rich_color(run.bg),
            bold=run.bold or None,
            italic=run.italics or None,
            underline=run.underscore or None,
            reverse=run.reverse or None,
        )
    return style
