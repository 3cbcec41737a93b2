"""A weekday x hour heatmap whose intensity is in the characters (" ░▒▓█"), colour only helps."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tundra_tui.usage.analysis import SHADES, WEEKDAYS, Heatmap

LABEL_WIDTH = 4
MAX_CELL = 5
MAX_ROW_HEIGHT = 3


def cell_width(width: int) -> int:
    """Columns per hour: 1 on a narrow pane, up to MAX_CELL on a wide one."""
    return min(MAX_CELL, max(1, (width - LABEL_WIDTH) // 24))


def hour_axis(cell: int) -> str:
    """The hour labels over the grid: every hour when they fit, else every third."""
    step = 1 if cell >= 3 else 3
    line = " " * LABEL_WIDTH
    for hour in range(0, 24, step):
        line = line.ljust(LABEL_WIDTH + hour * cell) + str(hour)
    return line


def row_height(height: int) -> int:
    """Lines per weekday: one in the minimum 9 lines, up to MAX_ROW_HEIGHT when taller."""
    return min(MAX_ROW_HEIGHT, max(1, (height - 2) // 7))


class HeatmapChart(Widget):
    """Seven weekday rows (Monday first) of 24 hour cells, an hour axis and a legend.

    Cells grow wider and weekdays taller with the widget, so a big terminal gets a big map.
    """

    DEFAULT_CSS = """
    HeatmapChart { height: 9; width: 1fr; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "heatmap-chart--axis",
        "heatmap-chart--level-1",
        "heatmap-chart--level-2",
        "heatmap-chart--level-3",
        "heatmap-chart--level-4",
    }

    heat: reactive[Heatmap | None] = reactive(None)
    """What to draw; None or an empty map shows `empty_text`."""
    empty_text: reactive[str] = reactive("no activity recorded yet")

    def __init__(
        self,
        *,
        format_value: Callable[[float], str] = lambda value: f"{value:g}",
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.format_value = format_value

    def render(self) -> Text:
        axis = self.get_component_rich_style("heatmap-chart--axis")
        heat = self.heat
        if heat is None or heat.peak <= 0:
            return Text(self.empty_text, style=axis)
        cell, lines = cell_width(self.size.width), row_height(self.size.height)
        # With room to spare a gap between hours keeps the columns countable.
        ink = cell - 1 if cell >= 3 else cell
        levels = [self.get_component_rich_style(f"heatmap-chart--level-{n}") for n in range(1, 5)]
        out = Text(no_wrap=True, overflow="crop")
        out.append(hour_axis(cell) + "\n", axis)
        for weekday, name in enumerate(WEEKDAYS):
            for line in range(lines):
                out.append((name if line == lines // 2 else "").ljust(LABEL_WIDTH), axis)
                for hour in range(24):
                    level = heat.level(weekday, hour)
                    style = levels[level - 1] if level else axis
                    out.append(SHADES[level] * ink, style)
                    out.append(" " * (cell - ink))
                out.append("\n")
        out.append(" " * LABEL_WIDTH + "less ", axis)
        for level in range(1, 5):
            out.append(SHADES[level], levels[level - 1])
        out.append(" more", axis)
        busiest = heat.busiest()
        if busiest is not None:
            weekday, hour, value = busiest
            out.append(
                f" · peak {WEEKDAYS[weekday]} {hour:02d}:00 ({self.format_value(value)})", axis
            )
        return out
