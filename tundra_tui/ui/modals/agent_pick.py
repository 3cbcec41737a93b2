"""Who takes a backlog bead: an agent by name (its state and role shown), or dispatch.

The board's `L` on a Backlog card opens this instead of the edit form. It writes nothing:
it dismisses with the agent's name, `DISPATCH` to leave the bead for the dispatcher, or
None when cancelled (escape), and the pane sends the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from tundra_tui.domain.sanitize import visible

DISPATCH = "\x00dispatch"
"""The choice that leaves the bead ready in Backlog (no agent name can contain NUL)."""
NAME_WIDTH = 18
"""Columns kept for an agent's name before its state and role."""


@dataclass(frozen=True, slots=True)
class AgentChoice:
    """One agent as the picker lists it."""

    name: str
    state: str
    role: str


def _label(agent: AgentChoice) -> Text:
    name = visible(agent.name, single_line=True, limit=NAME_WIDTH)
    return Text.assemble(
        (f"{name:<{NAME_WIDTH}}", "bold"),
        f" {visible(agent.state, single_line=True):<9}",
        (f" {visible(agent.role, single_line=True)}", "dim"),
        no_wrap=True,
        overflow="ellipsis",
    )


class AgentPick(ModalScreen[str | None]):
    """Pick who takes `title`: one row per agent, then "let dispatch take it"."""

    DEFAULT_CSS = """
    AgentPick {
        align: center middle;
        background: $background 60%;
    }
    AgentPick > #agent-pick-box {
        width: 80%;
        max-width: 64;
        height: auto;
        max-height: 90%;
        border: round $accent;
        background: $panel;
        padding: 0 1;
    }
    AgentPick #agent-pick-title {
        text-style: bold;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    AgentPick #agent-pick-list {
        height: auto;
        max-height: 16;
    }
    AgentPick #agent-pick-keys {
        color: $text-muted;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="agent-pick-cancel"),
        Binding("j", "cursor(1)", "Next", id="agent-pick-down", show=False),
        Binding("k", "cursor(-1)", "Previous", id="agent-pick-up", show=False),
    ]

    def __init__(self, title: str, agents: Sequence[AgentChoice]) -> None:
        super().__init__()
        self.heading = title
        self.agents = list(agents)

    def compose(self) -> ComposeResult:
        options = [Option(_label(agent), id=agent.name) for agent in self.agents]
        options.append(Option(Text("let dispatch take it", "italic"), id=DISPATCH))
        with Vertical(id="agent-pick-box"):
            yield Static(Text(self.heading), id="agent-pick-title")
            yield OptionList(*options, id="agent-pick-list")
            yield Static(Text("j/k move   Enter pick   Esc cancel"), id="agent-pick-keys")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.highlighted = 0
        options.focus()

    def action_cursor(self, step: int) -> None:
        """Move the highlight (j/k, as well as the arrows)."""
        options = self.query_one(OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)
