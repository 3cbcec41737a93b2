"""The Agents tab's list: one line per agent with its status glyph, model and waiting requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from tundra_tui.domain.agents import AgentState
from tundra_tui.ui.agent_rows import AgentRow

GLYPH_STYLES: dict[AgentState, str] = {
    AgentState.WORKING: "$success",
    AgentState.IDLE: "$accent",
    AgentState.AWAITING_APPROVAL: "bold $warning",
    AgentState.UNKNOWN: "$foreground-muted",
    AgentState.QUEUED: "$foreground-muted",
    AgentState.STOPPED: "$foreground-muted",
    AgentState.EXITED: "$foreground-muted",
    AgentState.FAILED: "bold $error",
    AgentState.LOST: "$error",
}
"""Colour of each state's glyph; theme variables, so 16-colour terminals get a sensible one."""


def row_content(row: AgentRow, width: int, name_width: int) -> Content:
    """One agent as a single line no wider than `width`: never wrapped, cut with an ellipsis.

    The glyph, name and waiting count come first, so they survive a narrow list;
    the role is the first thing dropped.
    """
    glyph = (row.state.glyph, GLYPH_STYLES.get(row.state, ""))
    name = row.label.ljust(name_width)
    waiting = (f" !{row.pending}", "bold $warning") if row.pending else ("", "")
    tail = [(f" {row.engine}", "$foreground-muted")] if row.engine else []
    if row.trouble:
        tail.append((f" {row.trouble}", "$error"))
    full = Content.assemble(
        glyph, " ", name, waiting, *([(f" {row.role}", "")] if row.role else []), *tail
    )
    if width <= 0 or full.cell_length <= width:
        return full
    short = Content.assemble(glyph, " ", name, waiting, *tail)
    return short if short.cell_length <= width else short.truncate(width, ellipsis=True)


class AgentList(OptionList):
    """Agents by name; the highlighted one is the selection the pane's keys act on."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="agents-list-down"),
        Binding("k", "cursor_up", "Up", show=False, id="agents-list-up"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[AgentRow] = []

    @property
    def rows(self) -> Sequence[AgentRow]:
        """The agents listed, in order."""
        return self._rows

    @property
    def selected(self) -> AgentRow | None:
        """The highlighted agent, if any."""
        index = self.highlighted
        return self._rows[index] if index is not None and index < len(self._rows) else None

    def show_rows(self, rows: Sequence[AgentRow], keep: str | None = None) -> None:
        """List `rows`, keeping `keep` (or the current agent) highlighted where possible."""
        keep = keep if keep is not None else (self.selected.name if self.selected else None)
        same_agents = [r.name for r in rows] == [r.name for r in self._rows]
        self._rows = list(rows)
        if same_agents:
            # The common case (a state or approval change): redraw prompts, keep the cursor.
            for index in range(len(self._rows)):
                self.replace_option_prompt_at_index(index, self._prompt(index))
            return
        names = [row.name for row in self._rows]
        self.set_options(Option(self._prompt(i), id=None) for i in range(len(self._rows)))
        if self._rows:
            self.highlighted = names.index(keep) if keep in names else 0

    def _prompt(self, index: int) -> Content:
        name_width = min(16, max((len(row.label) for row in self._rows), default=0))
        width = self.scrollable_content_region.width or self.size.width
        return row_content(self._rows[index], width, name_width)

    def on_resize(self) -> None:
        for index in range(len(self._rows)):
            self.replace_option_prompt_at_index(index, self._prompt(index))
