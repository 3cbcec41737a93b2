"""Horizontal bars with a typical and a high value: solid to the median, shaded to the p90."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

SOLID = "█"
SHADE = "░"


@dataclass(frozen=True, slots=True)
class RangeRow:
    """One row: a label, the typical and the high value, and a note said after the bar."""

    label: str
    low: float
    high: float
    note: str


def range_bar(low: float, high: float, peak: float, width: int) -> tuple[int, int]:
    """(solid cells, shaded cells) for one row; a non-zero value always gets a cell."""
    if width <= 0 or peak <= 0:
        return 0, 0
    solid = round(width * min(low, peak) / peak)
    total = round(width * min(max(high, low), peak) / peak)
    if low > 0:
        solid = max(1, solid)
    if high > 0:
        total = max(solid, total, 1)
    return solid, total - solid


class RangeChart(Widget):
    """One row per period, oldest first, all scaled to the highest value.

    When the rows outnumber the lines, the newest are shown (like `BarChart`'s bars).

    The two parts differ in their characters, not only their colour, so the chart reads
    in monochrome. Labels and notes are ours (dates and figures).
    """

    DEFAULT_CSS = """
    RangeChart { height: 1fr; width: 1fr; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "range-chart--low",
        "range-chart--high",
        "range-chart--label",
    }

    rows: reactive[tuple[RangeRow, ...]] = reactive(())
    """The periods, oldest first."""
    empty_text: reactive[str] = reactive("nothing to show yet")

    def set_rows(self, rows: Sequence[RangeRow]) -> None:
        """Replace the rows."""
        self.rows = tuple(rows)

    def render(self) -> Text:
        label_style = self.get_component_rich_style("range-chart--label")
        peak = max((max(row.low, row.high) for row in self.rows), default=0.0)
        if peak <= 0:
            return Text(self.empty_text, style=label_style)
        label_width = max(len(row.label) for row in self.rows) + 1
        note_width = max(len(row.note) for row in self.rows) + 1
        bar_width = max(4, self.size.width - label_width - note_width)
        low_style = self.get_component_rich_style("range-chart--low")
        high_style = self.get_component_rich_style("range-chart--high")
        out = Text(no_wrap=True, overflow="crop")
        for index, row in enumerate(self.rows[-max(1, self.size.height) :]):
            if index:
                out.append("\n")
            solid, shaded = range_bar(row.low, row.high, peak, bar_width)
            out.append(row.label.ljust(label_width), label_style)
            out.append(SOLID * solid, low_style)
            out.append(SHADE * shaded, high_style)
            out.append(" " * (bar_width - solid - shaded + 1))
            out.append(row.note, label_style)
        return out
