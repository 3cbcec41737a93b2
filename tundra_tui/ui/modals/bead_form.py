"""The bead form: create a bead, or edit one's title, description, lane, priority and agent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static, TextArea

from tundra_tui.domain.beads import (
    MAX_TITLE,
    PRIORITY_DEFAULT,
    PRIORITY_MAX,
    PRIORITY_MIN,
    Bead,
    BeadStatus,
    Lane,
    validate_description,
    validate_title,
)
from tundra_tui.domain.errors import TundraError
from tundra_tui.domain.kanban import ASSIGNABLE, BeadDraft
from tundra_tui.domain.sanitize import visible


class BeadForm(ModalScreen[BeadDraft | None]):
    """Dismisses with a validated draft, or None when cancelled; it writes nothing itself.

    The agent can be chosen only while the bead is open or hooked: picking one hooks
    the bead, and once it is slung the agent holding it is fixed.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="bead-form-save"),
        Binding("escape", "cancel", "Cancel", id="bead-form-cancel"),
    ]

    def __init__(self, *, agents: Sequence[str], bead: Bead | None = None) -> None:
        super().__init__()
        self.bead = bead
        names = list(agents)
        if bead is not None and bead.assignee and bead.assignee not in names:
            names.append(bead.assignee)
        self.agents = names

    def compose(self) -> ComposeResult:
        bead = self.bead
        heading = f"Edit {bead.ref}" if bead else "New bead"
        status = bead.status if bead else BeadStatus.BACKLOG
        with Vertical(id="bead-form-box"):
            yield Static(Text(heading), id="bead-form-heading")
            yield Label("Title")
            yield Input(
                bead.title if bead else "",
                placeholder="what needs doing (one line)",
                max_length=MAX_TITLE,
                id="bead-form-title",
                compact=True,
            )
            yield Label("Description")
            yield TextArea(
                bead.description if bead else "",
                soft_wrap=True,
                id="bead-form-description",
                compact=True,
            )
            with Horizontal(id="bead-form-choice-labels"):
                yield Label("Lane")
                yield Label("Priority (P0 first)")
                yield Label("Agent (hooks it)")
            with Horizontal(id="bead-form-choices"):
                yield Select(
                    [(Text(f"{lane.glyph} {lane.value}"), lane) for lane in Lane],
                    value=bead.lane if bead else Lane.STANDARD,
                    allow_blank=False,
                    id="bead-form-lane",
                    compact=True,
                )
                yield Select(
                    [(Text(f"P{p}"), p) for p in range(PRIORITY_MIN, PRIORITY_MAX + 1)],
                    value=bead.priority if bead else PRIORITY_DEFAULT,
                    allow_blank=False,
                    id="bead-form-priority",
                    compact=True,
                )
                yield Select(
                    [(Text(f"@{visible(name, single_line=True)}"), name) for name in self.agents],
                    value=bead.assignee if bead and bead.assignee else Select.NULL,
                    prompt="no agent",
                    id="bead-form-assignee",
                    disabled=status not in ASSIGNABLE,
                    compact=True,
                )
            yield Static(Text(""), id="bead-form-error")
            yield Static(Text("Enter / ctrl+s save   Esc cancel"), id="bead-form-keys")

    def on_mount(self) -> None:
        self.query_one("#bead-form-title", Input).focus()

    @on(Input.Submitted, "#bead-form-title")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        """Validate and dismiss with the draft, or say what is wrong in one line."""
        title = self.query_one("#bead-form-title", Input).value
        description = self.query_one("#bead-form-description", TextArea).text
        lane = self.query_one("#bead-form-lane", Select).value
        priority = self.query_one("#bead-form-priority", Select).value
        assignee = self.query_one("#bead-form-assignee", Select).value
        try:
            title = validate_title(title)
            description = validate_description(description)
        except TundraError as error:
            self._error(str(error))
            return
        self.dismiss(
            BeadDraft(
                title=title,
                description=description,
                lane=lane if isinstance(lane, Lane) else Lane.STANDARD,
                priority=priority if isinstance(priority, int) else PRIORITY_DEFAULT,
                assignee=assignee if isinstance(assignee, str) else "",
            )
        )

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)

    def _error(self, message: str) -> None:
        self.query_one("#bead-form-error", Static).update(Text(message))
