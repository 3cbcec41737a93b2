"""Vertical bars drawn with eighth blocks, newest on the right, as many as the width holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

EIGHTHS = " ▁▂▃▄▅▆▇█"
MAX_BAR_WIDTH = 5


def bar_layout(count: int, width: int) -> tuple[int, int, int]:
    """(bars shown, bar width, gap) for `count` bars in `width` cells.

    Bars get a one-cell gap when there is room for it; when even one cell per bar does not
    fit, only the newest `width` bars are shown.
    """
    if count <= 0 or width <= 0:
        return 0, 0, 0
    slot = width // count
    if slot >= 2:
        return count, min(MAX_BAR_WIDTH, slot - 1), 1
    if slot == 1:
        return count, 1, 0
    shown = (width + 1) // 2
    return shown, 1, 1


def column(value: float, peak: float, rows: int) -> list[str]:
    """One bar's characters, top row first; a non-zero value always shows at least 1/8."""
    if rows <= 0:
        return []
    eighths = 0
    if value > 0 and peak > 0:
        eighths = max(1, round(8 * rows * min(value, peak) / peak))
    cells = [EIGHTHS[min(8, max(0, eighths - 8 * row))] for row in range(rows)]
    return cells[::-1]


class BarChart(Widget):
    """A bar per (label, value), scaled to the largest, with the peak on the axis.

    Labels and values are ours (dates and counts), never untrusted text. The last row
    holds the x labels, spaced so they never overlap.
    """

    DEFAULT_CSS = """
    BarChart { height: 8; width: 1fr; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"bar-chart--bar", "bar-chart--axis"}

    data: reactive[tuple[tuple[str, float], ...]] = reactive(())
    """The bars, oldest first: (x label, value)."""
    empty_text: reactive[str] = reactive("nothing to show yet")
    """Said instead of an empty chart."""

    def __init__(
        self,
        *,
        format_value: Callable[[float], str] = lambda value: f"{value:g}",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.format_value = format_value

    @property
    def shown(self) -> int:
        """How many bars fit at the current size (the newest ones are drawn)."""
        return bar_layout(len(self.data), self.size.width - self._gutter())[0]

    def set_data(self, data: Sequence[tuple[str, float]]) -> None:
        """Replace the bars."""
        self.data = tuple(data)

    def _gutter(self) -> int:
        peak = max((value for _, value in self.data), default=0.0)
        return max(len(self.format_value(peak)), len(self.format_value(peak / 2)), 1) + 1

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        peak = max((value for _, value in self.data), default=0.0)
        if not self.data or peak <= 0:
            return Text(self.empty_text, style=self.get_component_rich_style("bar-chart--axis"))
        gutter = self._gutter()
        shown, bar_width, gap = bar_layout(len(self.data), width - gutter)
        bars = self.data[-shown:]
        rows = max(1, height - 1)
        columns = [column(value, peak, rows) for _, value in bars]
        axis = self.get_component_rich_style("bar-chart--axis")
        bar_style = self.get_component_rich_style("bar-chart--bar")
        out = Text(no_wrap=True, overflow="crop")
        middle = rows // 2 if rows >= 8 else -1
        for row in range(rows):
            label = ""
            if row == 0:
                label = self.format_value(peak)
            elif row == rows - 1:
                label = self.format_value(0)
            elif row == middle:
                label = self.format_value(peak * (rows - row) / rows)
            out.append(label.rjust(gutter - 1) + "│", axis)
            for cells in columns:
                out.append(cells[row] * bar_width, bar_style)
                out.append(" " * gap)
            out.append("\n")
        out.append(self._x_labels(bars, gutter, bar_width + gap), axis)
        return out

    @staticmethod
    def _x_labels(bars: Sequence[tuple[str, float]], gutter: int, slot: int) -> str:
        line = " " * gutter
        for index, (label, _) in enumerate(bars):
            start = gutter + index * slot
            if start >= len(line) + (1 if index else 0):
                line = line.ljust(start) + label
        return line
