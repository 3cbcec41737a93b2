"""A read-only table of cost groups with vim motions and a share bar per row."""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

LEFT_EIGHTHS = " ▏▎▍▌▋▊▉"


def share_bar(share: float, width: int) -> str:
    """A horizontal bar `width` cells long at 100%, in eighth-cell steps (left blocks)."""
    if width <= 0 or share <= 0:
        return ""
    eighths = max(1, round(8 * width * min(share, 100.0) / 100))
    full, part = divmod(eighths, 8)
    return "█" * full + LEFT_EIGHTHS[part].strip()


class CostTable(DataTable[Text]):
    """Rows are whole-row cursor selections; cells are always `Text`, never markup."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="costs-table-down"),
        Binding("k", "cursor_up", "Up", show=False, id="costs-table-up"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = DataTable.COMPONENT_CLASSES | {"cost-table--bar"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    @property
    def bar_style(self) -> Style:
        """The share bars' colour, from the theme."""
        return self.get_component_rich_style("cost-table--bar", partial=True)
