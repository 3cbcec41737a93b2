"""One line of numbered tab titles; narrow terminals show numbers and the active title only."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class TabBar(Widget):
    """Shows `1 Dashboard 2 Agents ...` with the active tab highlighted.

    The titles are ours (never untrusted). When every title does not fit, the other
    tabs shrink to their number, so nothing is cut mid-word at 80 columns.
    """

    DEFAULT_CSS = """
    TabBar { height: 1; width: 1fr; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"tab-bar--active", "tab-bar--number"}

    active: reactive[str] = reactive("")
    """The id of the tab being shown."""

    def __init__(self, tabs: list[tuple[str, str]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tabs = tabs

    def render(self) -> Text:
        width = self.size.width or 80
        full = self._line(compact=False)
        return full if full.cell_len <= width else self._line(compact=True)

    def _line(self, *, compact: bool) -> Text:
        line = Text(no_wrap=True, overflow="crop")
        active = self.get_component_rich_style("tab-bar--active")
        number = self.get_component_rich_style("tab-bar--number")
        for index, (tab_id, title) in enumerate(self.tabs, 1):
            if index > 1:
                line.append(" ")
            if tab_id == self.active:
                line.append(f" {index} {title} ", active)
            elif compact:
                line.append(f" {index} ", number)
            else:
                line.append(f" {index}", number)
                line.append(f" {title} ")
        return line
