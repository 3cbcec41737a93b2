"""The top line: town, agents by state, the daemon link, the clock."""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from rich.text import Text
from textual.widget import Widget

from tundra_tui.domain.agents import AgentState
from tundra_tui.domain.sanitize import visible

SHOWN = (AgentState.WORKING, AgentState.IDLE, AgentState.AWAITING_APPROVAL, AgentState.UNKNOWN)


class TitleBar(Widget):
    """Redrawn by the app when states or the link change; holds no data of its own."""

    DEFAULT_CSS = """
    TitleBar { height: 1; width: 1fr; }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "title-bar--name",
        "title-bar--down",
        "title-bar--waiting",
    }

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.town = ""
        self.states: list[AgentState] = []
        self.waiting = 0
        self.connected = False
        self.clock = ""
        self.demo = False

    def render(self) -> Text:
        left = Text(no_wrap=True, overflow="crop")
        left.append(" auto-tundra ", self.get_component_rich_style("title-bar--name"))
        left.append(" " + visible(self.town, single_line=True, limit=40))
        if self.demo:
            left.append("  (demo)")
        right = Text(no_wrap=True)
        counts = Counter(self.states)
        right.append(" ".join(f"{s.glyph}{counts[s]}" for s in SHOWN))
        right.append(f"  [{len(self.states)} agents]")
        if self.waiting:
            right.append(
                f"  {self.waiting} waiting", self.get_component_rich_style("title-bar--waiting")
            )
        if self.connected:
            right.append("  daemon up")
        else:
            right.append("  daemon down", self.get_component_rich_style("title-bar--down"))
        right.append(f"  {self.clock} ")
        width = self.size.width or 80
        gap = width - left.cell_len - right.cell_len
        if gap < 1:
            left.truncate(max(0, width - right.cell_len - 1), overflow="ellipsis")
            gap = max(1, width - left.cell_len - right.cell_len)
        return Text.assemble(left, " " * gap, right)
