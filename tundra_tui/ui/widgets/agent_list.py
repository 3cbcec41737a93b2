"""The Agents tab's list: one line per agent with its status glyph, model and waiting requests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.events import Resize
from textual.geometry import Size
from textual.widgets import OptionList
from textual.widgets.option_list import OptionDoesNotExist

from tundra_tui.domain.agents import AgentState
from tundra_tui.ui.agent_rows import AgentRow
from tundra_tui.ui.widgets.focus_look import FocusLook

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
    if row.note:
        tail.append((f" {row.note}", "$foreground-muted"))
    if row.trouble:
        tail.append((f" {row.trouble}", "$error"))
    full = Content.assemble(
        glyph, " ", name, waiting, *([(f" {row.role}", "")] if row.role else []), *tail
    )
    if width <= 0 or full.cell_length <= width:
        return full
    short = Content.assemble(glyph, " ", name, waiting, *tail)
    return short if short.cell_length <= width else short.truncate(width, ellipsis=True)


class AgentList(FocusLook, OptionList):
    """Agents by name; the highlighted one is the selection the pane's keys act on."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="agents-list-down"),
        Binding("k", "cursor_up", "Up", show=False, id="agents-list-up"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[AgentRow] = []
        self._sized = Size(0, 0)
        """The size of the last Resize."""

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
        names = [row.name for row in rows]
        same_agents = names == [row.name for row in self._rows]
        self._rows = list(rows)
        if same_agents:
            # The common case (a state or approval change): redraw prompts, keep the cursor.
            self._redraw()
            return
        self.set_options(self._prompts())
        if self._rows:
            self.highlighted = names.index(keep) if keep in names else 0

    def _prompts(self) -> list[Content]:
        """Every row as one line cut to the list's width, names in one column."""
        name_width = min(16, max((len(row.label) for row in self._rows), default=0))
        width = self.scrollable_content_region.width or self.size.width
        return [row_content(row, width, name_width) for row in self._rows]

    def _redraw(self) -> None:
        # Only the rows that changed: each replaced prompt repaints the whole list, and a
        # repaint far from the grabbed tile's echo row makes Textual redraw everything
        # between the two in the echo's frame (it draws the union of what is dirty).
        for index, prompt in enumerate(self._prompts()):
            try:
                old = self.get_option_at_index(index).prompt
            except OptionDoesNotExist:
                old = None
            if not (
                isinstance(old, Content)
                and old.plain == prompt.plain
                and list(old.spans) == list(prompt.spans)
            ):
                self.replace_option_prompt_at_index(index, prompt)

    def on_resize(self, event: Resize) -> None:
        # Showing the tab again resizes the list to the size it had: OptionList would drop
        # every rendered line, and the prompts, cut to the width, are the same.
        if event.size == self._sized:
            event.prevent_default()
            return
        self._sized = event.size
        self._redraw()
